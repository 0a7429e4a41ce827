"""The schema modules do what they promise, on PostgreSQL 15 without pgvector (real[] fallback)
and on the embedded PostgreSQL 16 with pgvector, and the agent role can only read them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from installer.credentials import ConnInfo
from installer.errors import ConfigError, ExitCode
from installer.migrations import migrate_all
from installer.modules import select_modules
from installer.schema_maintenance import EmbeddingColumnsStep, PartitionsStep
from tests.conftest import REPO, Cluster, Project

SQL_DIR = REPO / "sql"
DIMS = 768


def connect(conn: ConnInfo, **extra: Any) -> psycopg.Connection:
    return psycopg.connect(**conn.kwargs(**extra))


def migrate(conn: ConnInfo, modules: list[str] | None = None) -> None:
    migrate_all(conn, SQL_DIR, modules)


def embedding(*head: float) -> list[float]:
    """A 768-dimension vector: `head`, then zeros."""
    return [float(x) for x in head] + [0.0] * (DIMS - len(head))


def in_parallel(workers: int, work: Callable[[psycopg.Connection], Any],
                conn: ConnInfo) -> list[Any]:
    """`work(connection)` on `workers` connections at once (started together)."""
    barrier = threading.Barrier(workers)

    def run(_: int) -> Any:
        with connect(conn, autocommit=True) as own:
            barrier.wait()
            return work(own)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


@pytest.fixture(scope="module")
def migrated_template(cluster: Cluster) -> Iterator[ConnInfo]:
    """One database per cluster with every module migrated (pgvector first, where the cluster
    has it), copied for each test: a copy is much faster than migrating again."""
    template = cluster.create_database()
    if cluster.has_pgvector:
        with connect(template, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
    migrate(template)
    yield template
    cluster.drop_database(template)


@pytest.fixture
def schema(cluster: Cluster, migrated_template: ConnInfo) -> Iterator[ConnInfo]:
    """A fresh database with every module migrated."""
    copy = migrated_template.to(dbname=f"t_{uuid.uuid4().hex[:12]}")
    with connect(cluster.admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(copy.dbname), sql.Identifier(migrated_template.dbname)))
    yield copy
    cluster.drop_database(copy)


def test_claim_task_hands_each_task_to_exactly_one_of_8_workers(schema: ConnInfo) -> None:
    with connect(schema) as conn:
        agents = [row[0] for row in conn.execute(
            "INSERT INTO agents (name, agent_type) SELECT 'worker ' || n, 'coder' "
            "FROM generate_series(1, 8) n RETURNING id")]
        conn.execute("INSERT INTO tasks (title, agent_type, priority) "
                     "SELECT 'task ' || n, 'coder', n % 5 FROM generate_series(1, 1000) n")
        conn.execute("INSERT INTO tasks (title, agent_type) VALUES ('review', 'reviewer')")
    next_agent = iter(agents)
    lock = threading.Lock()

    def claim_all(conn: psycopg.Connection) -> tuple[Any, list[Any]]:
        with lock:
            agent = next(next_agent)
        claimed = []
        while row := conn.execute("SELECT id, claimed_by FROM claim_task('coder', %s)",
                                  (agent,)).fetchone():
            assert row[1] == agent
            claimed.append(row[0])
        return agent, claimed

    results = in_parallel(8, claim_all, schema)
    claimed = [task for _, tasks in results for task in tasks]
    assert len(claimed) == 1000
    assert len(set(claimed)) == 1000
    assert sum(1 for _, tasks in results if tasks) > 1  # the workers really ran side by side
    with connect(schema) as conn:
        owners = dict(conn.execute("SELECT id, claimed_by FROM tasks WHERE agent_type = 'coder' "
                                   "AND status = 'claimed' AND claimed_at IS NOT NULL"))
        assert owners == {task: agent for agent, tasks in results for task in tasks}
        assert conn.execute("SELECT status FROM tasks WHERE agent_type = 'reviewer'"
                            ).fetchone() == ("pending",)


def test_task_status_flow(schema: ConnInfo) -> None:
    with connect(schema, autocommit=True) as conn:
        agent = conn.execute("INSERT INTO agents (name, agent_type) VALUES ('a', 'coder') "
                             "RETURNING id").fetchone()[0]
        first, second = (row[0] for row in conn.execute(
            "INSERT INTO tasks (title, priority) VALUES ('urgent', 9), ('later', 1) RETURNING id"))
        assert conn.execute("SELECT id FROM claim_task('anything', %s)",
                            (agent,)).fetchone() == (first,)  # untyped tasks suit any agent
        with pytest.raises(errors.CheckViolation, match="cannot go from pending to completed"):
            conn.execute("UPDATE tasks SET status = 'completed' WHERE id = %s", (second,))
        for status in ("running", "completed"):
            conn.execute("UPDATE tasks SET status = %s WHERE id = %s", (status, first))
        assert conn.execute("SELECT status, started_at <= completed_at FROM tasks WHERE id = %s",
                            (first,)).fetchone() == ("completed", True)
        conn.execute("SELECT claim_task('coder', %s)", (agent,))
        conn.execute("UPDATE tasks SET status = 'pending' WHERE id = %s", (second,))  # release
        assert conn.execute("SELECT status, claimed_by FROM tasks WHERE id = %s",
                            (second,)).fetchone() == ("pending", None)


def test_negative_feedback_and_corrections_enqueue_learning_items(schema: ConnInfo) -> None:
    with connect(schema, autocommit=True) as conn:
        session = conn.execute("INSERT INTO sessions (title) VALUES ('s') RETURNING id"
                               ).fetchone()[0]
        chunk = conn.execute(
            "INSERT INTO conversation_chunks (session_id, role, content) "
            "VALUES (%s, 'assistant', 'Paris is in Spain') RETURNING id", (session,)).fetchone()[0]

        def feedback(kind: str, rating: int | None = None) -> Any:
            return conn.execute(
                "INSERT INTO conversation_feedback (session_id, chunk_id, feedback_type, rating) "
                "VALUES (%s, %s, %s, %s) RETURNING id", (session, chunk, kind, rating)
            ).fetchone()[0]

        negative = {feedback("thumbs_down"), feedback("rating", 2), feedback("rating", 1)}
        feedback("thumbs_up")
        feedback("rating", 3)
        feedback("comment")
        corrections = dict(conn.execute(
            "INSERT INTO owner_corrections (session_id, chunk_id, original_response, "
            "corrected_response, priority) VALUES (%(s)s, %(c)s, 'Paris is in Spain', "
            "'Paris is in France', 'critical'), (%(s)s, %(c)s, NULL, 'Say hello first', 'low') "
            "RETURNING priority, id", {"s": session, "c": chunk}).fetchall())
        queued = {row[1]: row for row in conn.execute(
            "SELECT source_type, source_id, status, confidence, priority, context, session_id "
            "FROM learning_queue")}
        assert set(queued) == negative | set(corrections.values())
        for source in negative:
            assert queued[source][0] == "feedback"
            assert queued[source][2] == "pending"  # feedback waits for approval
            assert queued[source][5] == "Paris is in Spain"  # the rated response
            assert queued[source][6] == session
        assert queued[corrections["critical"]][2:5] == ("approved", 1.0, 3)
        assert queued[corrections["low"]][2:5] == ("approved", 0.6, 0)
        assert conn.execute("SELECT count(*) FROM learning_audit_log WHERE action = 'enqueued'"
                            ).fetchone() == (5,)
        # An import replays rows without their side effects.
        with conn.transaction():
            conn.execute("SET LOCAL learning.import = 'on'")
            feedback("thumbs_down")
        assert conn.execute("SELECT count(*) FROM learning_queue").fetchone() == (5,)


def test_batch_process_learning_from_4_connections_processes_each_item_once(
        schema: ConnInfo) -> None:
    with connect(schema) as conn:
        conn.execute("INSERT INTO owner_corrections (corrected_response, priority) "
                     "SELECT 'fix ' || n, (ARRAY['low', 'normal', 'high'])[n % 3 + 1] "
                     "FROM generate_series(1, 400) n")
        conn.execute("INSERT INTO learning_queue (source_type, content) "
                     "SELECT 'manual', 'unreviewed ' || n FROM generate_series(1, 30) n")

    def drain(conn: psycopg.Connection) -> int:
        total = 0
        while done := conn.execute("SELECT batch_process_learning(7)").fetchone()[0]:
            total += done
        return total

    counts = in_parallel(4, drain, schema)
    assert sum(counts) == 400
    with connect(schema) as conn:
        assert dict(conn.execute("SELECT status, count(*) FROM learning_queue GROUP BY 1")) == {
            "processed": 400, "pending": 30}
        per_item = conn.execute(
            "SELECT count(DISTINCT learning_queue_id), count(*) FROM learning_audit_log "
            "WHERE new_status = 'processed'").fetchone()
        assert per_item == (400, 400)
        assert conn.execute("SELECT count(*) FROM owner_corrections WHERE applied_at IS NOT NULL"
                            ).fetchone() == (400,)
        assert conn.execute("SELECT batch_process_learning()").fetchone() == (0,)


def test_check_similar_knowledge_returns_nearest_above_threshold_only(schema: ConnInfo) -> None:
    items = {"near": embedding(1, 0.2), "middle": embedding(1, 0.5), "far": embedding(1, 1),
             "rejected": embedding(1, 0.01)}
    with connect(schema, autocommit=True) as conn:
        for name, vector in items.items():
            conn.execute("INSERT INTO learning_queue (source_type, content, embedding, status) "
                         "VALUES ('manual', %s, %s::real[], %s)",
                         (name, vector, "rejected" if name == "rejected" else "approved"))

        def similar(vector: list[float], *threshold: float) -> list[tuple[str, float]]:
            args = sql.SQL(", ").join([sql.SQL("%s::real[]"), *[sql.SQL("%s")] * len(threshold)])
            query = sql.SQL("SELECT content, similarity FROM check_similar_knowledge({})")
            return [(name, round(score, 3)) for name, score in
                    conn.execute(query.format(args), (vector, *threshold))]

        assert similar(embedding(1, 0)) == [("near", 0.981), ("middle", 0.894)]  # default 0.85
        assert similar(embedding(1, 0), 0.95) == [("near", 0.981)]
        assert similar(embedding(1, 0), 0.6) == [("near", 0.981), ("middle", 0.894),
                                                 ("far", 0.707)]
        assert similar(embedding(0, 1)) == []


def test_partitions_exist_for_this_month_and_next_and_inserts_route_to_them(
        schema: ConnInfo) -> None:
    with connect(schema, autocommit=True) as conn:
        this_month, next_month = conn.execute(
            "SELECT learning_event_partition_name(m::date), "
            "learning_event_partition_name((m + interval '1 month')::date) "
            "FROM date_trunc('month', now() AT TIME ZONE 'UTC') m").fetchone()

        def insert(at: str) -> tuple[Any, str]:
            return conn.execute(
                f"INSERT INTO learning_events (event_type, created_at) VALUES ('e', {at}) "
                "RETURNING id, tableoid::regclass::text").fetchone()

        assert insert("now()")[1] == this_month
        assert insert("date_trunc('month', now()) + interval '32 days'")[1] == next_month
        far, where = insert("now() + interval '3 years'")
        assert where == "learning_events_default"  # kept, never rejected

        step = PartitionsStep(schema)
        check = step.check()
        assert check.state == "change"
        step.apply(check)
        assert step.check().ok
        moved = conn.execute("SELECT tableoid::regclass::text FROM learning_events WHERE id = %s",
                             (far,)).fetchone()[0]
        assert moved.startswith("learning_events_2") and moved != this_month
        assert conn.execute("SELECT count(*) FROM learning_events").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM learning_events_default").fetchone() == (0,)


def test_validate_schema_integrity_is_all_ok(schema: ConnInfo, cluster: Cluster) -> None:
    with connect(schema) as conn:
        rows = conn.execute("SELECT * FROM validate_schema_integrity()").fetchall()
    assert [r for r in rows if r[1] != "ok"] == []
    checks = {name: detail for name, _, detail in rows}
    assert "learning_events partitions" in checks
    assert ("pgvector" if cluster.has_pgvector else "real[] fallback") in checks[
        "embedding columns"]


def test_full_text_search_finds_chunks_memories_and_artifacts(schema: ConnInfo) -> None:
    with connect(schema, autocommit=True) as conn:
        session = conn.execute("INSERT INTO sessions DEFAULT VALUES RETURNING id").fetchone()[0]
        chunk = conn.execute(
            "INSERT INTO conversation_chunks (session_id, role, content) VALUES "
            "(%s, 'user', 'The flux capacitors need 1.21 gigawatts') RETURNING id",
            (session,)).fetchone()[0]
        conn.execute("INSERT INTO memories (session_id, content) VALUES "
                     "(%s, 'rotate the deployment keys monthly')", (session,))
        conn.execute("INSERT INTO artifacts (session_id, name, content) VALUES "
                     "(%s, 'deploy.sh', 'kubectl rollout restart')", (session,))
        hits = conn.execute("SELECT source, id, snippet FROM search_content('capacitor')"
                            ).fetchall()
        assert hits == [("chunk", chunk, "The flux <b>capacitors</b> need 1.21 gigawatts")]
        assert [h[0] for h in conn.execute("SELECT * FROM search_content('rotating keys')")] == [
            "memory"]
        assert [h[0] for h in conn.execute("SELECT * FROM search_content('kubectl')")] == [
            "artifact"]
        assert conn.execute("SELECT * FROM search_content('teleport')").fetchall() == []
        active = conn.execute("SELECT chunk_count, memory_count, artifact_count FROM "
                              "active_sessions WHERE id = %s", (session,)).fetchone()
        assert active == (1, 1, 1)


def test_session_counters_stay_right_under_concurrent_writers(schema: ConnInfo) -> None:
    with connect(schema) as conn:
        session = conn.execute("INSERT INTO sessions DEFAULT VALUES RETURNING id").fetchone()[0]

    def write(conn: psycopg.Connection) -> None:
        for n in range(25):
            conn.execute("INSERT INTO conversation_chunks (session_id, role, content) "
                         "VALUES (%s, 'user', %s)", (session, f"line {n}"))

    in_parallel(4, write, schema)
    with connect(schema) as conn:
        assert conn.execute("SELECT chunk_count FROM sessions WHERE id = %s",
                            (session,)).fetchone() == (100,)


def test_embedding_columns_without_pgvector_use_the_real_array_fallback(
        database: ConnInfo) -> None:
    migrate(database)  # no vector extension: every embedding column is real[]
    check = EmbeddingColumnsStep(database).check()
    assert check.ok and "real[] fallback" in check.detail


@pytest.mark.required_area("pgvector")
@pytest.mark.parametrize("cluster", ["embedded"], indirect=True)
def test_embedding_columns_convert_in_place_when_pgvector_arrives(
        cluster: Cluster, database: ConnInfo) -> None:
    if not cluster.has_pgvector:
        pytest.skip("the embedded PostgreSQL has no pgvector")
    migrate(database)  # no vector extension yet: every embedding column is real[]
    step = EmbeddingColumnsStep(database)
    assert step.check().ok
    vectors = {"a": embedding(1, 0), "b": embedding(0, 1), "c": embedding(1, 1)}
    with connect(database, autocommit=True) as conn:
        for name, vector in vectors.items():
            conn.execute("INSERT INTO learning_queue (source_type, content, embedding) "
                         "VALUES ('manual', %s, %s::real[])", (name, vector))
        conn.execute("INSERT INTO memories (content, embedding) VALUES ('m', %s::real[])",
                     (vectors["a"],))
        conn.execute("CREATE EXTENSION vector")
        check = step.check()
        assert check.state == "change"
        assert {"learning_queue.embedding", "memories.embedding", "task_embeddings.embedding",
                "agent_memory_bank.embedding"} <= set(check.detail.split(": ")[1].split(", "))
        step.apply(check)
        assert step.check().ok
        types = conn.execute(
            "SELECT e.table_name, format_type(a.atttypid, a.atttypmod) "
            "FROM installer.embedding_columns e JOIN pg_attribute a "
            "ON a.attrelid = e.table_name::regclass AND a.attname = e.column_name").fetchall()
        assert {kind for _, kind in types} == {"vector(768)"}
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'"
                            ).fetchone() == (len(types),)
        kept = dict(conn.execute("SELECT content, embedding::real[] FROM learning_queue"))
        assert kept == vectors
        assert conn.execute("SELECT content FROM check_similar_knowledge(%s::real[], 0.99)",
                            (vectors["b"],)).fetchall() == [("b",)]
        assert conn.execute("SELECT convert_embedding_columns()").fetchone() == (0,)


def test_module_alone_installs_with_what_it_requires(database: ConnInfo) -> None:
    assert [m.name for m in select_modules(SQL_DIR, ["learning_pipeline"])] == [
        "learning", "collaboration", "learning_pipeline"]
    migrate(database, ["agent_persistence"])
    with connect(database) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert "agent_memory_bank" in tables and "sessions" not in tables
        conn.execute("INSERT INTO agent_session_history (agent_name, session_id) "
                     "VALUES ('a', gen_random_uuid())")  # a soft reference: no sessions needed


@pytest.mark.parametrize("wanted", [["nonsense"], []])
def test_bad_module_selection_is_a_clear_config_error(wanted: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        select_modules(SQL_DIR, wanted)
    assert "learning_pipeline" in (caught.value.hint or "")


WRITES = ("INSERT INTO {} DEFAULT VALUES", "UPDATE {} SET id = id WHERE false",
          "DELETE FROM {} WHERE false", "TRUNCATE {}")
WRITING_CALLS = (
    "SELECT claim_task('coder', gen_random_uuid())", "SELECT claim_task('coder', 'agent_1')",
    "SELECT batch_process_learning(1)", "SELECT * FROM migrate_existing_data()",
    "SELECT create_learning_event_partitions(48)",
    "REFRESH MATERIALIZED VIEW daily_learning_metrics",
    "SELECT register_embedding_column('memories', 'embedding', 768)",
    "CREATE TABLE mine (id int)", "CREATE TEMP TABLE mine (id int)")


@pytest.mark.parametrize("binaries", ["system", "embedded"])
def test_installed_schema_is_valid_and_the_agent_role_only_reads(
        project: Project, binaries: str) -> None:
    project.install("--binaries", binaries, check=True)
    env = project.read_env()
    owner = ConnInfo.from_env(env)
    agent = owner.to(user=env["LEARNING_AGENT_USER"], password=env["LEARNING_AGENT_PASSWORD"])
    with connect(owner) as conn:
        assert [r for r in conn.execute("SELECT * FROM validate_schema_integrity()")
                if r[1] != "ok"] == []
        tables = [row[0] for row in conn.execute(
            "SELECT oid::regclass::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'p') ORDER BY 1")]
    assert "learning_events_default" in tables and "tasks" in tables

    with connect(agent, autocommit=True) as conn:
        # The role's rights are the boundary, not its read-only default: switch that off.
        conn.execute("SET default_transaction_read_only = off")
        refused = []
        for table in tables:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            for write in WRITES:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(sql.SQL(write).format(sql.Identifier(table)))
                refused.append(table)
        assert len(refused) == len(tables) * len(WRITES)
        for call in WRITING_CALLS:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(call)
        # what agents are meant to use works
        conn.execute("SELECT * FROM check_similar_knowledge(array_fill(0.1::real, ARRAY[768]))")
        conn.execute("SELECT * FROM check_similar_knowledge(0, 'x', "
                     "array_fill(0.1::real, ARRAY[768]), 0.85)")
        conn.execute("SELECT * FROM schema_migrations")
        conn.execute("SELECT * FROM search_content('anything')")
        conn.execute("SELECT * FROM active_sessions")
        conn.execute("SELECT * FROM validate_schema_integrity()")
    for other in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect(agent.to(dbname=other)).close()

    with connect(owner, autocommit=True) as conn:  # a month with no partition yet
        conn.execute("INSERT INTO learning_events (event_type, created_at) "
                     "VALUES ('late', now() + interval '3 years')")
    refreshed = json.loads(project.run("refresh", "--json", check=True).stdout)
    assert len(refreshed["partitions_created"]) == 1
    assert set(refreshed["views_refreshed"]) == {"daily_learning_metrics",
                                                 "response_performance_metrics"}
    again = project.install("--binaries", binaries, check=True)
    assert "Nothing to do" in again.stdout  # the new partition is readable by the agent too


def test_install_with_chosen_modules_installs_only_those(project: Project) -> None:
    project.install("--binaries", "system", LEARNING_MODULES="agent_persistence", check=True)
    env = project.read_env()
    assert env["LEARNING_MODULES"] == "agent_persistence"
    status = json.loads(project.run("status", "--json").stdout)
    assert status["healthy"] is True
    assert status["pending_migrations"] == []  # status follows the recorded choice
    assert "agent_memory_bank" in status["tables"] and "sessions" not in status["tables"]
    refreshed = json.loads(project.run("refresh", "--json", check=True).stdout)
    assert refreshed["partitions_created"] == refreshed["views_refreshed"] == []


def test_refresh_before_install_says_what_to_do(project: Project) -> None:
    result = project.run("refresh")
    assert result.returncode == int(ExitCode.CONFIG)
    assert "nothing is installed here yet" in result.stderr
    assert "install.py --full" in result.stderr
