-- Rows with a natural unique key (an agent's name, a model's name and version, ...) get an id
-- derived from their table and that key, so two machines that each create "the same" row give
-- it the same id: the import merges them by id (last writer wins on updated_at), and rows that
-- reference it agree across machines. Tables opt in with a trigger that names the key columns:
--
--   CREATE TRIGGER zz_natural_key_id BEFORE INSERT ON agents
--       FOR EACH ROW EXECUTE FUNCTION set_id_from_natural_key('name');
--
-- The trigger is named zz_… because PostgreSQL fires triggers of one event in name order: it
-- runs after any other BEFORE INSERT trigger, so the id follows the key as it is stored.
-- Key columns must have a text form that is the same on every server (text, integers, uuid;
-- not timestamptz, whose text depends on the session's time zone).

-- A UUID (version 8, RFC 9562) from the first 16 bytes of SHA-256 over the JSON array
-- [table, key value, ...]: JSON quoting keeps the values apart, whatever they contain.
CREATE OR REPLACE FUNCTION natural_key_uuid(p_table text, p_key jsonb) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    digest bytea := substring(sha256(convert_to((jsonb_build_array(p_table) || p_key)::text,
                                                'UTF8')) FROM 1 FOR 16);
BEGIN
    digest := set_byte(digest, 6, (get_byte(digest, 6) & 15) | 128);  -- version 8
    digest := set_byte(digest, 8, (get_byte(digest, 8) & 63) | 128);  -- RFC 9562 variant
    RETURN encode(digest, 'hex')::uuid;
END;
$$;

-- BEFORE INSERT trigger: NEW.id := natural_key_uuid(table, [key columns named in TG_ARGV]).
-- * An id given in the INSERT is replaced (the id is part of the key, not the caller's choice).
-- * A key with a NULL keeps the default random id: NULLs never collide in a unique constraint.
-- * During an import (learning.import = 'on') a row keeps the id it carries: it was derived
--   where the row was made, and the rows that reference it use that id.
-- * Only INSERT: changing a key column later keeps the id (docs/schema.md).
CREATE OR REPLACE FUNCTION set_id_from_natural_key() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    fields jsonb;
    key_values jsonb := '[]'::jsonb;
    col text;
BEGIN
    IF TG_NARGS = 0 THEN
        RAISE EXCEPTION 'trigger % on % names no key column', TG_NAME, TG_TABLE_NAME;
    END IF;
    IF learning_import_in_progress() THEN
        RETURN NEW;
    END IF;
    fields := to_jsonb(NEW);
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF NOT fields ? col THEN
            RAISE EXCEPTION 'trigger % on %: no column %', TG_NAME, TG_TABLE_NAME, col;
        END IF;
        IF jsonb_typeof(fields -> col) = 'null' THEN
            RETURN NEW;
        END IF;
        key_values := key_values || jsonb_build_array(fields -> col);
    END LOOP;
    NEW.id := natural_key_uuid(TG_TABLE_NAME, key_values);
    RETURN NEW;
END;
$$;
