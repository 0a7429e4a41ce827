-- Design document 001's operations: SELECT backup_critical_data(); and
-- SELECT rollback_schema_version('…'); Both run as the caller (the owner role); the agent
-- role may not run them.

-- Copies every learning table (public schema; a partitioned table with all its partitions)
-- into a new schema backup_YYYYMMDD_HHMMSS_US and returns one row per table copied.
CREATE OR REPLACE FUNCTION backup_critical_data()
RETURNS TABLE (backup_schema text, table_name text, rows_copied bigint)
LANGUAGE plpgsql AS $$
DECLARE
    target text := 'backup_' || to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                        'YYYYMMDD_HH24MISS_US');
    source text;
    copied bigint;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', target,
                   'learning tables copied by backup_critical_data() at ' || clock_timestamp());
    FOR source IN
        SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition
         ORDER BY c.relname
    LOOP
        EXECUTE format('CREATE TABLE %I.%I AS TABLE public.%I', target, source, source);
        GET DIAGNOSTICS copied = ROW_COUNT;
        backup_schema := target;
        table_name := source;
        rows_copied := copied;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Reverts what was applied after `target` with the down parts the installer's ledger keeps,
-- last first, in the caller's transaction, after backup_critical_data(). `target` is
-- MODULE/NNN (e.g. 'learning_pipeline/000' reverts that whole module) or a version label of
-- installer.schema_versions (document 001's '2024.12.001' form). Nothing changes when one of
-- the migrations on the way has no down part. Returns each reverted migration.
CREATE OR REPLACE FUNCTION rollback_schema_version(target text)
RETURNS TABLE (reverted text, backup_schema text)
LANGUAGE plpgsql AS $$
DECLARE
    lacking text;
    backup text;
    step record;
BEGIN
    PERFORM pg_advisory_xact_lock(465557353070);  -- the installer's lock: no run in between
    SELECT string_agg(format('%s/%s_%s', p.module, lpad(p.version::text, 3, '0'), p.name),
                      ', ')
      INTO lacking FROM installer.rollback_plan(target) p WHERE p.down_sql IS NULL;
    IF lacking IS NOT NULL THEN
        RAISE EXCEPTION 'cannot roll back to %: no down part in %; nothing was changed',
            target, lacking
            USING HINT = 'add a "-- migrate:down" section to those files and run the '
                         'installer''s migrate command, or restore a backup';
    END IF;
    IF EXISTS (SELECT 1 FROM installer.rollback_plan(target) p
                WHERE p.module = 'learning' AND p.version = 40) THEN
        RAISE EXCEPTION 'rolling back to % would remove rollback_schema_version itself', target
            USING HINT = 'use the installer''s command: migrate --rollback-to ' || target;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM installer.rollback_plan(target)) THEN
        RETURN;
    END IF;
    SELECT b.backup_schema INTO backup FROM backup_critical_data() b LIMIT 1;
    FOR step IN SELECT * FROM installer.rollback_plan(target) LOOP
        IF step.down_sql <> '' THEN
            EXECUTE step.down_sql;
        END IF;
        DELETE FROM installer.schema_migrations m
         WHERE m.module = step.module AND m.version = step.version;
        reverted := format('%s/%s_%s', step.module, lpad(step.version::text, 3, '0'), step.name);
        backup_schema := backup;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION backup_critical_data() FROM PUBLIC;
REVOKE ALL ON FUNCTION rollback_schema_version(text) FROM PUBLIC;

-- migrate:down
DROP FUNCTION IF EXISTS rollback_schema_version(text);
DROP FUNCTION IF EXISTS backup_critical_data();
