"""Which tables are learning data, their columns, and the transaction settings that give stable
text forms.

A learning table is every ordinary or partitioned table in schema `public` whose primary key
has a `uuid` column named `id` (just `id`, or e.g. `(id, created_at)` for a table partitioned
by time; partitions are read through their parent), except the tables in EXCLUDED_TABLES and
tables whose comment contains NO_EXPORT_MARKER (a schema module opts a table out with
`COMMENT ON TABLE t IS '... installer:no-export'`). Rows are keyed and ordered by the primary
key; tables are imported parents first, following their foreign keys. Generated columns and
columns whose comment contains DERIVED_MARKER (counters recomputed after each import) are not
exchanged.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

import psycopg
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo

SCHEMA = "public"
# Tables that are never exported although they match; none hold shareable learning data today.
EXCLUDED_TABLES: frozenset[str] = frozenset()
NO_EXPORT_MARKER = "installer:no-export"
DERIVED_MARKER = "installer:derived"
AFTER_IMPORT_MARKER = "installer:after-import"
TOMBSTONES = "exchange_tombstones"  # sql/learning/070_exchange_tombstones.sql
# The column that says which of two versions of a row is newer (last writer wins).
VERSION_COLUMNS = ("updated_at", "deleted_at")

# Fixed text forms: the same data gives the same bytes on every machine and server. Set for
# each exchange transaction alone (`transaction()`), so nothing stays behind on a pooled server
# connection; the client encoding is a login parameter (PgBouncer keeps it per client).
TRANSACTION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",  # shortest text that reads back to the same float
    "bytea_output": "hex",
}
# Float arrays travel in pgvector's text form `[1,2.5]`, so an embedding that is vector(N) on
# one server and real[] on another has one CSV form that loads into either.
FLOAT_ARRAYS = ("real[]", "double precision[]")
# A jsonb, array or vector value stored (compressed) above this size is measured by its text
# when the export looks for wide rows; below it its text is at most a few MB.
STORED_EXACT = 256 << 10


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

    def text_expr(self) -> sql.Composable:
        """Its exported text as an expression: what COPY writes, before CSV quoting."""
        ident = sql.Identifier(self.name)
        if self.float_array:
            return sql.SQL("array_to_json({})::text").format(ident)
        return sql.SQL("{}::text").format(ident)

    def size_expr(self) -> sql.Composable | None:
        """About the bytes of its exported text, cheap for every row; None for types whose
        text is small (or whose cast to text is not its output function: char(n), bool, …).
        Exact for text and bytea (their length is read without detoasting); other types give
        their stored size, and their text length when they are stored compressed above
        STORED_EXACT bytes."""
        ident = sql.Identifier(self.name)
        if self.type in ("text", "xml") or self.type.startswith("character varying"):
            return sql.SQL("octet_length({})::bigint").format(ident)
        if self.type == "bytea":
            return sql.SQL("2 * octet_length({})::bigint + 2").format(ident)
        if self.type in ("jsonb", "json", "tsvector") or self.type.endswith("[]") or \
                self.type.startswith(("vector", "halfvec", "sparsevec")):
            return sql.SQL("CASE WHEN pg_column_size({0}) > {1} THEN octet_length({2})::bigint "
                           "ELSE pg_column_size({0}) END").format(
                ident, sql.Literal(STORED_EXACT), self.text_expr())
        return None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ("id",)  # primary key columns, in key order
    references: frozenset[str] = frozenset()  # tables its foreign keys point to
    # single-column foreign keys: (column, parent table, ON DELETE action: a r c n d)
    foreign_keys: tuple[tuple[str, str, str], ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.name)

    @property
    def key_list(self) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, self.key))

    def _timestamp(self, name: str) -> bool:
        column = self.column(name)
        return column is not None and column.type.startswith("timestamp")

    @property
    def version_column(self) -> str | None:
        """`updated_at` (tombstones: `deleted_at`): the newer version of a row wins."""
        return next((c for c in VERSION_COLUMNS if self._timestamp(c)), None)

    @property
    def last_writer_wins(self) -> bool:
        return self.version_column is not None

    def age_expr(self, alias: str) -> sql.Composable:
        """When a row was last written, to weigh it against a tombstone: updated_at, else
        created_at, else never (a tombstone always wins)."""
        name = "updated_at" if self._timestamp("updated_at") else (
            "created_at" if self._timestamp("created_at") else None)
        if name is None:
            return sql.SQL("'-infinity'::timestamptz")
        return sql.Identifier(alias, name)


def scalar(conn: psycopg.Connection, query: str | sql.SQL | sql.Composed,
           params: tuple[Any, ...] | None = None) -> Any:
    """The first column of the first row, or None without a row."""
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def connect(conninfo: ConnInfo, *, autocommit: bool = False) -> psycopg.Connection:
    return db.connect(conninfo, autocommit=autocommit, client_encoding="UTF8")


def transaction(conn: psycopg.Connection) -> AbstractContextManager[None]:
    """A transaction in which rows read and written have their fixed text forms."""
    return db.transaction(conn, TRANSACTION_SETTINGS)


_TABLES = """
SELECT c.oid, c.relname,
       array(SELECT k.attname FROM unnest(p.conkey) WITH ORDINALITY u(num, pos)
               JOIN pg_attribute k ON k.attrelid = c.oid AND k.attnum = u.num ORDER BY u.pos),
       array(SELECT DISTINCT f.confrelid::regclass::text FROM pg_constraint f
              WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (p.conkey)
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND a.attname = 'id' AND a.atttypid = 'uuid'::regtype
   AND position(%s IN coalesce(obj_description(c.oid, 'pg_class'), '')) = 0
 ORDER BY c.relname
"""
# Columns and foreign keys of all the tables at once (one query each, not two per table)
_COLUMNS = """
SELECT attrelid, attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = ANY (%s::oid[]) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
   AND position(%s IN coalesce(col_description(attrelid, attnum), '')) = 0
 ORDER BY attrelid, attnum
"""
_FOREIGN_KEYS = """
SELECT f.conrelid, a.attname, f.confrelid::regclass::text, f.confdeltype FROM pg_constraint f
  JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
 WHERE f.conrelid = ANY (%s::oid[]) AND f.contype = 'f' AND cardinality(f.conkey) = 1
 ORDER BY f.conrelid, a.attname
"""
_AFTER_IMPORT = """
SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = %s AND p.pronargs = 0 AND p.prokind = 'f'
   AND position(%s IN coalesce(obj_description(p.oid, 'pg_proc'), '')) > 0
 ORDER BY 1
"""


def learning_tables(conn: psycopg.Connection) -> list[Table]:
    """The learning tables, parents before the tables that reference them, else by name."""
    found = [row for row in conn.execute(_TABLES, (SCHEMA, NO_EXPORT_MARKER))
             if row[1] not in EXCLUDED_TABLES]
    oids = [oid for oid, *_ in found]
    columns: dict[int, list[Column]] = {oid: [] for oid in oids}
    for oid, name, type_ in conn.execute(_COLUMNS, (oids, DERIVED_MARKER)):
        columns[oid].append(Column(name, type_))
    foreign_keys: dict[int, list[tuple[str, str, str]]] = {oid: [] for oid in oids}
    for oid, column, parent, on_delete in conn.execute(_FOREIGN_KEYS, (oids,)):
        foreign_keys[oid].append((column, parent, on_delete))
    tables = {name: Table(name, tuple(columns[oid]), tuple(key), frozenset(references),
                          tuple(foreign_keys[oid]))
              for oid, name, key, references in found}
    return [tables[name] for name in load_order(
        {name: t.references & tables.keys() for name, t in tables.items()})]


def load_order(graph: dict[str, frozenset[str]]) -> list[str]:
    """Names with each one's dependencies first; ties, and tables in a cycle, by name."""
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError:
        return sorted(graph)
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def after_import_functions(conn: psycopg.Connection) -> list[str]:
    """Functions a schema module marked to run once after each import (e.g. recounts)."""
    return [row[0] for row in conn.execute(_AFTER_IMPORT, (SCHEMA, AFTER_IMPORT_MARKER))]


def schema_version(conn: psycopg.Connection) -> dict[str, int]:
    """Highest applied migration per schema module, from the migration ledger."""
    if db.one(conn, "SELECT to_regclass('installer.schema_migrations')")[0] is None:
        return {}
    rows = conn.execute("SELECT module, max(version) FROM installer.schema_migrations "
                        "GROUP BY module ORDER BY module").fetchall()
    return {module: version for module, version in rows}
