-- Every revision of a key used to be written twice: as the current row of `<name>` and again in
-- `<name>_revisions`, so each event cost two indexed inserts. Now the current revision lives in
-- `<name>` only, and `<name>_superseded` keeps the others (a correction moves the row it
-- replaces there, in the same transaction; an older revision arriving late goes straight
-- there). `<name>_revisions` becomes a view of both, so it still lists every revision with
-- when it was recorded, for "as of" queries. An event bringing a new key is written once.
-- Applied with search_path set to the target schema.

CREATE FUNCTION keep_superseded_revisions(table_name text, key_columns text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_name text := table_name || '_revisions';
    new_name text := table_name || '_superseded';
    child text;
    current_key text;
BEGIN
    EXECUTE format('ALTER TABLE %I RENAME TO %I', old_name, new_name);
    -- native monthly partitions are found by name (<table>_pYYYYMM, <table>_default)
    FOR child IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = new_name AND p.relnamespace = current_schema()::regnamespace
          AND c.relnamespace = p.relnamespace AND left(c.relname, length(old_name)) = old_name
    LOOP
        EXECUTE format(
            'ALTER TABLE %I RENAME TO %I', child, new_name || substr(child, length(old_name) + 1)
        );
    END LOOP;
    EXECUTE format('ALTER INDEX IF EXISTS %I RENAME TO %I', old_name || '_brin', new_name || '_brin');
    -- the current revision of each key is in the table already
    SELECT string_agg(format('s.%1$I = t.%1$I', k), ' AND ') INTO current_key
    FROM unnest(key_columns) AS k;
    EXECUTE format(
        'DELETE FROM %I s USING %I t WHERE %s AND s.revision = t.revision',
        new_name, table_name, current_key
    );
    EXECUTE format(
        'CREATE VIEW %I AS SELECT * FROM %I UNION ALL SELECT * FROM %I',
        old_name, table_name, new_name
    );
END
$$;

SELECT keep_superseded_revisions(name, key_columns) FROM (VALUES
    ('lmp', ARRAY['iso', 'market', 'location_id', 'interval_start_utc']),
    ('load', ARRAY['iso', 'area_id', 'load_kind', 'interval_start_utc']),
    ('fuel_mix', ARRAY['iso', 'fuel_type_native', 'interval_start_utc']),
    ('as_prices', ARRAY['iso', 'market', 'region_id', 'product_native', 'interval_start_utc']),
    ('kpis', ARRAY['iso', 'market', 'location_id', 'kpi', 'window_kind', 'window_start_utc'])
) AS t (name, key_columns);

DROP FUNCTION keep_superseded_revisions(text, text[]);
