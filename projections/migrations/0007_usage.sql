-- Usage metering: one row per organisation and metering window, folded from usage.windows by
-- `optibid project-usage` (projections.usage_models). A window's row holds its final values (a
-- window sent again carries the same ones), so a redelivery rewrites it unchanged. The primary
-- key (org_id, window_start_utc) is also the index of an organisation's time ranges (its usage
-- this month, per day); the second index serves the operators' ranges over every organisation.
-- Applied with search_path set to the target schema.

CREATE TABLE usage_windows (
    org_id text NOT NULL,
    window_start_utc timestamptz NOT NULL,
    window_end_utc timestamptz NOT NULL,
    requests bigint NOT NULL,
    rows bigint NOT NULL,
    bytes bigint NOT NULL,
    dry_runs bigint NOT NULL,
    event_id text NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    PRIMARY KEY (org_id, window_start_utc)
);
CREATE INDEX usage_windows_start ON usage_windows (window_start_utc);
