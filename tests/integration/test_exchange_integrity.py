"""Between machines: integrity without false alarms, deletes that travel, derived values that
converge, and legacy files that keep what they say."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import catalog
from installer.exchange.manifest import MANIFEST_NAME, Manifest, read_manifest
from installer.exchange.sync import run_export
from installer.exchange.triggers import attach
from tests.conftest import Cluster
from tests.integration.exchange_helpers import (
    count,
    export,
    extra_database,
    files,
    load,
    migrate,
    rows,
    seed,
)


@pytest.fixture
def db(database: ConnInfo, cluster: Cluster) -> ConnInfo:
    migrated = migrate(database, cluster)
    with psycopg.connect(**migrated.kwargs(), autocommit=True) as conn:
        attach(conn)
    return migrated


def _sql(db: ConnInfo, statement: str, *args: object) -> list[tuple]:
    with psycopg.connect(**db.kwargs()) as conn:
        cur = conn.execute(statement, args or None)
        return cur.fetchall() if cur.description else []


def test_an_empty_or_truncated_file_is_refused_and_export_keeps_the_rows(
        db: ConnInfo, cluster: Cluster, tmp_path: Path) -> None:
    seed(db, n=8)
    out = tmp_path / "exports"
    export(db, out)
    metrics = out / "csv" / "agent_metrics.csv"
    good = metrics.read_bytes()
    with extra_database(cluster) as other:
        metrics.write_bytes(b"")
        outcomes, error = load(other, out)
        assert "agent_metrics.csv is empty; manifest.json says it holds 8 rows" in error
        assert outcomes["interaction_logs"].imported == 8
        # `export` imports what arrived first: it stops instead of dropping the 8 rows
        with pytest.raises(DataError) as stopped:
            run_export(other, out, Console(quiet=True))
        assert stopped.value.message.startswith("export stopped")
        assert metrics.read_bytes() == b""
        metrics.write_bytes(good[:-30])  # cut inside the last row
        _, error = load(other, out)
        assert "agent_metrics.csv" in error and count(other, "agent_metrics") == 0
        metrics.write_bytes(good.replace(b"\n", b"\r\n"))  # a CRLF checkout: fine
        _, error = load(other, out)
        assert error == "" and count(other, "agent_metrics") == 8
        assert _sql(other, "SELECT count(*) FROM agent_metrics WHERE error_message LIKE "
                    "'%' || chr(13) || '%'") == [(0,)]


def test_a_missing_manifest_is_refused(db: ConnInfo, tmp_path: Path) -> None:
    seed(db, n=2)
    out = tmp_path / "exports"
    export(db, out)
    (out / MANIFEST_NAME).unlink()
    with pytest.raises(DataError, match=r"manifest\.json is missing"):
        run_export(db, out, Console(quiet=True))
    assert not (out / MANIFEST_NAME).exists()


def test_a_merged_manifest_entry_is_checked_for_structure_only(db: ConnInfo, cluster: Cluster,
                                                              tmp_path: Path) -> None:
    seed(db, n=3)
    out = tmp_path / "exports"
    export(db, out)
    path = out / MANIFEST_NAME
    doc = json.loads(path.read_text())
    doc["tables"]["agent_metrics"].update(rows=None, sha256=None, merged=True)
    path.write_text(json.dumps(doc))
    metrics = out / "csv" / "agent_metrics.csv"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]))  # git merged away a row: no false alarm
    with extra_database(cluster) as other:
        _, error = load(other, out)
        assert error == "" and count(other, "agent_metrics") == 2
        metrics.write_text(lines[0].replace("agent_name", "agent") + "".join(lines[1:]))
        _, error = load(other, out)
        assert "line 1: the header does not match manifest.json" in error


def test_deletes_travel_and_the_later_of_delete_and_update_wins(db: ConnInfo, cluster: Cluster,
                                                                tmp_path: Path) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for i in ids:
        _sql(db, "INSERT INTO model_performance (id, model_name, accuracy, updated_at) VALUES "
             "(%s, 'm', 0.5, '2025-01-01T00:00:00Z')", i)
    export(db, tmp_path / "start")
    with extra_database(cluster) as b:
        load(b, tmp_path / "start")
        with psycopg.connect(**b.kwargs(), autocommit=True) as conn:
            attach(conn)
        _sql(db, "DELETE FROM model_performance WHERE id = ANY (%s)", ids[:2])  # A deletes two
        _sql(b, "UPDATE model_performance SET accuracy = 0.9 WHERE id = %s", ids[1])  # later
        _sql(b, "UPDATE model_performance SET accuracy = 0.1, updated_at = "
             "'2025-01-02T00:00:00Z' WHERE id = %s", ids[0])  # an update older than the delete
        export(db, tmp_path / "a")
        export(b, tmp_path / "b")
        _, error = load(b, tmp_path / "a")
        assert error == ""
        _, error = load(db, tmp_path / "b")
        assert error == ""
        for machine in (db, b):
            assert {r[0] for r in _sql(machine, "SELECT id FROM model_performance")} == \
                set(ids[1:])  # ids[0] deleted; ids[1] updated after its delete: kept
        assert rows(db, "model_performance") == rows(b, "model_performance")
        assert rows(db, "exchange_tombstones") == rows(b, "exchange_tombstones")


def test_session_counters_are_recounted_not_exchanged(db: ConnInfo, cluster: Cluster,
                                                      tmp_path: Path) -> None:
    session = _sql(db, "INSERT INTO sessions (title) VALUES ('s') RETURNING id")[0][0]
    _sql(db, "INSERT INTO conversation_chunks (session_id, role, content) SELECT %s, 'user', "
         "'c' || g FROM generate_series(1, 5) g", session)
    updated = _sql(db, "SELECT updated_at FROM sessions")
    export(db, tmp_path / "a")
    header = (tmp_path / "a" / "csv" / "sessions.csv").read_text().split("\n", 1)[0]
    assert "chunk_count" not in header and "last_activity" not in header
    with extra_database(cluster) as b:
        _sql(b, "INSERT INTO sessions (id, title) VALUES (%s, 's')", session)
        _sql(b, "INSERT INTO conversation_chunks (session_id, role, content) VALUES "
             "(%s, 'user', 'from b')", session)
        assert _sql(b, "SELECT chunk_count FROM sessions") == [(1,)]
        _, error = load(b, tmp_path / "a")
        assert error == ""
        assert _sql(b, "SELECT chunk_count FROM sessions") == [(6,)]
        export(b, tmp_path / "b")
        _, error = load(db, tmp_path / "b")
        assert error == ""
        assert _sql(db, "SELECT chunk_count FROM sessions") == [(6,)]
        assert rows(db, "sessions") == rows(b, "sessions")
    assert _sql(db, "SELECT updated_at FROM sessions") > updated  # B wrote its row later


def test_legacy_empty_strings_stay_and_big_fields_load(db: ConnInfo, tmp_path: Path) -> None:
    folder = tmp_path / "legacy"
    folder.mkdir()
    big = "x" * 200_000
    (folder / "agent_metrics.csv").write_text(
        "id,agent_name,task_type,success,error_message,timestamp\n"
        '1,DIRECTOR,plan,t,"",2025-08-30 06:35:33.184261\n'
        f'2,DIRECTOR,plan,f,,2025-08-30 06:35:34\n'
        f'3,DIRECTOR,plan,f,"{big}",2025-08-30 06:35:35\n')
    _, error = load(db, folder)
    assert error == ""
    assert _sql(db, "SELECT task_type, error_message IS NULL, length(error_message) "
                "FROM agent_metrics ORDER BY created_at") == [
        ("plan", False, 0), ("plan", True, None), ("plan", False, 200_000)]


def test_nan_in_an_embedding_is_refused_with_its_line(db: ConnInfo, tmp_path: Path) -> None:
    seed(db, n=1)
    export(db, tmp_path / "a")
    path = tmp_path / "a" / "csv" / "task_embeddings.csv"
    lines = path.read_text().split("\n")
    head, rest = lines[2].split("[", 1)
    lines[2] = head + "[NaN," + rest.split(",", 1)[1]  # the first of 768 values
    path.write_text("\n".join(lines))
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "task_embeddings.csv").write_text(path.read_text())
    _sql(db, "DELETE FROM task_embeddings")
    _, error = load(db, folder)
    assert "task_embeddings.csv, line 3, column embedding" in error, error
    assert "NaN" in error and len(error) < 600
    assert count(db, "task_embeddings") == 0


def test_round_trip_with_tombstones_is_byte_identical(db: ConnInfo, cluster: Cluster,
                                                      tmp_path: Path) -> None:
    seed(db, n=4)
    _sql(db, "DELETE FROM agent_metrics WHERE id = "
         "(SELECT id FROM agent_metrics ORDER BY id LIMIT 1)")
    export(db, tmp_path / "a")
    with extra_database(cluster) as other:
        _, error = load(other, tmp_path / "a")
        assert error == ""
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_rows_pointing_at_a_parent_deleted_here_follow_the_delete(
        db: ConnInfo, cluster: Cluster, tmp_path: Path) -> None:
    """git merged B's new memory and chunk of session S with A's files, where S is deleted."""
    session = _sql(db, "INSERT INTO sessions (title) VALUES ('s') RETURNING id")[0][0]
    export(db, tmp_path / "start")
    with extra_database(cluster) as b:
        load(b, tmp_path / "start")
        _sql(db, "DELETE FROM sessions WHERE id = %s", session)  # A deletes S …
        _sql(b, "INSERT INTO memories (session_id, content) VALUES (%s, 'from b')", session)
        _sql(b, "INSERT INTO conversation_chunks (session_id, role, content) VALUES "
             "(%s, 'user', 'from b')", session)  # … while B adds to it
        export(b, tmp_path / "b")
    merged = tmp_path / "merged"
    (merged / "csv").mkdir(parents=True)
    manifest = read_manifest(tmp_path / "b" / MANIFEST_NAME)
    children = ("memories", "conversation_chunks")
    for name in children:
        shutil.copy(tmp_path / "b" / manifest.tables[name].file, merged / "csv")
    (merged / MANIFEST_NAME).write_bytes(Manifest(manifest.schema_version, {
        n: manifest.tables[n] for n in children}).to_bytes())
    _, error = load(db, merged)
    assert error == ""
    assert _sql(db, "SELECT content, session_id FROM memories") == [("from b", None)]
    assert count(db, "conversation_chunks") == 0  # ON DELETE CASCADE


def test_wide_fields_are_exported_in_chunks_byte_for_byte(
        db: ConnInfo, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fields above the export's thresholds (lowered here: 64 KB a row, 32 KB a field) are read
    in chunks; the files are the ones COPY writes whole, and they import back exactly."""
    seed(db, n=4)
    awkward = 'é,"x"\n✓' * 12_000  # quotes, commas, line ends, multibyte: ~130 KB, 2x the row
    plain = "y" * 140_000  # no quoting
    _sql(db, "INSERT INTO interaction_logs (from_agent, to_agent, message_type, payload, "
         "response) VALUES ('w1', 'b', 'big', jsonb_build_object('q', %s::text), %s), "
         "('w2', %s, 'big', '{}', NULL), ('w3', 'b', '', '{}', '')", awkward, awkward, plain)
    _sql(db, "INSERT INTO learning_events (event_type, agent_name, payload, created_at) VALUES "
         "('big', %s, '{}', '2025-03-01T00:00:00Z'), ('small', 'a', '{}', "
         "'2025-03-01T00:00:00Z')", awkward)
    export(db, tmp_path / "whole")
    from installer.exchange import export as export_module
    for name, value in (("WIDE_ROW_BYTES", 64 << 10), ("WIDE_FIELD_BYTES", 32 << 10),
                        ("CHUNK_BYTES", 10_001)):  # chunks end inside "" pairs and characters
        monkeypatch.setattr(export_module, name, value)
    monkeypatch.setattr(catalog, "STORED_EXACT", 1024)  # the jsonb compresses well
    chunked: list[str] = []
    copy_field = export_module._copy_field
    monkeypatch.setattr(export_module, "_copy_field", lambda conn, table, column, key, out: (
        chunked.append(f"{table.name}.{column.name}"),
        copy_field(conn, table, column, key, out))[-1])
    export(db, tmp_path / "chunked")
    assert sorted(chunked) == ["interaction_logs.payload", "interaction_logs.response",
                               "interaction_logs.to_agent", "learning_events.agent_name"]
    assert files(tmp_path / "chunked") == files(tmp_path / "whole")
    with extra_database(cluster) as other:
        _, error = load(other, tmp_path / "chunked")
        assert error == ""
        for table in ("interaction_logs", "learning_events"):
            assert rows(other, table) == rows(db, table)


