-- Single sign-on connections of organisations, folded from SsoConfigured and SsoRemoved by
-- `optibid project-identity`. The client secret is kept only sealed for the organisation.
-- Applied with search_path set to the target schema.

CREATE TABLE identity_sso_connections (
    connection_id text PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    protocol text NOT NULL,
    allowed_domains text[] NOT NULL,
    role_mapping jsonb NOT NULL,
    jit boolean NOT NULL,
    sso_required boolean NOT NULL,
    allow_idp_initiated boolean NOT NULL,
    issuer text,
    client_id text,
    client_secret_sealed text,
    idp_metadata text,
    configured_at timestamptz NOT NULL
);
CREATE INDEX identity_sso_connections_org ON identity_sso_connections (org_id);
CREATE INDEX identity_sso_connections_domains ON identity_sso_connections USING gin (allowed_domains);
