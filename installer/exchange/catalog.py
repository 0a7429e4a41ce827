"""Which tables are learning data, their columns, and the session that gives stable text forms.

A learning table is every ordinary or partitioned table in schema `public` whose primary key
is a single `uuid` column named `id`, except the tables in EXCLUDED_TABLES and tables whose
comment contains NO_EXPORT_MARKER (a schema module opts a table out with
`COMMENT ON TABLE t IS '... installer:no-export'`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from installer.credentials import ConnInfo

SCHEMA = "public"
# Tables that are never exported although they match; none hold shareable learning data today.
EXCLUDED_TABLES: frozenset[str] = frozenset()
NO_EXPORT_MARKER = "installer:no-export"

# Fixed output settings: the same data gives the same bytes on every machine and server.
SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",  # shortest text that reads back to the same float
    "bytea_output": "hex",
    "client_encoding": "UTF8",
}
# Float arrays travel in pgvector's text form `[1,2.5]`, so an embedding that is vector(N) on
# one server and real[] on another has one CSV form that loads into either.
FLOAT_ARRAYS = ("real[]", "double precision[]")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): uuid, text, vector(768), real[], timestamp with time zone, ...

    @property
    def float_array(self) -> bool:
        return self.type in FLOAT_ARRAYS

    @property
    def exchange_type(self) -> str:
        """The type as the manifest records it: the same on servers with and without pgvector."""
        return "vector" if self.float_array or self.type.startswith("vector") else self.type

    def export_expr(self) -> sql.Composable:
        ident = sql.Identifier(self.name)
        if self.float_array:
            return sql.SQL("array_to_json({})::text AS {}").format(ident, ident)
        return ident

    def import_expr(self, staged: sql.Composable) -> sql.Composable:
        """The value to insert, from the staging column (staged as text for float arrays)."""
        if self.float_array:
            return sql.SQL("translate({}, '[]', '{{}}')::{}").format(staged, sql.SQL(self.type))
        return staged

    @property
    def staging_type(self) -> str:
        return "text" if self.float_array else self.type


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.name)

    @property
    def last_writer_wins(self) -> bool:
        updated = self.column("updated_at")
        return updated is not None and updated.type.startswith("timestamp")


def connect(conninfo: ConnInfo, *, autocommit: bool = False) -> psycopg.Connection:
    conn = psycopg.connect(**conninfo.kwargs(), autocommit=True)
    for name, value in SESSION_SETTINGS.items():
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    conn.autocommit = autocommit
    return conn


_TABLES = """
SELECT c.oid, c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.conkey[1]
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND cardinality(p.conkey) = 1 AND a.attname = 'id' AND a.atttypid = 'uuid'::regtype
   AND position(%s IN coalesce(obj_description(c.oid, 'pg_class'), '')) = 0
 ORDER BY c.relname
"""
_COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
 ORDER BY attnum
"""


def learning_tables(conn: psycopg.Connection) -> list[Table]:
    tables = []
    for oid, name in conn.execute(_TABLES, (SCHEMA, NO_EXPORT_MARKER)).fetchall():
        if name in EXCLUDED_TABLES:
            continue
        columns = tuple(Column(n, t) for n, t in conn.execute(_COLUMNS, (oid,)).fetchall())
        tables.append(Table(name, columns))
    return tables


def schema_version(conn: psycopg.Connection) -> dict[str, int]:
    """Highest applied migration per schema module, from the migration ledger."""
    if conn.execute("SELECT to_regclass('installer.schema_migrations')").fetchone()[0] is None:
        return {}
    rows = conn.execute("SELECT module, max(version) FROM installer.schema_migrations "
                        "GROUP BY module ORDER BY module").fetchall()
    return {module: version for module, version in rows}
