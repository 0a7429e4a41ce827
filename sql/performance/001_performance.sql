-- Document 001's analytics and performance tables (learning_events, its time-series event
-- stream, is in the analytics module): measurements of the system, of the database's queries,
-- of resources, and projections of their growth. Measurements are append-only.

CREATE TABLE system_performance_metrics (
    id           uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    metric_name  text             NOT NULL CHECK (metric_name <> ''),
    metric_value double precision NOT NULL,
    unit         text,
    component    text,
    host         text,
    tags         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz      NOT NULL DEFAULT now(),
    created_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX system_performance_metrics_name_time_idx
    ON system_performance_metrics (metric_name, recorded_at DESC);
CREATE INDEX system_performance_metrics_component_idx
    ON system_performance_metrics (component, recorded_at DESC);

CREATE TABLE query_performance_logs (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    query_hash        text             NOT NULL CHECK (query_hash <> ''),
    query_text        text,
    execution_time_ms double precision NOT NULL CHECK (execution_time_ms >= 0),
    rows_returned     bigint           CHECK (rows_returned >= 0),
    calls             bigint           NOT NULL DEFAULT 1 CHECK (calls >= 1),
    plan              jsonb,
    database_name     text,
    recorded_at       timestamptz      NOT NULL DEFAULT now(),
    created_at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX query_performance_logs_hash_time_idx
    ON query_performance_logs (query_hash, recorded_at DESC);
CREATE INDEX query_performance_logs_slow_idx
    ON query_performance_logs (execution_time_ms DESC);

CREATE TABLE resource_utilization (
    id                  uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type       text             NOT NULL CHECK (resource_type <> ''),
    component           text,
    host                text,
    utilization_percent double precision CHECK (utilization_percent BETWEEN 0 AND 100),
    used                double precision CHECK (used >= 0),
    capacity            double precision CHECK (capacity >= 0),
    unit                text,
    recorded_at         timestamptz      NOT NULL DEFAULT now(),
    created_at          timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX resource_utilization_type_time_idx
    ON resource_utilization (resource_type, recorded_at DESC);

CREATE TABLE capacity_planning_metrics (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type     text             NOT NULL CHECK (resource_type <> ''),
    component         text,
    current_usage     double precision NOT NULL,
    projected_usage   double precision,
    capacity          double precision,
    unit              text,
    growth_rate       double precision,
    projection_date   date,
    confidence        double precision CHECK (confidence BETWEEN 0 AND 1),
    projection_method text,
    metadata          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX capacity_planning_metrics_type_date_idx
    ON capacity_planning_metrics (resource_type, projection_date);
CREATE TRIGGER capacity_planning_metrics_updated_at BEFORE UPDATE ON capacity_planning_metrics
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- migrate:down
DROP TABLE IF EXISTS capacity_planning_metrics, resource_utilization, query_performance_logs,
    system_performance_metrics;
