-- Derived values converge between machines. The session counters and last_activity are a
-- function of the rows that point at the session, so they are not exchanged (the
-- `installer:derived` marker keeps a column out of exports) and are recomputed once per import,
-- set-based, by recount_session_activity() (the `installer:after-import` marker makes the
-- import call it). During an import the per-row recount triggers do not fire at all (their
-- WHEN clause): one recount per imported row made imports quadratic in the rows per session.
-- Outside imports the triggers keep them current as before, without moving updated_at
-- (learning.derived_update, sql/learning/071).

COMMENT ON COLUMN sessions.chunk_count IS 'conversation_chunks of the session; installer:derived';
COMMENT ON COLUMN sessions.memory_count IS 'memories of the session; installer:derived';
COMMENT ON COLUMN sessions.task_count IS 'tasks of the session; installer:derived';
COMMENT ON COLUMN sessions.artifact_count IS 'artifacts of the session; installer:derived';
COMMENT ON COLUMN sessions.last_activity IS
    'latest created_at of the session and its rows; installer:derived';

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
    PERFORM set_config('learning.derived_update', 'on', true);
    EXECUTE format(
        'UPDATE sessions s SET %1$I = (SELECT count(*) FROM %2$I c WHERE c.session_id = s.id),
                last_activity = greatest(s.last_activity, coalesce($2, s.last_activity))
          WHERE s.id = ANY ($1)', counter, TG_TABLE_NAME)
        USING touched, activity;
    PERFORM set_config('learning.derived_update', 'off', true);
    RETURN NULL;
END;
$$;

DROP TRIGGER conversation_chunks_session_activity ON conversation_chunks;
CREATE TRIGGER conversation_chunks_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON conversation_chunks
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION refresh_session_activity('chunk_count');
DROP TRIGGER memories_session_activity ON memories;
CREATE TRIGGER memories_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON memories
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION refresh_session_activity('memory_count');
DROP TRIGGER tasks_session_activity ON tasks;
CREATE TRIGGER tasks_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON tasks
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION refresh_session_activity('task_count');
DROP TRIGGER artifacts_session_activity ON artifacts;
CREATE TRIGGER artifacts_session_activity
    AFTER INSERT OR DELETE OR UPDATE OF session_id ON artifacts
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION refresh_session_activity('artifact_count');

-- Every counter that a refresh_session_activity(counter) trigger maintains (found in the
-- catalog, so a module that adds such a trigger is covered), and last_activity: the latest
-- created_at of the session and of its rows. Returns the number of session rows changed.
CREATE OR REPLACE FUNCTION recount_session_activity() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    child regclass;
    counter text;
    latest text := 'SELECT id AS session_id, started_at AS at FROM sessions';
    done integer;
    changed integer := 0;
BEGIN
    FOR child, counter IN
        SELECT t.tgrelid::regclass, split_part(encode(t.tgargs, 'escape'), '\000', 1)
          FROM pg_trigger t
         WHERE t.tgfoid = 'refresh_session_activity'::regproc AND t.tgparentid = 0
         ORDER BY 1, 2
    LOOP
        EXECUTE format(
            'UPDATE sessions s SET %1$I = c.n
               FROM (SELECT p.id, count(x.session_id)::integer AS n
                       FROM sessions p LEFT JOIN %2$s x ON x.session_id = p.id
                      GROUP BY p.id) c
              WHERE c.id = s.id AND s.%1$I IS DISTINCT FROM c.n', counter, child);
        GET DIAGNOSTICS done = ROW_COUNT;
        changed := changed + done;
        latest := latest || format(' UNION ALL SELECT session_id, created_at FROM %s', child);
    END LOOP;
    EXECUTE format(
        'UPDATE sessions s SET last_activity = c.at
           FROM (SELECT session_id, max(at) AS at FROM (%s) a GROUP BY session_id) c
          WHERE c.session_id = s.id AND s.last_activity IS DISTINCT FROM c.at', latest);
    GET DIAGNOSTICS done = ROW_COUNT;
    RETURN changed + done;
END;
$$;
COMMENT ON FUNCTION recount_session_activity() IS
    'session counters and last_activity from their rows; installer:after-import';

-- migrate:down
DROP TRIGGER conversation_chunks_session_activity ON conversation_chunks;
DROP TRIGGER memories_session_activity ON memories;
DROP TRIGGER tasks_session_activity ON tasks;
DROP TRIGGER artifacts_session_activity ON artifacts;
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
DROP FUNCTION recount_session_activity();
COMMENT ON COLUMN sessions.chunk_count IS NULL;
COMMENT ON COLUMN sessions.memory_count IS NULL;
COMMENT ON COLUMN sessions.task_count IS NULL;
COMMENT ON COLUMN sessions.artifact_count IS NULL;
COMMENT ON COLUMN sessions.last_activity IS NULL;
