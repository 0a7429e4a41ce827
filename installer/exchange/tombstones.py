"""After an import: deletes applied and derived values recomputed, once, set-based.

A tombstone (exchange_tombstones: table, id, deleted_at) deletes the row with that id when the
row was last written (updated_at, else created_at) no later than the delete; a row updated
after the delete stays (last writer wins between a delete and an update). Then every function
a schema module marked `installer:after-import` runs (the session counters are recounted).
All in one transaction that says `learning.import = 'on'`, so the deletes record no new
tombstones and the recount keeps each row's updated_at.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from installer.exchange import catalog, triggers


def converge(conn: psycopg.Connection, tables: list[catalog.Table]) -> tuple[dict[str, int], int]:
    """Apply tombstones to `tables` and run the after-import functions; returns the rows
    deleted per table and the rows the functions changed."""
    deleted: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SET LOCAL learning.import = 'on'")
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
        store = sql.Identifier(catalog.SCHEMA, catalog.TOMBSTONES)
        named: set[str] = set()
        if triggers.available(conn):
            named = {row[0] for row in conn.execute(
                sql.SQL("SELECT DISTINCT table_name FROM {}").format(store))}
        for table in reversed(tables):  # children first
            if table.name not in named:
                continue
            with conn.cursor() as cur:
                cur.execute(sql.SQL(
                    "DELETE FROM {} AS x USING {} AS t WHERE t.table_name = {} AND "
                    "t.row_id = x.id AND t.deleted_at >= {}").format(
                    table.ident, store, sql.Literal(table.name), table.age_expr("x")))
            if cur.rowcount:
                deleted[table.name] = cur.rowcount
        recomputed = 0
        for function in catalog.after_import_functions(conn):
            result = conn.execute(sql.SQL("SELECT {}()").format(
                sql.SQL(function.removesuffix("()")))).fetchone()
            recomputed += result[0] if result and isinstance(result[0], int) else 0
    return deleted, recomputed
