"""The npx option (`mcp_server: npx`) really works: the real server, launched exactly as
.mcp.json says.

`@modelcontextprotocol/server-postgres` runs whatever one simple query holds, so
`SELECT 1; COMMIT; DROP TABLE …` escapes its read-only transaction. Only the database role
stops it: these tests prove that the role written into the config does. (The project's own
server, the default, is tested in test_mcp_server.py.)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess

import psycopg
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from installer.mcp_config import MCP_SERVER_PACKAGE
from tests.conftest import Project

SMUGGLED = [
    "SELECT 1; COMMIT; DROP TABLE agent_metrics",
    "SELECT 1; COMMIT; INSERT INTO agent_metrics (agent_name, task_type, success) "
    "VALUES ('x', 'y', true)",
    "SELECT 1; COMMIT; SET default_transaction_read_only = off; "
    "DELETE FROM agent_metrics",
    "SELECT 1; COMMIT; CREATE TABLE smuggled (id int)",
    "SELECT 1; COMMIT; CREATE ROLE evil SUPERUSER",
    "SELECT 1; COMMIT; COPY (SELECT 1) TO PROGRAM 'touch /tmp/mcp-escaped'",
]


def _npm_cache() -> str:
    """The npm cache scripts/test.sh warmed: the one of the real HOME, not the test's."""
    return subprocess.run(["npm", "config", "get", "cache"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _npx_ready() -> str | None:
    if shutil.which("npx") is None:
        return "npx is not installed (scripts/test.sh installs it)"
    probe = subprocess.run(["npm", "cache", "ls", MCP_SERVER_PACKAGE.rsplit("@", 1)[0]],
                           capture_output=True, text=True, check=False)
    if MCP_SERVER_PACKAGE.rsplit("@", 1)[1] not in probe.stdout:
        return f"{MCP_SERVER_PACKAGE} is not in the npm cache (scripts/test.sh fetches it)"
    return None


async def _ask(project: Project, queries: list[str]) -> list[tuple[bool, str]]:
    entry = json.loads((project.path / ".mcp.json").read_text())["mcpServers"]["learning-db"]
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], cwd=str(project.path),
        env={"HOME": str(project.home), "PATH": os.environ["PATH"],
             # the package comes from the warmed cache: no download on every run
             "npm_config_cache": _npm_cache(), "npm_config_prefer_offline": "true",
             **entry.get("env", {})})
    answers = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for query in queries:
            try:
                result = await session.call_tool("query", {"sql": query})
            except MCPError as exc:  # the server reports a failed query as a protocol error
                answers.append((True, str(exc)))
                continue
            text = "".join(getattr(part, "text", "") for part in result.content)
            answers.append((bool(getattr(result, "is_error", False)), text))
    return answers


@pytest.mark.required_area("mcp")
def test_agent_reads_through_mcp_and_cannot_write(project: Project) -> None:
    reason = _npx_ready()
    if reason:
        pytest.skip(reason)
    assert project.install(LEARNING_MCP_SERVER="npx").returncode == 0
    url = project.read_env()["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES ('DIRECTOR', 'planning', true)")
    answers = asyncio.run(asyncio.wait_for(
        _ask(project, ["SELECT agent_name FROM agent_metrics", *SMUGGLED]), 120))
    failed, text = answers[0]
    assert not failed, text
    assert "DIRECTOR" in text
    for query, (failed, text) in zip(SMUGGLED, answers[1:], strict=True):
        assert failed, f"{query!r} was allowed: {text}"
        assert any(reason in text for reason in ("read-only transaction", "permission denied",
                                                 "must be superuser")), text
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM agent_metrics").fetchone() == (1,)
        assert conn.execute("SELECT to_regclass('smuggled')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'evil'"
                            ).fetchone() == (0,)
    assert not os.path.exists("/tmp/mcp-escaped")


def test_agent_role_cannot_reach_other_databases(project: Project) -> None:
    assert project.install().returncode == 0
    env = project.read_env()
    for other in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(host="127.0.0.1", port=project.port, dbname=other,
                            user="learning_agent", password=env["LEARNING_AGENT_PASSWORD"])
