-- The status of each series the stream worker retired (silent past its dataset's retirement
-- age) or saw come back, from ingest.series_status; the latest change per series wins.
-- Applied with search_path set to the target schema.

CREATE TABLE series_status (
    iso text NOT NULL,
    dataset text NOT NULL,
    series_key text NOT NULL,
    status text NOT NULL,
    last_interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    retirement_age_seconds bigint NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (iso, dataset, series_key)
);
CREATE INDEX series_status_status ON series_status (status, iso, dataset);
