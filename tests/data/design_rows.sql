-- One row in each table the design documents added, written with their column names
-- (tests: exchange round trip, down parts).
INSERT INTO sessions (title, participants) VALUES ('doc', '{alice,bob}');
INSERT INTO conversation_feedback (conversation_id, feedback_type, rating, reason)
SELECT id, 'thumbs_down', 1, 'wrong' FROM sessions;
INSERT INTO owner_corrections (conversation_id, corrected_answer, correction_context)
SELECT id, 'right', 'billing' FROM sessions;
INSERT INTO voice_transcripts (conversation_id, transcript, sentiment, entities)
SELECT id, 'hello', 'negative', '["x"]' FROM sessions;
INSERT INTO response_analytics (conversation_id, response_type, led_to_conversion)
SELECT id, 'answer', true FROM sessions;
INSERT INTO ml_models (name, model_type, hyperparameters) VALUES ('m', 'clf', '{"k": 1}');
INSERT INTO predictions (model_id, prediction_type, target_entity_type, predicted_value)
SELECT id, 'bug', 'file', '{"p": 0.5}' FROM ml_models;
INSERT INTO evolution_experiments (name) VALUES ('e');
INSERT INTO evolution_generations (experiment_id, generation_number)
SELECT id, 0 FROM evolution_experiments;
INSERT INTO evolution_individuals (generation_id, phenotype)
SELECT id, 'p' FROM evolution_generations;
INSERT INTO code_evaluations (individual_id, correctness_score)
SELECT id, 1 FROM evolution_individuals;
INSERT INTO llm_interactions (experiment_id, model_name, prompt_tokens, cost_usd)
SELECT id, 'llm', 12, 0.000123 FROM evolution_experiments;
INSERT INTO identified_patterns (pattern_type, pattern_name) VALUES ('smell', 'long');
INSERT INTO pattern_occurrences (pattern_id, source_type, source_id)
SELECT id, 'file', 'a.py' FROM identified_patterns;
INSERT INTO recommendations (pattern_id, recommendation_type, title)
SELECT id, 'refactor', 'split it' FROM identified_patterns;
INSERT INTO ab_testing_experiments (name, variants) VALUES ('ab', '["a", "b"]');
INSERT INTO system_performance_metrics (metric_name, metric_value) VALUES ('cpu', 0.5);
INSERT INTO query_performance_logs (query_hash, execution_time_ms) VALUES ('q1', 2.5);
INSERT INTO resource_utilization (resource_type, utilization_percent) VALUES ('disk', 40);
INSERT INTO capacity_planning_metrics (resource_type, current_usage) VALUES ('disk', 1e9);
INSERT INTO git_operation_learning_events (operation_type, commit_sha) VALUES ('push', 'abc');
INSERT INTO user_session_learning_events (user_id, event_type) VALUES ('u1', 'login');
INSERT INTO data_quality_checks (check_name, status) VALUES ('c', 'ok');
INSERT INTO agent_decision_trees (agent_id, decision_context, decision_path)
VALUES ('DIRECTOR', 'plan', '["a"]');
INSERT INTO agent_learning_patterns (pattern_type, pattern_data, effectiveness_score)
VALUES ('retry', '{"n": 2}', 0.8);
INSERT INTO agent_context_evolution (session_id, context_snapshot, evolution_trigger)
VALUES (gen_random_uuid(), '{"files": 3}', 'new task');
