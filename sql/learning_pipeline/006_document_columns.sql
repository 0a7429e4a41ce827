-- Document 002's learning pipeline on top of today's tables:
-- * its conversation_id columns are real foreign keys to the conversation, a collaboration
--   `sessions` row, with the document's delete rules (feedback, corrections and response
--   analytics are deleted with it, transcripts are kept); a row written with conversation_id
--   gets the same session_id, so everything that reads session_id sees it;
-- * its other column names (reason, corrected_answer, proposed_content) are other names of
--   today's columns (see learning/006), confidence_score is confidence on a 0-100 scale;
-- * its function, trigger and materialised-view names and dimensions; today's per-day
--   feedback figures live on as the function daily_feedback_metrics().

CREATE OR REPLACE FUNCTION fill_session_from_conversation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.session_id := coalesce(NEW.session_id, NEW.conversation_id);
    RETURN NEW;
END;
$$;

ALTER TABLE conversation_feedback ADD COLUMN IF NOT EXISTS conversation_id uuid
    REFERENCES sessions (id) ON DELETE CASCADE DEFERRABLE;
ALTER TABLE conversation_feedback ADD COLUMN IF NOT EXISTS reason text;
SELECT alias_column('conversation_feedback', 'reason', 'comment');
CREATE INDEX IF NOT EXISTS conversation_feedback_conversation_idx
    ON conversation_feedback (conversation_id);
CREATE INDEX IF NOT EXISTS conversation_feedback_type_idx
    ON conversation_feedback (feedback_type, created_at);

ALTER TABLE owner_corrections ADD COLUMN IF NOT EXISTS conversation_id uuid
    REFERENCES sessions (id) ON DELETE CASCADE DEFERRABLE;
ALTER TABLE owner_corrections ADD COLUMN IF NOT EXISTS corrected_answer text;
ALTER TABLE owner_corrections ADD COLUMN IF NOT EXISTS correction_context text;
SELECT alias_column('owner_corrections', 'corrected_answer', 'corrected_response');
CREATE INDEX IF NOT EXISTS owner_corrections_conversation_idx ON owner_corrections (conversation_id);
CREATE INDEX IF NOT EXISTS idx_corrections_pending ON owner_corrections (priority, created_at)
    WHERE applied_at IS NULL;

ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS proposed_content text;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS shop_id integer;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS category text;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS confidence_score integer
    GENERATED ALWAYS AS (round(confidence * 100)::integer) STORED;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS reviewed_at timestamptz;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS applied_at timestamptz;
