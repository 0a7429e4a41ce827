"""External mode against a separate real cluster, with an admin that is not a superuser."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Cluster, Project, start_cluster
from tests.integration.cli_helpers import Names


@pytest.fixture(scope="module", params=["system", "embedded"])
def server(request: pytest.FixtureRequest, shared_tmp) -> Iterator[Cluster]:
    """Its own cluster: the tests create cluster-wide roles. System 15 has no pgvector; on
    embedded 16 pgvector exists but only a superuser may create it."""
    cluster = start_cluster(shared_tmp, request.param)
    yield cluster
    cluster.backend.stop()


@pytest.fixture
def names() -> Names:
    return Names.fresh()


@pytest.fixture
def admin_env(server: Cluster) -> dict[str, str]:
    """A fresh non-superuser admin with CREATEDB and CREATEROLE, given by environment."""
    name, password = f"dba_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with psycopg.connect(**server.admin.kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)))
    return {"LEARNING_ADMIN_URL":
            f"postgresql://{name}@127.0.0.1:{server.admin.port}/postgres?sslmode=disable",
            "LEARNING_ADMIN_PASSWORD": password}


def superuser_sees(server: Cluster, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(**server.admin.kwargs()) as conn:
        return conn.execute(query, params).fetchall()


def test_install_status_and_uninstall_with_non_superuser_admin(
        project: Project, server: Cluster, admin_env: dict[str, str], names: Names) -> None:
    env = {**admin_env, **names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert admin_env["LEARNING_ADMIN_PASSWORD"] not in result.stdout + result.stderr
    assert "real[] fallback" in result.stdout  # pgvector missing or not creatable by the admin

    dotenv = project.read_env()
    assert dotenv["LEARNING_MODE"] == "external"
    assert dotenv["PGPORT"] == str(server.admin.port)
    assert dotenv["PGDATABASE"] == names.database
    assert "LEARNING_ADMIN_PASSWORD" not in dotenv  # someone else's admin password stays out
    assert admin_env["LEARNING_ADMIN_PASSWORD"] not in (project.path / ".env").read_text()
    mcp = json.loads((project.path / ".mcp.json").read_text())
    assert f"{names.agent}@127.0.0.1:{server.admin.port}/{names.database}" in \
        mcp["mcpServers"]["learning-db"]["args"][-1]

    # status and a re-run need only .env: checks run as the owner role
    status = project.run("status", "--json", **names.env())
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True and report["pending_migrations"] == []
    assert set(report["tables"]) >= {"agent_metrics", "task_embeddings"}
    again = project.run("--full", "--json", **names.env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changes"] == 0
    with psycopg.connect(dotenv["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES ('ext', 'test', true)")
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                            "attrelid = 'task_embeddings'::regclass AND attname = 'embedding'"
                            ).fetchone()[0] == "real[]"

    # uninstall without --purge --yes drops nothing on the server
    for args in (("uninstall",), ("uninstall", "--purge")):
        kept = project.run(*args, **env)
        # --purge without --yes and without a terminal is refused (exit 3), never assumed
        assert kept.returncode == (3 if "--purge" in args else 0), kept.stdout + kept.stderr
        assert superuser_sees(server, "SELECT 1 FROM pg_database WHERE datname = %s",
                              names.database)
        assert len(superuser_sees(server, "SELECT 1 FROM pg_roles WHERE rolname = ANY(%s)",
                                  [names.owner, names.agent])) == 2
    with psycopg.connect(dotenv["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM agent_metrics").fetchone()[0] == 1

    purged = project.run("uninstall", "--purge", "--yes", **env)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not superuser_sees(server, "SELECT 1 FROM pg_database WHERE datname = %s",
                              names.database)
    assert not superuser_sees(server, "SELECT 1 FROM pg_roles WHERE rolname = ANY(%s)",
                              [names.owner, names.agent])


def test_without_admin_connection_fails_clearly(project: Project, names: Names) -> None:
    result = project.run("--full", "--mode", "external", **names.env())
    assert result.returncode == 3
    assert "LEARNING_ADMIN_URL" in result.stderr
    assert not (project.path / ".env").exists()


def test_existing_role_of_someone_else_is_not_taken_over(
        project: Project, server: Cluster, admin_env: dict[str, str], names: Names) -> None:
    with psycopg.connect(**server.admin.kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'theirs'").format(
            sql.Identifier(names.owner)))
    result = project.run("--full", "--mode", "external", **admin_env, **names.env())
    assert result.returncode == 3
    assert names.owner in result.stderr and "does not reset passwords" in result.stderr
    with psycopg.connect(host="127.0.0.1", port=server.admin.port, dbname="postgres",
                         user=names.owner, password="theirs"):
        pass  # their password still works


def _can_connect(server: Cluster, database: str, user: str, password: str) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=server.admin.port, dbname=database,
                             user=user, password=password, connect_timeout=3):
            return True
    except psycopg.OperationalError as exc:
        assert "permission denied for database" in str(exc)
        return False


def _public_may_connect(server: Cluster, database: str) -> bool:
    return superuser_sees(server, "SELECT has_database_privilege('public', oid, 'CONNECT') "
                          "FROM pg_database WHERE datname = %s", database)[0][0]


def test_agent_is_kept_out_of_the_admins_application_database(
        project: Project, server: Cluster, admin_env: dict[str, str], names: Names) -> None:
    """Issue 15: an application database the admin owns, beside ours. After --full the agent
    cannot connect to it, its users still can; uninstall gives PUBLIC its CONNECT back."""
    app, app_user, app_password = f"app_{names.agent[6:]}", f"appuser_{names.agent[6:]}", "apppw"
    admin = admin_env["LEARNING_ADMIN_URL"].split("//")[1].split("@")[0]
    with psycopg.connect(**server.admin.kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(app_user), sql.Literal(app_password)))
    with psycopg.connect(host="127.0.0.1", port=server.admin.port, dbname="postgres",
                         user=admin, password=admin_env["LEARNING_ADMIN_PASSWORD"],
                         autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(app)))
    assert _can_connect(server, app, app_user, app_password)

    env = {**admin_env, **names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{app}: PUBLIC's CONNECT revoked, granted to" in result.stdout
    assert app_user in result.stdout
    assert "postgres (owner postgres)" in result.stdout  # not the admin's: named, untouched
    agent_password = project.read_env()["LEARNING_AGENT_PASSWORD"]
    assert not _can_connect(server, app, names.agent, agent_password)
    assert _can_connect(server, app, app_user, app_password)
    assert _can_connect(server, names.database, names.agent, agent_password)
    record = json.loads((project.path / ".learning" / "other-databases.json").read_text())
    assert app_user in record["databases"][app]

    again = project.run("--full", "--json", **env)
    assert again.returncode == 0 and json.loads(again.stdout)["changes"] == 0

    doctor = project.run("doctor", "--json", **env)
    assert doctor.returncode == 0, doctor.stdout
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    separation = checks[f"{names.agent} can connect to {names.database} only"]
    assert separation["state"] == "warning" and app not in separation["detail"]
    assert "connected to postgres" in separation["detail"]
    assert "REVOKE CONNECT ON DATABASE" in separation["hint"]
    assert checks["Claude Code: the learning-db MCP server answers a read"]["state"] == "ok"

    removed = project.run("uninstall", **env)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"PUBLIC's CONNECT given back on {app}" in removed.stdout
    assert _public_may_connect(server, app)
    assert not superuser_sees(
        server, "SELECT 1 FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON "
        "r.oid = a.grantee WHERE d.datname = %s AND r.rolname = %s", app, app_user)
    assert _can_connect(server, app, names.agent, agent_password)  # as before the install
    assert not (project.path / ".learning" / "other-databases.json").exists()

    # turned off: the next --full gives it back too, and doctor warns
    assert project.run("--full", **env).returncode == 0
    assert not _public_may_connect(server, app)
    off = project.run("--full", **env, LEARNING_PROTECT_OTHER_DATABASES="false")
    assert off.returncode == 0, off.stdout + off.stderr
    assert f"PUBLIC's CONNECT given back on {app}" in off.stdout
    assert _public_may_connect(server, app)
    assert project.read_env()["LEARNING_PROTECT_OTHER_DATABASES"] == "false"
    doctor = project.run("doctor", **env)
    assert doctor.returncode == 0 and "protect_other_databases is off" in doctor.stdout


@pytest.mark.parametrize("server", ["embedded"], indirect=True)  # the one with pgvector
def test_a_provider_admin_role_is_asked_to_create_pgvector(
        project: Project, server: Cluster, admin_env: dict[str, str], names: Names) -> None:
    """An admin in rds_superuser (cloudsqlsuperuser, azure_pg_admin…) may create allow-listed
    extensions: the install tries; where the server still refuses, the real[] fallback."""
    assert server.has_pgvector
    admin = admin_env["LEARNING_ADMIN_URL"].split("//")[1].split("@")[0]
    with psycopg.connect(**server.admin.kwargs(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'").fetchone():
            conn.execute("CREATE ROLE rds_superuser NOLOGIN")
        conn.execute(sql.SQL("GRANT rds_superuser TO {}").format(sql.Identifier(admin)))
    env = {**admin_env, **names.env()}
    result = project.run("--full", "--mode", "external", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "permission denied to create extension" in result.stdout  # a vanilla server
    assert "real[] fallback; the provider's extension allow-list must hold vector" \
        in result.stdout


def test_a_database_of_the_admins_with_our_name_is_not_taken_over(
        project: Project, server: Cluster, admin_env: dict[str, str], names: Names) -> None:
    """The learning database's name already taken by the admin's own database (a managed
    server's default database, an application's): nothing is changed, the message says how."""
    admin = admin_env["LEARNING_ADMIN_URL"].split("//")[1].split("@")[0]
    with psycopg.connect(host="127.0.0.1", port=server.admin.port, dbname="postgres",
                         user=admin, password=admin_env["LEARNING_ADMIN_PASSWORD"],
                         autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names.database)))
    result = project.run("--full", "--mode", "external", **admin_env, **names.env())
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"database {names.database} exists" in result.stderr
    assert f"belongs to {admin}" in result.stderr and "LEARNING_DATABASE" in result.stderr
    assert superuser_sees(server, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE "
                          "datname = %s", names.database) == [(admin,)]
    assert _public_may_connect(server, names.database)
    assert not superuser_sees(server, "SELECT 1 FROM pg_roles WHERE rolname = ANY(%s)",
                              [names.owner, names.agent])
