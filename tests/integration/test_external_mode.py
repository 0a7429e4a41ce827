"""External mode against a separate real cluster, with an admin that is not a superuser."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Cluster, Project, start_cluster


@pytest.fixture(scope="module", params=["system", "embedded"])
def server(request: pytest.FixtureRequest, shared_tmp) -> Iterator[Cluster]:
    """Its own cluster: the tests create cluster-wide roles. System 15 has no pgvector; on
    embedded 16 pgvector exists but only a superuser may create it."""
    cluster = start_cluster(shared_tmp, request.param)
    yield cluster
    cluster.backend.stop()


@dataclass
class Names:
    database: str
    owner: str
    agent: str

    def env(self) -> dict[str, str]:
        return {"LEARNING_DATABASE": self.database, "LEARNING_OWNER_ROLE": self.owner,
                "LEARNING_AGENT_ROLE": self.agent}


@pytest.fixture
def names() -> Names:
    tag = uuid.uuid4().hex[:8]
    return Names(f"learn_{tag}", f"owner_{tag}", f"agent_{tag}")


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