ALTER TABLE learning_queue ADD COLUMN IF NOT EXISTS reviewed_by uuid;
SELECT alias_column('learning_queue', 'proposed_content', 'content');
CREATE INDEX IF NOT EXISTS idx_learning_pending ON learning_queue (priority DESC, created_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS learning_queue_shop_status_idx ON learning_queue (shop_id, status);
CREATE INDEX IF NOT EXISTS learning_queue_category_idx ON learning_queue (category);

ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS conversation_id uuid
    REFERENCES sessions (id) ON DELETE CASCADE DEFERRABLE;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS response_text text;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS response_type text;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS user_engagement_score double precision;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS led_to_conversion boolean;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS ab_test_variant text;
ALTER TABLE response_analytics ADD COLUMN IF NOT EXISTS metrics jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX IF NOT EXISTS response_analytics_conversation_idx
    ON response_analytics (conversation_id);
CREATE INDEX IF NOT EXISTS response_analytics_type_time_idx
    ON response_analytics (response_type, created_at);
CREATE INDEX IF NOT EXISTS response_analytics_variant_idx
    ON response_analytics (ab_test_variant) WHERE ab_test_variant IS NOT NULL;

ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS conversation_id uuid
    REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE;
ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS processed_summary text;
ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS embedding real[]
    CHECK (embedding IS NULL OR cardinality(embedding) = 768);
ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS sentiment text
    CHECK (sentiment IN ('positive', 'neutral', 'negative', 'mixed'));
ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS entities jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE voice_transcripts ADD COLUMN IF NOT EXISTS learning_insights jsonb NOT NULL
    DEFAULT '{}'::jsonb;
CREATE INDEX IF NOT EXISTS voice_transcripts_conversation_idx ON voice_transcripts (conversation_id);
CREATE INDEX IF NOT EXISTS voice_transcripts_entities_idx ON voice_transcripts USING gin (entities);
CREATE INDEX IF NOT EXISTS idx_transcripts_negative ON voice_transcripts (created_at)
    WHERE sentiment = 'negative';
SELECT register_embedding_column('voice_transcripts', 'embedding', 768);

CREATE TRIGGER conversation_feedback_session BEFORE INSERT OR UPDATE OF conversation_id
    ON conversation_feedback FOR EACH ROW EXECUTE FUNCTION fill_session_from_conversation();
CREATE TRIGGER owner_corrections_session BEFORE INSERT OR UPDATE OF conversation_id
    ON owner_corrections FOR EACH ROW EXECUTE FUNCTION fill_session_from_conversation();
CREATE TRIGGER response_analytics_session BEFORE INSERT OR UPDATE OF conversation_id
    ON response_analytics FOR EACH ROW EXECUTE FUNCTION fill_session_from_conversation();
CREATE TRIGGER voice_transcripts_session BEFORE INSERT OR UPDATE OF conversation_id
    ON voice_transcripts FOR EACH ROW EXECUTE FUNCTION fill_session_from_conversation();

-- The audit trail in the document's terms: which table and row, the values before and after
-- (embeddings left out), who and when.
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS table_name text NOT NULL
    DEFAULT 'learning_queue';
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS record_id uuid
    GENERATED ALWAYS AS (learning_queue_id) STORED;
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS old_values jsonb;
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS new_values jsonb;
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS performed_by text
    GENERATED ALWAYS AS (actor) STORED;
ALTER TABLE learning_audit_log ADD COLUMN IF NOT EXISTS performed_at timestamptz
    GENERATED ALWAYS AS (created_at) STORED;
CREATE INDEX IF NOT EXISTS learning_audit_log_action_idx ON learning_audit_log (action, created_at);
CREATE INDEX IF NOT EXISTS learning_audit_log_time_idx ON learning_audit_log (created_at);

CREATE OR REPLACE FUNCTION audit_learning_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO learning_audit_log (learning_queue_id, action, new_status, new_values)
        VALUES (NEW.id, 'enqueued', NEW.status, to_jsonb(NEW) - 'embedding');
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO learning_audit_log (learning_queue_id, action, old_status, new_status,
                                        old_values, new_values)
        VALUES (NEW.id, 'status_changed', OLD.status, NEW.status,
                to_jsonb(OLD) - 'embedding', to_jsonb(NEW) - 'embedding');
    END IF;
    RETURN NULL;
END;
$$;

-- The document's function and trigger names do the enqueueing from here on. The triggers of
-- learning_pipeline/001 (conversation_feedback_enqueue, owner_corrections_enqueue) stay, as
-- later files and the replay of 001 (re-creating a dropped table, installer/schema_drift.py)
-- expect them, but their functions no longer do anything.
CREATE OR REPLACE FUNCTION trigger_learning_from_negative_feedback() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress()
       OR NOT (NEW.feedback_type = 'thumbs_down' OR coalesce(NEW.rating, 5) <= 2) THEN
        RETURN NULL;
    END IF;
    INSERT INTO learning_queue (source_type, source_id, session_id, content, context,
                                confidence, priority, status)
    SELECT 'feedback', NEW.id, NEW.session_id,
           coalesce(NEW.comment, 'negative feedback: ' || NEW.feedback_type
                    || coalesce(' ' || NEW.rating, '')),
           c.content, CASE WHEN NEW.rating = 1 THEN 0.7 ELSE 0.5 END, 0, 'pending'
      FROM (SELECT NULL) AS one
      LEFT JOIN conversation_chunks c ON c.id = NEW.chunk_id
    ON CONFLICT (source_type, source_id) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION trigger_learning_from_corrections() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NULL;
    END IF;
    INSERT INTO learning_queue (source_type, source_id, session_id, content, context,
                                confidence, priority, status)
    VALUES ('correction', NEW.id, NEW.session_id, NEW.corrected_response,
            coalesce(NEW.original_response, NEW.correction_context),
            CASE NEW.priority WHEN 'critical' THEN 1.0 WHEN 'high' THEN 0.9
                              WHEN 'normal' THEN 0.75 ELSE 0.6 END,
            CASE NEW.priority WHEN 'critical' THEN 3 WHEN 'high' THEN 2
                              WHEN 'normal' THEN 1 ELSE 0 END,
            'approved')
    ON CONFLICT (source_type, source_id) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_feedback_learning AFTER INSERT ON conversation_feedback
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION trigger_learning_from_negative_feedback();
CREATE TRIGGER trg_corrections_learning AFTER INSERT ON owner_corrections
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION trigger_learning_from_corrections();
CREATE OR REPLACE FUNCTION enqueue_negative_feedback() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;  -- superseded by trigger_learning_from_negative_feedback()
END;
$$;
CREATE OR REPLACE FUNCTION enqueue_owner_correction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;  -- superseded by trigger_learning_from_corrections()
END;
$$;

-- updated_at as set_updated_at() keeps it, plus reviewed_at when an item leaves 'pending'.
CREATE OR REPLACE FUNCTION update_learning_queue_timestamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NEW;
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    IF OLD.status = 'pending' AND NEW.status <> 'pending' THEN
        NEW.reviewed_at := coalesce(NEW.reviewed_at, now());
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER learning_queue_updated_at ON learning_queue;
CREATE TRIGGER trg_learning_queue_updated_at BEFORE UPDATE ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION update_learning_queue_timestamp();

-- Items (not rejected) similar to a proposed piece of knowledge: at least p_threshold
-- cosine-similar to p_embedding, or with the same content (similarity 1); restricted to shop
-- p_shop_id and items of no shop (0 or NULL: every shop). p_embedding is pgvector's vector
-- (document 002's form) or a real[] / '[...]' text (servers without pgvector).
CREATE OR REPLACE FUNCTION check_similar_knowledge(
    p_shop_id integer, p_content text, p_embedding anyelement,
    p_threshold numeric DEFAULT 0.85, p_limit integer DEFAULT 10)
RETURNS TABLE (id uuid, proposed_content text, category text, status text,
               confidence_score integer, similarity double precision)
LANGUAGE sql STABLE AS $$
    SELECT q.id, q.content, q.category, q.status, q.confidence_score, max(m.similarity)
      FROM (SELECT s.id, s.similarity
              FROM check_similar_knowledge(translate(p_embedding::text, '[]', '{}')::real[],
                                           p_threshold::double precision, 100) s
            UNION ALL
            SELECT l.id, 1.0 FROM learning_queue l
             WHERE lower(l.content) = lower(p_content) AND l.status <> 'rejected') m
      JOIN learning_queue q ON q.id = m.id
     WHERE coalesce(p_shop_id, 0) = 0 OR q.shop_id IS NULL OR q.shop_id = p_shop_id
     GROUP BY q.id
     ORDER BY max(m.similarity) DESC, q.id
     LIMIT p_limit
$$;

CREATE OR REPLACE FUNCTION batch_process_learning(p_batch_size integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    processed integer;
BEGIN
    WITH picked AS (
        SELECT q.id FROM learning_queue q
         WHERE q.status = 'approved'
         ORDER BY q.priority DESC, q.created_at, q.id
         LIMIT p_batch_size
           FOR UPDATE SKIP LOCKED),
    done AS (
        UPDATE learning_queue q SET status = 'processed', processed_at = now(), applied_at = now()
          FROM picked WHERE q.id = picked.id
        RETURNING q.source_type, q.source_id),
    applied AS (
        UPDATE owner_corrections c SET applied_at = now()
          FROM done WHERE done.source_type = 'correction' AND c.id = done.source_id
        RETURNING c.id)
    SELECT count(*) INTO processed FROM done;
    RETURN processed;
END;
$$;

-- Today's per-day feedback figures, computed when asked: a function, not a view, so that
-- nothing depends on the pipeline's tables and the document's rollback plan can drop them.
CREATE OR REPLACE FUNCTION daily_feedback_metrics()
RETURNS TABLE (day date, feedback_count bigint, negative_feedback bigint,
               avg_rating double precision, corrections bigint, items_enqueued bigint,
               items_processed bigint)
LANGUAGE sql STABLE AS $$
    WITH feedback AS (
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS feedback_count,
               count(*) FILTER (WHERE feedback_type = 'thumbs_down' OR rating <= 2)
                   AS negative_feedback,
               avg(rating)::double precision AS avg_rating
          FROM conversation_feedback GROUP BY 1),
    corrections AS (
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS corrections
          FROM owner_corrections GROUP BY 1),
    enqueued AS (
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS items_enqueued
          FROM learning_queue GROUP BY 1),
    processed AS (
        SELECT (processed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS items_processed
          FROM learning_queue WHERE processed_at IS NOT NULL GROUP BY 1),
    days AS (
        SELECT day FROM feedback UNION SELECT day FROM corrections
        UNION SELECT day FROM enqueued UNION SELECT day FROM processed)
    SELECT d.day, coalesce(f.feedback_count, 0), coalesce(f.negative_feedback, 0), f.avg_rating,
           coalesce(c.corrections, 0), coalesce(e.items_enqueued, 0),
           coalesce(p.items_processed, 0)
      FROM days d
      LEFT JOIN feedback f USING (day)
      LEFT JOIN corrections c USING (day)
      LEFT JOIN enqueued e USING (day)
      LEFT JOIN processed p USING (day)
     ORDER BY d.day
$$;

-- Materialised views with the document's dimensions; days are UTC days, shop 0 is "no shop"
-- (a unique index over plain columns, needed by REFRESH ... CONCURRENTLY, cannot hold NULLs
-- apart on PostgreSQL 13 and 14).
DROP MATERIALIZED VIEW daily_learning_metrics;
CREATE MATERIALIZED VIEW daily_learning_metrics AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS date, coalesce(shop_id, 0) AS shop_id,
       source_type, status, count(*) AS count, avg(confidence) AS avg_confidence,
       min(created_at) AS first_item, max(created_at) AS last_item
  FROM learning_queue
 GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX daily_learning_metrics_key_idx
    ON daily_learning_metrics (date, shop_id, source_type, status);
CREATE INDEX daily_learning_metrics_shop_idx ON daily_learning_metrics (shop_id, date);
CREATE INDEX daily_learning_metrics_status_idx ON daily_learning_metrics (status, date);

DROP MATERIALIZED VIEW response_performance_metrics;
CREATE MATERIALIZED VIEW response_performance_metrics AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       (created_at AT TIME ZONE 'UTC')::date AS date,
       coalesce(model_name, 'unknown') AS model_name,
       coalesce(response_type, 'unknown') AS response_type,
       count(*) AS responses,
       count(*) AS total_responses,
       avg(response_time_ms) AS avg_response_time_ms,
       avg(response_time_ms) AS avg_response_time,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_response_time_ms,
       avg(prompt_tokens)::double precision AS avg_prompt_tokens,
       avg(completion_tokens)::double precision AS avg_completion_tokens,
       avg(quality_score) AS avg_quality_score,
       (count(*) FILTER (WHERE error))::double precision / count(*) AS error_rate,
       avg(user_engagement_score) AS avg_engagement,
       (count(*) FILTER (WHERE led_to_conversion))::double precision
           / nullif(count(led_to_conversion), 0) AS conversion_rate
  FROM response_analytics
 GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX response_performance_metrics_key_idx
    ON response_performance_metrics (day, model_name, response_type);
CREATE INDEX response_performance_metrics_type_idx
    ON response_performance_metrics (response_type, day);

SELECT count(*) FROM migrate_existing_data();

-- migrate:down
-- the functions as learning_pipeline/001 defined them
CREATE OR REPLACE FUNCTION audit_learning_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO learning_audit_log (learning_queue_id, action, new_status)
        VALUES (NEW.id, 'enqueued', NEW.status);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO learning_audit_log (learning_queue_id, action, old_status, new_status)
        VALUES (NEW.id, 'status_changed', OLD.status, NEW.status);
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION batch_process_learning(p_batch_size integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    processed integer;
BEGIN
    WITH picked AS (
        SELECT q.id FROM learning_queue q
         WHERE q.status = 'approved'
         ORDER BY q.priority DESC, q.created_at, q.id
         LIMIT p_batch_size
           FOR UPDATE SKIP LOCKED),
    done AS (
        UPDATE learning_queue q SET status = 'processed', processed_at = now()
          FROM picked WHERE q.id = picked.id
        RETURNING q.source_type, q.source_id),
    applied AS (
        UPDATE owner_corrections c SET applied_at = now()
          FROM done WHERE done.source_type = 'correction' AND c.id = done.source_id
        RETURNING c.id)
    SELECT count(*) INTO processed FROM done;
    RETURN processed;
END;
$$;
DROP INDEX IF EXISTS conversation_feedback_type_idx, idx_corrections_pending, idx_learning_pending,
    learning_audit_log_action_idx, learning_audit_log_time_idx;
DROP MATERIALIZED VIEW IF EXISTS response_performance_metrics;
CREATE MATERIALIZED VIEW response_performance_metrics AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       coalesce(model_name, 'unknown') AS model_name,
       count(*) AS responses,
       avg(response_time_ms) AS avg_response_time_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_response_time_ms,
       avg(prompt_tokens)::double precision AS avg_prompt_tokens,
       avg(completion_tokens)::double precision AS avg_completion_tokens,
       avg(quality_score) AS avg_quality_score,
       (count(*) FILTER (WHERE error))::double precision / count(*) AS error_rate
  FROM response_analytics
 GROUP BY 1, 2;
CREATE UNIQUE INDEX response_performance_metrics_day_model_idx
    ON response_performance_metrics (day, model_name);
DROP MATERIALIZED VIEW IF EXISTS daily_learning_metrics;
CREATE MATERIALIZED VIEW daily_learning_metrics AS
WITH feedback AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS feedback_count,
           count(*) FILTER (WHERE feedback_type = 'thumbs_down' OR rating <= 2) AS negative_feedback,
           avg(rating)::double precision AS avg_rating
      FROM conversation_feedback GROUP BY 1),
corrections AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS corrections
      FROM owner_corrections GROUP BY 1),
enqueued AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS items_enqueued
      FROM learning_queue GROUP BY 1),
processed AS (
    SELECT (processed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS items_processed
      FROM learning_queue WHERE processed_at IS NOT NULL GROUP BY 1),
days AS (
    SELECT day FROM feedback UNION SELECT day FROM corrections
    UNION SELECT day FROM enqueued UNION SELECT day FROM processed)
SELECT d.day,
       coalesce(f.feedback_count, 0) AS feedback_count,
       coalesce(f.negative_feedback, 0) AS negative_feedback,
       f.avg_rating,
       coalesce(c.corrections, 0) AS corrections,
       coalesce(e.items_enqueued, 0) AS items_enqueued,
       coalesce(p.items_processed, 0) AS items_processed
  FROM days d
  LEFT JOIN feedback f USING (day)
  LEFT JOIN corrections c USING (day)
  LEFT JOIN enqueued e USING (day)
  LEFT JOIN processed p USING (day);
CREATE UNIQUE INDEX daily_learning_metrics_day_idx ON daily_learning_metrics (day);
DROP FUNCTION IF EXISTS daily_feedback_metrics();
DROP FUNCTION IF EXISTS check_similar_knowledge(integer, text, anyelement, numeric, integer);
DROP TRIGGER IF EXISTS trg_learning_queue_updated_at ON learning_queue;
CREATE TRIGGER learning_queue_updated_at BEFORE UPDATE ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
DROP FUNCTION IF EXISTS update_learning_queue_timestamp();
CREATE OR REPLACE FUNCTION enqueue_negative_feedback() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress()
       OR NOT (NEW.feedback_type = 'thumbs_down' OR coalesce(NEW.rating, 5) <= 2) THEN
        RETURN NULL;
    END IF;
    INSERT INTO learning_queue (source_type, source_id, session_id, content, context,
                                confidence, priority, status)
    SELECT 'feedback', NEW.id, NEW.session_id,
           coalesce(NEW.comment, 'negative feedback: ' || NEW.feedback_type
                    || coalesce(' ' || NEW.rating, '')),
           c.content, CASE WHEN NEW.rating = 1 THEN 0.7 ELSE 0.5 END, 0, 'pending'
      FROM (SELECT NULL) AS one
      LEFT JOIN conversation_chunks c ON c.id = NEW.chunk_id
    ON CONFLICT (source_type, source_id) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION enqueue_owner_correction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NULL;
    END IF;
    INSERT INTO learning_queue (source_type, source_id, session_id, content, context,
                                confidence, priority, status)
    VALUES ('correction', NEW.id, NEW.session_id, NEW.corrected_response, NEW.original_response,
            CASE NEW.priority WHEN 'critical' THEN 1.0 WHEN 'high' THEN 0.9
                              WHEN 'normal' THEN 0.75 ELSE 0.6 END,
            CASE NEW.priority WHEN 'critical' THEN 3 WHEN 'high' THEN 2
                              WHEN 'normal' THEN 1 ELSE 0 END,
            'approved')
    ON CONFLICT (source_type, source_id) DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS trg_corrections_learning ON owner_corrections;
DROP TRIGGER IF EXISTS trg_feedback_learning ON conversation_feedback;
DROP FUNCTION IF EXISTS trigger_learning_from_corrections();
DROP FUNCTION IF EXISTS trigger_learning_from_negative_feedback();
ALTER TABLE learning_audit_log DROP COLUMN IF EXISTS performed_at,
    DROP COLUMN IF EXISTS performed_by, DROP COLUMN IF EXISTS new_values,
    DROP COLUMN IF EXISTS old_values, DROP COLUMN IF EXISTS record_id,
    DROP COLUMN IF EXISTS table_name;
DROP FUNCTION IF EXISTS fill_session_from_conversation() CASCADE;  -- and its four triggers
DROP TRIGGER IF EXISTS aa_column_aliases ON conversation_feedback;
DROP TRIGGER IF EXISTS aa_column_aliases ON owner_corrections;
DROP TRIGGER IF EXISTS aa_column_aliases ON learning_queue;
DELETE FROM installer.column_aliases WHERE table_name IN
    ('conversation_feedback', 'owner_corrections', 'learning_queue');
DELETE FROM installer.embedding_columns WHERE table_name = 'voice_transcripts';
ALTER TABLE voice_transcripts DROP COLUMN IF EXISTS learning_insights,
    DROP COLUMN IF EXISTS entities, DROP COLUMN IF EXISTS sentiment,
    DROP COLUMN IF EXISTS embedding, DROP COLUMN IF EXISTS processed_summary,
    DROP COLUMN IF EXISTS conversation_id;
ALTER TABLE response_analytics DROP COLUMN IF EXISTS metrics,
    DROP COLUMN IF EXISTS ab_test_variant, DROP COLUMN IF EXISTS led_to_conversion,
    DROP COLUMN IF EXISTS user_engagement_score, DROP COLUMN IF EXISTS response_type,
    DROP COLUMN IF EXISTS response_text, DROP COLUMN IF EXISTS conversation_id;
ALTER TABLE learning_queue DROP COLUMN IF EXISTS reviewed_by,
    DROP COLUMN IF EXISTS applied_at, DROP COLUMN IF EXISTS reviewed_at,
    DROP COLUMN IF EXISTS confidence_score, DROP COLUMN IF EXISTS category,
    DROP COLUMN IF EXISTS shop_id, DROP COLUMN IF EXISTS proposed_content;
ALTER TABLE owner_corrections DROP COLUMN IF EXISTS correction_context,
    DROP COLUMN IF EXISTS corrected_answer, DROP COLUMN IF EXISTS conversation_id;
ALTER TABLE conversation_feedback DROP COLUMN IF EXISTS reason,
    DROP COLUMN IF EXISTS conversation_id;
