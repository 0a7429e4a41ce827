"""Small helpers for tests that drive the real CLI: install, output, rows of agent_metrics."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass

import psycopg

from tests.conftest import Project


@dataclass(frozen=True)
class Names:
    """A test's own learning database and roles: its clusters are shared, role names are not."""

    database: str
    owner: str
    agent: str

    @classmethod
    def fresh(cls) -> Names:
        tag = uuid.uuid4().hex[:8]
        return cls(f"learn_{tag}", f"owner_{tag}", f"agent_{tag}")

    def env(self) -> dict[str, str]:
        """The settings that name them, as the CLI reads them from the environment."""
        return {"LEARNING_DATABASE": self.database, "LEARNING_OWNER_ROLE": self.owner,
                "LEARNING_AGENT_ROLE": self.agent}


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
