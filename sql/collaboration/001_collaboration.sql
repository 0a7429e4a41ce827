-- Agents working together: who they are, their sessions and what was said, remembered,
-- assigned and produced in them. Foreign keys are DEFERRABLE so an import can load the tables
-- in any order inside one transaction (SET CONSTRAINTS ALL DEFERRED).

CREATE TABLE agents (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL UNIQUE CHECK (name <> ''),
    agent_type   text        NOT NULL CHECK (agent_type <> ''),
    capabilities jsonb       NOT NULL DEFAULT '[]'::jsonb,
    status       text        NOT NULL DEFAULT 'available'
                             CHECK (status IN ('available', 'busy', 'offline')),
    last_seen_at timestamptz,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_type_idx ON agents (agent_type);
CREATE TRIGGER agents_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON agents
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('name');

-- last_activity and the counters are kept current by triggers on the child tables.
CREATE TABLE sessions (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id       uuid        REFERENCES agents (id) ON DELETE SET NULL DEFERRABLE,
    title          text,
    project        text,
    status         text        NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'paused', 'ended')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz CHECK (ended_at IS NULL OR ended_at >= started_at),
    last_activity  timestamptz NOT NULL DEFAULT now(),
    chunk_count    integer     NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    memory_count   integer     NOT NULL DEFAULT 0 CHECK (memory_count >= 0),
    task_count     integer     NOT NULL DEFAULT 0 CHECK (task_count >= 0),
    artifact_count integer     NOT NULL DEFAULT 0 CHECK (artifact_count >= 0),
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_agent_idx ON sessions (agent_id);
CREATE INDEX sessions_status_activity_idx ON sessions (status, last_activity DESC);
CREATE TRIGGER sessions_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Append-only: what was said, in order. A chunk belongs to its session (deleted with it).
CREATE TABLE conversation_chunks (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id      uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE DEFERRABLE,
    agent_id        uuid        REFERENCES agents (id) ON DELETE SET NULL DEFERRABLE,
    sequence_number integer     CHECK (sequence_number >= 0),
    role            text        NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content         text        NOT NULL,
    token_count     integer     CHECK (token_count >= 0),
    search          tsvector    GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_chunks_session_idx
    ON conversation_chunks (session_id, sequence_number, created_at);
CREATE INDEX conversation_chunks_agent_idx ON conversation_chunks (agent_id);
CREATE INDEX conversation_chunks_search_idx ON conversation_chunks USING gin (search);

CREATE TABLE memories (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid             REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    agent_id    uuid             REFERENCES agents (id) ON DELETE SET NULL DEFERRABLE,
    memory_type text             NOT NULL DEFAULT 'fact' CHECK (memory_type <> ''),
    content     text             NOT NULL,
    importance  double precision NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    embedding   real[]           CHECK (embedding IS NULL OR cardinality(embedding) = 768),
    search      tsvector         GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    expires_at  timestamptz,
    metadata    jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    updated_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX memories_session_idx ON memories (session_id);
CREATE INDEX memories_agent_idx ON memories (agent_id);
CREATE INDEX memories_search_idx ON memories USING gin (search);
CREATE TRIGGER memories_updated_at BEFORE UPDATE ON memories
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
SELECT register_embedding_column('memories', 'embedding', 768);

-- Status flow: pending -> claimed -> running -> completed | failed; see enforce_task_status().
CREATE TABLE tasks (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id   uuid        REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    parent_id    uuid        REFERENCES tasks (id) ON DELETE SET NULL DEFERRABLE,
    title        text        NOT NULL CHECK (title <> ''),
    description  text,
    agent_type   text,       -- NULL: any type of agent may claim it
    priority     integer     NOT NULL DEFAULT 0,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN
                             ('pending', 'claimed', 'running', 'completed', 'failed', 'cancelled')),
    claimed_by   uuid        REFERENCES agents (id) ON DELETE SET NULL DEFERRABLE,
    claimed_at   timestamptz,
    started_at   timestamptz,
    completed_at timestamptz,
    result       jsonb,
    error        text,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- The claim order, restricted to what can be claimed: claim_task reads only this index.
CREATE INDEX tasks_claimable_idx ON tasks (agent_type, priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX tasks_session_idx ON tasks (session_id);
CREATE INDEX tasks_parent_idx ON tasks (parent_id);
CREATE INDEX tasks_claimed_by_idx ON tasks (claimed_by);
CREATE TRIGGER tasks_updated_at BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE FUNCTION enforce_task_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status OR learning_import_in_progress() THEN
        RETURN NEW;
    END IF;
    IF (OLD.status, NEW.status) NOT IN (
        ('pending', 'claimed'), ('claimed', 'running'), ('claimed', 'pending'),
        ('running', 'completed'), ('running', 'failed'), ('failed', 'pending'),
        ('pending', 'cancelled'), ('claimed', 'cancelled'), ('running', 'cancelled')) THEN
        RAISE EXCEPTION 'task % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation',
                  HINT = 'the flow is pending -> claimed -> running -> completed | failed';
    END IF;
    CASE NEW.status
        WHEN 'claimed' THEN NEW.claimed_at := coalesce(NEW.claimed_at, now());
        WHEN 'running' THEN NEW.started_at := coalesce(NEW.started_at, now());
        WHEN 'pending' THEN NEW.claimed_by := NULL; NEW.claimed_at := NULL;
                            NEW.started_at := NULL;
        ELSE NEW.completed_at := coalesce(NEW.completed_at, now());
    END CASE;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tasks_status_flow BEFORE UPDATE OF status ON tasks
    FOR EACH ROW EXECUTE FUNCTION enforce_task_status();

CREATE TABLE artifacts (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id    uuid        REFERENCES sessions (id) ON DELETE SET NULL DEFERRABLE,
    task_id       uuid        REFERENCES tasks (id) ON DELETE SET NULL DEFERRABLE,
    created_by    uuid        REFERENCES agents (id) ON DELETE SET NULL DEFERRABLE,
    name          text        NOT NULL CHECK (name <> ''),
    artifact_type text        NOT NULL DEFAULT 'file' CHECK (artifact_type <> ''),
    content       text,
    uri           text,
    search        tsvector    GENERATED ALWAYS AS (
                      to_tsvector('english', name || ' ' || coalesce(content, ''))) STORED,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_session_idx ON artifacts (session_id);
CREATE INDEX artifacts_task_idx ON artifacts (task_id);
CREATE INDEX artifacts_created_by_idx ON artifacts (created_by);
CREATE INDEX artifacts_search_idx ON artifacts USING gin (search);
CREATE TRIGGER artifacts_updated_at BEFORE UPDATE ON artifacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Claims the most urgent pending task this agent type may take, or returns no row. Concurrent
-- callers never get the same task: a locked candidate is skipped, not waited for.
CREATE OR REPLACE FUNCTION claim_task(p_agent_type text, p_agent_id uuid) RETURNS SETOF tasks
LANGUAGE sql AS $$
    UPDATE tasks
       SET status = 'claimed', claimed_by = p_agent_id, claimed_at = now()
     WHERE id = (SELECT id FROM tasks
                  WHERE status = 'pending' AND (agent_type = p_agent_type OR agent_type IS NULL)
                  ORDER BY priority DESC, created_at, id
                  LIMIT 1 FOR UPDATE SKIP LOCKED)
       AND status = 'pending'
    RETURNING *
$$;

-- Counters are recounted, not incremented, so they stay right whatever order rows arrive in
-- (an import replays sessions and their children in any order).
CREATE OR REPLACE FUNCTION refresh_session_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    counter text := TG_ARGV[0];
    touched uuid[] := ARRAY[]::uuid[];
    activity timestamptz;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        touched := touched || NEW.session_id;
        activity := NEW.created_at;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        touched := touched || OLD.session_id;
    END IF;
    -- Wait for concurrent writers to the same session first: the recount below is a new
    -- statement, so it then sees their rows (FOR NO KEY UPDATE does not block FK checks).
    PERFORM 1 FROM sessions WHERE id = ANY (touched) ORDER BY id FOR NO KEY UPDATE;
    EXECUTE format(
        'UPDATE sessions s SET %1$I = (SELECT count(*) FROM %2$I c WHERE c.session_id = s.id),
                last_activity = greatest(s.last_activity, coalesce($2, s.last_activity))
          WHERE s.id = ANY ($1)', counter, TG_TABLE_NAME)
        USING touched, activity;
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversation_chunks_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON conversation_chunks
    FOR EACH ROW EXECUTE FUNCTION refresh_session_activity('chunk_count');
CREATE TRIGGER memories_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON memories
    FOR EACH ROW EXECUTE FUNCTION refresh_session_activity('memory_count');
CREATE TRIGGER tasks_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON tasks
    FOR EACH ROW EXECUTE FUNCTION refresh_session_activity('task_count');
CREATE TRIGGER artifacts_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON artifacts
    FOR EACH ROW EXECUTE FUNCTION refresh_session_activity('artifact_count');

CREATE VIEW active_sessions AS
SELECT s.id, s.title, s.project, s.agent_id, a.name AS agent_name, s.started_at,
       s.last_activity, now() - s.last_activity AS idle_for, s.chunk_count, s.memory_count,
       s.task_count, s.artifact_count,
       (SELECT count(*) FROM tasks t
         WHERE t.session_id = s.id AND t.status IN ('pending', 'claimed', 'running')) AS open_tasks
  FROM sessions s
  LEFT JOIN agents a ON a.id = s.agent_id
 WHERE s.status = 'active';

-- Full-text search over chunks, memories and artifacts, best match first. The query uses web
-- search syntax ("quoted phrase", -excluded, or).
CREATE OR REPLACE FUNCTION search_content(p_query text, p_limit integer DEFAULT 20)
RETURNS TABLE (source text, id uuid, session_id uuid, rank real, snippet text)
LANGUAGE sql STABLE AS $$
    WITH q AS (SELECT websearch_to_tsquery('english', p_query) AS tsq),
    hits AS (
        SELECT 'chunk' AS source, c.id, c.session_id, ts_rank(c.search, q.tsq) AS rank,
               c.content AS body
          FROM conversation_chunks c, q WHERE c.search @@ q.tsq
        UNION ALL
        SELECT 'memory', m.id, m.session_id, ts_rank(m.search, q.tsq), m.content
          FROM memories m, q WHERE m.search @@ q.tsq
        UNION ALL
        SELECT 'artifact', a.id, a.session_id, ts_rank(a.search, q.tsq),
               a.name || ' ' || coalesce(a.content, '')
          FROM artifacts a, q WHERE a.search @@ q.tsq
        ORDER BY rank DESC, id
        LIMIT p_limit)
    SELECT h.source, h.id, h.session_id, h.rank, ts_headline('english', h.body, q.tsq)
      FROM hits h, q
     ORDER BY h.rank DESC, h.id
$$;
