-- Document 001's pattern recognition: patterns (one row per kind, natural key type and name)
-- and where they occur, a model's predictions checked against what happened, the
-- recommendations drawn from them, and A/B tests. Predictions belong to an analytics model.

CREATE TABLE identified_patterns (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern_type      text             NOT NULL CHECK (pattern_type <> ''),
    pattern_name      text             NOT NULL CHECK (pattern_name <> ''),
    description       text,
    pattern_signature jsonb            NOT NULL DEFAULT '{}'::jsonb,
    confidence_score  double precision CHECK (confidence_score BETWEEN 0 AND 1),
    impact_score      double precision,
    occurrence_count  integer          NOT NULL DEFAULT 0 CHECK (occurrence_count >= 0),
    status            text             NOT NULL DEFAULT 'active'
                                       CHECK (status IN ('active', 'resolved', 'ignored')),
    first_seen_at     timestamptz      NOT NULL DEFAULT now(),
    last_seen_at      timestamptz      NOT NULL DEFAULT now(),
    metadata          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (pattern_type, pattern_name)
);
CREATE INDEX identified_patterns_status_idx ON identified_patterns (status, last_seen_at DESC);
CREATE TRIGGER identified_patterns_updated_at BEFORE UPDATE ON identified_patterns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON identified_patterns
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('pattern_type', 'pattern_name');

-- Append-only: one row per place a pattern was seen (source_id is the source's own id, text).
CREATE TABLE pattern_occurrences (
    id               uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern_id       uuid             NOT NULL REFERENCES identified_patterns (id)
                                      ON DELETE CASCADE DEFERRABLE,
    source_type      text             NOT NULL CHECK (source_type <> ''),
    source_id        text             NOT NULL,
    location_data    jsonb            NOT NULL DEFAULT '{}'::jsonb,
    context          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    confidence_score double precision CHECK (confidence_score BETWEEN 0 AND 1),
    created_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX pattern_occurrences_pattern_idx ON pattern_occurrences (pattern_id, created_at DESC);
CREATE INDEX pattern_occurrences_source_idx ON pattern_occurrences (source_type, source_id);

-- occurrence_count and last_seen_at follow the occurrences: recounted once per statement for
-- the patterns it touched (a bulk load costs one count per pattern, and imports in any order
-- give the same result; the pattern's updated_at is left alone during an import).
CREATE OR REPLACE FUNCTION refresh_pattern_occurrences() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE identified_patterns p
       SET occurrence_count = (SELECT count(*) FROM pattern_occurrences o WHERE o.pattern_id = p.id),
           last_seen_at = greatest(p.last_seen_at, coalesce(
               (SELECT max(o.created_at) FROM pattern_occurrences o WHERE o.pattern_id = p.id),
               p.last_seen_at))
     WHERE p.id IN (SELECT changed.pattern_id FROM changed);
    RETURN NULL;
END;
$$;
CREATE TRIGGER pattern_occurrences_added AFTER INSERT ON pattern_occurrences
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_pattern_occurrences();
CREATE TRIGGER pattern_occurrences_removed AFTER DELETE ON pattern_occurrences
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_pattern_occurrences();

CREATE TABLE predictions (
    id                  uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id            uuid             NOT NULL REFERENCES ml_models (id)
                                         ON DELETE CASCADE DEFERRABLE,
    prediction_type     text             NOT NULL CHECK (prediction_type <> ''),
    target_entity_type  text             NOT NULL CHECK (target_entity_type <> ''),
    target_entity_id    text,
    input_features      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    predicted_value     jsonb            NOT NULL,
    confidence_interval jsonb,
    confidence_score    double precision CHECK (confidence_score BETWEEN 0 AND 1),
    actual_value        jsonb,
    is_correct          boolean,
    evaluated_at        timestamptz,
    created_at          timestamptz      NOT NULL DEFAULT now(),
    updated_at          timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX predictions_model_idx ON predictions (model_id, created_at DESC);
CREATE INDEX predictions_target_idx ON predictions (target_entity_type, target_entity_id);
CREATE TRIGGER predictions_updated_at BEFORE UPDATE ON predictions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE recommendations (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern_id          uuid        REFERENCES identified_patterns (id) ON DELETE SET NULL DEFERRABLE,
    prediction_id       uuid        REFERENCES predictions (id) ON DELETE SET NULL DEFERRABLE,
    recommendation_type text        NOT NULL CHECK (recommendation_type <> ''),
    title               text        NOT NULL CHECK (title <> ''),
    description         text,
    target_entity_type  text,
    target_entity_id    text,
    priority            integer     NOT NULL DEFAULT 0,
    expected_impact     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status              text        NOT NULL DEFAULT 'open'
                                    CHECK (status IN ('open', 'accepted', 'rejected', 'implemented')),
    resolved_at         timestamptz,
    metadata            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recommendations_pattern_idx ON recommendations (pattern_id);
CREATE INDEX recommendations_prediction_idx ON recommendations (prediction_id);
CREATE INDEX recommendations_open_idx ON recommendations (priority DESC, created_at)
    WHERE status = 'open';
CREATE TRIGGER recommendations_updated_at BEFORE UPDATE ON recommendations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE ab_testing_experiments (
    id                       uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    name                     text             NOT NULL CHECK (name <> ''),
    hypothesis               text,
    variants                 jsonb            NOT NULL DEFAULT '[]'::jsonb,
    traffic_allocation       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    primary_metric           text,
    status                   text             NOT NULL DEFAULT 'draft'
                                              CHECK (status IN ('draft', 'running', 'completed',
                                                                'stopped')),
    started_at               timestamptz,
    ended_at                 timestamptz      CHECK (ended_at IS NULL OR ended_at >= started_at),
    results                  jsonb            NOT NULL DEFAULT '{}'::jsonb,
    winning_variant          text,
    statistical_significance double precision CHECK (statistical_significance BETWEEN 0 AND 1),
    created_at               timestamptz      NOT NULL DEFAULT now(),
    updated_at               timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX ab_testing_experiments_status_idx ON ab_testing_experiments (status);
CREATE TRIGGER ab_testing_experiments_updated_at BEFORE UPDATE ON ab_testing_experiments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- migrate:down
DROP TABLE IF EXISTS ab_testing_experiments, recommendations, predictions, pattern_occurrences,
    identified_patterns;
DROP FUNCTION IF EXISTS refresh_pattern_occurrences();
