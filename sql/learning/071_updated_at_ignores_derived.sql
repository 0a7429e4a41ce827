-- A trigger that only brings derived values up to date (a session's counters when a chunk
-- arrives) is not a write of the row: it says `learning.derived_update = 'on'` around its
-- UPDATE, and set_updated_at then keeps updated_at. Otherwise every new chunk made its session
-- "newer" on one machine, and last-writer-wins let counter noise beat real edits and deletes.

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress()
       OR coalesce(current_setting('learning.derived_update', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

-- migrate:down
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF learning_import_in_progress() THEN
        RETURN NEW;
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
