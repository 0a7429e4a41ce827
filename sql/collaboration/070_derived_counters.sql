-- Derived values converge between machines. The session counters are a function of the rows
-- that point at the session, so they are not exchanged (the `installer:derived` marker keeps a
-- column out of exports) and are recounted once per import, set-based, by
-- recount_session_activity() (the `installer:after-import` marker makes the import call it).
-- During an import the per-row recount triggers do not fire at all (their WHEN clause): one
-- recount per imported row made imports quadratic in the rows per session.

COMMENT ON COLUMN sessions.chunk_count IS 'conversation_chunks of the session; installer:derived';
COMMENT ON COLUMN sessions.memory_count IS 'memories of the session; installer:derived';
COMMENT ON COLUMN sessions.task_count IS 'tasks of the session; installer:derived';
COMMENT ON COLUMN sessions.artifact_count IS 'artifacts of the session; installer:derived';

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
-- catalog, so a module that adds such a trigger is covered), and last_activity, which only
-- moves forward. Returns the number of session rows changed.
CREATE OR REPLACE FUNCTION recount_session_activity() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    child regclass;
    counter text;
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
            'UPDATE sessions s SET %1$I = c.n,
                    last_activity = greatest(s.last_activity, coalesce(c.latest, s.last_activity))
               FROM (SELECT p.id, count(x.session_id)::integer AS n, max(x.created_at) AS latest
                       FROM sessions p LEFT JOIN %2$s x ON x.session_id = p.id
                      GROUP BY p.id) c
              WHERE c.id = s.id
                AND (s.%1$I IS DISTINCT FROM c.n OR s.last_activity < c.latest)',
            counter, child);
        GET DIAGNOSTICS done = ROW_COUNT;
        changed := changed + done;
    END LOOP;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION recount_session_activity() IS
    'session counters and last_activity from their rows; installer:after-import';
