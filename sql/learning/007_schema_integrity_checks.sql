-- validate_schema_integrity() for every module, in the base module so that every installation
-- has it (document 001: `SELECT * FROM validate_schema_integrity();`). The checks live in
-- schema_integrity_checks(); validate_schema_integrity() only calls it, so a module that
-- redefined it earlier (analytics/002) points back here with one line.
-- One row per check, status 'ok', 'warning' (works, but needs attention) or 'error'. Per
-- installed module (recognised by its first table) one more row: the tables, functions,
-- triggers, views, materialised views and indexes the design documents name are all there.

CREATE OR REPLACE FUNCTION schema_integrity_checks()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found text;
    total integer;
    module record;
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
                        WHERE g.tgrelid = c.oid AND g.tgfoid IN (
                            'set_updated_at'::regproc,
                            coalesce(to_regproc('update_learning_queue_timestamp'), 0)));
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

    -- The registries are the installer's: a role without access to them (the agent) skips this.
    IF has_schema_privilege('installer', 'USAGE') THEN
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

        SELECT string_agg(a.table_name || '.' || a.alias, ', ' ORDER BY 1) INTO found
          FROM installer.column_aliases a
         WHERE to_regclass(a.table_name) IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                            WHERE g.tgrelid = to_regclass(a.table_name)
                              AND g.tgname = 'aa_column_aliases');
        RETURN QUERY SELECT 'column aliases', CASE WHEN found IS NULL THEN 'ok' ELSE 'error' END,
            coalesce('alias columns no trigger keeps: ' || found,
                     'every alias column is kept equal to its canonical column');
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

    FOR module IN
        SELECT m.name, count(*) AS objects,
               string_agg(o.kind || ' ' || o.object, ', ' ORDER BY o.kind, o.object)
                   FILTER (WHERE NOT o.present) AS missing
          FROM schema_module_objects() o
          JOIN (SELECT DISTINCT ON (x.module) x.module AS name, x.object AS anchor
                  FROM schema_module_objects() x WHERE x.kind = 'table'
                 ORDER BY x.module, x.ordinal) m ON m.name = o.module
         WHERE to_regclass(m.anchor) IS NOT NULL
         GROUP BY m.name ORDER BY m.name
    LOOP
        RETURN QUERY SELECT 'module ' || module.name,
            CASE WHEN module.missing IS NULL THEN 'ok' ELSE 'error' END,
            coalesce('missing: ' || module.missing,
                     module.objects || ' documented objects present');
    END LOOP;
END;
$$;

