"""Down parts, rollback (engine and SQL), transaction statements, resuming no-transaction files,
the checksum hint, drift and the in-place upgrade from an older main — on real servers."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psycopg
import pytest

from installer import db, schema_drift
from installer.credentials import ConnInfo
from installer.errors import MigrationError
from installer.migrations import Migrator, load_module_migrations, migrate_all
from installer.modules import select_modules
from tests.conftest import REPO, Cluster, Project

UPGRADE_FROM = "57f61ac"  # main before down parts, rollback and object tracking


def _write(sql_dir: Path, module: str, files: dict[str, str], requires: str = "") -> None:
    folder = sql_dir / module
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.yaml").write_text(f"description: {module}\nrequires: [{requires}]\n")
    for name, text in files.items():
        (folder / name).write_text(text)


def _migrator(database: ConnInfo, sql_dir: Path) -> Migrator:
    return Migrator(db.connect(database, autocommit=True), select_modules(sql_dir, None))


def _query(database: ConnInfo, statement: str, *params: object) -> list[tuple]:
    with psycopg.connect(**database.kwargs()) as conn:
        return conn.execute(statement, params or None).fetchall()


def _tables(database: ConnInfo) -> set[str]:
    return {r[0] for r in _query(database, "SELECT tablename FROM pg_tables "
                                           "WHERE schemaname = 'public'")}


def _ledger(database: ConnInfo) -> list[str]:
    return [f"{m}/{v:03d}" for m, v in _query(
        database, "SELECT module, version FROM installer.schema_migrations ORDER BY 1, 2")]


def _layered(tmp_path: Path) -> Path:
    """base/001 (no down part), base/002 and ext/001 (ext requires base) with down parts."""
    sql_dir = tmp_path / "sql"
    _write(sql_dir, "base", {
        "001_a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
        "002_b.sql": "CREATE TABLE b (id int PRIMARY KEY);\n"
                     "INSERT INTO b VALUES (1);\n-- migrate:down\nDROP TABLE b;\n"})
    _write(sql_dir, "ext", {
        "001_c.sql": "CREATE TABLE c (id int PRIMARY KEY, b_id int REFERENCES b);\n"
                     "-- migrate:down\nDROP TABLE c;\n"}, requires="base")
    return sql_dir


def test_down_part_is_not_run_nor_hashed(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _layered(tmp_path)
    _migrator(database, sql_dir).migrate()
    assert _tables(database) == {"a", "b", "c"}
    stored = dict(((m, v), d) for m, v, d in _query(
        database, "SELECT module, version, down_sql FROM installer.schema_migrations"))
    assert stored[("base", 1)] is None and stored[("base", 2)] == "DROP TABLE b;\n"
    # a down part added later to an applied file keeps its checksum and reaches the ledger
    (sql_dir / "base" / "001_a.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\n"
                                                "-- migrate:down\nDROP TABLE a;\n")
    assert _migrator(database, sql_dir).migrate() == []
    assert _query(database, "SELECT down_sql FROM installer.schema_migrations "
                            "WHERE module = 'base' AND version = 1") == [("DROP TABLE a;\n",)]


def test_rollback_reverts_dependents_last_first_then_reapplies(tmp_path: Path,
                                                               database: ConnInfo) -> None:
    sql_dir = _layered(tmp_path)
    _migrator(database, sql_dir).migrate()
    _query(database, "INSERT INTO c VALUES (7, 1) RETURNING id")
    seen: list[list[str]] = []
    reverted = _migrator(database, sql_dir).rollback(
        "base/001", before=lambda steps: seen.append([s.id for s in steps]))
    assert [s.id for s in reverted] == ["ext/001_c", "base/002_b"] == seen[0]
    assert _tables(database) == {"a"}
    assert _ledger(database) == ["base/001"]
    assert [m.id for m in _migrator(database, sql_dir).migrate()] == ["base/002_b", "ext/001_c"]
    assert _tables(database) == {"a", "b", "c"}


def test_rollback_is_refused_before_any_change_when_a_down_part_is_missing(
        tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = _layered(tmp_path)
    _migrator(database, sql_dir).migrate()
    called: list[object] = []
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).rollback("base/000", before=called.append)
    assert "base/001_a has no down part" in caught.value.message
    assert "Nothing was changed" in caught.value.message
    assert called == []  # no backup either: nothing was going to happen
    assert _tables(database) == {"a", "b", "c"}
    assert _ledger(database) == ["base/001", "base/002", "ext/001"]
    with pytest.raises(MigrationError, match="neither MODULE/NNN nor"):
        _migrator(database, sql_dir).rollback_plan("nonsense")


def test_rollback_schema_version_from_sql_backs_up_the_rows(tmp_path: Path, cluster: Cluster,
                                                            database: ConnInfo) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "learning").symlink_to(REPO / "sql" / "learning")
    _write(sql_dir, "demo", {
        "001_notes.sql": "CREATE TABLE notes (id int PRIMARY KEY, body text);\n"
                         "-- migrate:down\nDROP TABLE notes;\n",
        "002_tags.sql": "ALTER TABLE notes ADD COLUMN tag text;\n"
                        "-- migrate:down\nALTER TABLE notes DROP COLUMN tag;\n"},
           requires="learning")
    migrate_all(database, sql_dir)
    _query(database, "INSERT INTO notes VALUES (1, 'kept', 'x'), (2, 'also', 'y') RETURNING 1")
    label = _query(database, "SELECT label FROM installer.schema_versions "
                             "WHERE module = 'demo' AND version = 1")[0][0]
    assert _query(database, "SELECT reverted FROM rollback_schema_version(%s)", label) == [
        ("demo/002_tags",)]
    assert _query(database, "SELECT * FROM rollback_schema_version('demo/000')")[0][0] == \
        "demo/001_notes"
    assert "notes" not in _tables(database)
    schemas = _query(database, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'backup_%' "
                               "ORDER BY 1")
    last = schemas[-1][0]
    assert _query(database, f'SELECT id, body FROM "{last}".notes ORDER BY id') == [
        (1, "kept"), (2, "also")]
    with pytest.raises(psycopg.errors.RaiseException, match="no down part in learning/005"):
        _query(database, "SELECT rollback_schema_version('learning/000')")
    assert [m.id for m in migrate_all(database, sql_dir)] == ["demo/001_notes", "demo/002_tags"]
    rows = _query(database, "SELECT * FROM backup_critical_data()")
    assert ("notes", 0) in {(table, n) for _, table, n in rows}


def test_commit_is_refused_before_anything_runs_and_the_hint_works(
        tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = tmp_path / "sql"
    body = "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n"
    _write(sql_dir, "demo", {"001_first.sql": "CREATE TABLE first (id int);\n",
                             "002_split.sql": body})
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "sql/demo/002_split.sql, line 2: COMMIT inside a migration" in caught.value.message
    assert _tables(database) == set()  # not even the file before it
    marker = "-- installer:no-transaction"
    assert marker in (caught.value.hint or "")
    (sql_dir / "demo" / "002_split.sql").write_text(f"{marker}\n{body}")
    _migrator(database, sql_dir).migrate()
    assert _tables(database) == {"first", "a", "b"}


def test_no_transaction_file_resumes_after_kill_9(tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = tmp_path / "sql"
    _write(sql_dir, "demo", {"001_steps.sql": (
        "-- installer:no-transaction\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n"
        "BEGIN;\nCREATE TABLE b (id int);\nINSERT INTO b VALUES (2);\nCOMMIT;\n"
        "SELECT pg_sleep(4);\nCREATE TABLE c (id int);\n")})
    script = ("import sys; from installer.credentials import ConnInfo; "
              "from installer.migrations import migrate_all; from pathlib import Path; "
              f"migrate_all(ConnInfo(*{tuple(database.__dict__.values())[:5]!r}), "
              "Path(sys.argv[1]))")
    child = subprocess.Popen([sys.executable, "-c", script, str(sql_dir)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "b" in _tables(database):
            break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _query(database, "SELECT statements_done FROM installer.migration_progress") == [(6,)]
    assert "c" not in _tables(database)
    _migrator(database, sql_dir).migrate()  # resumes: no "relation already exists"
    assert _tables(database) == {"a", "b", "c"}
    assert _query(database, "SELECT count(*) FROM a") == [(1,)]
    assert _query(database, "SELECT count(*) FROM installer.migration_progress") == [(0,)]


def test_no_transaction_file_fixed_after_a_failure_resumes_at_the_failed_statement(
        tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = tmp_path / "sql"
    head = "-- installer:no-transaction\nCREATE TABLE a (id int);\n"
    _write(sql_dir, "demo", {"001_x.sql": head + "CREATE TABL b (id int);\n"})
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    assert "001_x.sql, line 3" in caught.value.message
    assert "the next run resumes at this one" in (caught.value.hint or "")
    assert _tables(database) == {"a"}
    (sql_dir / "demo" / "001_x.sql").write_text(
        "-- installer:no-transaction\nCREATE TABLE a (id bigint);\nCREATE TABLE b (id int);\n")
    with pytest.raises(MigrationError, match="have been edited since"):
        _migrator(database, sql_dir).migrate()  # a statement that already ran was changed
    (sql_dir / "demo" / "001_x.sql").write_text(head + "CREATE TABLE b (id int);\n")
    _migrator(database, sql_dir).migrate()
    assert _tables(database) == {"a", "b"} and _ledger(database) == ["demo/001"]


def test_checksum_hint_restores_the_file_from_anywhere(tmp_path: Path,
                                                        database: ConnInfo) -> None:
    checkout = tmp_path / "checkout"
    sql_dir = checkout / "sql"
    _write(sql_dir, "demo", {"001_a.sql": "CREATE TABLE a (id int);\n"})
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@t", "-c", "user.name=t",
                                                 "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(checkout), *args], check=True)
    _migrator(database, sql_dir).migrate()
    (sql_dir / "demo" / "001_a.sql").write_text("CREATE TABLE a (id bigint);\n")
    with pytest.raises(MigrationError) as caught:
        _migrator(database, sql_dir).migrate()
    command = (caught.value.hint or "").split("`")[1]
    assert command.startswith("git -C ") and command.endswith(" checkout -- sql/demo/001_a.sql")
    subprocess.run(shlex.split(command), cwd=tmp_path, check=True)  # not from the checkout
    assert _migrator(database, sql_dir).plan().clean


def test_dropped_table_is_reported_and_recreated_without_touching_others(
        cluster: Cluster, database: ConnInfo) -> None:
    if cluster.has_pgvector:
        with psycopg.connect(**database.kwargs(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    migrate_all(database, REPO / "sql")
    _query(database, "INSERT INTO conversation_feedback (feedback_type, rating, comment) "
                     "VALUES ('thumbs_down', 1, 'kept') RETURNING 1")
    queued = _query(database, "SELECT count(*) FROM learning_queue")[0][0]
    assert queued == 1  # the trigger queued it
    with psycopg.connect(**database.kwargs(), autocommit=True) as conn:
        conn.execute("DROP TABLE learning_queue CASCADE")
        missing = schema_drift.find(conn)
    assert [m.migration for m in missing] == ["learning_pipeline/001_learning_pipeline"]
    assert "table learning_queue" in missing[0].objects
    with db.connect(database, autocommit=True) as conn:
        restored = schema_drift.repair(Migrator(conn, select_modules(REPO / "sql", None)))
        assert "table learning_queue" in restored
        assert schema_drift.find(conn) == []
    assert _query(database, "SELECT comment FROM conversation_feedback") == [("kept",)]
    _query(database, "INSERT INTO conversation_feedback (feedback_type, rating, comment) "
                     "VALUES ('thumbs_down', 1, 'again') RETURNING 1")
    assert _query(database, "SELECT count(*) FROM learning_queue") == [(1,)]


def test_drift_that_cannot_be_replayed_changes_nothing_and_says_what_to_run(
        tmp_path: Path, database: ConnInfo) -> None:
    sql_dir = tmp_path / "sql"
    _write(sql_dir, "demo", {"001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n"
                                          "CREATE TABLE b (id int);\n"})
    _migrator(database, sql_dir).migrate()
    with psycopg.connect(**database.kwargs(), autocommit=True) as conn:
        conn.execute("DROP TABLE a")
        conn.execute("CREATE VIEW a AS SELECT 2 AS id")  # the name is taken by something else
    with pytest.raises(MigrationError) as caught:
        schema_drift.repair(_migrator(database, sql_dir))
    assert "table a (from demo/001_a)" in caught.value.message
    assert "Nothing was changed" in caught.value.message
    assert "restore backups/FILE.dump" in (caught.value.hint or "")
    assert _query(database, "SELECT id FROM a") == [(2,)]


def _archive(commit: str, into: Path) -> Path:
    """The commit's installer/ and sql/, as `git archive` gives them."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit,
                           "installer", "sql"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        # our own archive; `filter` exists only from Python 3.11.4 (Debian 12 has 3.11.2)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return into


