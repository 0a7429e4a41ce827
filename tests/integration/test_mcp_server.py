"""The project's own MCP server, driven by the `mcp` SDK's stdio client and started exactly as
the written .mcp.json says: an agent with bad intent gets refusals or caps, never a write
outside the typed tools; each typed tool writes rows that leave with the next export."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import Project, make_project, stop_instance

TIMEOUT_S = 2  # the configured statement timeout of these tests' server
MAX_ROWS = 50

Call = tuple[str, dict[str, Any]]
EMBEDDING = [1.0, 0.5] + [0.0] * 766


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, shared_tmp: Path) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("mcp-server"), shared_tmp)
    result = project.install(LEARNING_MCP_TIMEOUT=str(TIMEOUT_S),
                             LEARNING_MCP_MAX_ROWS=str(MAX_ROWS))
    assert result.returncode == 0, result.stdout + result.stderr
    yield project
    stop_instance(project.data_dir)


def owner(project: Project) -> psycopg.Connection:
    return psycopg.connect(project.read_env()["DATABASE_URL"], autocommit=True)


async def _session_calls(project: Project, calls: list[Call]) -> list[tuple[bool, str, float]]:
    entry = json.loads((project.path / ".mcp.json").read_text())["mcpServers"]["learning-db"]
    params = StdioServerParameters(  # a client may start it from any directory
        command=entry["command"], args=entry["args"], cwd=str(project.home),
        env={"HOME": str(project.home), "PATH": os.environ["PATH"], **entry.get("env", {})})
    answers = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for name, arguments in calls:
            started = time.monotonic()
            result = await session.call_tool(name, arguments)
            text = "".join(getattr(part, "text", "") for part in result.content)
            answers.append((bool(result.is_error), text, time.monotonic() - started))
    return answers


def ask(project: Project, calls: list[Call]) -> list[tuple[bool, str, float]]:
    return asyncio.run(asyncio.wait_for(_session_calls(project, calls), 180))


def query(sql: str) -> Call:
    return "query", {"sql": sql}


def test_config_starts_the_builtin_server_without_password(installed: Project) -> None:
    text = (installed.path / ".mcp.json").read_text()
    entry = json.loads(text)["mcpServers"]["learning-db"]
    assert Path(entry["command"]).is_absolute() and entry["command"] != "npx"
    assert entry["args"][:2] == [str(installed.path / "install.py"), "mcp-server"]
    assert installed.read_env()["LEARNING_AGENT_PASSWORD"] not in text


def test_probes_are_refused_or_capped(installed: Project) -> None:
    probes = [
        query("SET statement_timeout = 0; SELECT pg_sleep(40)"),
        query("COMMIT; BEGIN READ WRITE; ALTER ROLE learning_agent IN DATABASE learning_system "
              "SET default_transaction_read_only = off; ALTER ROLE learning_agent SET "
              "statement_timeout = 0; COMMIT"),
        query("COMMIT; BEGIN READ WRITE; SELECT lo_from_bytea(0, convert_to(repeat('x',20000000),"
              "'UTF8')); COMMIT"),
        query("SELECT 1; SELECT 2"),
        query("SELECT 1; COMMIT; DELETE FROM agent_metrics"),
        query("ALTER ROLE learning_agent SET statement_timeout = 0"),
        query("SELECT lo_from_bytea(0, 'x')"),
        query("INSERT INTO agent_metrics (agent_name, task_type, success) VALUES ('x','y',true)"),
        query("SELECT agent_api.add_memory('smuggled through query')"),
        query("CREATE TABLE smuggled (id int)"),
    ]
    slow = [query("SELECT pg_sleep(40)"),
            query("SELECT set_config('statement_timeout', '0', false), pg_sleep(40)")]
    answers = ask(installed, [*probes, *slow, query("SHOW statement_timeout"),
                              query("SELECT a FROM generate_series(1, 100000) a, "
                                    "generate_series(1, 100000) b"),  # 10^10 rows, streamed
                              query("SELECT repeat('y', 50000) AS big")])
    for (_, args), (failed, text, _) in zip(probes, answers, strict=False):
        assert failed, f"{args} was allowed: {text}"
    assert "one statement per call" in answers[0][1]
    assert "read-only transaction" in answers[5][1]
    for failed, text, seconds in answers[len(probes):len(probes) + 2]:
        assert failed and "statement timeout" in text, text
        assert seconds < TIMEOUT_S + 6
    shown, huge, wide = (json.loads(answer[1]) for answer in answers[-3:])
    assert shown["rows"] == [{"statement_timeout": f"{TIMEOUT_S}s"}]
    assert huge["row_count"] == MAX_ROWS and "more than" in huge["truncated"]
    assert len(wide["rows"][0]["big"]) < 50000 and "cut" in wide["truncated"]
    with owner(installed) as conn:
        assert conn.execute(
            "SELECT array_agg(c ORDER BY c) FROM pg_db_role_setting s, unnest(s.setconfig) c "
            "WHERE s.setrole = 'learning_agent'::regrole").fetchone()[0] == [
            "default_transaction_read_only=on", "statement_timeout=30s"]
        assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM memories").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('smuggled')").fetchone() == (None,)


def test_reads_list_describe_and_search(installed: Project) -> None:
    listed, described, missing = ask(installed, [
        ("list_tables", {}), ("describe_table", {"table": "memories"}),
        ("describe_table", {"table": "pg_authid"})])
    assert "agent_metrics" in {row["name"] for row in json.loads(listed[1])["rows"]}
    assert "tags" in {column["column"] for column in json.loads(described[1])["columns"]}
    assert missing[0] and "no table" in missing[1]


def _rows(project: Project, table: str) -> list[dict[str, str]]:
    with (project.path / "exports" / "csv" / f"{table}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_typed_writes_land_and_leave_with_the_export(installed: Project) -> None:
    with owner(installed) as conn:
        conn.execute("INSERT INTO tasks (title, agent_type) VALUES ('write the parser', 'coder')")
    answers = ask(installed, [
        ("record_interaction", {"from_agent": "planner", "to_agent": "coder",
                                "message_type": "handoff", "payload": {"step": 1}}),
        ("record_agent_metric", {"agent_name": "coder", "task_type": "parse",
                                 "success": True, "execution_time_ms": 1200}),
        ("add_memory", {"content": "The parser keeps comments", "memory_type": "decision",
                        "tags": ["parser", "design"], "agent_name": "coder"}),
        ("create_artifact", {"name": "parser.py", "content": "The parser, version one",
                             "agent_name": "coder"}),
        ("claim_task", {"agent_type": "coder", "agent_name": "coder"}),
        ("submit_feedback", {"feedback_type": "thumbs_down", "comment": "the parser drops tabs"}),
        ("enqueue_learning", {"content": "tabs matter in parsers", "priority": 1,
                              "embedding": EMBEDDING}),
        ("add_memory", {"content": "x" * 100_001}),
        ("add_memory", {"content": "too many tags", "tags": [f"t{i}" for i in range(40)]}),
        ("search", {"text": "parser"}),
    ])
    for failed, text, _ in answers[:7]:
        assert not failed, text
    assert answers[7][0] and "at most 100000" in answers[7][1]
    assert answers[8][0] and "at most 32 tags" in answers[8][1]
    task = json.loads(answers[4][1])
    assert task["status"] == "claimed" and task["title"] == "write the parser"
    moved = ask(installed, [
        ("update_task_status", {"task_id": task["id"], "status": "running"}),
        ("update_task_status", {"task_id": task["id"], "status": "completed",
                                "result": {"lines": 120}}),
        ("update_task_status", {"task_id": task["id"], "status": "claimed"})])
    assert not moved[1][0] and json.loads(moved[1][1])["status"] == "completed"
    assert moved[2][0] and "cannot go from completed to claimed" in moved[2][1]
    sources = {hit["source"] for hit in json.loads(answers[9][1])["matches"]}
    assert {"memory", "artifact", "knowledge"} <= sources
    similar = ask(installed, [
        ("enqueue_learning", {"content": "indentation is significant", "embedding": EMBEDDING}),
        ("search", {"text": "tabs"}),
        ("search", {"text": "nothing matches", "embedding": EMBEDDING})])
    assert not similar[0][0], similar[0][1]
    like_the_hit = json.loads(similar[1][1])["similar_knowledge"]
    assert [item["content"] for item in like_the_hit] == ["indentation is significant"]
    like_the_embedding = json.loads(similar[2][1])["similar_knowledge"]
    assert len(like_the_embedding) == 2 and like_the_embedding[0]["similarity"] > 0.99
    installed.run("export", check=True)
    assert any(r["message_type"] == "handoff" for r in _rows(installed, "interaction_logs"))
    assert any(r["task_type"] == "parse" for r in _rows(installed, "agent_metrics"))
    memory = next(r for r in _rows(installed, "memories") if r["content"].startswith("The parser"))
    assert "parser" in memory["tags"] and "design" in memory["tags"]
    assert any(r["name"] == "parser.py" for r in _rows(installed, "artifacts"))
    assert any(r["status"] == "completed" for r in _rows(installed, "tasks"))
    feedback = _rows(installed, "conversation_feedback")
    assert any(r["feedback_type"] == "thumbs_down" for r in feedback)
    queue = _rows(installed, "learning_queue")
    assert any(r["source_type"] == "feedback" and r["status"] == "pending"
               for r in queue)  # the pipeline trigger fired
    assert any(r["source_type"] == "manual" and r["content"] == "tabs matter in parsers"
               for r in queue)
