"""Every example statement of the five design documents runs, verbatim, on PostgreSQL 15
without pgvector and on 16 with it (statements: tests/data/design_statements.yaml)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from installer import db, schema_drift
from installer.credentials import ConnInfo
from installer.migrations import DOWN_MARKER, Migrator, migrate_all
from installer.modules import select_modules
from tests.conftest import REPO, Cluster
from tests.integration.test_schema_modules import (  # noqa: F401 (fixtures)
    DIMS,
    connect,
    migrated_template,
    schema,
)

STATEMENTS = yaml.safe_load((REPO / "tests/data/design_statements.yaml").read_text("utf-8"))
SEED_DIRS = [Path(os.environ.get("LEARNING_DESIGN_DOCS", REPO.parent / "shared" / "seeds")),
             REPO.parent.parent / "shared" / "seeds"]
# a design document's column type -> what its column may be here (same kind of value)
COMPATIBLE = {
    "character varying": {"text", "character varying", "uuid"},
    "text": {"text"},
    "jsonb": {"jsonb"},
    "double precision": {"double precision"},
    "integer": {"integer", "bigint"},
    "timestamp without time zone": {"timestamp with time zone"},
}


def squeeze(text: str) -> str:
    return " ".join(text.split())


def design_document(number: str) -> str | None:
    for folder in SEED_DIRS:
        found = sorted(folder.glob(f"{number}_*.txt")) if folder.is_dir() else []
        if found:
            return found[0].read_text("utf-8")
    return None


def statement_for(entry: dict[str, Any], conn: psycopg.Connection, pgvector: bool) -> str:
    text = entry["sql"] if pgvector else entry.get("without_pgvector", entry["sql"])
    if "vector" in entry:
        text = text.replace("...vector...", ",".join([entry["vector"]] * DIMS))
    for placeholder, query in entry.get("bind", {}).items():
        row = conn.execute(query).fetchone()
        assert row is not None, f"{query} found nothing to replace {placeholder}"
        text = text.replace(f"'{placeholder}'", f"'{row[0]}'")
    return text


def sample_value(column: str, data_type: str) -> Any:
    """A value of a design document's column type (an `_id` column holds a uuid's text)."""
    if column.endswith("_id"):
        return "3f0c8f5e-2a51-4d0e-9a43-7a1c5b3e9d20"
    return {"jsonb": '{"k": 1}', "double precision": 0.5, "integer": 3,
            "timestamp without time zone": "2025-02-09 10:00:00"}.get(data_type, "x")


def assert_tables_hold_document_columns(conn: psycopg.Connection, scratch: str,
                                        tables: list[str]) -> None:
    """Each table the document created in `scratch` has its columns in ours (id aside, a
    uuid here), of a compatible type, and a row written the document's way goes in."""
    for table in tables:
        columns = conn.execute(
            "SELECT d.column_name, d.data_type, o.data_type FROM information_schema.columns d "
            "LEFT JOIN information_schema.columns o ON o.table_schema = 'public' "
            "AND o.table_name = d.table_name AND o.column_name = d.column_name "
            "WHERE d.table_schema = %s AND d.table_name = %s AND d.column_name <> 'id' "
            "ORDER BY d.ordinal_position", (scratch, table)).fetchall()
        for name, theirs, ours in columns:
            assert ours in COMPATIBLE[theirs], f"{table}.{name}: {theirs} in 004, {ours} here"
        writable = [(n, t) for n, t, _ in columns if n != "timestamp"]  # ours is generated
        conn.execute(sql.SQL("INSERT INTO public.{} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(n) for n, _ in writable),
            sql.SQL(", ").join(sql.Placeholder() * len(writable))),
            [sample_value(n, t) for n, t in writable])


@pytest.mark.parametrize("document", sorted(STATEMENTS))
def test_design_document_statements_run_verbatim(
        document: str, schema: ConnInfo, cluster: Cluster) -> None:  # noqa: F811 (fixture)
    source = design_document(document)
    with connect(schema, autocommit=True) as conn:
        for entry in STATEMENTS[document]:
            if source is not None:
                assert squeeze(entry["sql"]) in squeeze(source), "not quoted verbatim"
            if "skip" in entry:
                continue
            needs = entry.get("needs")
            if needs and conn.execute("SELECT to_regprocedure(%s)", (needs,)).fetchone()[0] is None:
                continue  # another part of issue 10 brings it
            if "scratch_schema" in entry:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(
                    sql.Identifier(entry["scratch_schema"])))
                conn.execute(sql.SQL("SET search_path = {}").format(
                    sql.Identifier(entry["scratch_schema"])))
            if "setup" in entry:
                conn.execute(entry["setup"])
            with conn.cursor() as cur:
                cur.execute(statement_for(entry, conn, cluster.has_pgvector))
                rows = cur.fetchall() if cur.description else []
                names = [c.name for c in cur.description or []]
            if "rows" in entry:
                assert len(rows) == entry["rows"], entry["sql"]
            for column, value in entry.get("first", {}).items():
                assert rows[0][names.index(column)] == value
            if "check" in entry:
                assert conn.execute(entry["check"]).fetchone()[0] is True, entry["check"]
            if "scratch_schema" in entry:
                conn.execute("RESET search_path")
                assert_tables_hold_document_columns(conn, entry["scratch_schema"],
                                                    entry["compare_tables"])
        bad = [r for r in conn.execute("SELECT * FROM validate_schema_integrity()")
               if r[1] != "ok" and not r[0].startswith("module learning_pipeline")]
        assert bad == []  # (002's rollback plan removes most of learning_pipeline)



