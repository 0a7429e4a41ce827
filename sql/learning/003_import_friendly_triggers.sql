-- Triggers must not rewrite data that an import replays from another machine:
-- * set_updated_at keeps an updated_at the statement set explicitly (an import's
--   last-writer-wins needs the original time); otherwise it stamps now(), as before.
-- * Triggers with side effects (enqueueing learning items, enforcing the task status flow)
--   skip their work while the importing transaction says `SET LOCAL learning.import = 'on'`.

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION learning_import_in_progress() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('learning.import', true), '') = 'on'
$$;
