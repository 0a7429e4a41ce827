"""`doctor` proves the agents' path: each MCP client's entry started as the client would and
one read through it, the agent role tried against every database of the server, and a failed
login named by its cause (libpq's real errors, classified by `db.cause_of`)."""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from installer import db
from installer.credentials import ConnInfo
from installer.errors import ServerError
from tests.conftest import Cluster, Project, free_port, start_cluster
from tests.integration.cli_helpers import installed, output
from tests.integration.test_mcp_readonly import _npm_cache, _npx_ready


def _doctor(project: Project, **env: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = project.run("doctor", "--json", **env)
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    return result.returncode, checks


def _mcp(checks: dict[str, dict[str, str]], label: str) -> dict[str, str]:
    return checks[f"{label}: the learning-db MCP server answers a read"]


# -- the MCP probe on a native installation ---------------------------------------------------

def test_doctor_probes_each_mcp_entry_and_names_the_cause(project: Project) -> None:
    installed(project, "--mcp-clients", "claude-code,cursor")
    code, checks = _doctor(project)
    assert code == 0, checks
    claude, cursor = _mcp(checks, "Claude Code"), _mcp(checks, "Cursor")
    assert claude["state"] == "ok" and "learning_agent@learning_system" in claude["detail"]
    assert cursor["state"] == "ok" and "the same entry as Claude Code" in cursor["detail"]
    separation = checks["learning_agent can connect to learning_system only"]
    assert separation["state"] == "ok" and "refused by each" in separation["detail"]

    # a database someone made on our server is open to PUBLIC: named, and how to close it
    env = project.read_env()
    admin = ConnInfo("127.0.0.1", int(env["PGPORT"]), "postgres", env["LEARNING_ADMIN_USER"],
                     env["LEARNING_ADMIN_PASSWORD"])
    with db.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE someone_elses")
    code, checks = _doctor(project)
    separation = checks["learning_agent can connect to learning_system only"]
    assert code == 1 and separation["detail"] == "it connected to someone_elses"
    assert "someone_elses is not the installer's" in separation["hint"]
    assert "repairs exactly this" not in separation["hint"]
    with db.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE someone_elses")

    # a wrong agent password in .env: the server the entry starts is refused, and says why
    env_file = project.path / ".env"
    original = env_file.read_text()
    password = project.read_env()["LEARNING_AGENT_PASSWORD"]
    env_file.write_text(original.replace(password, "not-the-password"))
    result = project.run("doctor")
    code, checks = _doctor(project)
    assert code == 1
    probe = _mcp(checks, "Claude Code")
    assert probe["state"] == "failed" and "the password was refused" in probe["detail"]
    assert "password authentication failed" in probe["detail"] and "--full" in probe["hint"]
    assert checks["learning_agent logs in to learning_system"]["state"] == "failed"
    assert "not-the-password" not in result.stdout + result.stderr
    env_file.write_text(original)

    # a broken command in the file Claude Code reads; Cursor's own entry still answers
    mcp_json = project.path / ".mcp.json"
    entry = json.loads(mcp_json.read_text())
    entry["mcpServers"]["learning-db"]["command"] = str(project.path / "no-such-python")
    mcp_json.write_text(json.dumps(entry))
    code, checks = _doctor(project)
    assert code == 1
    probe = _mcp(checks, "Claude Code")
    assert probe["state"] == "failed" and "does not start" in probe["detail"]
    assert "no-such-python" in probe["detail"] and "fix the entry's command" in probe["hint"]
    assert _mcp(checks, "Cursor")["state"] == "ok"

    # an entry whose server exits at once: its stderr is the reason
    entry["mcpServers"]["learning-db"]["args"] = [str(project.path / "gone.py")]
    entry["mcpServers"]["learning-db"]["command"] = \
        json.loads((project.path / ".cursor" / "mcp.json").read_text())[
            "mcpServers"]["learning-db"]["command"]
    mcp_json.write_text(json.dumps(entry))
    probe = _mcp(_doctor(project)[1], "Claude Code")
    assert probe["state"] == "failed" and "it exited" in probe["detail"]
    assert "gone.py" in probe["detail"]

    # Cursor's entry answering, but as another role in another database (its env's password)
    cursor_json = project.path / ".cursor" / "mcp.json"
    other = json.loads(cursor_json.read_text())
    other["mcpServers"]["learning-db"]["args"][-1] = admin.to(password=None).url()
    other["mcpServers"]["learning-db"]["env"] = {"PGPASSWORD": admin.password}
    cursor_json.write_text(json.dumps(other))
    probe = _mcp(_doctor(project)[1], "Cursor")
    assert probe["state"] == "failed", probe
    assert probe["detail"] == "it reads as postgres@postgres, not learning_agent@learning_system"


# -- failed logins, classified from libpq's own messages --------------------------------------

@pytest.fixture(scope="module")
def pg(shared_tmp: Path) -> Iterator[Cluster]:
    cluster = start_cluster(shared_tmp, "system")
    yield cluster
    cluster.backend.stop()


def _failure(info: ConnInfo, **options: object) -> ServerError:
    with pytest.raises(ServerError) as caught:
        db.connect(info, **options).close()
    return caught.value


def _cause(info: ConnInfo, **options: object) -> str:
    return db.cause_of(_failure(info, **options).__cause__ or "").kind


def test_real_connection_failures_are_named_by_their_cause(pg: Cluster) -> None:
    role, password = f"r_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    closed = f"closed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg.admin.kwargs(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(closed)))
        admin.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(closed)))
    user = pg.admin.to(user=role, password=password)

    wrong = _failure(user.to(password="wrong"))
    assert db.cause_of(wrong.__cause__ or "").kind == "password"
    assert wrong.hint and "the password was refused" in wrong.hint and "--full" in wrong.hint
    assert _cause(user.to(dbname=closed)) == "connect"
    assert _cause(user.to(dbname="no_such_database")) == "database"
    assert _cause(user, sslmode="require") == "tls"  # the test cluster has no TLS
    assert _cause(user.to(port=free_port())) == "refused"
    assert "start the server" in _failure(user.to(port=free_port())).hint

    hba = pg.backend.pgdata / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text(f"host all {role} 127.0.0.1/32 reject\n" + original)
        with psycopg.connect(**pg.admin.kwargs(), autocommit=True) as admin:
            admin.execute("SELECT pg_reload_conf()")
        refused = _failure(user)
        assert db.cause_of(refused.__cause__ or "").kind == "pg_hba"
        assert refused.hint and "pg_hba.conf" in refused.hint
    finally:
        hba.write_text(original)
        with psycopg.connect(**pg.admin.kwargs(), autocommit=True) as admin:
            admin.execute("SELECT pg_reload_conf()")
    assert db.cause_of('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "a", database '
                       '"b", SSL encryption').kind == "pg_hba"  # not "tls"


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:  # accepts TCP connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        info = ConnInfo("127.0.0.1", silent.getsockname()[1], "x", "y", "z")
        assert _cause(info, connect_timeout=1) == "timeout"


@pytest.mark.required_area("mcp")
def test_doctor_probes_the_npx_server_too(project: Project) -> None:
    """The server-postgres entry (`mcp_server: npx`), started by doctor as written; its
    package comes from the npm cache scripts/test.sh warmed, reached through HOME."""
    reason = _npx_ready()
    if reason:
        pytest.skip(reason)
    (project.home / ".npm").symlink_to(_npm_cache())
    result = project.install("--mcp-clients", "claude-code,gemini", LEARNING_MCP_SERVER="npx")
    assert result.returncode == 0, output(result)
    code, checks = _doctor(project)
    assert code == 0, checks
    assert "learning_agent@learning_system" in _mcp(checks, "Claude Code")["detail"]
    assert "the same entry as Claude Code" in _mcp(checks, "Gemini CLI")["detail"]

    pgpass = project.home / ".pgpass"  # node-postgres reads the password from here
    pgpass.write_text(pgpass.read_text().replace(
        project.read_env()["LEARNING_AGENT_PASSWORD"], "not-the-password"))
    code, checks = _doctor(project)
    probe = _mcp(checks, "Claude Code")
    assert code == 1 and probe["state"] == "failed", probe
    assert "the password was refused" in probe["detail"], probe
