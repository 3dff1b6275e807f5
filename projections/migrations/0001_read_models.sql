-- The read models of the projectors, their consumed offsets and the helper that makes a
-- time-series table: a TimescaleDB hypertable when the extension is installed in the database,
-- else a table partitioned by month on its time column (partitions are created ahead by the
-- projector, a DEFAULT partition catches anything else) with a BRIN index on that column.
-- Applied by `optibid db migrate` with search_path set to the target schema.

CREATE FUNCTION create_time_series_table(
    table_name text, columns text, primary_key text, time_column text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE format('CREATE TABLE %I (%s, PRIMARY KEY (%s))', table_name, columns, primary_key);
        EXECUTE format(
            'SELECT create_hypertable(%L, %L, chunk_time_interval => INTERVAL %L)',
            table_name, time_column, '1 month'
        );
    ELSE
        EXECUTE format(
            'CREATE TABLE %I (%s, PRIMARY KEY (%s)) PARTITION BY RANGE (%I)',
            table_name, columns, primary_key, time_column
        );
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', table_name || '_default', table_name);
        EXECUTE format('CREATE INDEX %I ON %I USING brin (%I)', table_name || '_brin', table_name, time_column);
    END IF;
END
$$;

-- Canonical LMP: the current revision of each (iso, market, location_id, interval_start_utc),
-- and every revision ever projected with when it was recorded.
SELECT create_time_series_table('lmp', $$
    iso text NOT NULL,
    market text NOT NULL,
    location_id text NOT NULL,
    interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    location_name text,
    location_type text NOT NULL,
    lmp_usd_per_mwh double precision NOT NULL,
    energy_usd_per_mwh double precision,
    congestion_usd_per_mwh double precision,
    loss_usd_per_mwh double precision,
    revision bigint NOT NULL,
    supersedes_revision bigint,
    run_id text NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, 'iso, market, location_id, interval_start_utc', 'interval_start_utc');

SELECT create_time_series_table('lmp_revisions', $$
    iso text NOT NULL,
    market text NOT NULL,
    location_id text NOT NULL,
    interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    location_name text,
    location_type text NOT NULL,
    lmp_usd_per_mwh double precision NOT NULL,
    energy_usd_per_mwh double precision,
    congestion_usd_per_mwh double precision,
    loss_usd_per_mwh double precision,
    revision bigint NOT NULL,
    supersedes_revision bigint,
    run_id text NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, 'iso, market, location_id, interval_start_utc, revision', 'interval_start_utc');

-- Canonical load: natural key (iso, area_id, load_kind, interval_start_utc).
SELECT create_time_series_table(name, $$
    iso text NOT NULL,
    area_id text NOT NULL,
    load_kind text NOT NULL,
    interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    area_type text NOT NULL,
    load_mw double precision NOT NULL,
    forecast_made_at_utc timestamptz,
    revision bigint NOT NULL,
    run_id text NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, pk, 'interval_start_utc')
FROM (VALUES
    ('load', 'iso, area_id, load_kind, interval_start_utc'),
    ('load_revisions', 'iso, area_id, load_kind, interval_start_utc, revision')
) AS t (name, pk);

-- Canonical generation by fuel: natural key (iso, fuel_type_native, interval_start_utc).
SELECT create_time_series_table(name, $$
    iso text NOT NULL,
    fuel_type_native text NOT NULL,
    interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    fuel_type text NOT NULL,
    generation_mw double precision NOT NULL,
    revision bigint NOT NULL,
    run_id text NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, pk, 'interval_start_utc')
FROM (VALUES
    ('fuel_mix', 'iso, fuel_type_native, interval_start_utc'),
    ('fuel_mix_revisions', 'iso, fuel_type_native, interval_start_utc, revision')
) AS t (name, pk);

-- Canonical ancillary service prices: (iso, market, region_id, product_native, interval_start_utc).
SELECT create_time_series_table(name, $$
    iso text NOT NULL,
    market text NOT NULL,
    region_id text NOT NULL,
    product_native text NOT NULL,
    interval_start_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    product text NOT NULL,
    price_usd_per_mw_hour double precision NOT NULL,
    revision bigint NOT NULL,
    run_id text NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, pk, 'interval_start_utc')
FROM (VALUES
    ('as_prices', 'iso, market, region_id, product_native, interval_start_utc'),
    ('as_prices_revisions', 'iso, market, region_id, product_native, interval_start_utc, revision')
) AS t (name, pk);

-- KPIs per location, market and window; `revision` increases on recompute.
SELECT create_time_series_table(name, $$
    iso text NOT NULL,
    market text NOT NULL,
    location_id text NOT NULL,
    kpi text NOT NULL,
    window_kind text NOT NULL,
    window_start_utc timestamptz NOT NULL,
    window_end_utc timestamptz NOT NULL,
    value double precision,
    unit text NOT NULL,
    intervals_received integer NOT NULL,
    intervals_expected integer NOT NULL,
    revision bigint NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
$$, pk, 'window_start_utc')
FROM (VALUES
    ('kpis', 'iso, market, location_id, kpi, window_kind, window_start_utc'),
    ('kpis_revisions', 'iso, market, location_id, kpi, window_kind, window_start_utc, revision')
) AS t (name, pk);

-- Locations: the first sighting of each (iso, market, location_id).
CREATE TABLE locations (
    iso text NOT NULL,
    market text NOT NULL,
    location_id text NOT NULL,
    location_name text,
    location_type text NOT NULL,
    first_interval_start_utc timestamptz NOT NULL,
    source_dataset text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (iso, market, location_id)
);

-- Gaps, the backfill requests coalesced from them, and each request's outcome.
CREATE TABLE gaps (
    gap_id text PRIMARY KEY,
    iso text NOT NULL,
    dataset text NOT NULL,
    series_key text,
    missing_start_utc timestamptz NOT NULL,
    missing_end_utc timestamptz NOT NULL,
    interval_minutes integer NOT NULL,
    missing_intervals integer NOT NULL,
    lateness_seconds bigint NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
);
CREATE INDEX gaps_iso_dataset ON gaps (iso, dataset, missing_start_utc);

CREATE TABLE backfill_requests (
    request_id text PRIMARY KEY,
    iso text NOT NULL,
    dataset text NOT NULL,
    window_start_utc timestamptz NOT NULL,
    window_end_utc timestamptz NOT NULL,
    gap_ids text[] NOT NULL,
    attempt integer NOT NULL,
    reason text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
);

CREATE TABLE backfill_outcomes (
    request_id text PRIMARY KEY,
    iso text NOT NULL,
    dataset text NOT NULL,
    window_start_utc timestamptz NOT NULL,
    window_end_utc timestamptz NOT NULL,
    outcome text NOT NULL,
    records_published bigint NOT NULL,
    reason text,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
);

-- Dead letters of the stream workers and of the projectors: one row per rejected record
-- (the bytes stay on the dead-letter topic), and a summary per ISO dataset, reason and day.
CREATE TABLE dead_letters (
    original_topic text NOT NULL,
    original_partition integer NOT NULL,
    original_offset bigint NOT NULL,
    iso text NOT NULL,
    dataset text NOT NULL,
    reason_codes text[] NOT NULL,
    reasons text[] NOT NULL,
    original_value_bytes integer NOT NULL,
    original_timestamp_utc timestamptz,
    dead_letter_topic text NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (original_topic, original_partition, original_offset)
);
CREATE INDEX dead_letters_iso_dataset ON dead_letters (iso, dataset, occurred_at_utc);

CREATE VIEW dead_letter_summary AS
SELECT iso, dataset, reason_code,
       date_trunc('day', occurred_at_utc, 'UTC') AS day_utc,
       count(*) AS records,
       min(occurred_at_utc) AS first_at_utc,
       max(occurred_at_utc) AS last_at_utc
FROM dead_letters, unnest(reason_codes) AS reason_code
GROUP BY iso, dataset, reason_code, date_trunc('day', occurred_at_utc, 'UTC');

-- Connector runs, and freshness per ISO dataset.
CREATE TABLE connector_runs (
    run_id text PRIMARY KEY,
    iso text NOT NULL,
    dataset text NOT NULL,
    mode text NOT NULL,
    started_at_utc timestamptz NOT NULL,
    finished_at_utc timestamptz NOT NULL,
    rows_published bigint NOT NULL,
    first_interval_start_utc timestamptz,
    last_interval_end_utc timestamptz,
    publish_latency_seconds double precision,
    error_count integer NOT NULL,
    errors text[] NOT NULL,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL
);
CREATE INDEX connector_runs_iso_dataset ON connector_runs (iso, dataset, finished_at_utc);

CREATE TABLE freshness (
    iso text NOT NULL,
    dataset text NOT NULL,
    latest_interval_end_utc timestamptz,
    arrival_latency_seconds double precision,
    last_run_id text NOT NULL,
    last_run_finished_utc timestamptz NOT NULL,
    rows_last_run bigint NOT NULL,
    errors_last_run integer NOT NULL,
    last_day_completeness_share double precision,
    event_id text NOT NULL,
    occurred_at_utc timestamptz NOT NULL,
    recorded_at_utc timestamptz NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (iso, dataset)
);

-- Where each projector has read to: the next offset of each topic partition, written in the
-- same transaction as the rows those offsets produced.
CREATE TABLE projection_offsets (
    read_model text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at_utc timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (read_model, topic, partition)
);
