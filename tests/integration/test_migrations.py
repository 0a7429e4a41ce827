"""The migration engine against real servers: order, ledger, failures, locking, edits."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from installer import db
from installer.credentials import ConnInfo
from installer.errors import MigrationError
from installer.migrations import Migrator
from installer.modules import select_modules


def _module(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    sql_dir = tmp_path / "sql"
    module = sql_dir / "demo"
    module.mkdir(parents=True, exist_ok=True)
    (module / "module.yaml").write_text("description: test module\n")
    for name, text in files.items():
        data = text.encode() if isinstance(text, str) else text
        (module / name).write_bytes(data)
    return sql_dir


def _migrator(database: ConnInfo, sql_dir: Path) -> Migrator:
    """A migrator on its own connection (closed with the test's garbage)."""
    return Migrator(db.connect(database, autocommit=True), select_modules(sql_dir, None))


def _tables(database: ConnInfo) -> set[str]:
    with psycopg.connect(**database.kwargs()) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _ledger(database: ConnInfo) -> list[tuple[int, str]]:
    with psycopg.connect(**database.kwargs()) as conn:
        return conn.execute("SELECT version, name FROM installer.schema_migrations "
                            "ORDER BY version").fetchall()


def test_applies_in_order_and_records_the_ledger(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {
        "002_b.sql": "ALTER TABLE a ADD COLUMN note text;",
        "001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);",
    })
    applied = _migrator(database, sql_dir).migrate()
    assert [m.id for m in applied] == ["demo/001_a", "demo/002_b"]
    assert _ledger(database) == [(1, "a"), (2, "b")]
    with psycopg.connect(**database.kwargs()) as conn:
        row = conn.execute("SELECT checksum_algorithm, duration_ms >= 0, applied_at IS NOT NULL "
                           "FROM installer.schema_migrations WHERE version = 1").fetchone()
    assert row == ("sha256-utf8-lf", True, True)
    assert _migrator(database, sql_dir).migrate() == []  # nothing twice


def test_syntax_error_names_file_and_line_and_keeps_earlier_files(
        tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {
        "001_ok.sql": "CREATE TABLE good (id int);",
        "002_bad.sql": "CREATE TABLE half (id int);\n\n-- a comment\nCREATE TABL oops (id int);\n",
    })
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "002_bad.sql, line 4" in caught.value.message
    assert "syntax error" in caught.value.message
    assert _tables(database) == {"good"}  # 002's first statement rolled back with it
    assert _ledger(database) == [(1, "ok")]


def test_runtime_error_reports_the_failing_statements_line(tmp_path: Path,
                                                            database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_x.sql": "CREATE TABLE t (v int);\n"
                                 "INSERT INTO t VALUES (1);\nSELECT 1 / 0;\n"})
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "001_x.sql, line 3" in caught.value.message
    assert "division by zero" in caught.value.message
    assert _tables(database) == set()


def test_edited_applied_file_is_refused_until_accepted(tmp_path: Path,
                                                       database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    _migrator(database, sql_dir).migrate()
    (sql_dir / "demo" / "001_a.sql").write_text("CREATE TABLE a (id bigint);\n")
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "001_a.sql was edited after it was applied" in caught.value.message
    assert "--accept-checksum demo/001_a" in (caught.value.hint or "")
    _migrator(database, sql_dir).accept_checksum("demo/001_a")
    assert _migrator(database, sql_dir).migrate() == []


def test_line_endings_and_bom_do_not_change_the_checksum(tmp_path: Path,
                                                         database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nSELECT 1;\n"})
    _migrator(database, sql_dir).migrate()
    (sql_dir / "demo" / "001_a.sql").write_bytes(
        b"\xef\xbb\xbfCREATE TABLE a (id int);\r\nSELECT 1;\r\n")
    assert _migrator(database, sql_dir).plan().clean


def test_out_of_order_file_is_reported_not_skipped(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);",
                                 "003_c.sql": "CREATE TABLE c (id int);"})
    _migrator(database, sql_dir).migrate()
    (sql_dir / "demo" / "002_b.sql").write_text("CREATE TABLE b (id int);")
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "002_b.sql is numbered below" in caught.value.message
    assert "--allow-out-of-order" in (caught.value.hint or "")
    assert "b" not in _tables(database)
    _migrator(database, sql_dir).migrate(allow_out_of_order=True)
    assert "b" in _tables(database)


def test_two_concurrent_runs_apply_each_file_once(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_slow.sql": "SELECT pg_sleep(1);\n"
                                 "CREATE TABLE once (id int);"})
    results: list[object] = []

    def run() -> None:
        try:
            results.append(len(_migrator(database, sql_dir).migrate()))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [0, 1]  # one applied it; the other waited, then found nothing
    assert _ledger(database) == [(1, "slow")]


def test_no_transaction_marker_allows_concurrent_index(tmp_path: Path,
                                                       database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {
        "001_t.sql": "CREATE TABLE t (v int);",
        "002_idx.sql": "-- installer:no-transaction\n"
                       "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_idx ON t (v);\n",
    })
    _migrator(database, sql_dir).migrate()
    with psycopg.connect(**database.kwargs()) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'t_v_idx'::regclass").fetchone() == (True,)
    assert _ledger(database) == [(1, "t"), (2, "idx")]


def test_commit_inside_a_file_is_refused(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nCOMMIT;\n"})
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "line 2: COMMIT inside a migration" in caught.value.message
    assert _tables(database) == set()


def test_invalid_utf8_is_refused_with_its_line(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _module(tmp_path, {"001_a.sql": b"SELECT 1;\nSELECT '\xff';\n"})
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "line 2 is not valid UTF-8" in caught.value.message