def _tombstones(db: ConnInfo) -> set[str]:
    return {str(r[0]) for r in _sql(db, "SELECT row_id FROM exchange_tombstones")}


def _exported_tombstones(folder: Path) -> set[str]:
    text = (folder / "csv" / "exchange_tombstones.csv").read_text()
    return {line.split(",")[2] for line in text.splitlines()[1:]}


def test_old_tombstones_are_purged_once_exported(db: ConnInfo, tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for i in ids:
        _sql(db, "INSERT INTO model_performance (id, model_name, accuracy) VALUES (%s, 'm', 0.5)",
             i)
    a, b, c, d, e = ids
    _sql(db, "DELETE FROM model_performance WHERE id = ANY (%s::uuid[])", [a, b, c])
    backdate = "UPDATE exchange_tombstones SET deleted_at = now() - %s::interval " \
               "WHERE row_id = ANY (%s::uuid[])"
    _sql(db, backdate, "100 days", [a])
    out = tmp_path / "exports"
    export(db, out)  # a is old but was never exported: it stays, and is exported now
    assert _tombstones(db) == _exported_tombstones(out) == {a, b, c}
    _sql(db, backdate, "91 days", [b])  # exported (with a later time) and now old
    _sql(db, backdate, "20 days", [c])  # exported, younger than 90 days
    _sql(db, "DELETE FROM model_performance WHERE id = %s", d)
    _sql(db, backdate, "200 days", [d])  # old, but never exported
    result = run_export(db, out, Console(quiet=True))
    assert result.purged == 2
    assert _tombstones(db) == _exported_tombstones(out) == {c, d}
    _sql(db, "DELETE FROM model_performance WHERE id = %s", e)
    with psycopg.connect(**db.kwargs(), autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{name}" SET learning.tombstone_days = 10')
    assert run_export(db, out, Console(quiet=True)).purged == 2  # c and d: exported, > 10 days
    assert _tombstones(db) == _exported_tombstones(out) == {e}
    with psycopg.connect(**db.kwargs(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET learning.tombstone_days = \'soon\'')
    with pytest.raises(DataError, match=r"learning\.tombstone_days is 'soon'"):
        run_export(db, out, Console(quiet=True))
    assert _exported_tombstones(out) == {e}  # nothing changed
