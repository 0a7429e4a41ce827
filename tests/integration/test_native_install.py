"""`python install.py --full` end to end against real clusters, and every repair case."""

from __future__ import annotations

import json
import stat

import psycopg
import pytest

from tests.conftest import Project

pytestmark = pytest.mark.parametrize("binaries", ["system", "embedded"])


def _status(project: Project) -> dict:
    result = project.run("status", "--json")
    return json.loads(result.stdout)


def _installed(project: Project, binaries: str) -> Project:
    project.install("--binaries", binaries, check=True)
    return project


def test_first_install_gives_healthy_migrated_database(project: Project, binaries: str) -> None:
    result = project.install("--binaries", binaries)
    assert result.returncode == 0, result.stdout + result.stderr
    env = project.read_env()
    assert env["PGPORT"] == str(project.port)
    assert env["PGHOST"] == "127.0.0.1"
    assert env["LEARNING_PG_BINARIES"] == binaries
    env_file = project.path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    status = _status(project)
    assert status["healthy"] is True
    assert status["pending_migrations"] == []
    assert set(status["tables"]) >= {"agent_metrics", "interaction_logs", "learning_feedback",
                                     "model_performance", "task_embeddings"}
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES ('a', 'b', true)")
    # the server listens on loopback only and demands passwords
    hba = (project.data_dir / "pgdata" / "pg_hba.conf").read_text()
    assert "trust" not in hba.split("no trust")[-1]
    assert "listen_addresses = '127.0.0.1'" in (
        project.data_dir / "pgdata" / "learning_installer.conf").read_text()
    # passwords never appear in the human output
    assert env["PGPASSWORD"] not in result.stdout + result.stderr
    assert env["LEARNING_ADMIN_PASSWORD"] not in result.stdout + result.stderr
