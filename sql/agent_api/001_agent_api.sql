-- The agent role reads every table but writes none: what an agent may record goes through
-- these functions. Each one is SECURITY DEFINER (it runs as the owner of the learning
-- database, which owns the tables), pins its search_path, validates and caps its inputs, and
-- switches the import mode off (installer.agent_call) so the learning-pipeline triggers fire.
-- PUBLIC may not execute them; the installer grants USAGE on the schema and EXECUTE to the
-- agent role only.

-- Memories are "tagged for easy retrieval" (the collaboration design document). The same
-- definition as the collaboration module's own migration, so either may come first.
ALTER TABLE memories ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS memories_tags_idx ON memories USING gin (tags);

CREATE SCHEMA agent_api;
REVOKE ALL ON SCHEMA agent_api FROM PUBLIC;

-- Input checks shared by the functions below; in the installer schema, which agents cannot see.
CREATE FUNCTION installer.agent_text(p_value text, p_field text, p_max integer,
                                     p_required boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        IF p_required THEN
            RAISE EXCEPTION '% is required', p_field USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NULL;
    END IF;
    IF char_length(p_value) > p_max THEN
        RAISE EXCEPTION '% is % characters long; at most % are accepted', p_field,
            char_length(p_value), p_max USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END;
$$;

CREATE FUNCTION installer.agent_json(p_value jsonb, p_field text, p_max_bytes integer DEFAULT 65536)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_value IS NULL THEN
        RETURN '{}'::jsonb;
    END IF;
    IF octet_length(p_value::text) > p_max_bytes THEN
        RAISE EXCEPTION '% is % bytes of JSON; at most % are accepted', p_field,
            octet_length(p_value::text), p_max_bytes USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END;
$$;

CREATE FUNCTION installer.agent_number(p_value double precision, p_field text,
                                       p_min double precision, p_max double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_value IS NOT NULL AND NOT (p_value BETWEEN p_min AND p_max) THEN
        RAISE EXCEPTION '% must be between % and %, not %', p_field, p_min, p_max, p_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END;
$$;

-- Every agent_api function starts here: whatever the caller set, the import mode is off for
-- the rest of the transaction, so the learning-pipeline and task-flow triggers always fire.
CREATE FUNCTION installer.agent_call() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('learning.import', 'off', true);
END;
$$;

-- The agents row for a name (created on first use), so memories, artifacts and claims can
-- point at it. NULL when no name is given.
CREATE FUNCTION installer.agent_row(p_name text, p_type text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    found uuid;
BEGIN
    p_name := installer.agent_text(p_name, 'agent_name', 200);
    IF p_name IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO agents (name, agent_type, last_seen_at)
    VALUES (p_name, coalesce(installer.agent_text(p_type, 'agent_type', 200), 'agent'), now())
    ON CONFLICT (name) DO UPDATE SET last_seen_at = now()
    RETURNING id INTO found;
    RETURN found;
END;
$$;

CREATE FUNCTION agent_api.record_interaction(
    p_from_agent text, p_to_agent text, p_message_type text, p_payload jsonb DEFAULT NULL,
    p_response text DEFAULT NULL, p_duration_ms double precision DEFAULT NULL,
    p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM installer.agent_call();
    INSERT INTO interaction_logs (from_agent, to_agent, message_type, payload, response,
                                  duration_ms, metadata)
    VALUES (installer.agent_text(p_from_agent, 'from_agent', 200, true),
            installer.agent_text(p_to_agent, 'to_agent', 200, true),
            installer.agent_text(p_message_type, 'message_type', 200, true),
            installer.agent_json(p_payload, 'payload'),
            installer.agent_text(p_response, 'response', 100000),
            installer.agent_number(p_duration_ms, 'duration_ms', 0, 86400000),
            installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

CREATE FUNCTION agent_api.record_agent_metric(
    p_agent_name text, p_task_type text, p_success boolean,
    p_execution_time_ms double precision DEFAULT NULL, p_error_message text DEFAULT NULL,
    p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM installer.agent_call();
    IF p_success IS NULL THEN
        RAISE EXCEPTION 'success is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO agent_metrics (agent_name, task_type, execution_time_ms, success, error_message,
                               metadata)
    VALUES (installer.agent_text(p_agent_name, 'agent_name', 200, true),
            installer.agent_text(p_task_type, 'task_type', 200, true),
            installer.agent_number(p_execution_time_ms, 'execution_time_ms', 0, 86400000),
            p_success,
            installer.agent_text(p_error_message, 'error_message', 10000),
            installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

CREATE FUNCTION agent_api.add_memory(
    p_content text, p_memory_type text DEFAULT 'fact', p_tags text[] DEFAULT '{}',
    p_importance double precision DEFAULT 0.5, p_session_id uuid DEFAULT NULL,
    p_agent_name text DEFAULT NULL, p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
    tag text;
BEGIN
    PERFORM installer.agent_call();
    p_tags := coalesce(p_tags, '{}');
    IF cardinality(p_tags) > 32 THEN
        RAISE EXCEPTION 'a memory takes at most 32 tags, not %', cardinality(p_tags)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH tag IN ARRAY p_tags LOOP
        PERFORM installer.agent_text(tag, 'a tag', 64, true);
    END LOOP;
    INSERT INTO memories (session_id, agent_id, memory_type, content, importance, tags, metadata)
    VALUES (p_session_id, installer.agent_row(p_agent_name),
            coalesce(installer.agent_text(p_memory_type, 'memory_type', 100), 'fact'),
            installer.agent_text(p_content, 'content', 100000, true),
            coalesce(installer.agent_number(p_importance, 'importance', 0, 1), 0.5),
            ARRAY(SELECT DISTINCT btrim(t) FROM unnest(p_tags) AS t ORDER BY 1),
            installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

CREATE FUNCTION agent_api.create_artifact(
    p_name text, p_content text DEFAULT NULL, p_artifact_type text DEFAULT 'file',
    p_uri text DEFAULT NULL, p_session_id uuid DEFAULT NULL, p_task_id uuid DEFAULT NULL,
    p_agent_name text DEFAULT NULL, p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM installer.agent_call();
    INSERT INTO artifacts (session_id, task_id, created_by, name, artifact_type, content, uri,
                           metadata)
    VALUES (p_session_id, p_task_id, installer.agent_row(p_agent_name),
            installer.agent_text(p_name, 'name', 500, true),
            coalesce(installer.agent_text(p_artifact_type, 'artifact_type', 100), 'file'),
            installer.agent_text(p_content, 'content', 1000000),
            installer.agent_text(p_uri, 'uri', 2000),
            installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

-- The most urgent pending task this agent type may take (claim_task's SKIP LOCKED order), as
-- JSON; NULL when there is none.
CREATE FUNCTION agent_api.claim_task(p_agent_type text, p_agent_name text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    claimed jsonb;
BEGIN
    PERFORM installer.agent_call();
    p_agent_type := installer.agent_text(p_agent_type, 'agent_type', 200, true);
    SELECT to_jsonb(t) INTO claimed
      FROM claim_task(p_agent_type, installer.agent_row(
               installer.agent_text(p_agent_name, 'agent_name', 200, true), p_agent_type)) t;
    RETURN claimed;
END;
$$;

-- Moves a task along pending -> claimed -> running -> completed | failed (the tasks trigger
-- refuses any other move) and records its result or error; returns the task as JSON.
CREATE FUNCTION agent_api.update_task_status(
    p_task_id uuid, p_status text, p_result jsonb DEFAULT NULL, p_error text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    updated jsonb;
BEGIN
    PERFORM installer.agent_call();
    IF p_status IS NULL OR p_status NOT IN ('pending', 'claimed', 'running', 'completed',
                                            'failed', 'cancelled') THEN
        RAISE EXCEPTION 'status % is not one of pending, claimed, running, completed, failed, '
            'cancelled', coalesce(p_status, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE tasks
       SET status = p_status,
           result = coalesce(installer.agent_json(p_result, 'result', 262144), result),
           error = coalesce(installer.agent_text(p_error, 'error', 10000), error)
     WHERE id = p_task_id
    RETURNING to_jsonb(tasks) INTO updated;
    IF updated IS NULL THEN
        RAISE EXCEPTION 'no task %', p_task_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN updated;
END;
$$;

-- Feedback on a conversation; thumbs_down or a rating of 2 or less enqueues a learning item
-- (the learning pipeline's trigger).
CREATE FUNCTION agent_api.submit_feedback(
    p_feedback_type text, p_rating integer DEFAULT NULL, p_comment text DEFAULT NULL,
    p_session_id uuid DEFAULT NULL, p_chunk_id uuid DEFAULT NULL, p_given_by text DEFAULT NULL,
    p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM installer.agent_call();
    IF p_feedback_type IS NULL OR p_feedback_type NOT IN ('thumbs_up', 'thumbs_down', 'rating',
                                                          'comment') THEN
        RAISE EXCEPTION 'feedback_type % is not one of thumbs_up, thumbs_down, rating, comment',
            coalesce(p_feedback_type, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO conversation_feedback (session_id, chunk_id, feedback_type, rating, comment,
                                       given_by, metadata)
    VALUES (p_session_id, p_chunk_id, p_feedback_type,
            installer.agent_number(p_rating, 'rating', 1, 5)::integer,
            installer.agent_text(p_comment, 'comment', 10000),
            installer.agent_text(p_given_by, 'given_by', 200),
            installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

-- Something to learn, proposed by an agent: it waits for approval like negative feedback does
-- (an agent cannot approve its own items).
CREATE FUNCTION agent_api.enqueue_learning(
    p_content text, p_context text DEFAULT NULL, p_session_id uuid DEFAULT NULL,
    p_confidence double precision DEFAULT 0.5, p_priority integer DEFAULT 0,
    p_embedding real[] DEFAULT NULL, p_metadata jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM installer.agent_call();
    IF p_embedding IS NOT NULL AND (cardinality(p_embedding) <> 768 OR EXISTS (
            SELECT 1 FROM unnest(p_embedding) AS x WHERE x IS NULL OR x = 'NaN'
                                                      OR x IN ('Infinity', '-Infinity'))) THEN
        RAISE EXCEPTION 'an embedding is 768 finite numbers' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO learning_queue (source_type, session_id, content, context, embedding, confidence,
                                priority, status, metadata)
    VALUES ('manual', p_session_id, installer.agent_text(p_content, 'content', 100000, true),
            installer.agent_text(p_context, 'context', 100000), p_embedding,
            coalesce(installer.agent_number(p_confidence, 'confidence', 0, 1), 0.5),
            coalesce(installer.agent_number(p_priority, 'priority', 0, 3)::integer, 0),
            'pending', installer.agent_json(p_metadata, 'metadata'))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_api FROM PUBLIC;
REVOKE ALL ON FUNCTION installer.agent_text(text, text, integer, boolean),
    installer.agent_json(jsonb, text, integer),
    installer.agent_number(double precision, text, double precision, double precision),
    installer.agent_row(text, text), installer.agent_call() FROM PUBLIC;

-- migrate:down
-- memories.tags stays: the collaboration module defines it too.
DROP SCHEMA agent_api CASCADE;
DROP FUNCTION installer.agent_row(text, text);
DROP FUNCTION installer.agent_call();
DROP FUNCTION installer.agent_number(double precision, text, double precision, double precision);
DROP FUNCTION installer.agent_json(jsonb, text, integer);
DROP FUNCTION installer.agent_text(text, text, integer, boolean);