def test_upgrade_in_place_from_the_older_main_keeps_every_row(
        tmp_path: Path, cluster: Cluster, database: ConnInfo) -> None:
    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", UPGRADE_FROM],
                      capture_output=True).returncode != 0:
        pytest.skip(f"{UPGRADE_FROM} is not in this clone's history")
    old = _archive(UPGRADE_FROM, tmp_path / "old")
    if cluster.has_pgvector:
        with psycopg.connect(**database.kwargs(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # the older main's own engine makes the schema and its ledger
    script = ("import json, sys; from pathlib import Path; "
              "from installer.migrations import Migrator; "
              "from installer.modules import select_modules; "
              "Migrator(json.loads(sys.argv[1]), select_modules(Path('sql'), None)).migrate()")
    subprocess.run([sys.executable, "-c", script, json.dumps(database.kwargs())], cwd=old,
                   env={**os.environ, "PYTHONPATH": str(old)}, check=True)
    assert _query(database, "SELECT count(*) FROM information_schema.columns WHERE "
                            "table_schema = 'installer' AND column_name = 'down_sql'") == [(0,)]
    filled = _fill_every_table(database)
    before = {t: _query(database, f'SELECT count(*) FROM "{t}"')[0][0] for t in filled}
    applied = migrate_all(database, REPO / "sql")
    on_disk = {m.id for module in select_modules(REPO / "sql", None)
               for m in load_module_migrations(module)}
    recorded = {f"{m}/{v:03d}_{n}" for m, v, n in _query(
        database, "SELECT module, version, name FROM installer.schema_migrations")}
    assert recorded == on_disk and applied
    after = {t: _query(database, f'SELECT count(*) FROM "{t}"')[0][0] for t in filled}
    assert after == before and all(before.values())
    with db.connect(database, autocommit=True) as conn:
        assert schema_drift.find(conn) == []
        assert _query(database, "SELECT count(*) FROM installer.schema_migrations "
                                "WHERE objects IS NULL") == [(0,)]


def _fill_every_table(database: ConnInfo) -> list[str]:
    """One row in every table of the learning schema: defaults for what has one, a value of
    the column's type for the rest, foreign keys pointing at rows inserted before."""
    with psycopg.connect(**database.kwargs(), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1")]
        pending, filled, errors = list(tables), [], {}
        for _ in range(len(tables)):
            for table in list(pending):
                try:
                    with conn.transaction():
                        conn.execute(_insert_one(conn, table))
                except psycopg.Error as exc:
                    errors[table] = str(exc).splitlines()[0]
                    continue  # a foreign key target is not filled yet: next round
                pending.remove(table)
                filled.append(table)
        assert not pending, f"could not fill {[(t, errors[t]) for t in pending]}"
    return filled


def _insert_one(conn: psycopg.Connection, table: str) -> str:
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "(SELECT format('(SELECT %%I FROM %%s LIMIT 1)', fa.attname, k.confrelid::regclass) "
        "   FROM pg_constraint k JOIN pg_attribute fa ON fa.attrelid = k.confrelid "
        "    AND fa.attnum = k.confkey[1] "
        "  WHERE k.conrelid = a.attrelid AND k.contype = 'f' AND k.conkey = ARRAY[a.attnum]) "
        "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' "
        "AND a.attgenerated = '' ORDER BY a.attnum", (f'public."{table}"',)).fetchall()
    names = ", ".join(f'"{name}"' for name, _, _ in columns)
    values = ", ".join(reference or _CHOSEN.get(name) or _sample(kind)
                       for name, kind, reference in columns)
    return (f'INSERT INTO public."{table}" ({names}) VALUES ({values})' if columns
            else f'INSERT INTO public."{table}" DEFAULT VALUES')


_CHOSEN = {"role": "'user'", "feedback_type": "'comment'", "action": "'enqueued'",
           "source_type": "'manual'"}  # columns of the older schema with a CHECK (… IN …)


def _sample(kind: str) -> str:
    if kind.startswith(("integer", "bigint", "smallint", "numeric", "double", "real")):
        return "1"
    if kind.startswith("vector"):
        return f"array_fill(0.1, ARRAY[{kind.split('(')[1].rstrip(')')}])::{kind}"
    if kind.endswith("[]"):
        return f"'{{}}'::{kind}"
    samples = {"boolean": "true", "uuid": "gen_random_uuid()", "jsonb": "'{}'::jsonb",
               "json": "'{}'::json", "date": "current_date", "tsvector": "''::tsvector",
               "timestamp with time zone": "now()", "interval": "interval '1 hour'"}
    return samples.get(kind, f"'sample'::{kind}")


def test_full_install_of_the_older_main_upgrades_with_full(project: Project) -> None:
    """Today's main installs; rows go in every table; this checkout's `--full` upgrades it."""
    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", UPGRADE_FROM],
                      capture_output=True).returncode != 0:
        pytest.skip(f"{UPGRADE_FROM} is not in this clone's history")
    for folder in ("installer", "sql"):
        shutil.rmtree(project.path / folder)
    _archive(UPGRADE_FROM, project.path)
    project.install(check=True)
    env = project.read_env()
    owner = ConnInfo.from_env(env)
    filled = _fill_every_table(owner)
    before = {t: _query(owner, f'SELECT count(*) FROM "{t}"')[0][0] for t in filled}
    for folder in ("installer", "sql"):
        shutil.rmtree(project.path / folder)
        shutil.copytree(REPO / folder, project.path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    upgraded = project.install(check=True)
    assert "Schema migrations" in upgraded.stdout
    after = {t: _query(owner, f'SELECT count(*) FROM "{t}"')[0][0] for t in filled}
    assert after == before
    status = json.loads(project.run("status", "--json").stdout)
    assert status["healthy"] and status["pending_migrations"] == []
    assert status["missing_objects"] == {}
