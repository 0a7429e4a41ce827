-- The columns of document 004's CREATE TABLE statements. Its agent_id, pattern_data,
-- context_snapshot, evolution_trigger and last_used are other names of agent_name, pattern,
-- new_value, reason and last_seen_at (kept equal, see learning/006); its `timestamp` is
-- created_at. A row written the document's way names no agent or key: it gets the agent
-- 'shared' and a key of its own.

ALTER TABLE agent_decision_trees ADD COLUMN IF NOT EXISTS agent_id text;
ALTER TABLE agent_decision_trees ADD COLUMN IF NOT EXISTS decision_path jsonb;
SELECT alias_column('agent_decision_trees', 'agent_id', 'agent_name');
CREATE INDEX IF NOT EXISTS agent_decision_trees_agent_id_idx ON agent_decision_trees (agent_id);

ALTER TABLE agent_learning_patterns ADD COLUMN IF NOT EXISTS pattern_data jsonb;
ALTER TABLE agent_learning_patterns ADD COLUMN IF NOT EXISTS effectiveness_score double precision;
ALTER TABLE agent_learning_patterns ADD COLUMN IF NOT EXISTS usage_count integer NOT NULL DEFAULT 0
    CHECK (usage_count >= 0);
ALTER TABLE agent_learning_patterns ADD COLUMN IF NOT EXISTS last_used timestamptz;
ALTER TABLE agent_learning_patterns ALTER COLUMN agent_name SET DEFAULT 'shared';
ALTER TABLE agent_learning_patterns ALTER COLUMN pattern_key SET DEFAULT gen_random_uuid()::text;
SELECT alias_column('agent_learning_patterns', 'pattern_data', 'pattern');
SELECT alias_column('agent_learning_patterns', 'last_used', 'last_seen_at');
CREATE INDEX IF NOT EXISTS agent_learning_patterns_type_idx
    ON agent_learning_patterns (pattern_type, effectiveness_score DESC);

ALTER TABLE agent_context_evolution ADD COLUMN IF NOT EXISTS context_snapshot jsonb;
ALTER TABLE agent_context_evolution ADD COLUMN IF NOT EXISTS evolution_trigger text;
ALTER TABLE agent_context_evolution
    ADD COLUMN IF NOT EXISTS "timestamp" timestamptz GENERATED ALWAYS AS (created_at) STORED;
ALTER TABLE agent_context_evolution ALTER COLUMN agent_name SET DEFAULT 'shared';
ALTER TABLE agent_context_evolution ALTER COLUMN context_key SET DEFAULT 'context';
SELECT alias_column('agent_context_evolution', 'context_snapshot', 'new_value');
SELECT alias_column('agent_context_evolution', 'evolution_trigger', 'reason');
CREATE INDEX IF NOT EXISTS agent_context_evolution_session_idx
    ON agent_context_evolution (session_id, created_at);

SELECT count(*) FROM migrate_existing_data();

-- migrate:down
DROP TRIGGER IF EXISTS aa_column_aliases ON agent_decision_trees;
DROP TRIGGER IF EXISTS aa_column_aliases ON agent_learning_patterns;
DROP TRIGGER IF EXISTS aa_column_aliases ON agent_context_evolution;
DELETE FROM installer.column_aliases WHERE table_name IN
    ('agent_decision_trees', 'agent_learning_patterns', 'agent_context_evolution');
DROP INDEX IF EXISTS agent_context_evolution_session_idx;
ALTER TABLE agent_context_evolution ALTER COLUMN context_key DROP DEFAULT,
    ALTER COLUMN agent_name DROP DEFAULT, DROP COLUMN IF EXISTS "timestamp",
    DROP COLUMN IF EXISTS evolution_trigger, DROP COLUMN IF EXISTS context_snapshot;
DROP INDEX IF EXISTS agent_learning_patterns_type_idx;
ALTER TABLE agent_learning_patterns ALTER COLUMN pattern_key DROP DEFAULT,
    ALTER COLUMN agent_name DROP DEFAULT, DROP COLUMN IF EXISTS last_used,
    DROP COLUMN IF EXISTS usage_count, DROP COLUMN IF EXISTS effectiveness_score,
    DROP COLUMN IF EXISTS pattern_data;
ALTER TABLE agent_decision_trees DROP COLUMN IF EXISTS decision_path,
    DROP COLUMN IF EXISTS agent_id;
