-- The learning data flow: what agents did, said, were told, and how models and tasks performed.
-- Every table is keyed by UUID so rows from different machines never collide, and holds at
-- least the columns of the earlier bash-based system (its `timestamp` column is `created_at`).
-- Core PostgreSQL only (gen_random_uuid() is core since 13); pgvector is used when present.

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE agent_metrics (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name        text             NOT NULL CHECK (agent_name <> ''),
    task_type         text             NOT NULL CHECK (task_type <> ''),
    execution_time_ms double precision CHECK (execution_time_ms >= 0),
    success           boolean          NOT NULL,
    error_message     text,
    metadata          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX agent_metrics_agent_time_idx ON agent_metrics (agent_name, created_at DESC);
CREATE INDEX agent_metrics_task_type_idx ON agent_metrics (task_type);

CREATE TABLE interaction_logs (
    id           uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    from_agent   text             NOT NULL CHECK (from_agent <> ''),
    to_agent     text             NOT NULL CHECK (to_agent <> ''),
    message_type text             NOT NULL,
    payload      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    response     text,
    duration_ms  double precision CHECK (duration_ms >= 0),
    metadata     jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX interaction_logs_from_time_idx ON interaction_logs (from_agent, created_at DESC);
CREATE INDEX interaction_logs_to_time_idx ON interaction_logs (to_agent, created_at DESC);

CREATE TABLE learning_feedback (
    id             uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name     text             NOT NULL CHECK (agent_name <> ''),
    task_id        text,
    feedback_type  text             NOT NULL CHECK (feedback_type <> ''),
    feedback_value double precision,
    metadata       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX learning_feedback_agent_time_idx ON learning_feedback (agent_name, created_at DESC);
CREATE INDEX learning_feedback_task_idx ON learning_feedback (task_id);

CREATE TABLE model_performance (
    id              uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name      text             NOT NULL CHECK (model_name <> ''),
    accuracy        double precision CHECK (accuracy BETWEEN 0 AND 1),
    precision_score double precision CHECK (precision_score BETWEEN 0 AND 1),
    recall          double precision CHECK (recall BETWEEN 0 AND 1),
    f1_score        double precision CHECK (f1_score BETWEEN 0 AND 1),
    training_date   timestamptz      NOT NULL DEFAULT now(),
    metadata        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    updated_at      timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX model_performance_model_date_idx ON model_performance (model_name, training_date DESC);
CREATE TRIGGER model_performance_updated_at BEFORE UPDATE ON model_performance
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The embedding is created as real[] (works everywhere) and converted to pgvector's
-- vector(768) with an HNSW index when the extension is installed (see the DO block below).
CREATE TABLE task_embeddings (
    id               uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    task_description text             NOT NULL CHECK (task_description <> ''),
    embedding        real[]           CHECK (embedding IS NULL OR cardinality(embedding) = 768),
    agent_name       text,
    success_rate     double precision CHECK (success_rate BETWEEN 0 AND 1),
    avg_duration_ms  double precision CHECK (avg_duration_ms >= 0),
    metadata         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX task_embeddings_agent_idx ON task_embeddings (agent_name);
CREATE TRIGGER task_embeddings_updated_at BEFORE UPDATE ON task_embeddings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Fallback similarity for real[] embeddings: cosine similarity in plain SQL.
CREATE OR REPLACE FUNCTION cosine_similarity(a real[], b real[]) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN norm_a = 0 OR norm_b = 0 THEN NULL ELSE dot / (norm_a * norm_b) END
    FROM (
        SELECT sum(x::double precision * y) AS dot,
               sqrt(sum(x::double precision * x)) AS norm_a,
               sqrt(sum(y::double precision * y)) AS norm_b
        FROM unnest(a, b) AS t(x, y)
    ) AS s
$$;

-- Switch embedding columns to pgvector when the extension is installed. Called here and by
-- later migrations; safe to call again (already-converted columns are left alone).
CREATE OR REPLACE FUNCTION use_pgvector_if_available(tbl regclass, col text, dims integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    current_type text;
    dims_check   text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        RETURN false;
    END IF;
    SELECT format_type(atttypid, atttypmod) INTO current_type
      FROM pg_attribute WHERE attrelid = tbl AND attname = col AND NOT attisdropped;
    IF current_type = 'real[]' THEN
        SELECT conname INTO dims_check FROM pg_constraint
         WHERE conrelid = tbl AND contype = 'c'
           AND pg_get_constraintdef(oid) LIKE '%cardinality(' || col || ')%';
        IF dims_check IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, dims_check);
        END IF;
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE vector(%s) USING %I::vector(%s)',
                       tbl, col, dims, col, dims);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING hnsw (%I vector_cosine_ops)',
                       replace(tbl::text, '.', '_') || '_' || col || '_hnsw', tbl, col);
    END IF;
    RETURN true;
END;
$$;

SELECT use_pgvector_if_available('task_embeddings', 'embedding', 768);
