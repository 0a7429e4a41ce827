-- The columns document 001 names for its machine-learning tables: a model's hyperparameters
-- (another name of `parameters`), a training run's epochs and losses, a dataset's quality.

ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS hyperparameters jsonb;
ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS description text;
ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS performance_metrics jsonb NOT NULL DEFAULT '{}'::jsonb;
SELECT alias_column('ml_models', 'hyperparameters', 'parameters');
SELECT count(*) FROM migrate_existing_data();

ALTER TABLE training_datasets ADD COLUMN IF NOT EXISTS dataset_type text;
ALTER TABLE training_datasets ADD COLUMN IF NOT EXISTS quality_score double precision
    CHECK (quality_score BETWEEN 0 AND 1);

ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS total_epochs integer
    CHECK (total_epochs >= 0);
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS current_epoch integer NOT NULL DEFAULT 0
    CHECK (current_epoch >= 0);
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS training_loss double precision;
ALTER TABLE model_training_sessions ADD COLUMN IF NOT EXISTS validation_loss double precision;

ALTER TABLE model_evaluations ADD COLUMN IF NOT EXISTS evaluation_type text;
ALTER TABLE feature_store ADD COLUMN IF NOT EXISTS feature_type text;

-- validate_schema_integrity() lives in the learning module (it covers every module); the
-- older definition of analytics/002 is replaced by the learning module's checks.
CREATE OR REPLACE FUNCTION validate_schema_integrity()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM schema_integrity_checks()
$$;

-- migrate:down
ALTER TABLE feature_store DROP COLUMN IF EXISTS feature_type;
ALTER TABLE model_evaluations DROP COLUMN IF EXISTS evaluation_type;
ALTER TABLE model_training_sessions DROP COLUMN IF EXISTS validation_loss,
    DROP COLUMN IF EXISTS training_loss, DROP COLUMN IF EXISTS current_epoch,
    DROP COLUMN IF EXISTS total_epochs;
ALTER TABLE training_datasets DROP COLUMN IF EXISTS quality_score,
    DROP COLUMN IF EXISTS dataset_type;
DROP TRIGGER IF EXISTS aa_column_aliases ON ml_models;
DELETE FROM installer.column_aliases WHERE table_name = 'ml_models';
ALTER TABLE ml_models DROP COLUMN IF EXISTS performance_metrics, DROP COLUMN IF EXISTS description,
    DROP COLUMN IF EXISTS hyperparameters;
