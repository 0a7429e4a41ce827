-- Every embedding column of every module is registered here, so that a later run can convert
-- them all to pgvector in place once the extension becomes available (the installer's
-- "Embedding columns" step calls convert_embedding_columns() after the migrations).

CREATE TABLE installer.embedding_columns (
    table_name  text    NOT NULL,
    column_name text    NOT NULL,
    dimensions  integer NOT NULL CHECK (dimensions > 0),
    PRIMARY KEY (table_name, column_name)
);

-- Registers a real[] embedding column and converts it at once when pgvector is installed.
CREATE OR REPLACE FUNCTION register_embedding_column(tbl regclass, col text, dims integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO installer.embedding_columns (table_name, column_name, dimensions)
    VALUES (tbl::text, col, dims)
    ON CONFLICT (table_name, column_name) DO UPDATE SET dimensions = EXCLUDED.dimensions;
    RETURN use_pgvector_if_available(tbl, col, dims);
END;
$$;

-- The registered columns still stored as real[] although pgvector is installed.
CREATE OR REPLACE FUNCTION unconverted_embedding_columns()
RETURNS TABLE (table_name text, column_name text, dimensions integer)
LANGUAGE sql STABLE AS $$
    SELECT e.table_name, e.column_name, e.dimensions
      FROM installer.embedding_columns e
      JOIN pg_attribute a ON a.attrelid = to_regclass(e.table_name) AND a.attname = e.column_name
                         AND NOT a.attisdropped
     WHERE EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
       AND format_type(a.atttypid, a.atttypmod) = 'real[]'
     ORDER BY 1, 2
$$;

-- Converts every registered column that is still real[]; returns how many it converted.
CREATE OR REPLACE FUNCTION convert_embedding_columns() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    item      record;
    converted integer := 0;
BEGIN
    FOR item IN SELECT * FROM unconverted_embedding_columns() LOOP
        PERFORM use_pgvector_if_available(item.table_name::regclass, item.column_name,
                                          item.dimensions);
        converted := converted + 1;
    END LOOP;
    RETURN converted;
END;
$$;

-- Is this embedding column pgvector's type (true) or the real[] fallback (false)?
CREATE OR REPLACE FUNCTION embedding_is_vector(tbl regclass, col text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT format_type(atttypid, atttypmod) LIKE 'vector%'
      FROM pg_attribute WHERE attrelid = tbl AND attname = col AND NOT attisdropped
$$;

SELECT register_embedding_column('task_embeddings', 'embedding', 768);
