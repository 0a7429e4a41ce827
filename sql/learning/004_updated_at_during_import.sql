-- An import replays rows from another machine (SET LOCAL learning.import = 'on'): every
-- updated_at keeps the value it carries, also when another trigger touches the row during
-- the import (the session counters are recounted when chunks, memories, tasks or artifacts
-- arrive). Otherwise each import would stamp now() on those rows, an export -> import -> export
-- round trip would differ, and last-writer-wins would crown the importing machine.

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
