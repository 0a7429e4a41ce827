"""backup, restore, logs and doctor against a real installation."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Project, make_project, stop_instance


def _rows(project: Project) -> list[str]:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        return [row[0] for row in conn.execute(
            "SELECT agent_name FROM agent_metrics ORDER BY agent_name")]


def _insert(project: Project, name: str) -> None:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO agent_metrics (agent_name, task_type, success) "
                     "VALUES (%s, 't', true)", (name,))


@pytest.mark.parametrize("binaries", ["system", "embedded"])
def test_backup_restore_round_trip(project: Project, binaries: str) -> None:
    project.install("--binaries", binaries, check=True)
    _insert(project, "kept")
    made = project.run("backup", "--json")
    assert made.returncode == 0, made.stderr
    dump = Path(json.loads(made.stdout)["file"])
    assert dump.parent == project.path / "backups" and dump.suffix == ".dump"
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    env = project.read_env()
    assert env["PGPASSWORD"] not in made.stdout + made.stderr

    _insert(project, "added after the backup")
    refused = project.run("restore", str(dump))  # no terminal, no --yes
    assert refused.returncode == 3 and "--yes" in refused.stderr
    assert _rows(project) == ["added after the backup", "kept"]

    restored = project.run("restore", str(dump), "--yes", "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _rows(project) == ["kept"]
    safety = Path(json.loads(restored.stdout)["safety_backup"])
    assert safety.exists() and safety.name.endswith("-before-restore.dump")
    # the agent role still reads everything, and the installation is healthy
    status = json.loads(project.run("status", "--json").stdout)
    assert status["healthy"] is True, status
    # and the safety backup brings back what the restore replaced
    assert project.run("restore", str(safety), "--yes").returncode == 0
    assert _rows(project) == ["added after the backup", "kept"]


def test_restore_refuses_a_file_that_is_not_a_backup(project: Project, tmp_path: Path) -> None:
    project.install("--binaries", "embedded", check=True)
    _insert(project, "kept")
    bogus = tmp_path / "notes.dump"
    bogus.write_text("not a dump")
    result = project.run("restore", str(bogus), "--yes")
    assert result.returncode == 7 and "not a pg_dump" in result.stderr
    assert _rows(project) == ["kept"]


def test_logs_and_doctor(project: Project) -> None:
    project.install("--binaries", "embedded", check=True)
    logs = project.run("logs", "--lines", "5")
    assert logs.returncode == 0 and "server.log" in logs.stdout
    healthy = project.run("doctor", "--json")
    assert healthy.returncode == 0, healthy.stdout
    checks = json.loads(healthy.stdout)["checks"]
    assert all({"check", "state", "detail", "hint"} <= set(c) for c in checks)
    # the first doctor's refused agent logins to other databases are in the log now; they are
    # doctor's own proof, not a problem of the server
    again = json.loads(project.run("doctor", "--json").stdout)["checks"]
    assert [c for c in again if c["state"] != "ok"] == [], again
    assert project.run("stop").returncode == 0
    sick = project.run("doctor")
    assert sick.returncode == 1
    assert "✗ Server running and healthy" in sick.stdout
    assert "fix: run `python install.py --full`" in sick.stdout
    backup = project.run("backup")
    assert backup.returncode == 5 and "python install.py start" in backup.stderr


def test_uninstall_removes_only_our_mcp_entries(project: Project) -> None:
    codex = project.home / ".codex" / "config.toml"
    codex.parent.mkdir()
    codex.write_text('# mine\n[mcp_servers.other]\ncommand = "x"\n')
    project.install("--binaries", "embedded", "--mcp-clients", "claude-code,codex",
                    check=True)
    assert "learning-db" in codex.read_text()
    assert project.run("uninstall").returncode == 0
    assert codex.read_text() == '# mine\n[mcp_servers.other]\ncommand = "x"\n'
    assert "learning-db" not in (project.path / ".mcp.json").read_text()


def test_a_failing_restore_changes_nothing(project: Project, tmp_path: Path,
                                           shared_tmp: Path) -> None:
    (tmp_path / "other").mkdir()
    other = make_project(tmp_path / "other", shared_tmp)
    try:
        other.install("--binaries", "system", check=True)
        _insert(other, "from the other machine")
        dump = Path(json.loads(other.run("backup", "--json").stdout)["file"])
    finally:
        stop_instance(other.data_dir)
    # this cluster has no role `learning_agent`: the archive's GRANT fails after its DROPs
    project.install("--binaries", "system", check=True, LEARNING_AGENT_ROLE="other_agent")
    _insert(project, "kept")
    result = project.run("restore", str(dump), "--yes", LEARNING_AGENT_ROLE="other_agent")
    assert result.returncode == 7, result.stdout + result.stderr
    assert "left exactly as it was" in result.stderr and "before-restore" in result.stderr
    assert "other_agent" not in result.stderr and "learning_agent" in result.stderr
    assert _rows(project) == ["kept"]
