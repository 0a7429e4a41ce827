-- Document 001's integration and migration tables. Its `schema_migrations` (version control
-- and rollback) is the installer's ledger, shown here as a read-only view: the ledger itself
-- belongs to each installation (installer schema, never exported).

CREATE VIEW schema_migrations AS
SELECT module || '/' || lpad(version::text, 3, '0') AS migration, module, version, name,
       checksum, checksum_algorithm, applied_at, applied_by, duration_ms
  FROM installer.schema_migrations;

-- Append-only: what agents learned from git operations (commits, pushes, merges, ...).
CREATE TABLE git_operation_learning_events (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    operation_type text        NOT NULL CHECK (operation_type <> ''),
    repository     text,
    branch         text,
    commit_sha     text,
    author         text,
    agent_name     text,
    session_id     uuid,  -- soft reference (this module does not require collaboration)
    files_changed  integer     CHECK (files_changed >= 0),
    lines_added    integer     CHECK (lines_added >= 0),
    lines_deleted  integer     CHECK (lines_deleted >= 0),
    success        boolean,
    learning_data  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX git_operation_learning_events_repo_time_idx
    ON git_operation_learning_events (repository, created_at DESC);
CREATE INDEX git_operation_learning_events_type_idx
    ON git_operation_learning_events (operation_type, created_at DESC);

-- Append-only: what users did in their sessions.
CREATE TABLE user_session_learning_events (
    id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text             NOT NULL CHECK (user_id <> ''),
    session_id  uuid,
    event_type  text             NOT NULL CHECK (event_type <> ''),
    event_data  jsonb            NOT NULL DEFAULT '{}'::jsonb,
    duration_ms double precision CHECK (duration_ms >= 0),
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX user_session_learning_events_user_time_idx
    ON user_session_learning_events (user_id, created_at DESC);
CREATE INDEX user_session_learning_events_session_idx ON user_session_learning_events (session_id);

CREATE TABLE data_quality_checks (
    id            uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    check_name    text             NOT NULL CHECK (check_name <> ''),
    table_name    text,
    check_type    text             NOT NULL DEFAULT 'schema' CHECK (check_type <> ''),
    status        text             NOT NULL CHECK (status IN ('ok', 'warning', 'error')),
    quality_score double precision CHECK (quality_score BETWEEN 0 AND 1),
    rows_checked  bigint           CHECK (rows_checked >= 0),
    rows_failed   bigint           CHECK (rows_failed >= 0),
    details       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    checked_at    timestamptz      NOT NULL DEFAULT now(),
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX data_quality_checks_name_time_idx ON data_quality_checks (check_name, checked_at DESC);
CREATE INDEX data_quality_checks_problems_idx ON data_quality_checks (checked_at DESC)
    WHERE status <> 'ok';
CREATE TRIGGER data_quality_checks_updated_at BEFORE UPDATE ON data_quality_checks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Runs validate_schema_integrity() and records one row per check; returns how many are not ok.
CREATE OR REPLACE FUNCTION record_data_quality_checks() RETURNS integer
LANGUAGE sql AS $$
    WITH recorded AS (
        INSERT INTO data_quality_checks (check_name, check_type, status, details)
        SELECT v.check_name, 'schema', v.status, jsonb_build_object('detail', v.detail)
          FROM validate_schema_integrity() v
        RETURNING status)
    SELECT count(*) FILTER (WHERE status <> 'ok')::integer FROM recorded
$$;

-- migrate:down
DROP FUNCTION IF EXISTS record_data_quality_checks();
DROP TABLE IF EXISTS data_quality_checks, user_session_learning_events,
    git_operation_learning_events;
DROP VIEW IF EXISTS schema_migrations;
