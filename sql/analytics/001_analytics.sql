-- Models, the data they are trained on, their training runs and evaluations, a feature store,
-- and the learning event stream, partitioned by month.

CREATE TABLE ml_models (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL CHECK (name <> ''),
    version      text        NOT NULL DEFAULT '1' CHECK (version <> ''),
    model_type   text        NOT NULL CHECK (model_type <> ''),
    framework    text,
    parameters   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    artifact_uri text,
    status       text        NOT NULL DEFAULT 'draft'
                             CHECK (status IN ('draft', 'training', 'ready', 'deployed', 'retired')),
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);
CREATE TRIGGER ml_models_updated_at BEFORE UPDATE ON ml_models
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON ml_models
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('name', 'version');

CREATE TABLE training_datasets (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL CHECK (name <> ''),
    version      text        NOT NULL DEFAULT '1' CHECK (version <> ''),
    description  text,
    source       text,
    row_count    bigint      CHECK (row_count >= 0),
    data_schema  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    storage_uri  text,
    checksum     text,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);
CREATE TRIGGER training_datasets_updated_at BEFORE UPDATE ON training_datasets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON training_datasets
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('name', 'version');

-- A training run belongs to its model (deleted with it); a deleted dataset leaves the run.
CREATE TABLE model_training_sessions (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id        uuid        NOT NULL REFERENCES ml_models (id) ON DELETE CASCADE DEFERRABLE,
    dataset_id      uuid        REFERENCES training_datasets (id) ON DELETE SET NULL DEFERRABLE,
    status          text        NOT NULL DEFAULT 'queued'
                                CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    hyperparameters jsonb       NOT NULL DEFAULT '{}'::jsonb,
    metrics         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at      timestamptz,
    completed_at    timestamptz CHECK (completed_at IS NULL OR completed_at >= started_at),
    error           text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_training_sessions_model_idx ON model_training_sessions (model_id, created_at DESC);
CREATE INDEX model_training_sessions_dataset_idx ON model_training_sessions (dataset_id);
CREATE TRIGGER model_training_sessions_updated_at BEFORE UPDATE ON model_training_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE model_evaluations (
    id                  uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id            uuid             NOT NULL REFERENCES ml_models (id) ON DELETE CASCADE DEFERRABLE,
    training_session_id uuid             REFERENCES model_training_sessions (id)
                                         ON DELETE SET NULL DEFERRABLE,
    dataset_id          uuid             REFERENCES training_datasets (id) ON DELETE SET NULL DEFERRABLE,
    accuracy            double precision CHECK (accuracy BETWEEN 0 AND 1),
    precision_score     double precision CHECK (precision_score BETWEEN 0 AND 1),
    recall              double precision CHECK (recall BETWEEN 0 AND 1),
    f1_score            double precision CHECK (f1_score BETWEEN 0 AND 1),
    metrics             jsonb            NOT NULL DEFAULT '{}'::jsonb,
    evaluated_at        timestamptz      NOT NULL DEFAULT now(),
    metadata            jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz      NOT NULL DEFAULT now(),
    updated_at          timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX model_evaluations_model_idx ON model_evaluations (model_id, evaluated_at DESC);
CREATE INDEX model_evaluations_session_idx ON model_evaluations (training_session_id);
CREATE INDEX model_evaluations_dataset_idx ON model_evaluations (dataset_id);
CREATE TRIGGER model_evaluations_updated_at BEFORE UPDATE ON model_evaluations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE feature_store (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    entity_type   text        NOT NULL CHECK (entity_type <> ''),
    entity_id     text        NOT NULL CHECK (entity_id <> ''),
    feature_name  text        NOT NULL CHECK (feature_name <> ''),
    feature_value jsonb       NOT NULL,
    version       integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    valid_from    timestamptz NOT NULL DEFAULT now(),
    valid_to      timestamptz CHECK (valid_to IS NULL OR valid_to > valid_from),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_type, entity_id, feature_name, version)
);
CREATE TRIGGER feature_store_updated_at BEFORE UPDATE ON feature_store
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON feature_store
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('entity_type', 'entity_id', 'feature_name', 'version');

-- Append-only event stream, one partition per UTC month. A partitioned table's primary key
-- must contain the partition key, so it is (id, created_at); the design documents' PRIMARY
-- KEY (id) cannot be created. Rows for a month without a partition land in the DEFAULT
-- partition and are moved into their month when its partition is created.
CREATE TABLE learning_events (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_type text        NOT NULL CHECK (event_type <> ''),
    agent_name text,
    session_id uuid,
    payload    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE learning_events_default PARTITION OF learning_events DEFAULT;
CREATE INDEX learning_events_type_time_idx ON learning_events (event_type, created_at DESC);
CREATE INDEX learning_events_agent_time_idx ON learning_events (agent_name, created_at DESC);

CREATE OR REPLACE FUNCTION learning_event_partition_name(month date) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT 'learning_events_' || to_char(month, 'YYYY_MM')
$$;

-- The UTC months from this one to p_months_ahead months on, plus any month with rows in the
-- default partition, that have no partition yet.
CREATE OR REPLACE FUNCTION missing_learning_event_partitions(p_months_ahead integer DEFAULT 3)
RETURNS SETOF date LANGUAGE sql STABLE AS $$
    SELECT month FROM (
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC')
                + make_interval(months => n))::date AS month
          FROM generate_series(0, p_months_ahead) AS n
        UNION
        SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date
          FROM learning_events_default) AS wanted
     WHERE to_regclass(quote_ident(learning_event_partition_name(month))) IS NULL
     ORDER BY month
$$;

-- Creates the partitions missing_learning_event_partitions() lists, moving any rows of those
-- months out of the default partition; returns the names it created. Called by the installer.
CREATE OR REPLACE FUNCTION create_learning_event_partitions(p_months_ahead integer DEFAULT 3)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    month     date;
    part      text;
    lower_end timestamptz;
    upper_end timestamptz;
BEGIN
    FOR month IN SELECT * FROM missing_learning_event_partitions(p_months_ahead) LOOP
        part := learning_event_partition_name(month);
        lower_end := month::timestamp AT TIME ZONE 'UTC';
        upper_end := (month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE learning_events INCLUDING DEFAULTS '
                       'INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM learning_events_default WHERE created_at >= $1 '
                       'AND created_at < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved', part)
            USING lower_end, upper_end;
        EXECUTE format('ALTER TABLE learning_events ATTACH PARTITION %I FOR VALUES FROM (%L) '
                       'TO (%L)', part, lower_end, upper_end);
        RETURN NEXT part;
    END LOOP;
END;
$$;

SELECT create_learning_event_partitions(3);
