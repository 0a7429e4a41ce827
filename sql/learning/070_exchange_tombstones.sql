-- Deletes travel between machines: a deleted row leaves a tombstone (which table, which id,
-- when), exported like any learning table. An import applies tombstones with last-writer-wins:
-- a row whose updated_at (else created_at) is not newer than its tombstone is deleted, and a
-- row updated after the delete stays. The installer attaches the triggers below to every
-- exchanged table (installer/exchange/triggers.py), so tables added later by any module are
-- covered without code changes.

CREATE TABLE exchange_tombstones (
    id         uuid        PRIMARY KEY,  -- natural_key_uuid('exchange_tombstones', [table, row])
    table_name text        NOT NULL CHECK (table_name <> ''),
    row_id     uuid        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (table_name, row_id)
);
COMMENT ON TABLE exchange_tombstones IS
    'one row per deleted learning row, exported so deletes reach other machines';

-- AFTER DELETE row trigger, attached as `exchange_tombstone` with the exchanged table's name
-- as argument (a row of a partition is recorded under its partitioned parent). Deleting the
-- same id again later moves deleted_at forward. Not called during an import: tombstones that
-- an import applies are already recorded.
CREATE OR REPLACE FUNCTION record_tombstone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO exchange_tombstones (id, table_name, row_id, deleted_at)
    VALUES (natural_key_uuid('exchange_tombstones', jsonb_build_array(TG_ARGV[0], OLD.id)),
            TG_ARGV[0], OLD.id, now())
    ON CONFLICT (id) DO UPDATE SET deleted_at = greatest(exchange_tombstones.deleted_at,
                                                         EXCLUDED.deleted_at);
    RETURN NULL;
END;
$$;

-- Statement trigger `exchange_changed` on every exchanged table (and on the tombstones): any
-- write moves this sequence, so the pre-push hook can tell in one query that nothing changed
-- since the last export. Sequences are not transactional: a rolled-back write still counts,
-- which only costs one export that changes no file.
CREATE SEQUENCE exchange_change_seq;
CREATE OR REPLACE FUNCTION note_exchange_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('exchange_change_seq');
    RETURN NULL;
END;
$$;
CREATE TRIGGER exchange_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON exchange_tombstones FOR EACH STATEMENT EXECUTE FUNCTION note_exchange_change();

-- migrate:down
DO $$
DECLARE
    found record;
BEGIN
    FOR found IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
                  WHERE t.tgname IN ('exchange_tombstone', 'exchange_changed')
                    AND t.tgparentid = 0 LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', found.tgname, found.rel);
    END LOOP;
END;
$$;
DROP FUNCTION record_tombstone();
DROP FUNCTION note_exchange_change();
DROP SEQUENCE exchange_change_seq;
DROP TABLE exchange_tombstones;
