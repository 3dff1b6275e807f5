-- The identity read models, folded from identity.events and audit.events by
-- `optibid project-identity` (projections.identity_models): users, organisations, their
-- members, invitations and API keys, sessions, and the audit log. `identity_versions` holds the
-- version of each aggregate folded in so far: an event at or below it is a duplicate, one more
-- than one above it is a gap. Rebuilt by truncating these tables and replaying both topics.
-- Signing keys and users' sealing keys live outside them (schema identity_keys).
-- Applied with search_path set to the target schema.

CREATE TABLE identity_versions (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE identity_users (
    user_id text PRIMARY KEY,
    email text NOT NULL,
    display_name text NOT NULL,
    password_sealed text,
    totp_sealed text,
    recovery_sealed text,
    last_totp_step bigint,
    failures integer NOT NULL DEFAULT 0,
    lockouts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    disabled boolean NOT NULL DEFAULT false,
    erased boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX identity_users_email ON identity_users (email);

CREATE TABLE identity_organizations (
    org_id text PRIMARY KEY,
    name text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL
);

CREATE TABLE identity_memberships (
    org_id text NOT NULL,
    user_id text NOT NULL,
    role text NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX identity_memberships_user ON identity_memberships (user_id);

CREATE TABLE identity_invitations (
    invitation_id text PRIMARY KEY,
    org_id text NOT NULL,
    email text NOT NULL,
    role text NOT NULL,
    token_hash text NOT NULL,
    expires_at timestamptz NOT NULL,
    invited_by text,
    created_at timestamptz NOT NULL,
    accepted_by text,
    accepted_at timestamptz
);
CREATE INDEX identity_invitations_org ON identity_invitations (org_id, created_at);

CREATE TABLE identity_api_keys (
    key_id text PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL UNIQUE,
    secret_hash text NOT NULL,
    role text NOT NULL,
    scope text NOT NULL,
    expires_at timestamptz,
    created_by text,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX identity_api_keys_org ON identity_api_keys (org_id, created_at);

CREATE TABLE identity_sessions (
    session_id text PRIMARY KEY,
    user_id text NOT NULL,
    org_id text,
    amr text NOT NULL DEFAULT '',
    ip text,
    user_agent text,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at timestamptz,
    idle_timeout_s bigint,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX identity_sessions_user ON identity_sessions (user_id);

CREATE TABLE identity_audit (
    event_id text PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    org_id text,
    actor_id text,
    actor_kind text NOT NULL,
    ip text,
    user_agent text,
    action text NOT NULL,
    outcome text NOT NULL,
    target_type text,
    target_id text,
    detail text
);
CREATE INDEX identity_audit_org_time ON identity_audit (org_id, occurred_at DESC, event_id DESC);
