-- What each agent keeps between sessions. Agents are named by text (as in the learning module)
-- and `session_id` is a soft reference: this module does not require the collaboration
-- module, so it declares no foreign key to `sessions` (see docs/schema.md).

CREATE TABLE agent_decision_trees (
    id               uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name       text             NOT NULL CHECK (agent_name <> ''),
    decision_context text             NOT NULL,
    decision_tree    jsonb            NOT NULL DEFAULT '{}'::jsonb,
    chosen_path      text,
    outcome          text,
    success          boolean,
    confidence       double precision CHECK (confidence BETWEEN 0 AND 1),
    session_id       uuid,
    metadata         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX agent_decision_trees_agent_time_idx ON agent_decision_trees (agent_name, created_at DESC);
CREATE TRIGGER agent_decision_trees_updated_at BEFORE UPDATE ON agent_decision_trees
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE agent_learning_patterns (
    id           uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name   text             NOT NULL CHECK (agent_name <> ''),
    pattern_type text             NOT NULL CHECK (pattern_type <> ''),
    pattern_key  text             NOT NULL CHECK (pattern_key <> ''),
    description  text,
    pattern      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    occurrences  integer          NOT NULL DEFAULT 1 CHECK (occurrences >= 0),
    success_rate double precision CHECK (success_rate BETWEEN 0 AND 1),
    last_seen_at timestamptz      NOT NULL DEFAULT now(),
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (agent_name, pattern_type, pattern_key)
);
CREATE TRIGGER agent_learning_patterns_updated_at BEFORE UPDATE ON agent_learning_patterns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON agent_learning_patterns
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('agent_name', 'pattern_type', 'pattern_key');

-- Append-only: one row per change of an agent's working context.
CREATE TABLE agent_context_evolution (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name     text        NOT NULL CHECK (agent_name <> ''),
    session_id     uuid,
    context_key    text        NOT NULL CHECK (context_key <> ''),
    previous_value jsonb,
    new_value      jsonb,
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_context_evolution_agent_key_idx
    ON agent_context_evolution (agent_name, context_key, created_at DESC);

CREATE TABLE agent_memory_bank (
    id               uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name       text             NOT NULL CHECK (agent_name <> ''),
    memory_type      text             NOT NULL DEFAULT 'fact' CHECK (memory_type <> ''),
    memory_key       text             NOT NULL CHECK (memory_key <> ''),
    content          text             NOT NULL,
    embedding        real[]           CHECK (embedding IS NULL OR cardinality(embedding) = 768),
    importance       double precision NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    access_count     integer          NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    last_accessed_at timestamptz,
    expires_at       timestamptz,
    search           tsvector         GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    metadata         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (agent_name, memory_type, memory_key)
);
CREATE INDEX agent_memory_bank_search_idx ON agent_memory_bank USING gin (search);
CREATE TRIGGER agent_memory_bank_updated_at BEFORE UPDATE ON agent_memory_bank
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON agent_memory_bank
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('agent_name', 'memory_type', 'memory_key');
SELECT register_embedding_column('agent_memory_bank', 'embedding', 768);

CREATE TABLE agent_session_history (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name      text        NOT NULL CHECK (agent_name <> ''),
    session_id      uuid,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz CHECK (ended_at IS NULL OR ended_at >= started_at),
    summary         text,
    outcome         text,
    tasks_completed integer     NOT NULL DEFAULT 0 CHECK (tasks_completed >= 0),
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_session_history_agent_time_idx ON agent_session_history (agent_name, started_at DESC);
CREATE INDEX agent_session_history_session_idx ON agent_session_history (session_id);
CREATE TRIGGER agent_session_history_updated_at BEFORE UPDATE ON agent_session_history
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE agent_code_analysis (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_name    text        NOT NULL CHECK (agent_name <> ''),
    repository    text,
    file_path     text        NOT NULL CHECK (file_path <> ''),
    commit_sha    text,
    analysis_type text        NOT NULL CHECK (analysis_type <> ''),
    findings      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    metrics       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_code_analysis_file_idx ON agent_code_analysis (repository, file_path);
CREATE TRIGGER agent_code_analysis_updated_at BEFORE UPDATE ON agent_code_analysis
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE agent_project_insights (
    id           uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    project      text             NOT NULL CHECK (project <> ''),
    insight_type text             NOT NULL CHECK (insight_type <> ''),
    title        text             NOT NULL CHECK (title <> ''),
    content      text             NOT NULL,
    confidence   double precision CHECK (confidence BETWEEN 0 AND 1),
    source_agent text,
    search       tsvector         GENERATED ALWAYS AS (
                     to_tsvector('english', title || ' ' || content)) STORED,
    metadata     jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX agent_project_insights_project_idx ON agent_project_insights (project, insight_type);
CREATE INDEX agent_project_insights_search_idx ON agent_project_insights USING gin (search);
CREATE TRIGGER agent_project_insights_updated_at BEFORE UPDATE ON agent_project_insights
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Append-only: one row per exchange between two agents.
CREATE TABLE agent_collaboration_logs (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    from_agent         text        NOT NULL CHECK (from_agent <> ''),
    to_agent           text        NOT NULL CHECK (to_agent <> ''),
    session_id         uuid,
    collaboration_type text        NOT NULL CHECK (collaboration_type <> ''),
    message            text,
    outcome            text,
    payload            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_collaboration_logs_from_time_idx
    ON agent_collaboration_logs (from_agent, created_at DESC);
CREATE INDEX agent_collaboration_logs_to_time_idx
    ON agent_collaboration_logs (to_agent, created_at DESC);
