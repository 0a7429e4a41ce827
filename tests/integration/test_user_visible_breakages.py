"""Breakages that once went unnoticed, each checked the way a user would notice it.

Each test drives the real CLI against a real native installation and asserts exit codes,
output, files and rows; none reads the installer's internals.
"""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from installer.errors import ExitCode
from tests.conftest import Project, make_project, stop_instance
from tests.integration.cli_helpers import add_row, agents, installed


@pytest.fixture
def other_machine(tmp_path: Path, shared_tmp: Path) -> Iterator[Project]:
    """A second installation whose exports stand for what `git pull` brings."""
    (tmp_path / "other").mkdir()
    other = make_project(tmp_path / "other", shared_tmp)
    yield installed(other)
    stop_instance(other.data_dir)


def pull(source: Project, target: Project) -> None:
    """What `git pull` does to exports/: the other machine's files replace ours."""
    shutil.rmtree(target.path / "exports", ignore_errors=True)
    shutil.copytree(source.path / "exports", target.path / "exports")


def test_export_first_imports_what_was_pulled_from_another_machine(
        project: Project, other_machine: Project) -> None:
    installed(project)
    add_row(other_machine, "from-the-other-machine")
    assert other_machine.run("export").returncode == 0
    add_row(project, "made-here")
    pull(other_machine, project)
    result = project.run("export")
    assert result.returncode == 0, result.stdout + result.stderr
    assert agents(project) == ["from-the-other-machine", "made-here"]
    exported = (project.path / "exports" / "csv" / "agent_metrics.csv").read_text()
    assert "from-the-other-machine" in exported and "made-here" in exported


def test_a_failed_import_is_not_recorded_so_the_next_full_retries_it(
        project: Project, other_machine: Project) -> None:
    add_row(other_machine, "pulled")
    assert other_machine.run("export").returncode == 0
    pull(other_machine, project)
    good = project.path / "exports" / "csv" / "agent_metrics.csv"
    original = good.read_bytes()
    good.write_bytes(original[:-10])  # damaged in transit
    first = project.install()
    assert first.returncode == ExitCode.DATA, first.stdout + first.stderr
    assert agents(project) == []
    good.write_bytes(original)  # `git checkout -- exports/`
    again = project.install()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already imported" not in again.stdout
    assert agents(project) == ["pulled"]


def test_status_never_prints_the_owners_password(project: Project) -> None:
    installed(project)
    env = project.read_env()
    for args in (("status",), ("status", "--json"), ("status", "--verbose")):
        result = project.run(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        for key in ("PGPASSWORD", "LEARNING_ADMIN_PASSWORD", "LEARNING_AGENT_PASSWORD"):
            assert env[key] not in result.stdout + result.stderr, (args, key)
        assert env["DATABASE_URL"] not in result.stdout + result.stderr


def test_status_exits_5_when_unhealthy(project: Project) -> None:
    installed(project)
    assert project.run("status").returncode == 0
    (project.path / ".mcp.json").unlink()  # one check fails, the server is fine
    result = project.run("status", "--json")
    assert result.returncode == ExitCode.SERVER, result.stdout + result.stderr
    assert json.loads(result.stdout)["healthy"] is False
    installed(project)  # repaired; now the server goes down
    assert project.run("stop").returncode == 0
    text = project.run("status")
    assert text.returncode == ExitCode.SERVER, text.stdout + text.stderr
    assert "not healthy" in text.stdout + text.stderr


def test_native_install_with_pgvector_binaries_creates_the_extension(project: Project) -> None:
    installed(project, "--binaries", "embedded")
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
                            ).fetchone() == (1,)
        kind = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                            "attrelid = 'task_embeddings'::regclass AND attname = 'embedding'"
                            ).fetchone()[0]
        integrity = {name: (state, detail) for name, state, detail in conn.execute(
            "SELECT * FROM validate_schema_integrity()")}
    assert kind == "vector(768)"
    state, detail = integrity["embedding columns"]
    assert state == "ok" and "pgvector" in detail and "fallback" not in detail
    status = json.loads(project.run("status", "--json").stdout)
    vector = next(c for c in status["checks"] if "pgvector" in c["check"])
    assert vector["state"] == "ok" and "fallback" not in vector["detail"]


def test_env_with_loose_permissions_is_repaired_by_full(project: Project) -> None:
    installed(project)
    env_file = project.path / ".env"
    before = env_file.read_text()
    env_file.chmod(0o644)
    result = project.install()
    assert result.returncode == 0, result.stdout + result.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == before
