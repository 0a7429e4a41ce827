-- The design documents name some columns differently from the tables (000 orders agent_metrics
-- by `timestamp`; 002 and 004 write `proposed_content`, `agent_id`, `pattern_data`, ...). Both
-- names work:
-- * a name that is only read becomes a generated column (`timestamp` is created_at);
-- * a name that is also written becomes an alias column, kept equal to its canonical column by
--   the trigger `aa_column_aliases` (alias_column() registers a pair and rebuilds the trigger).
--   On INSERT a given alias wins, else the alias copies the canonical column; on UPDATE
--   whichever of the two changed is copied to the other. Named aa_… so it fires before every
--   other BEFORE trigger (PostgreSQL fires them in name order), the natural-key one included.
-- migrate_existing_data() (learning/008) fills the alias columns of rows written before they
-- existed.

ALTER TABLE agent_metrics
    ADD COLUMN IF NOT EXISTS "timestamp" timestamptz GENERATED ALWAYS AS (created_at) STORED;
CREATE INDEX IF NOT EXISTS agent_metrics_timestamp_idx ON agent_metrics ("timestamp" DESC);
ALTER TABLE interaction_logs
    ADD COLUMN IF NOT EXISTS "timestamp" timestamptz GENERATED ALWAYS AS (created_at) STORED;
ALTER TABLE learning_feedback
    ADD COLUMN IF NOT EXISTS "timestamp" timestamptz GENERATED ALWAYS AS (created_at) STORED;

CREATE TABLE IF NOT EXISTS installer.column_aliases (
    table_name text NOT NULL,
    alias      text NOT NULL,
    canonical  text NOT NULL,
    PRIMARY KEY (table_name, alias)
);

-- BEFORE INSERT OR UPDATE trigger; arguments: alias, canonical, alias, canonical, ...
CREATE OR REPLACE FUNCTION sync_column_aliases() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    fields   jsonb := to_jsonb(NEW);
    previous jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
    patch    jsonb := '{}'::jsonb;
    alias_name text;
    canon      text;
    i        integer := 0;
BEGIN
    WHILE i < TG_NARGS LOOP
        alias_name := TG_ARGV[i];
        canon := TG_ARGV[i + 1];
        i := i + 2;
        IF TG_OP = 'INSERT' THEN
            IF fields -> alias_name <> 'null'::jsonb THEN
                patch := patch || jsonb_build_object(canon, fields -> alias_name);
            ELSE
                patch := patch || jsonb_build_object(alias_name, fields -> canon);
            END IF;
        ELSIF fields -> alias_name IS DISTINCT FROM previous -> alias_name
              AND fields -> canon IS NOT DISTINCT FROM previous -> canon THEN
            patch := patch || jsonb_build_object(canon, fields -> alias_name);
        ELSIF fields -> canon IS DISTINCT FROM previous -> canon
              AND fields -> alias_name IS NOT DISTINCT FROM previous -> alias_name THEN
            patch := patch || jsonb_build_object(alias_name, fields -> canon);
        END IF;
    END LOOP;
    IF patch = '{}'::jsonb THEN
        RETURN NEW;
    END IF;
    RETURN jsonb_populate_record(NEW, patch);
END;
$$;

-- Registers `alias_name` as another name of `canonical_name` in `tbl`; rebuilds the trigger.
CREATE OR REPLACE FUNCTION alias_column(tbl regclass, alias_name text, canonical_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    args text;
BEGIN
    INSERT INTO installer.column_aliases (table_name, alias, canonical)
    VALUES (tbl::text, alias_name, canonical_name)
    ON CONFLICT (table_name, alias) DO UPDATE SET canonical = EXCLUDED.canonical;
    SELECT string_agg(format('%L, %L', a.alias, a.canonical), ', ' ORDER BY a.alias) INTO args
      FROM installer.column_aliases a WHERE a.table_name = tbl::text;
    EXECUTE format('DROP TRIGGER IF EXISTS aa_column_aliases ON %s', tbl);
    EXECUTE format('CREATE TRIGGER aa_column_aliases BEFORE INSERT OR UPDATE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION sync_column_aliases(%s)', tbl, args);
END;
$$;

-- migrate:down
DROP FUNCTION IF EXISTS alias_column(regclass, text, text);
DROP FUNCTION IF EXISTS sync_column_aliases() CASCADE;
DROP TABLE IF EXISTS installer.column_aliases;
ALTER TABLE learning_feedback DROP COLUMN IF EXISTS "timestamp";
ALTER TABLE interaction_logs DROP COLUMN IF EXISTS "timestamp";
ALTER TABLE agent_metrics DROP COLUMN IF EXISTS "timestamp";
