-- The migration engine's own schema, run by every migration run under its advisory lock.
-- Every statement is safe to repeat: an older installation's ledger is upgraded in place.
CREATE SCHEMA IF NOT EXISTS installer;

CREATE TABLE IF NOT EXISTS installer.schema_migrations (
    module             text        NOT NULL,
    version            integer     NOT NULL,
    name               text        NOT NULL,
    checksum           text        NOT NULL,
    checksum_algorithm text        NOT NULL,
    applied_at         timestamptz NOT NULL DEFAULT now(),
    applied_by         text        NOT NULL DEFAULT current_user,
    duration_ms        integer     NOT NULL,
    PRIMARY KEY (module, version)
);
-- the file's `-- migrate:down` part (NULL: it had none; '': nothing to undo)
ALTER TABLE installer.schema_migrations ADD COLUMN IF NOT EXISTS down_sql text;
-- the tables, views and functions the file created and that are still expected
ALTER TABLE installer.schema_migrations ADD COLUMN IF NOT EXISTS objects text[];

-- how far a no-transaction file got, so that a re-run resumes after the last commit
CREATE TABLE IF NOT EXISTS installer.migration_progress (
    module          text        NOT NULL,
    version         integer     NOT NULL,
    statements_done integer     NOT NULL,
    done_checksum   text        NOT NULL,
    objects_before  text[]      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (module, version)
);

-- which module requires which (module.yaml), for rollbacks run from SQL
CREATE TABLE IF NOT EXISTS installer.modules (
    name     text PRIMARY KEY,
    requires text[] NOT NULL
);

-- the learning database's size at each `status`, to show its growth
CREATE TABLE IF NOT EXISTS installer.size_readings (
    measured_at timestamptz PRIMARY KEY DEFAULT now(),
    bytes       bigint      NOT NULL
);

-- Each applied migration under the version name of design document 001: YYYY.MM.NNN is the
-- NNN-th migration applied in that month (UTC), in the order they were applied.
CREATE OR REPLACE VIEW installer.schema_versions AS
SELECT to_char(applied_at AT TIME ZONE 'UTC', 'YYYY.MM.')
       || lpad(row_number() OVER (PARTITION BY date_trunc('month', applied_at AT TIME ZONE 'UTC')
                                  ORDER BY applied_at, module, version)::text, 3, '0') AS label,
       module, version, name, applied_at
  FROM installer.schema_migrations;

-- What a rollback to `target` reverts, last applied first: the target module's migrations
-- numbered above it and those of the modules that require it (directly or not) applied
-- since, with their down parts. `target` is MODULE/NNN (NNN may be 000: the whole module),
-- MODULE/NNN_name, or a label of installer.schema_versions.
CREATE OR REPLACE FUNCTION installer.rollback_plan(target text)
RETURNS TABLE (module text, version integer, name text, down_sql text)
LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    parts text[];
    t_module text;
    t_version integer;
BEGIN
    parts := regexp_match(target, '^([a-z0-9_]+)/([0-9]+)(_[a-z0-9_]+)?$');
    IF parts IS NOT NULL THEN
        t_module := parts[1];
        t_version := parts[2]::integer;
        IF NOT EXISTS (SELECT 1 FROM installer.schema_migrations m WHERE m.module = t_module) THEN
            RAISE EXCEPTION 'no migration of module % is recorded', t_module
                USING HINT = 'SELECT * FROM installer.schema_versions lists the applied migrations';
        END IF;
    ELSIF target ~ '^[0-9]{4}\.[0-9]{2}\.[0-9]+$' THEN
        SELECT v.module, v.version INTO t_module, t_version
          FROM installer.schema_versions v WHERE v.label = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no migration is recorded as version %', target
                USING HINT = 'SELECT * FROM installer.schema_versions lists the applied migrations';
        END IF;
    ELSE
        RAISE EXCEPTION 'version % is neither MODULE/NNN nor YYYY.MM.NNN', target
            USING HINT = 'e.g. learning/005, or a label of installer.schema_versions';
    END IF;
    RETURN QUERY
    WITH RECURSIVE dependents(name) AS (
        SELECT t_module
        UNION
        SELECT m.name FROM installer.modules m JOIN dependents d ON d.name = ANY (m.requires)
    ), ordered AS (
        SELECT s.module, s.version, s.name, s.down_sql,
               row_number() OVER (ORDER BY s.applied_at, s.module, s.version) AS n
          FROM installer.schema_migrations s
    ), first AS (
        SELECT min(o.n) AS n FROM ordered o WHERE o.module = t_module AND o.version > t_version
    )
    SELECT o.module, o.version, o.name, o.down_sql
      FROM ordered o, first f
     WHERE o.n >= f.n AND o.module IN (SELECT d.name FROM dependents d)
       AND (o.module <> t_module OR o.version > t_version)
     ORDER BY o.n DESC;
END
$fn$;