-- What each module must hold (the objects the design documents name), and whether it does.
CREATE OR REPLACE FUNCTION schema_module_objects()
RETURNS TABLE (module text, kind text, object text, ordinal integer, present boolean)
LANGUAGE sql STABLE AS $$
    SELECT o.module, o.kind, o.object, o.ordinal::integer,
           CASE o.kind
               WHEN 'table' THEN to_regclass(o.object) IS NOT NULL
               WHEN 'view' THEN EXISTS (SELECT 1 FROM pg_views v
                                         WHERE v.schemaname = 'public' AND v.viewname = o.object)
               WHEN 'materialized view' THEN EXISTS (
                   SELECT 1 FROM pg_matviews v
                    WHERE v.schemaname = 'public' AND v.matviewname = o.object)
               WHEN 'function' THEN EXISTS (
                   SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'public'::regnamespace AND p.proname = o.object)
               WHEN 'trigger' THEN EXISTS (SELECT 1 FROM pg_trigger g
                                            WHERE NOT g.tgisinternal AND g.tgname = o.object)
               WHEN 'index' THEN to_regclass(o.object) IS NOT NULL
           END
      FROM (SELECT v.*, row_number() OVER () AS ordinal FROM (VALUES
        ('learning', 'table', 'agent_metrics'), ('learning', 'table', 'interaction_logs'),
        ('learning', 'table', 'learning_feedback'), ('learning', 'table', 'model_performance'),
        ('learning', 'table', 'task_embeddings'), ('learning', 'function', 'migrate_existing_data'),
        ('learning', 'function', 'validate_schema_integrity'),
        ('agent_persistence', 'table', 'agent_decision_trees'),
        ('agent_persistence', 'table', 'agent_learning_patterns'),
        ('agent_persistence', 'table', 'agent_context_evolution'),
        ('agent_persistence', 'table', 'agent_memory_bank'),
        ('agent_persistence', 'table', 'agent_session_history'),
        ('agent_persistence', 'table', 'agent_code_analysis'),
        ('agent_persistence', 'table', 'agent_project_insights'),
        ('agent_persistence', 'table', 'agent_collaboration_logs'),
        ('collaboration', 'table', 'sessions'), ('collaboration', 'table', 'conversation_chunks'),
        ('collaboration', 'table', 'memories'), ('collaboration', 'table', 'tasks'),
        ('collaboration', 'table', 'artifacts'), ('collaboration', 'table', 'agents'),
        ('collaboration', 'function', 'claim_task'), ('collaboration', 'view', 'active_sessions'),
        ('collaboration', 'index', 'memories_tags_idx'),
        ('learning_pipeline', 'table', 'conversation_feedback'),
        ('learning_pipeline', 'table', 'owner_corrections'),
        ('learning_pipeline', 'table', 'learning_queue'),
        ('learning_pipeline', 'table', 'response_analytics'),
        ('learning_pipeline', 'table', 'voice_transcripts'),
        ('learning_pipeline', 'table', 'learning_audit_log'),
        ('learning_pipeline', 'function', 'trigger_learning_from_negative_feedback'),
        ('learning_pipeline', 'function', 'trigger_learning_from_corrections'),
        ('learning_pipeline', 'function', 'update_learning_queue_timestamp'),
        ('learning_pipeline', 'function', 'check_similar_knowledge'),
        ('learning_pipeline', 'function', 'batch_process_learning'),
        ('learning_pipeline', 'trigger', 'trg_feedback_learning'),
        ('learning_pipeline', 'trigger', 'trg_corrections_learning'),
        ('learning_pipeline', 'trigger', 'trg_learning_queue_updated_at'),
        ('learning_pipeline', 'materialized view', 'daily_learning_metrics'),
        ('learning_pipeline', 'materialized view', 'response_performance_metrics'),
        ('learning_pipeline', 'index', 'idx_corrections_pending'),
        ('learning_pipeline', 'index', 'idx_learning_pending'),
        ('learning_pipeline', 'index', 'idx_transcripts_negative'),
        ('analytics', 'table', 'ml_models'), ('analytics', 'table', 'training_datasets'),
        ('analytics', 'table', 'model_training_sessions'),
        ('analytics', 'table', 'model_evaluations'), ('analytics', 'table', 'feature_store'),
        ('analytics', 'table', 'learning_events'),
        ('openevolve', 'table', 'evolution_experiments'),
        ('openevolve', 'table', 'evolution_generations'),
        ('openevolve', 'table', 'evolution_individuals'),
        ('openevolve', 'table', 'code_evaluations'), ('openevolve', 'table', 'llm_interactions'),
        ('pattern_recognition', 'table', 'identified_patterns'),
        ('pattern_recognition', 'table', 'pattern_occurrences'),
        ('pattern_recognition', 'table', 'predictions'),
        ('pattern_recognition', 'table', 'recommendations'),
        ('pattern_recognition', 'table', 'ab_testing_experiments'),
        ('performance', 'table', 'system_performance_metrics'),
        ('performance', 'table', 'query_performance_logs'),
        ('performance', 'table', 'resource_utilization'),
        ('performance', 'table', 'capacity_planning_metrics'),
        ('integration', 'table', 'git_operation_learning_events'),
        ('integration', 'table', 'user_session_learning_events'),
        ('integration', 'table', 'data_quality_checks'),
        ('integration', 'view', 'schema_migrations')
      ) AS v (module, kind, object)) AS o
$$;

CREATE OR REPLACE FUNCTION validate_schema_integrity()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM schema_integrity_checks()
$$;

-- migrate:down
-- validate_schema_integrity() goes with the checks, unless analytics/002's own version is back
DO $$
BEGIN
    IF position('schema_integrity_checks' IN pg_get_functiondef(
            to_regprocedure('validate_schema_integrity()'))) > 0 THEN
        DROP FUNCTION validate_schema_integrity();
    END IF;
END;
$$;
DROP FUNCTION IF EXISTS schema_module_objects();
DROP FUNCTION IF EXISTS schema_integrity_checks();
