-- The columns document 003 names: session participants, the kind of a conversation chunk and
-- what was extracted from it, memory tags, an agent's concurrency limit, a task's process id;
-- and claim_task(agent_type text, agent_id text) as it calls it, with an agent's text name.

ALTER TABLE sessions ADD COLUMN IF NOT EXISTS participants text[] NOT NULL DEFAULT '{}';

ALTER TABLE conversation_chunks ADD COLUMN IF NOT EXISTS chunk_type text NOT NULL DEFAULT 'dialogue'
    CHECK (chunk_type IN ('dialogue', 'summary', 'transcript'));
ALTER TABLE conversation_chunks ADD COLUMN IF NOT EXISTS extracted_items jsonb NOT NULL
    DEFAULT '[]'::jsonb;

ALTER TABLE memories ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS memories_tags_idx ON memories USING gin (tags);
CREATE INDEX IF NOT EXISTS memories_type_idx ON memories (memory_type);

-- NULL: no limit.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS max_concurrent_tasks integer
    CHECK (max_concurrent_tasks >= 1);

ALTER TABLE tasks ADD COLUMN IF NOT EXISTS process_id integer CHECK (process_id > 0);

-- An agent at its max_concurrent_tasks (claimed or running) gets no further task.
CREATE OR REPLACE FUNCTION claim_task(p_agent_type text, p_agent_id uuid) RETURNS SETOF tasks
LANGUAGE sql AS $$
    UPDATE tasks
       SET status = 'claimed', claimed_by = p_agent_id, claimed_at = now()
     WHERE id = (SELECT id FROM tasks
                  WHERE status = 'pending' AND (agent_type = p_agent_type OR agent_type IS NULL)
                  ORDER BY priority DESC, created_at, id
                  LIMIT 1 FOR UPDATE SKIP LOCKED)
       AND status = 'pending'
       AND NOT EXISTS (
           SELECT 1 FROM agents a
            WHERE a.id = p_agent_id AND a.max_concurrent_tasks IS NOT NULL
              AND a.max_concurrent_tasks <= (
                  SELECT count(*) FROM tasks t
                   WHERE t.claimed_by = a.id AND t.status IN ('claimed', 'running')))
    RETURNING *
$$;

-- Document 003's form: the agent is named by text (`'control_agent_1'`): one not registered
-- yet is registered with that name and type. A uuid's text is the uuid form. Every call
-- records the agent's heartbeat (last_seen_at).
CREATE OR REPLACE FUNCTION claim_task(agent_type text, agent_id text) RETURNS SETOF tasks
LANGUAGE plpgsql AS $$
DECLARE
    wanted_type text := $1;
    agent_ref   text := $2;
    agent       uuid;
BEGIN
    IF agent_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        agent := agent_ref::uuid;
        UPDATE agents a SET last_seen_at = now() WHERE a.id = agent;
    ELSE
        INSERT INTO agents AS a (name, agent_type, last_seen_at)
        VALUES (agent_ref, wanted_type, now())
        ON CONFLICT (name) DO UPDATE SET last_seen_at = now()
        RETURNING a.id INTO agent;
    END IF;
    RETURN QUERY SELECT * FROM claim_task(wanted_type, agent);
END;
$$;

CREATE OR REPLACE VIEW active_sessions AS
SELECT s.id, s.title, s.project, s.agent_id, a.name AS agent_name, s.started_at,
       s.last_activity, now() - s.last_activity AS idle_for, s.chunk_count, s.memory_count,
       s.task_count, s.artifact_count,
       (SELECT count(*) FROM tasks t
         WHERE t.session_id = s.id AND t.status IN ('pending', 'claimed', 'running')) AS open_tasks,
       s.participants
  FROM sessions s
  LEFT JOIN agents a ON a.id = s.agent_id
 WHERE s.status = 'active';

-- migrate:down
DROP VIEW IF EXISTS active_sessions;
CREATE VIEW active_sessions AS
SELECT s.id, s.title, s.project, s.agent_id, a.name AS agent_name, s.started_at,
       s.last_activity, now() - s.last_activity AS idle_for, s.chunk_count, s.memory_count,
       s.task_count, s.artifact_count,
       (SELECT count(*) FROM tasks t
         WHERE t.session_id = s.id AND t.status IN ('pending', 'claimed', 'running')) AS open_tasks
  FROM sessions s
  LEFT JOIN agents a ON a.id = s.agent_id
 WHERE s.status = 'active';
DROP FUNCTION IF EXISTS claim_task(text, text);
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
ALTER TABLE tasks DROP COLUMN IF EXISTS process_id;
ALTER TABLE agents DROP COLUMN IF EXISTS max_concurrent_tasks;
DROP INDEX IF EXISTS memories_type_idx;  -- memories.tags stays: the MCP server uses it too
ALTER TABLE conversation_chunks DROP COLUMN IF EXISTS extracted_items,
    DROP COLUMN IF EXISTS chunk_type;
ALTER TABLE sessions DROP COLUMN IF EXISTS participants;
