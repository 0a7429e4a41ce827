"""Export and import against real servers: determinism, merging, legacy files, bad input."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from installer.credentials import ConnInfo
from installer.errors import DataError
from installer.exchange import catalog
from installer.exchange.legacy import LEGACY_NAMESPACE
from installer.exchange.manifest import MANIFEST_NAME
from installer.migrations import migrate_all
from tests.conftest import REPO, Cluster
from tests.integration.exchange_helpers import (
    LEGACY_CSV,
    count,
    export,
    extra_database,
    files,
    load,
    migrate,
    reseal,
    rows,
    seed,
)

DESIGN_ROWS = REPO / "tests" / "data" / "design_rows.sql"
TABLES = ("agent_metrics", "interaction_logs", "learning_feedback", "model_performance",
          "task_embeddings")


@pytest.fixture
def db(database: ConnInfo, cluster: Cluster) -> ConnInfo:
    return migrate(database, cluster)


def test_export_twice_gives_identical_bytes_and_rewrites_nothing(db: ConnInfo,
                                                                 tmp_path: Path) -> None:
    seed(db)
    out = tmp_path / "exports"
    changed = export(db, out)
    assert {f"csv/{t}.csv" for t in TABLES} | {MANIFEST_NAME, "EXPORT_SUMMARY.md"} <= set(changed)
    first = files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert export(db, out) == []
    assert files(out) == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    text = first["csv/agent_metrics.csv"].decode()
    assert text.startswith("id,agent_name,task_type,execution_time_ms,success,error_message,")
    assert '"two\nlines, ""quoted"""' in text  # RFC 4180 quoting, LF kept inside the field
    assert "+00" in text and "2025-01-02 02:04:05.123456+00" in text  # one form: UTC
    ids = [record[0] for record in csv.reader(io.StringIO(text))][1:]
    assert len(ids) == 20 and ids == sorted(ids)
    manifest = json.loads(first[MANIFEST_NAME])
    assert manifest["tables"]["agent_metrics"]["rows"] == 20
    assert "password" not in first[MANIFEST_NAME].decode().lower()
    assert db.password not in b"".join(first.values()).decode()


def test_export_import_export_round_trip_is_byte_identical(db: ConnInfo, cluster: Cluster,
                                                          tmp_path: Path) -> None:
    seed(db)
    export(db, tmp_path / "a")
    with extra_database(cluster) as other:
        outcomes, error = load(other, tmp_path / "a")
        assert error == ""
        assert outcomes["agent_metrics"].imported == 20
        for table in TABLES:
            assert rows(other, table) == rows(db, table)
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_reimport_adds_nothing(db: ConnInfo, cluster: Cluster, tmp_path: Path) -> None:
    seed(db)
    export(db, tmp_path / "a")
    with extra_database(cluster) as other:
        load(other, tmp_path / "a")
        before = {t: rows(other, t) for t in TABLES}
        outcomes, error = load(other, tmp_path / "a")
        assert error == ""
        assert {o.imported + o.updated for o in outcomes.values()} == {0}
        assert outcomes["agent_metrics"].present == 20
        assert {t: rows(other, t) for t in TABLES} == before


def _set_model(db: ConnInfo, row_id: object, accuracy: float, updated_at: str) -> None:
    """Change a row the way another program would, with a chosen updated_at."""
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute("ALTER TABLE model_performance DISABLE TRIGGER USER")
        conn.execute("UPDATE model_performance SET accuracy = %s, updated_at = %s WHERE id = %s",
                     (accuracy, updated_at, row_id))
        conn.execute("ALTER TABLE model_performance ENABLE TRIGGER USER")


def _models(db: ConnInfo) -> dict[object, tuple[float, str]]:
    with psycopg.connect(**db.kwargs()) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT id, accuracy, updated_at::text FROM model_performance")}