@pytest.mark.parametrize("size", [0, 3, 55, 56, 63, 64, 65, 119, 1000])
def test_sha1_digest_matches_sha1(schema: ConnInfo, size: int) -> None:  # noqa: F811 (fixture)
    data = bytes(range(256)) * 4
    with connect(schema) as conn:
        digest = conn.execute("SELECT sha1_digest(%s)", (data[:size],)).fetchone()[0]
    assert digest == hashlib.sha1(data[:size]).digest()


def test_claim_task_by_name_registers_the_agent_and_keeps_its_limit(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    with connect(schema, autocommit=True) as conn:
        conn.execute("INSERT INTO tasks (title, agent_type, priority) "
                     "VALUES ('first', 'coder', 2), ('second', 'coder', 1)")

        def claim(agent: str) -> list[str]:
            return [row[0] for row in conn.execute(
                "SELECT title FROM claim_task('coder', %s::text)", (agent,))]

        assert claim("worker_1") == ["first"]
        agent = conn.execute("SELECT id FROM agents WHERE name = 'worker_1' "
                             "AND agent_type = 'coder' AND last_seen_at IS NOT NULL").fetchone()[0]
        conn.execute("UPDATE agents SET max_concurrent_tasks = 1")
        assert claim("worker_1") == []  # one task held: at its limit
        assert claim(str(agent)) == []  # the uuid's text is the same agent
        conn.execute("UPDATE tasks SET status = 'running' WHERE title = 'first'")
        conn.execute("UPDATE tasks SET status = 'completed' WHERE title = 'first'")
        assert claim(str(agent)) == ["second"]
        assert conn.execute("SELECT count(*) FROM agents").fetchone() == (1,)


def test_alias_columns_stay_equal_and_old_rows_are_migrated_once(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    with connect(schema, autocommit=True) as conn:
        conn.execute("INSERT INTO owner_corrections (corrected_response) VALUES ('today')")
        conn.execute("INSERT INTO owner_corrections (corrected_answer) VALUES ('002')")
        pairs = "SELECT corrected_response, corrected_answer FROM owner_corrections ORDER BY 1"
        assert conn.execute(pairs).fetchall() == [("002", "002"), ("today", "today")]
        conn.execute("UPDATE owner_corrections SET corrected_answer = 'new' "
                     "WHERE corrected_response = 'today'")
        conn.execute("UPDATE owner_corrections SET corrected_response = 'newer' "
                     "WHERE corrected_answer = '002'")
        assert conn.execute(pairs).fetchall() == [("new", "new"), ("newer", "newer")]
        # a row of the older layout (written before the alias existed)
        conn.execute("ALTER TABLE owner_corrections DISABLE TRIGGER aa_column_aliases")
        stamp = conn.execute("INSERT INTO owner_corrections (corrected_response, updated_at) "
                             "VALUES ('old', '2025-01-01Z') RETURNING updated_at").fetchone()
        conn.execute("ALTER TABLE owner_corrections ENABLE TRIGGER aa_column_aliases")
        migrated = {(t, source): n for t, source, n in conn.execute(
            "SELECT * FROM migrate_existing_data()")}
        assert migrated[("owner_corrections", "corrected_response (as corrected_answer)")] == 1
        assert conn.execute("SELECT corrected_answer, updated_at FROM owner_corrections "
                            "WHERE corrected_response = 'old'").fetchone() == ("old", stamp[0])
        assert conn.execute("SELECT sum(rows_migrated) FROM migrate_existing_data()"
                            ).fetchone() == (0,)


def test_conversation_id_follows_document_002s_delete_rules(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    with connect(schema, autocommit=True) as conn:
        session = conn.execute("INSERT INTO sessions (title) VALUES ('s') RETURNING id"
                               ).fetchone()[0]
        conn.execute("INSERT INTO conversation_feedback (conversation_id, feedback_type) "
                     "VALUES (%s, 'thumbs_up')", (session,))
        conn.execute("INSERT INTO conversation_feedback (session_id, feedback_type) "
                     "VALUES (%s, 'comment')", (session,))
        conn.execute("INSERT INTO voice_transcripts (conversation_id, transcript) "
                     "VALUES (%s, 'hello')", (session,))
        assert conn.execute("SELECT count(*) FROM conversation_feedback WHERE session_id = %s",
                            (session,)).fetchone() == (2,)
        conn.execute("DELETE FROM sessions")
        assert conn.execute("SELECT feedback_type, session_id FROM conversation_feedback"
                            ).fetchall() == [("comment", None)]
        assert conn.execute("SELECT transcript, conversation_id, session_id "
                            "FROM voice_transcripts").fetchall() == [("hello", None, None)]


def test_validate_schema_integrity_names_a_missing_documented_object(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    with connect(schema, autocommit=True) as conn:
        conn.execute("DROP TRIGGER trg_feedback_learning ON conversation_feedback")
        conn.execute("DROP TRIGGER aa_column_aliases ON owner_corrections")
        problems = {name: detail for name, status, detail in conn.execute(
            "SELECT * FROM validate_schema_integrity()") if status != "ok"}
    assert problems == {
        "module learning_pipeline": "missing: trigger trg_feedback_learning",
        "column aliases": "alias columns no trigger keeps: owner_corrections.corrected_answer"}


def test_data_quality_checks_record_the_schema_checks(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    with connect(schema, autocommit=True) as conn:
        assert conn.execute("SELECT record_data_quality_checks()").fetchone() == (0,)
        conn.execute("DROP INDEX idx_learning_pending")
        assert conn.execute("SELECT record_data_quality_checks()").fetchone() == (1,)
        assert conn.execute(
            "SELECT check_name, details ->> 'detail' FROM data_quality_checks "
            "WHERE status <> 'ok'").fetchall() == [
                ("module learning_pipeline", "missing: index idx_learning_pending")]
        assert conn.execute("SELECT count(DISTINCT check_name) = count(*) / 2 "
                            "FROM data_quality_checks").fetchone() == (True,)


def schema_dump(cluster: Cluster, db: ConnInfo) -> list[str]:
    """pg_dump --schema-only of the learning tables' schema, without what differs by run."""
    result = subprocess.run(
        [str(cluster.backend.binaries.tool("pg_dump")), "--schema-only", "--no-owner",
         "--exclude-schema", "installer", "--host", db.host, "--port", str(db.port),
         "--username", db.user, "--dbname", db.dbname],
        capture_output=True, text=True, env={**os.environ, "PGPASSWORD": db.password},
        check=True)
    return [line for line in result.stdout.splitlines()
            if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))
            and "learning_events_2" not in line]


def test_down_parts_undo_their_files_with_rows_present(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    """Every file with a `-- migrate:down` part, applied and then undone newest first (rows
    present), leaves the schema that the files before them make. memories.tags stays: the
    MCP server adds and uses it too."""
    before = tmp_path / "sql"
    for module in sorted((REPO / "sql").iterdir()):
        older = [p for p in sorted(module.glob("*.sql"))
                 if DOWN_MARKER not in p.read_text("utf-8").splitlines()]
        if older:
            (before / module.name).mkdir(parents=True)
            shutil.copy2(module / "module.yaml", before / module.name)
            for path in older:
                shutil.copy2(path, before / module.name)
    expected_db, undone_db = cluster.create_database(), cluster.create_database()
    try:
        for db in (expected_db, undone_db):
            if cluster.has_pgvector:
                with connect(db, autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION vector")
        migrate_all(expected_db, before)
        applied = migrate_all(undone_db, REPO / "sql")
        with connect(undone_db, autocommit=True) as conn:
            conn.execute((REPO / "tests/data/design_rows.sql").read_text("utf-8"))
            for migration in reversed(applied):
                text = migration.path.read_text("utf-8")
                if f"\n{DOWN_MARKER}\n" in text:
                    with conn.transaction():
                        conn.execute(text.split(f"\n{DOWN_MARKER}\n", 1)[1])
        left = [line for line in schema_dump(cluster, undone_db)
                if "tags text[]" not in line and "memories_tags_idx" not in line]
        assert left == schema_dump(cluster, expected_db)
    finally:
        cluster.drop_database(expected_db)
        cluster.drop_database(undone_db)


def test_dropped_document_tables_come_back_in_their_document_shape(
        schema: ConnInfo) -> None:  # noqa: F811 (fixture)
    """Drift repair replays 001 and then 006 of learning_pipeline: the later DROP and
    re-creation of daily_learning_metrics, the new triggers and aliases come back too."""
    with db.connect(schema, autocommit=True) as conn:
        conn.execute("DROP TABLE learning_queue, conversation_feedback CASCADE")
        restored = schema_drift.repair(Migrator(conn, select_modules(REPO / "sql", None)))
        assert {"table learning_queue", "table conversation_feedback",
                "materialized view daily_learning_metrics"} <= set(restored)
        assert [r for r in conn.execute("SELECT * FROM validate_schema_integrity()")
                if r[1] != "ok"] == []
        session = conn.execute("INSERT INTO sessions (title) VALUES ('s') RETURNING id"
                               ).fetchone()[0]
        conn.execute("INSERT INTO conversation_feedback (conversation_id, feedback_type, "
                     "rating, reason) VALUES (%s, 'thumbs_down', 2, 'wrong')", (session,))
        conn.execute("REFRESH MATERIALIZED VIEW daily_learning_metrics")
        assert conn.execute("SELECT source_type, count, shop_id FROM daily_learning_metrics"
                            ).fetchall() == [("feedback", 1, 0)]
        assert conn.execute("SELECT proposed_content FROM learning_queue").fetchall() == [
            ("wrong",)]
