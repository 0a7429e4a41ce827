"""Which export this database has imported: the SHA-256 of that export's manifest.json.

It lets a re-run of the installer skip an import it already did, and lets `export` know when
exports that arrived with `git pull` must be imported first so that no row is dropped. After an
export it also holds `exchange_change_seq` as that export saw it (NULL when other writes were
in flight), so the pre-push hook can tell in one query that nothing changed since.
"""

from __future__ import annotations

import psycopg

_DDL = """
CREATE SCHEMA IF NOT EXISTS installer;
CREATE TABLE IF NOT EXISTS installer.exchange_state (
    source          text        PRIMARY KEY,
    manifest_sha256 text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE installer.exchange_state ADD COLUMN IF NOT EXISTS change_seq bigint
"""
SOURCE = "exports"


def recorded(conn: psycopg.Connection) -> str | None:
    if conn.execute("SELECT to_regclass('installer.exchange_state')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT manifest_sha256 FROM installer.exchange_state WHERE source = %s",
                       (SOURCE,)).fetchone()
    return row[0] if row else None


def record(conn: psycopg.Connection, manifest_sha256: str, change_seq: int | None = None) -> None:
    with conn.transaction():
        conn.execute(_DDL)
        conn.execute("INSERT INTO installer.exchange_state (source, manifest_sha256, change_seq) "
                     "VALUES (%s, %s, %s) ON CONFLICT (source) DO UPDATE SET manifest_sha256 = "
                     "EXCLUDED.manifest_sha256, change_seq = EXCLUDED.change_seq, "
                     "recorded_at = now()", (SOURCE, manifest_sha256, change_seq))
