-- migrate_existing_data() (document 001: `SELECT * FROM migrate_existing_data();`) carries rows
-- of older layouts into the current tables:
-- * rows written before a document's column names existed: every alias column still empty
--   gets its canonical column's value (see learning/006);
-- * rows of the earlier bash-based system, in tables of its layout in schema `legacy` (restore
--   its dump there): integer ids become the same uuids the CSV import gives them
--   (docs/exchange.md: uuid5 of "<table>/<id>"), `timestamp` (without time zone, read as UTC)
--   becomes created_at, other columns go by name; a row already present is kept.
-- Idempotent (a second call carries nothing); runs as an import does (learning.import = 'on'),
-- so updated_at and the triggers' side effects are left alone.

-- SHA-1 (RFC 3174) in plain SQL: core PostgreSQL has sha256() but no sha1() (pgcrypto is
-- contrib, which the embedded binaries lack), and uuid5 is defined over SHA-1.
CREATE OR REPLACE FUNCTION sha1_digest(data bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    mask   constant bigint := 4294967295;
    msg    bytea := data || '\x80'::bytea;
    h      bigint[] := ARRAY[x'67452301'::bigint, x'EFCDAB89'::bigint, x'98BADCFE'::bigint,
                             x'10325476'::bigint, x'C3D2E1F0'::bigint];
    w      bigint[];
    a bigint; b bigint; c bigint; d bigint; e bigint; f bigint; k bigint; t bigint;
    result bytea := '';
BEGIN
    msg := msg || ('\x' || repeat('00', (119 - length(data) % 64) % 64))::bytea
               || int8send(length(data)::bigint * 8);
    FOR block IN 0 .. length(msg) / 64 - 1 LOOP
        w := array_fill(0::bigint, ARRAY[80]);
        FOR i IN 0 .. 15 LOOP
            w[i + 1] := (get_byte(msg, block * 64 + i * 4)::bigint << 24)
                      | (get_byte(msg, block * 64 + i * 4 + 1) << 16)
                      | (get_byte(msg, block * 64 + i * 4 + 2) << 8)
                      | get_byte(msg, block * 64 + i * 4 + 3);
        END LOOP;
        FOR i IN 16 .. 79 LOOP
            t := w[i - 2] # w[i - 7] # w[i - 13] # w[i - 15];
            w[i + 1] := ((t << 1) | (t >> 31)) & mask;
        END LOOP;
        a := h[1]; b := h[2]; c := h[3]; d := h[4]; e := h[5];
        FOR i IN 0 .. 79 LOOP
            IF i < 20 THEN
                f := (b & c) | ((b # mask) & d); k := x'5A827999'::bigint;
            ELSIF i < 40 THEN
                f := b # c # d; k := x'6ED9EBA1'::bigint;
            ELSIF i < 60 THEN
                f := (b & c) | (b & d) | (c & d); k := x'8F1BBCDC'::bigint;
            ELSE
                f := b # c # d; k := x'CA62C1D6'::bigint;
            END IF;
            t := ((((a << 5) | (a >> 27)) & mask) + f + e + k + w[i + 1]) & mask;
            e := d; d := c; c := ((b << 30) | (b >> 2)) & mask; b := a; a := t;
        END LOOP;
        h := ARRAY[(h[1] + a) & mask, (h[2] + b) & mask, (h[3] + c) & mask,
                   (h[4] + d) & mask, (h[5] + e) & mask];
    END LOOP;
    FOR i IN 1 .. 5 LOOP
        result := result || substring(int8send(h[i]) FROM 5 FOR 4);
    END LOOP;
    RETURN result;
END;
$$;

-- The id the legacy CSV import gives row `legacy_id` of `tbl`: uuid5(LEGACY_NAMESPACE,
-- "<tbl>/<legacy_id>"), LEGACY_NAMESPACE as in installer/exchange/legacy.py.
CREATE OR REPLACE FUNCTION legacy_uuid(tbl text, legacy_id bigint) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    digest bytea := substring(sha1_digest(
        decode('5d1f3b7e8c2a5e4b9a610c7f2e8d4b19', 'hex')
        || convert_to(tbl || '/' || legacy_id, 'UTF8')) FROM 1 FOR 16);
BEGIN
    digest := set_byte(digest, 6, (get_byte(digest, 6) & 15) | 80);   -- version 5
    digest := set_byte(digest, 8, (get_byte(digest, 8) & 63) | 128);  -- RFC 4122 variant
    RETURN encode(digest, 'hex')::uuid;
END;
$$;

-- One row per thing carried: the table, where the rows came from (an alias column's canonical
-- column, or a legacy table), how many rows.
CREATE OR REPLACE FUNCTION migrate_existing_data()
RETURNS TABLE (table_name text, migrated_from text, rows_migrated bigint)
LANGUAGE plpgsql AS $$
DECLARE
    item     record;
    targets  text;
    sources  text;
    keyed    boolean;
    previous text := current_setting('learning.import', true);
BEGIN
    PERFORM set_config('learning.import', 'on', true);
    FOR item IN SELECT a.table_name AS tbl, a.alias, a.canonical FROM installer.column_aliases a
                 WHERE to_regclass(a.table_name) IS NOT NULL ORDER BY 1, 2 LOOP
        EXECUTE format('UPDATE %s SET %I = %I WHERE %I IS NULL AND %I IS NOT NULL', item.tbl,
                       item.alias, item.canonical, item.alias, item.canonical);
        table_name := item.tbl;
        migrated_from := item.canonical || ' (as ' || item.alias || ')';
        GET DIAGNOSTICS rows_migrated = ROW_COUNT;
        RETURN NEXT;
    END LOOP;

    FOR item IN SELECT old.relname AS tbl, old.oid AS source, new.oid AS target
                  FROM pg_class old
                  JOIN pg_class new ON new.relname = old.relname
                                   AND new.relnamespace = 'public'::regnamespace
                                   AND new.relkind IN ('r', 'p')
                 WHERE old.relnamespace = to_regnamespace('legacy') AND old.relkind = 'r'
                 ORDER BY 1 LOOP
        -- each current column (not generated) the legacy table provides, by name; `timestamp`
        -- feeds created_at; an integer id becomes its legacy uuid; a time without time zone
        -- is UTC
        SELECT string_agg(format('%I', n.attname), ', ' ORDER BY n.attnum),
               string_agg(CASE
                   WHEN n.attname = 'id' AND o.atttypid IN ('int2'::regtype, 'int4'::regtype,
                                                            'int8'::regtype)
                   THEN format('legacy_uuid(%L, o.id)', item.tbl)
                   WHEN o.atttypid = 'timestamp'::regtype
                   THEN format('o.%I AT TIME ZONE ''UTC''', o.attname)
                   ELSE format('o.%I', o.attname) END, ', ' ORDER BY n.attnum),
               bool_or(n.attname = 'id')
          INTO targets, sources, keyed
          FROM pg_attribute n
          JOIN pg_attribute o ON o.attrelid = item.source AND NOT o.attisdropped
                             AND o.attname = CASE
                                 WHEN n.attname = 'created_at'
                                      AND NOT EXISTS (SELECT 1 FROM pg_attribute c
                                                       WHERE c.attrelid = item.source
                                                         AND c.attname = 'created_at')
                                 THEN 'timestamp' ELSE n.attname END
         WHERE n.attrelid = item.target AND n.attnum > 0 AND NOT n.attisdropped
           AND n.attgenerated = '';
        CONTINUE WHEN keyed IS NOT TRUE;
        EXECUTE format('INSERT INTO public.%I AS t (%s) SELECT %s FROM legacy.%I o '
                       'ON CONFLICT DO NOTHING', item.tbl, targets, sources, item.tbl);
        table_name := item.tbl;
        migrated_from := 'legacy.' || item.tbl;
        GET DIAGNOSTICS rows_migrated = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('learning.import', coalesce(previous, ''), true);
END;
$$;

SELECT count(*) FROM migrate_existing_data();

-- migrate:down
DROP FUNCTION IF EXISTS migrate_existing_data();
DROP FUNCTION IF EXISTS legacy_uuid(text, bigint);
DROP FUNCTION IF EXISTS sha1_digest(bytea);
