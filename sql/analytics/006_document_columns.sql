-- The columns document 001 names for its machine-learning tables: a model's hyperparameters
-- (another name of `parameters`), a training run's epochs and losses, a dataset's quality.

ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS hyperparameters jsonb;
ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS description text;
ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS performance_metrics jsonb NOT NULL DEFAULT '{}'::jsonb;
SELECT alias_column('ml_models', 'hyperparameters', 'parameters');
SELECT count(*) FROM migrate_existing_data();

ALTER TABLE training_datasets ADD COLUMN IF NOT EXISTS dataset_type text;
ALTER TABLE training_datasets ADD COLUMN IF NOT EXISTS quality_score double precision
    CHECK (quality_score BETWEEN 0 AND 1);

ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS total_epochs integer
    CHECK (total_epochs >= 0);
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS current_epoch integer NOT NULL DEFAULT 0
    CHECK (current_epoch >= 0);
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS training_loss double precision;
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS validation_loss double precision;

ALTER TABLE model_evaluations ADD COLUMN IF NOT EXISTS evaluation_type text;
ALTER TABLE feature_store ADD COLUMN IF NOT EXISTS feature_type text;

-- validate_schema_integrity() lives in the learning module (it covers every module); the
-- older definition of analytics/002 is replaced by the learning module's checks.
CREATE OR REPLACE FUNCTION validate_schema_integrity()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM schema_integrity_checks()
$$;

-- migrate:down
-- validate_schema_integrity() as analytics/002 defined it
CREATE OR REPLACE FUNCTION validate_schema_integrity()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found text;
    total integer;
BEGIN
    -- A partition is checked through its parent.
    SELECT string_agg(t.relname, ', ' ORDER BY t.relname) INTO found
      FROM pg_class t
     WHERE t.relnamespace = 'public'::regnamespace AND t.relkind IN ('r', 'p')
       AND NOT t.relispartition
       AND NOT EXISTS (
           SELECT 1 FROM pg_constraint k
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
            WHERE k.conrelid = t.oid AND k.contype = 'p' AND a.attname = 'id'
              AND a.atttypid = 'uuid'::regtype);
    RETURN QUERY SELECT 'uuid primary keys', CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('no uuid id in the primary key: ' || found, 'every table is keyed by a uuid id');

    SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ' ORDER BY 1) INTO found
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
       AND NOT a.attisdropped AND a.atttypid = 'timestamp'::regtype;
    RETURN QUERY SELECT 'timestamps with time zone',
        CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('timestamp without time zone: ' || found, 'all timestamps are timestamptz');

    SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO found
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'updated_at'
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND NOT c.relispartition AND NOT a.attisdropped
       AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                        WHERE g.tgrelid = c.oid AND g.tgfoid = 'set_updated_at'::regproc);
    RETURN QUERY SELECT 'updated_at triggers', CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('updated_at without trigger: ' || found, 'every updated_at is kept by a trigger');

    SELECT string_agg(format('%s(%s)', k.conrelid::regclass, a.attname), ', ' ORDER BY 1)
      INTO found
      FROM pg_constraint k
      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
     WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_index i
                        WHERE i.indrelid = k.conrelid AND i.indkey[0] = k.conkey[1]);
    RETURN QUERY SELECT 'foreign key indexes',
        CASE WHEN found IS NULL THEN 'ok' ELSE 'warning' END,
        coalesce('foreign keys without an index (slow deletes): ' || found,
                 'every foreign key has an index');

    SELECT string_agg(i.indexrelid::regclass::text, ', ') INTO found
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisvalid;
    RETURN QUERY SELECT 'valid indexes', CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('invalid (a failed concurrent build): ' || found || '; drop and recreate',
                 'no invalid index');

    SELECT string_agg(p.oid::regprocedure::text, ', ') INTO found
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef;
    RETURN QUERY SELECT 'security invoker functions',
        CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('SECURITY DEFINER (would lend the owner''s rights to the agent role): ' || found,
                 'every function runs with its caller''s rights');

    -- The registry is the installer's: a role without access to it (the agent) skips this.
    IF EXISTS (SELECT 1 FROM pg_class
                WHERE relnamespace = 'installer'::regnamespace AND relname = 'embedding_columns')
       AND has_schema_privilege('installer', 'USAGE') THEN
        SELECT string_agg(u.table_name || '.' || u.column_name, ', ') INTO found
          FROM unconverted_embedding_columns() u;
        SELECT count(*) INTO total FROM installer.embedding_columns;
        RETURN QUERY SELECT 'embedding columns',
            CASE WHEN found IS NULL THEN 'ok' ELSE 'warning' END,
            CASE WHEN found IS NOT NULL
                 THEN 'pgvector is installed but these are still real[]: ' || found
                      || '; run `python install.py --full`'
                 WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
                 THEN total || ' column(s) use pgvector with HNSW indexes'
                 ELSE total || ' column(s) use the real[] fallback (pgvector not installed)' END;
    END IF;

    SELECT string_agg(format('%I', matviewname), ', ') INTO found
      FROM pg_matviews WHERE schemaname = 'public' AND NOT ispopulated;
    RETURN QUERY SELECT 'materialized views populated',
        CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
        coalesce('never refreshed: ' || found || '; run `python install.py refresh`',
                 'every materialized view holds data');

    IF to_regclass('learning_events') IS NOT NULL THEN
        SELECT string_agg(to_char(m, 'YYYY-MM'), ', ') INTO found
          FROM missing_learning_event_partitions(1) AS m;
        RETURN QUERY SELECT 'learning_events partitions',
            CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
            coalesce('no partition for ' || found || '; run `python install.py refresh`',
                     'this month and the next have partitions');
    END IF;
END;
$$;
ALTER TABLE feature_store DROP COLUMN IF EXISTS feature_type;
ALTER TABLE model_evaluations DROP COLUMN IF EXISTS evaluation_type;
ALTER TABLE model_training_sessions DROP COLUMN IF EXISTS validation_loss,
    DROP COLUMN IF EXISTS training_loss, DROP COLUMN IF EXISTS current_epoch,
    DROP COLUMN IF EXISTS total_epochs;
ALTER TABLE training_datasets DROP COLUMN IF EXISTS quality_score,
    DROP COLUMN IF EXISTS dataset_type;
DROP TRIGGER IF EXISTS aa_column_aliases ON ml_models;
DELETE FROM installer.column_aliases WHERE table_name = 'ml_models';
ALTER TABLE ml_models DROP COLUMN IF EXISTS performance_metrics, DROP COLUMN IF EXISTS description,
    DROP COLUMN IF EXISTS hyperparameters;
