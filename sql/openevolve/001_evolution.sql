-- Document 001's OpenEvolve integration: an experiment evolves a population of individuals
-- (candidate programs) over generations; each individual's code is evaluated, and every LLM
-- call made on the way is counted with its tokens and cost.

CREATE TABLE evolution_experiments (
    id                 uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text             NOT NULL CHECK (name <> ''),
    description        text,
    problem_definition jsonb            NOT NULL DEFAULT '{}'::jsonb,
    objective_function jsonb            NOT NULL DEFAULT '{}'::jsonb,
    configuration      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    population_size    integer          CHECK (population_size > 0),
    max_generations    integer          CHECK (max_generations > 0),
    status             text             NOT NULL DEFAULT 'planned'
                                        CHECK (status IN ('planned', 'running', 'completed',
                                                          'failed', 'cancelled')),
    best_fitness       double precision,
    started_at         timestamptz,
    completed_at       timestamptz      CHECK (completed_at IS NULL OR completed_at >= started_at),
    metadata           jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz      NOT NULL DEFAULT now(),
    updated_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX evolution_experiments_status_idx ON evolution_experiments (status, created_at DESC);
CREATE TRIGGER evolution_experiments_updated_at BEFORE UPDATE ON evolution_experiments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per generation of an experiment (natural key: experiment and number).
CREATE TABLE evolution_generations (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    experiment_id     uuid             NOT NULL REFERENCES evolution_experiments (id)
                                       ON DELETE CASCADE DEFERRABLE,
    generation_number integer          NOT NULL CHECK (generation_number >= 0),
    population_size   integer          CHECK (population_size >= 0),
    best_fitness      double precision,
    avg_fitness       double precision,
    diversity_score   double precision,
    statistics        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (experiment_id, generation_number)
);
CREATE TRIGGER evolution_generations_updated_at BEFORE UPDATE ON evolution_generations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON evolution_generations
    FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('experiment_id', 'generation_number');

CREATE TABLE evolution_individuals (
    id                 uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    generation_id      uuid             NOT NULL REFERENCES evolution_generations (id)
                                        ON DELETE CASCADE DEFERRABLE,
    parent_ids         uuid[]           NOT NULL DEFAULT '{}',
    genotype           jsonb            NOT NULL DEFAULT '{}'::jsonb,
    phenotype          text,
    fitness_score      double precision,
    fitness_components jsonb            NOT NULL DEFAULT '{}'::jsonb,
    mutation_type      text,
    is_elite           boolean          NOT NULL DEFAULT false,
    metadata           jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz      NOT NULL DEFAULT now(),
    updated_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX evolution_individuals_generation_idx
    ON evolution_individuals (generation_id, fitness_score DESC NULLS LAST);
CREATE TRIGGER evolution_individuals_updated_at BEFORE UPDATE ON evolution_individuals
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE code_evaluations (
    id                 uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    individual_id      uuid             REFERENCES evolution_individuals (id)
                                        ON DELETE CASCADE DEFERRABLE,
    code               text,
    language           text,
    evaluation_type    text             NOT NULL DEFAULT 'tests' CHECK (evaluation_type <> ''),
    correctness_score  double precision CHECK (correctness_score BETWEEN 0 AND 1),
    performance_score  double precision,
    quality_score      double precision CHECK (quality_score BETWEEN 0 AND 1),
    execution_time_ms  double precision CHECK (execution_time_ms >= 0),
    memory_usage_bytes bigint           CHECK (memory_usage_bytes >= 0),
    tests_passed       integer          CHECK (tests_passed >= 0),
    tests_total        integer          CHECK (tests_total >= 0),
    test_results       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    errors             text,
    created_at         timestamptz      NOT NULL DEFAULT now(),
    updated_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX code_evaluations_individual_idx ON code_evaluations (individual_id);
CREATE TRIGGER code_evaluations_updated_at BEFORE UPDATE ON code_evaluations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Append-only: one row per LLM call, with tokens, latency and cost.
CREATE TABLE llm_interactions (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    experiment_id     uuid             REFERENCES evolution_experiments (id)
                                       ON DELETE SET NULL DEFERRABLE,
    individual_id     uuid             REFERENCES evolution_individuals (id)
                                       ON DELETE SET NULL DEFERRABLE,
    provider          text,
    model_name        text             NOT NULL CHECK (model_name <> ''),
    purpose           text,
    prompt            text,
    response          text,
    prompt_tokens     integer          CHECK (prompt_tokens >= 0),
    completion_tokens integer          CHECK (completion_tokens >= 0),
    total_tokens      integer          GENERATED ALWAYS AS
                                       (coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) STORED,
    cost_usd          numeric(14, 6)   CHECK (cost_usd >= 0),
    latency_ms        double precision CHECK (latency_ms >= 0),
    success           boolean          NOT NULL DEFAULT true,
    error             text,
    metadata          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX llm_interactions_experiment_idx ON llm_interactions (experiment_id, created_at);
CREATE INDEX llm_interactions_individual_idx ON llm_interactions (individual_id);
CREATE INDEX llm_interactions_model_time_idx ON llm_interactions (model_name, created_at);

-- migrate:down
DROP TABLE IF EXISTS llm_interactions, code_evaluations, evolution_individuals,
    evolution_generations, evolution_experiments;
