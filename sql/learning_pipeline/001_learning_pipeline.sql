-- From feedback and owner corrections to processed knowledge. The design documents pointed
-- these tables at a `conversations` table no module defined; here a conversation is a
-- collaboration `sessions` row and a rated response is a `conversation_chunks` row, so this
-- module requires the collaboration module (see docs/schema.md).

CREATE TABLE conversation_feedback (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id    uuid        REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    chunk_id      uuid        REFERENCES conversation_chunks (id) ON DELETE SET NULL DEFERRABLE,
    feedback_type text        NOT NULL
                              CHECK (feedback_type IN ('thumbs_up', 'thumbs_down', 'rating', 'comment')),
    rating        integer     CHECK (rating BETWEEN 1 AND 5),
    comment       text,
    given_by      text,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (feedback_type <> 'rating' OR rating IS NOT NULL)
);
CREATE INDEX conversation_feedback_session_idx ON conversation_feedback (session_id);
CREATE INDEX conversation_feedback_chunk_idx ON conversation_feedback (chunk_id);
CREATE INDEX conversation_feedback_time_idx ON conversation_feedback (created_at);
CREATE TRIGGER conversation_feedback_updated_at BEFORE UPDATE ON conversation_feedback
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE owner_corrections (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id         uuid        REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    chunk_id           uuid        REFERENCES conversation_chunks (id) ON DELETE SET NULL DEFERRABLE,
    original_response  text,
    corrected_response text        NOT NULL CHECK (corrected_response <> ''),
    correction_type    text        NOT NULL DEFAULT 'content' CHECK (correction_type <> ''),
    priority           text        NOT NULL DEFAULT 'normal'
                                   CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    applied_at         timestamptz,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX owner_corrections_session_idx ON owner_corrections (session_id);
CREATE INDEX owner_corrections_chunk_idx ON owner_corrections (chunk_id);
CREATE INDEX owner_corrections_time_idx ON owner_corrections (created_at);
CREATE TRIGGER owner_corrections_updated_at BEFORE UPDATE ON owner_corrections
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One item per thing to learn. Status flow: pending -> approved -> processed, or rejected.
-- source_id points at the conversation_feedback or owner_corrections row it came from.
CREATE TABLE learning_queue (
    id           uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    source_type  text             NOT NULL CHECK (source_type IN ('feedback', 'correction', 'manual')),
    source_id    uuid,
    session_id   uuid             REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    content      text             NOT NULL,
    context      text,
    embedding    real[]           CHECK (embedding IS NULL OR cardinality(embedding) = 768),
    confidence   double precision NOT NULL DEFAULT 0.5 CHECK (confidence BETWEEN 0 AND 1),
    priority     integer          NOT NULL DEFAULT 0,
    status       text             NOT NULL DEFAULT 'pending'
                                  CHECK (status IN ('pending', 'approved', 'processed', 'rejected')),
    processed_at timestamptz,
    metadata     jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (source_type, source_id)
);
CREATE INDEX learning_queue_approved_idx ON learning_queue (priority DESC, created_at, id)
    WHERE status = 'approved';
CREATE INDEX learning_queue_session_idx ON learning_queue (session_id);
CREATE INDEX learning_queue_time_idx ON learning_queue (created_at);
CREATE TRIGGER learning_queue_updated_at BEFORE UPDATE ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('source_type', 'source_id');
SELECT register_embedding_column('learning_queue', 'embedding', 768);

CREATE TABLE response_analytics (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id        uuid             REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    chunk_id          uuid             REFERENCES conversation_chunks (id) ON DELETE SET NULL DEFERRABLE,
    model_name        text,
    response_time_ms  double precision CHECK (response_time_ms >= 0),
    prompt_tokens     integer          CHECK (prompt_tokens >= 0),
    completion_tokens integer          CHECK (completion_tokens >= 0),
    quality_score     double precision CHECK (quality_score BETWEEN 0 AND 1),
    error             boolean          NOT NULL DEFAULT false,
    metadata          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX response_analytics_session_idx ON response_analytics (session_id);
CREATE INDEX response_analytics_chunk_idx ON response_analytics (chunk_id);
CREATE INDEX response_analytics_model_time_idx ON response_analytics (model_name, created_at);
CREATE TRIGGER response_analytics_updated_at BEFORE UPDATE ON response_analytics
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE voice_transcripts (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid             REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    chunk_id    uuid             REFERENCES conversation_chunks (id) ON DELETE SET NULL DEFERRABLE,
    audio_uri   text,
    transcript  text             NOT NULL,
    language    text,
    speaker     text,
    duration_ms integer          CHECK (duration_ms >= 0),
    confidence  double precision CHECK (confidence BETWEEN 0 AND 1),
    search      tsvector         GENERATED ALWAYS AS (to_tsvector('english', transcript)) STORED,
    metadata    jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    updated_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX voice_transcripts_session_idx ON voice_transcripts (session_id);
CREATE INDEX voice_transcripts_chunk_idx ON voice_transcripts (chunk_id);
CREATE INDEX voice_transcripts_search_idx ON voice_transcripts USING gin (search);
CREATE TRIGGER voice_transcripts_updated_at BEFORE UPDATE ON voice_transcripts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Append-only: every learning item's arrival and status change (written by a trigger).
CREATE TABLE learning_audit_log (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    learning_queue_id uuid        NOT NULL,  -- no FK: the trail outlives a deleted item
    action            text        NOT NULL CHECK (action IN ('enqueued', 'status_changed')),
    old_status        text,
    new_status        text        NOT NULL,
    actor             text        NOT NULL DEFAULT current_user,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX learning_audit_log_item_idx ON learning_audit_log (learning_queue_id, created_at);

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
CREATE TRIGGER learning_queue_audit AFTER INSERT OR UPDATE OF status ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION audit_learning_queue();

-- Negative feedback (thumbs_down, or a rating of 2 or less) becomes a learning item that
-- waits for approval; the rated response is its context.
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
CREATE TRIGGER conversation_feedback_enqueue AFTER INSERT ON conversation_feedback
    FOR EACH ROW EXECUTE FUNCTION enqueue_negative_feedback();

-- The owner's word needs no review: each correction is enqueued approved, with a confidence
-- and a priority that follow the correction's priority.
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
CREATE TRIGGER owner_corrections_enqueue AFTER INSERT ON owner_corrections
    FOR EACH ROW EXECUTE FUNCTION enqueue_owner_correction();

-- Learning items (not rejected) whose embedding is at least p_threshold cosine-similar to
-- p_embedding, most similar first. Uses pgvector's HNSW index when the column is a vector,
-- the SQL cosine_similarity() fallback when it is real[].
CREATE OR REPLACE FUNCTION check_similar_knowledge(
    p_embedding real[], p_threshold double precision DEFAULT 0.85, p_limit integer DEFAULT 5)
RETURNS TABLE (id uuid, content text, status text, confidence double precision,
               similarity double precision)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF embedding_is_vector('learning_queue', 'embedding') THEN
        RETURN QUERY EXECUTE
            'SELECT * FROM (
                 SELECT q.id, q.content, q.status, q.confidence,
                        1 - (q.embedding <=> $1::vector) AS similarity
                   FROM learning_queue q
                  WHERE q.embedding IS NOT NULL AND q.status <> ''rejected''
                  ORDER BY q.embedding <=> $1::vector
                  LIMIT $3) nearest
              WHERE similarity >= $2
              ORDER BY similarity DESC'
            USING p_embedding, p_threshold, p_limit;
    ELSE
        RETURN QUERY EXECUTE
            'SELECT * FROM (
                 SELECT q.id, q.content, q.status, q.confidence,
                        cosine_similarity(q.embedding, $1) AS similarity
                   FROM learning_queue q
                  WHERE q.embedding IS NOT NULL AND q.status <> ''rejected'') scored
              WHERE similarity >= $2
              ORDER BY similarity DESC
              LIMIT $3'
            USING p_embedding, p_threshold, p_limit;
    END IF;
END;
$$;

-- Processes up to p_batch_size approved items, most urgent first, and returns how many.
-- Items locked by a concurrent call are skipped, so parallel callers never share an item.
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

-- Derived data, rebuilt by `python install.py refresh` (and by the installer when a view has
-- never been filled). Days are UTC days. The unique indexes allow REFRESH ... CONCURRENTLY.
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
