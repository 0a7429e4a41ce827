"""Small helpers for tests that drive the real CLI: install, output, rows of agent_metrics."""

from __future__ import annotations

import subprocess

import psycopg

from tests.conftest import Project


def installed(project: Project, *args: str) -> Project:
    """`--full` in `project`, which must succeed."""
    result = project.install(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def add_row(project: Project, agent: str) -> None:
    """One agent_metrics row, as an agent would write it (through DATABASE_URL)."""
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES (%s, 'test', true)", (agent,))


def agents(project: Project) -> list[str]:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        return [r[0] for r in conn.execute("SELECT agent_name FROM agent_metrics ORDER BY 1")]
