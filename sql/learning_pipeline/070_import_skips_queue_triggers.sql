-- During an import (learning.import = 'on') these triggers already did nothing; a WHEN clause
-- keeps them from being queued once per imported row at all.

DROP TRIGGER learning_queue_audit ON learning_queue;
CREATE TRIGGER learning_queue_audit AFTER INSERT OR UPDATE OF status ON learning_queue
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION audit_learning_queue();
DROP TRIGGER conversation_feedback_enqueue ON conversation_feedback;
CREATE TRIGGER conversation_feedback_enqueue AFTER INSERT ON conversation_feedback
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION enqueue_negative_feedback();
DROP TRIGGER owner_corrections_enqueue ON owner_corrections;
CREATE TRIGGER owner_corrections_enqueue AFTER INSERT ON owner_corrections
    FOR EACH ROW WHEN (NOT learning_import_in_progress())
    EXECUTE FUNCTION enqueue_owner_correction();

-- migrate:down
DROP TRIGGER learning_queue_audit ON learning_queue;
CREATE TRIGGER learning_queue_audit AFTER INSERT OR UPDATE OF status ON learning_queue
    FOR EACH ROW EXECUTE FUNCTION audit_learning_queue();
DROP TRIGGER conversation_feedback_enqueue ON conversation_feedback;
CREATE TRIGGER conversation_feedback_enqueue AFTER INSERT ON conversation_feedback
    FOR EACH ROW EXECUTE FUNCTION enqueue_negative_feedback();
DROP TRIGGER owner_corrections_enqueue ON owner_corrections;
CREATE TRIGGER owner_corrections_enqueue AFTER INSERT ON owner_corrections
    FOR EACH ROW EXECUTE FUNCTION enqueue_owner_correction();