def test_two_machines_merge_with_last_writer_wins(db: ConnInfo, cluster: Cluster,
                                                  tmp_path: Path) -> None:
    seed(db, n=5)
    export(db, tmp_path / "start")
    first, second = sorted(_models(db))
    with extra_database(cluster) as b:
        load(b, tmp_path / "start")  # machine B starts from A's data
        seed(b, n=3)  # then each machine adds rows of its own
        seed(db, n=2)
        _set_model(db, first, 0.9, "2025-03-01T00:00:00Z")  # A changed `first` after B did
        _set_model(b, first, 0.1, "2025-02-01T00:00:00Z")
        _set_model(b, second, 0.7, "2025-02-01T00:00:00Z")  # only B changed `second`
        export(db, tmp_path / "a")
        export(b, tmp_path / "b")
        _, error_a = load(db, tmp_path / "b")
        outcomes, error_b = load(b, tmp_path / "a")
        assert error_a == error_b == ""
        assert outcomes["agent_metrics"].imported == 2  # A's new rows
        assert outcomes["model_performance"].updated == 1  # `first`: A's is newer
        for table in TABLES:
            assert rows(db, table) == rows(b, table), table
        models = _models(b)
        assert models[first] == (0.9, "2025-03-01 00:00:00+00")  # updated_at kept, not now()
        assert models[second] == (0.7, "2025-02-01 00:00:00+00")
        export(db, tmp_path / "a2")
        export(b, tmp_path / "b2")
    assert files(tmp_path / "a2") == files(tmp_path / "b2")


