-- Organisations' accounts (tier, plan, Stripe subscription) and feature flags, folded from the
-- account and flag aggregates' events by `optibid project-identity`. An organisation without
-- a row is on the free tier. Applied with search_path set to the target schema.

CREATE TABLE identity_accounts (
    org_id text PRIMARY KEY,
    tier text NOT NULL DEFAULT 'free',
    plan text NOT NULL DEFAULT 'free',
    status text NOT NULL DEFAULT 'none',
    stripe_customer_id text,
    stripe_subscription_id text,
    period_start timestamptz,
    period_end timestamptz,
    grace_until timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX identity_accounts_customer ON identity_accounts (stripe_customer_id);
CREATE INDEX identity_accounts_past_due ON identity_accounts (grace_until)
    WHERE status = 'past_due';

CREATE TABLE identity_feature_flags (
    flag text PRIMARY KEY,
    enabled boolean NOT NULL,
    percentage integer NOT NULL,
    roles text[] NOT NULL,
    org_ids_on text[] NOT NULL,
    org_ids_off text[] NOT NULL,
    updated_at timestamptz NOT NULL
);