def test_older_export_with_fewer_columns_imports_with_defaults(db: ConnInfo, cluster: Cluster,
                                                               tmp_path: Path) -> None:
    seed(db, n=4)
    out = tmp_path / "old"
    export(db, out)
    path = out / "csv" / "agent_metrics.csv"
    header = path.read_text().split("\n", 1)[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("metadata", "error_message")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in csv.reader(io.StringIO(path.read_text())):
        writer.writerow([record[i] for i in keep])
    path.write_text(buffer.getvalue())
    reseal(out)
    with extra_database(cluster) as other:
        outcomes, error = load(other, out)
        assert error == ""
        assert outcomes["agent_metrics"].imported == 4
        with psycopg.connect(**other.kwargs()) as conn:
            assert conn.execute("SELECT DISTINCT metadata::text FROM agent_metrics"
                                ).fetchall() == [("{}",)]


def test_unknown_extra_column_is_ignored_with_a_warning(db: ConnInfo, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "learning_feedback.csv").write_text(
        "id,agent_name,feedback_type,mood\n"
        f"{uuid.uuid4()},a,thumbs,happy\n")
    outcomes, error = load(db, folder)
    assert error == ""
    assert outcomes["learning_feedback"].imported == 1
    assert any("mood" in w for w in outcomes["learning_feedback"].warnings)


def test_legacy_exports_import_once_with_deterministic_ids(db: ConnInfo, tmp_path: Path) -> None:
    outcomes, error = load(db, LEGACY_CSV)
    assert error == ""
    assert outcomes["agent_metrics"].imported == 10
    assert outcomes["task_embeddings"].note and "empty" in outcomes["task_embeddings"].note
    assert outcomes["interaction_logs"].rows == 0
    with psycopg.connect(**db.kwargs()) as conn:
        row = conn.execute("SELECT id, success, created_at AT TIME ZONE 'UTC', error_message "
                           "FROM agent_metrics WHERE agent_name = 'DIRECTOR'").fetchone()
    assert row[0] == uuid.uuid5(LEGACY_NAMESPACE, "agent_metrics/1")
    assert row[1] is True
    assert str(row[2]) == "2025-08-30 06:35:33.184261"
    assert row[3] is None
    again, error = load(db, LEGACY_CSV)
    assert error == ""
    assert again["agent_metrics"].imported == 0 and again["agent_metrics"].present == 10
    assert count(db, "agent_metrics") == 10


# The earlier bash-based system's tables, as its exports show them (integer ids, `timestamp`).
LEGACY_LAYOUT = """
CREATE SCHEMA legacy;
CREATE TABLE legacy.agent_metrics (id serial PRIMARY KEY, agent_name varchar(255),
    task_type varchar(255), execution_time_ms float, success boolean, error_message text,
    timestamp timestamp DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE legacy.learning_feedback (id serial PRIMARY KEY, agent_name varchar(255),
    task_id varchar(255), feedback_type varchar(255), feedback_value float,
    timestamp timestamp DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE legacy.model_performance (id serial PRIMARY KEY, model_name varchar(255),
    accuracy float, precision_score float, recall float, f1_score float,
    training_date timestamp DEFAULT CURRENT_TIMESTAMP);
"""


def test_legacy_tables_migrate_to_the_rows_the_legacy_csv_import_gives(
        db: ConnInfo, cluster: Cluster) -> None:
    """migrate_existing_data() carries the old system's tables (in schema legacy) over with
    the ids and times the CSV import of its exports gives, once."""
    tables = ("agent_metrics", "learning_feedback", "model_performance")
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute(LEGACY_LAYOUT)
        for table in tables:
            with conn.cursor().copy(f"COPY legacy.{table} FROM STDIN WITH (FORMAT csv, "
                                    "HEADER true)") as copy:
                copy.write((LEGACY_CSV / f"{table}.csv").read_bytes())
        conn.execute("INSERT INTO legacy.model_performance (id, model_name, accuracy, "
                     "training_date) VALUES (7, 'm', 0.5, '2025-08-30 06:35:33')")
        conn.execute("SET TimeZone = 'America/New_York'")  # times are read as UTC anyway
        migrated = {t: n for t, source, n in conn.execute("SELECT * FROM migrate_existing_data()")
                    if source == f"legacy.{t}"}
        assert migrated == {"agent_metrics": 10, "learning_feedback": 0, "model_performance": 1}
        assert conn.execute("SELECT id, training_date FROM model_performance").fetchone() == (
            uuid.uuid5(LEGACY_NAMESPACE, "model_performance/7"),
            datetime(2025, 8, 30, 6, 35, 33, tzinfo=UTC))
        again = conn.execute("SELECT sum(rows_migrated) FROM migrate_existing_data()").fetchone()
        assert again == (0,)
    with extra_database(cluster) as other:
        _, error = load(other, LEGACY_CSV)
        assert error == ""
        assert rows(other, "agent_metrics") == rows(db, "agent_metrics")


GOOD = "id,agent_name,task_type,success\n{a},x,y,t\n{b},x,y,f\n"
BAD_CASES = {
    "wrong column count": (b"id,agent_name,task_type,success\n{a},x,y,t\n{b},x,y\n",
                           "line 3", "missing data"),
    "extra column value": (b"id,agent_name,task_type,success\n{a},x,y,t,zzz\n",
                           "line 2", "extra data"),
    "value of the wrong type": (b"id,agent_name,task_type,success\n{a},x,y,t\n{b},x,y,maybe\n",
                                "line 3, column success", "boolean"),
    "invalid utf-8": (b'id,agent_name,task_type,success\n{a},x,y,t\n{b},"ok\nstill",\xff\xfe,t\n',
                      "line 4, column task_type", "UTF8"),
    "truncated file": (b'id,agent_name,task_type,success\n{a},x,y,t\n{b},"x,y,t\n',
                       "line 3", "unterminated"),
    "multi-line record": (b'id,agent_name,task_type,success\n{a},"a\nb\nc",y,t\n{b},x,y,nope\n',
                          "line 5, column success", "boolean"),
    # records above 1 MB are streamed when the error is placed (installer/exchange/csvfile.py)
    "invalid utf-8 after a 2.5 MB field": (
        b'id,agent_name,task_type,success\n{a},"' + b"a long line\n" * 210_000
        + b'",\xff\xfe,t\n', "line 210002, column task_type", "UTF8"),
    "a header longer than 1 MB": (b"id," + b"x" * (1 << 20) + b"\n{a}\n", "line 1",
                                  "the header is longer than 1,048,576 bytes"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_file_is_refused_with_file_line_column_and_others_go_on(
        db: ConnInfo, tmp_path: Path, case: str) -> None:
    data, where, what = BAD_CASES[case]
    folder = tmp_path / "bare"
    folder.mkdir()
    bad = folder / "agent_metrics.csv"
    bad.write_bytes(data.replace(b"{a}", str(uuid.uuid4()).encode())
                    .replace(b"{b}", str(uuid.uuid4()).encode()))
    (folder / "learning_feedback.csv").write_text(
        f"id,agent_name,feedback_type\n{uuid.uuid4()},a,b\n")
    outcomes, error = load(db, folder)
    assert f"{bad}, {where}" in error and what in error, error
    assert outcomes["agent_metrics"].error
    assert count(db, "agent_metrics") == 0  # nothing from the bad file
    assert count(db, "learning_feedback") == 1  # the rest went on


def test_constraint_violation_names_the_line(db: ConnInfo, tmp_path: Path) -> None:
    seed(db, n=1)  # not empty: goes through the staging table and the merge
    folder = tmp_path / "bare"
    folder.mkdir()
    bad_id = uuid.uuid4()
    (folder / "agent_metrics.csv").write_text(
        f'id,agent_name,task_type,success\n{uuid.uuid4()},x,y,t\n{bad_id},"",y,t\n')
    _, error = load(db, folder)
    assert "agent_metrics.csv, line 3" in error and "check constraint" in error, error
    assert count(db, "agent_metrics") == 1


def test_checksum_mismatch_is_refused_unless_forced(db: ConnInfo, cluster: Cluster,
                                                    tmp_path: Path) -> None:
    seed(db, n=3)
    out = tmp_path / "exports"
    export(db, out)
    path = out / "csv" / "agent_metrics.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # one row lost, e.g. a bad merge
    with extra_database(cluster) as other:
        outcomes, error = load(other, out)
        assert "agent_metrics.csv does not match its SHA-256" in error
        assert count(other, "agent_metrics") == 0
        assert outcomes["interaction_logs"].imported == 3  # the others are fine
        outcomes, error = load(other, out, force=True)
        assert error == ""
        assert outcomes["agent_metrics"].imported == 2
        assert any("--force" in w for w in outcomes["agent_metrics"].warnings)


def test_manifest_checks(db: ConnInfo, tmp_path: Path) -> None:
    seed(db, n=2)
    out = tmp_path / "exports"
    export(db, out)
    manifest = out / MANIFEST_NAME
    good = manifest.read_text()
    manifest.write_text("{not json")
    with pytest.raises(DataError, match="not a valid export manifest"):
        load(db, out)
    manifest.write_text(good.replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(DataError, match="format version 99"):
        load(db, out)
    manifest.write_text(good.replace('"csv/agent_metrics.csv"', '"../../etc/passwd"'))
    with pytest.raises(DataError, match=r"must be stored as csv/agent_metrics\.csv"):
        load(db, out)
    manifest.write_text(good)
    (out / "csv" / "learning_feedback.csv").unlink()
    shutil.copy(out / "csv" / "interaction_logs.csv", out / "csv" / "stray.csv")
    outcomes, error = load(db, out)
    assert "learning_feedback.csv is listed in manifest.json but missing" in error
    assert "stray.csv is not listed in manifest.json" in error
    assert outcomes["agent_metrics"].present == 2


def test_new_tables_are_discovered_and_opted_out_by_comment(db: ConnInfo, cluster: Cluster,
                                                            tmp_path: Path) -> None:
    ddl = ("CREATE TABLE extra_things (id uuid PRIMARY KEY, tags text[], score numeric, "
           "n bigint, weights real[], flag boolean, doc jsonb, at timestamptz, i integer, "
           "ratio double precision, updated_at timestamptz);"
           "CREATE TABLE scratch (id uuid PRIMARY KEY, x text);"
           "COMMENT ON TABLE scratch IS 'temporary data; installer:no-export';"
           "CREATE TABLE keyed_by_int (id integer PRIMARY KEY)")
    value = ("INSERT INTO extra_things VALUES (gen_random_uuid(), "
             "ARRAY['a,b', 'c \"d\"', NULL], 12345678901234567890.000000001, 9007199254740993, "
             "ARRAY[1.5, NULL, -0.25]::real[], false, '{\"k\": [1, 2]}', "
             "'2024-02-29 23:59:59.999999+00', -7, 'Infinity', now())")
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute(ddl)
        conn.execute(value)
    export(db, tmp_path / "a")
    names = set(json.loads((tmp_path / "a" / MANIFEST_NAME).read_text())["tables"])
    assert "extra_things" in names
    assert not {"scratch", "keyed_by_int"} & names
    with extra_database(cluster) as other:
        with psycopg.connect(**other.kwargs()) as conn:
            conn.execute(ddl)
        _, error = load(other, tmp_path / "a")
        assert error == ""
        assert rows(other, "extra_things") == rows(db, "extra_things")
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


@pytest.mark.required_area("pgvector")
@pytest.mark.parametrize("cluster", ["embedded"], indirect=True)
def test_vector_and_real_array_servers_exchange_identical_files(db: ConnInfo, cluster: Cluster,
                                                                tmp_path: Path) -> None:
    if not cluster.has_pgvector:
        pytest.skip("the embedded PostgreSQL has no pgvector")
    seed(db, n=2)
    export(db, tmp_path / "vector")
    plain = cluster.create_database()  # same server, no extension: embeddings stay real[]
    try:
        migrate_all(plain, REPO / "sql")
        with psycopg.connect(**plain.kwargs()) as conn:
            kind = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                "WHERE attrelid = 'task_embeddings'::regclass "
                                "AND attname = 'embedding'").fetchone()[0]
        assert kind == "real[]"
        _, error = load(plain, tmp_path / "vector")
        assert error == ""
        export(plain, tmp_path / "real")
        _, error = load(db, tmp_path / "real")  # and back: nothing new, nothing broken
        assert error == ""
    finally:
        cluster.drop_database(plain)
    assert files(tmp_path / "vector") == files(tmp_path / "real")


def test_bad_embedding_names_line_and_column(db: ConnInfo, tmp_path: Path) -> None:
    seed(db, n=1)
    folder = tmp_path / "bare"
    folder.mkdir()
    good = "[" + ",".join(["0.5"] * 768) + "]"
    bad = "[" + ",".join(["0.5"] * 767 + ["oops"]) + "]"
    (folder / "task_embeddings.csv").write_text(
        f'id,task_description,embedding\n{uuid.uuid4()},a,"{good}"\n{uuid.uuid4()},b,"{bad}"\n')
    _, error = load(db, folder)
    assert "task_embeddings.csv, line 3, column embedding" in error, error
    assert count(db, "task_embeddings") == 3  # only the seeded rows


FK_AND_PARTITIONS = """
CREATE TABLE zz_parent (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE aa_child (
    id uuid PRIMARY KEY,
    parent_id uuid NOT NULL REFERENCES zz_parent (id) DEFERRABLE,
    previous_id uuid REFERENCES aa_child (id) DEFERRABLE);
CREATE TABLE events (id uuid NOT NULL, created_at timestamptz NOT NULL, what text,
                     PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
"""


def test_parents_first_self_references_and_partitioned_tables(db: ConnInfo, cluster: Cluster,
                                                              tmp_path: Path) -> None:
    first, last = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute(FK_AND_PARTITIONS)
        conn.execute("INSERT INTO zz_parent VALUES (%s, 'p')", (first,))
        # the child that sorts first references the one that sorts last
        conn.execute("INSERT INTO aa_child VALUES (%s, %s, NULL), (%s, %s, %s)",
                     (last, first, first, first, last))
        conn.execute("INSERT INTO events SELECT gen_random_uuid(), t, 'e' FROM unnest("
                     "ARRAY['2025-03-01', '2025-07-01', '2027-01-01']::timestamptz[]) t")
    export(db, tmp_path / "a")
    names = set(json.loads((tmp_path / "a" / MANIFEST_NAME).read_text())["tables"])
    assert {"zz_parent", "aa_child", "events"} <= names
    assert not {"events_2025", "events_default"} & names
    with extra_database(cluster) as other:
        with psycopg.connect(**other.kwargs()) as conn:
            conn.execute(FK_AND_PARTITIONS)
        _, error = load(other, tmp_path / "a")
        assert error == ""
        for table in ("zz_parent", "aa_child", "events"):
            assert rows(other, table) == rows(db, table)
        again, error = load(other, tmp_path / "a")  # the merge path, keyed by (id, created_at)
        assert error == "" and again["events"].present == 3 and again["events"].imported == 0
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_schema_module_tables_round_trip_with_their_triggers(db: ConnInfo, cluster: Cluster,
                                                             tmp_path: Path) -> None:
    """Sessions, their chunks (whose trigger recounts the session) and a task tree."""
    with psycopg.connect(**db.kwargs()) as conn:
        agent = conn.execute("INSERT INTO agents (name, agent_type) VALUES ('DIRECTOR', "
                             "'planner') RETURNING id").fetchone()[0]
        session = conn.execute("INSERT INTO sessions (agent_id, title, updated_at) VALUES "
                               "(%s, 's', '2025-01-01T00:00:00Z') RETURNING id",
                               (agent,)).fetchone()[0]
        conn.execute("INSERT INTO conversation_chunks (session_id, role, content) SELECT %s, "
                     "'user', 'chunk ' || g FROM generate_series(1, 3) g", (session,))
        parent = conn.execute("INSERT INTO tasks (session_id, title) VALUES (%s, 'parent') "
                              "RETURNING id", (session,)).fetchone()[0]
        conn.execute("INSERT INTO tasks (session_id, parent_id, title, status) VALUES "
                     "(%s, %s, 'child', 'completed')", (session, parent))
    export(db, tmp_path / "a")
    with extra_database(cluster) as other:
        _, error = load(other, tmp_path / "a")
        assert error == ""
        for table in ("agents", "sessions", "conversation_chunks", "tasks"):
            assert rows(other, table) == rows(db, table), table
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")




def test_design_document_tables_round_trip(db: ConnInfo, cluster: Cluster,
                                           tmp_path: Path) -> None:
    with psycopg.connect(**db.kwargs()) as conn:
        conn.execute(DESIGN_ROWS.read_text("utf-8"))
        tables = [t.name for t in catalog.learning_tables(conn)]
    export(db, tmp_path / "a")
    with extra_database(cluster) as other:
        _, error = load(other, tmp_path / "a")
        assert error == ""
        for table in tables:
            assert rows(other, table) == rows(db, table), table
        export(other, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")
    manifest = json.loads((tmp_path / "a" / MANIFEST_NAME).read_text())
    exported = {name for name, entry in manifest["tables"].items() if entry["rows"]}
    assert exported >= {"evolution_experiments", "evolution_generations", "evolution_individuals",
                        "code_evaluations", "llm_interactions", "identified_patterns",
                        "pattern_occurrences", "predictions", "recommendations",
                        "ab_testing_experiments", "system_performance_metrics",
                        "query_performance_logs", "resource_utilization",
                        "capacity_planning_metrics", "git_operation_learning_events",
                        "user_session_learning_events", "data_quality_checks"}


def natural_key_uuid(table: str, *key: object) -> uuid.UUID:
    """What sql/learning/005_natural_key_ids.sql computes: SHA-256 of the JSON array, UUIDv8."""
    digest = bytearray(hashlib.sha256(json.dumps([table, *key], ensure_ascii=False).encode())
                       .digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x80
    digest[8] = digest[8] & 0x3F | 0x80
    return uuid.UUID(bytes=bytes(digest))


def _director_machine(db: ConnInfo, memory: str, updated_at: str) -> None:
    """What each machine does on its own: register DIRECTOR, remember, work in a session."""
    with psycopg.connect(**db.kwargs()) as conn:
        agent = conn.execute("INSERT INTO agents (name, agent_type) VALUES ('DIRECTOR', "
                             "'planner') RETURNING id").fetchone()[0]
        session = conn.execute("INSERT INTO sessions (agent_id, title) VALUES (%s, %s) "
                               "RETURNING id", (agent, f"work on {db.dbname}")).fetchone()[0]
        conn.execute("INSERT INTO memories (session_id, agent_id, content) VALUES (%s, %s, %s)",
                     (session, agent, memory))
        conn.execute("INSERT INTO agent_memory_bank (agent_name, memory_key, content, updated_at) "
                     "VALUES ('DIRECTOR', 'style', %s, %s)", (memory, updated_at))


def test_rows_with_the_same_natural_key_on_two_machines_merge(db: ConnInfo, cluster: Cluster,
                                                              tmp_path: Path) -> None:
    with extra_database(cluster) as b:
        _director_machine(db, "A says: short answers", "2025-03-01T00:00:00Z")
        _director_machine(b, "B says: long answers", "2025-02-01T00:00:00Z")
        export(db, tmp_path / "a")
        outcomes, error = load(b, tmp_path / "a")
        assert error == ""
        assert outcomes["agent_memory_bank"].updated == 1  # A's memory is newer
        director = natural_key_uuid("agents", "DIRECTOR")
        with psycopg.connect(**b.kwargs()) as conn:
            assert conn.execute("SELECT id FROM agents").fetchall() == [(director,)]
            assert sorted(conn.execute("SELECT title, agent_id FROM sessions").fetchall()) == \
                sorted([(f"work on {b.dbname}", director), (f"work on {db.dbname}", director)])
            assert sorted(conn.execute("SELECT content, agent_id FROM memories").fetchall()) == [
                ("A says: short answers", director), ("B says: long answers", director)]
            assert conn.execute("SELECT content, updated_at::text FROM agent_memory_bank"
                                ).fetchall() == [("A says: short answers",
                                                  "2025-03-01 00:00:00+00")]
        export(b, tmp_path / "b")  # and back: both machines hold the union
        _, error = load(db, tmp_path / "b")
        assert error == ""
        for table in ("agents", "sessions", "memories", "agent_memory_bank"):
            assert rows(db, table) == rows(b, table), table


def test_natural_key_ids_are_the_same_on_every_server(db: ConnInfo) -> None:
    """Every server computes the same id as this Python formula (so PG15 and PG16 agree)."""
    with psycopg.connect(**db.kwargs()) as conn:
        def insert(statement: str, *args: object) -> uuid.UUID:
            return conn.execute(statement + " RETURNING id", args).fetchone()[0]

        given = uuid.uuid4()
        assert insert("INSERT INTO agents (id, name, agent_type) VALUES (%s, 'DIRECTOR', 'x')",
                      given) == natural_key_uuid("agents", "DIRECTOR")  # a given id is replaced
        assert insert("INSERT INTO agent_learning_patterns (agent_name, pattern_type, "
                      "pattern_key) VALUES ('DIRECTOR', 'fix', 'é \"q\", ✓')") == \
            natural_key_uuid("agent_learning_patterns", "DIRECTOR", "fix", 'é "q", ✓')
        assert insert("INSERT INTO agent_memory_bank (agent_name, memory_key, content) VALUES "
                      "('DIRECTOR', 'style', 'c')") == \
            natural_key_uuid("agent_memory_bank", "DIRECTOR", "fact", "style")  # default type
        # JSON quoting keeps the values apart: ('a', 'b,c') and ('a,b', 'c') differ
        assert insert("INSERT INTO ml_models (name, version, model_type) VALUES "
                      "('a', 'b,c', 't')") == natural_key_uuid("ml_models", "a", "b,c")
        assert insert("INSERT INTO ml_models (name, version, model_type) VALUES "
                      "('a,b', 'c', 't')") == natural_key_uuid("ml_models", "a,b", "c")
        assert insert("INSERT INTO training_datasets (name) VALUES ('d')") == \
            natural_key_uuid("training_datasets", "d", "1")
        assert insert("INSERT INTO feature_store (entity_type, entity_id, feature_name, "
                      "feature_value, version) VALUES ('agent', 'DIRECTOR', 'speed', '1', 2)"
                      ) == natural_key_uuid("feature_store", "agent", "DIRECTOR", "speed", 2)
        # the enqueue trigger's learning item gets its id from the correction it came from
        correction = insert("INSERT INTO owner_corrections (corrected_response) VALUES ('r')")
        item = natural_key_uuid("learning_queue", "correction", str(correction))
        assert conn.execute("SELECT q.id, a.learning_queue_id FROM learning_queue q "
                            "JOIN learning_audit_log a ON a.learning_queue_id = q.id"
                            ).fetchall() == [(item, item)]
        manual = [insert("INSERT INTO learning_queue (source_type, content) VALUES "
                         "('manual', 'm')") for _ in range(2)]  # NULL key: random ids
        assert len(set(manual)) == 2 and item not in manual
        conn.execute("UPDATE agents SET name = 'LEAD' WHERE name = 'DIRECTOR'")
        assert conn.execute("SELECT id FROM agents WHERE name = 'LEAD'").fetchone()[0] == \
            natural_key_uuid("agents", "DIRECTOR")  # a renamed row keeps its id
