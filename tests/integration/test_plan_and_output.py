"""--dry-run leaves no trace and exits 0/2/1; JSON output shapes; --print-config sources."""

from __future__ import annotations

import json
import os
import pwd
import uuid
from pathlib import Path

import pytest

from tests.conftest import Project


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and mtime, and every directory (Python's bytecode
    caches aside: the interpreter writes them, not the installer; a directory's own mtime
    would move with them, and a new entry shows as a new key anyway)."""
    found = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [name for name in dirnames if name != "__pycache__"]
            for name in dirnames:
                found[str(Path(dirpath) / name)] = (0, 0)
            for name in filenames:
                stat = (Path(dirpath) / name).lstat()
                found[str(Path(dirpath) / name)] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_dry_run_on_a_fresh_machine_changes_nothing(project: Project) -> None:
    service_user = f"lt-{uuid.uuid4().hex[:8]}"
    before = _snapshot(project.path, project.home)
    result = project.run("--dry-run", "--data-dir", str(project.data_dir), "--port",
                         str(project.port), "--binaries", "embedded",
                         LEARNING_SERVICE_USER=service_user)
    assert result.returncode == 2, result.stdout + result.stderr
    assert _snapshot(project.path, project.home) == before
    assert not project.data_dir.exists()
    assert not (project.path / ".env").exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(service_user)
    out = result.stdout
    assert "will create" in out and "nothing was changed" in out
    assert f"port {project.port}" in out
    assert "+PGPORT=" + str(project.port) in out  # the .env diff
    assert "learning/001_learning_tables" in out  # pending migrations
    assert ".mcp.json" in out


def test_dry_run_json_is_a_machine_readable_plan(project: Project) -> None:
    result = project.run("--dry-run", "--json", "--data-dir", str(project.data_dir), "--port",
                         str(project.port), "--binaries", "embedded")
    assert result.returncode == 2, result.stderr
    plan = json.loads(result.stdout)
    assert plan["ok"] is True and plan["dry_run"] is True and plan["changes"] > 0
    assert plan["mode"] == "native" and plan["server"]["port"] == project.port
    steps = {step["step"].split(" ")[0]: step for step in plan["steps"]}
    assert {"state", "detail", "action"} <= set(plan["steps"][0])
    env_diff = steps[".env"]["diff"]
    password_lines = [line for line in env_diff.splitlines() if "PASSWORD=" in line]
    assert password_lines and all(line.endswith("******") for line in password_lines)
    assert steps["PostgreSQL"]["action"] == "create"
    pending = plan["pending_migrations"]
    assert pending[0] == "learning/001_learning_tables"
    assert {name.split("/")[0] for name in pending} == {
        p.name for p in (project.path / "sql").iterdir() if (p / "module.yaml").exists()}
    assert not (project.path / ".env").exists()


def test_dry_run_after_install_reports_nothing_then_a_pending_change(project: Project) -> None:
    project.install("--binaries", "embedded", check=True)
    clean = project.run("--dry-run", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["changes"] == 0
    assert json.loads(clean.stdout)["pending_migrations"] == []
    (project.path / ".mcp.json").unlink()
    pending = project.run("--dry-run")
    assert pending.returncode == 2
    assert "+++ " + str(project.path / ".mcp.json") in pending.stdout
    assert not (project.path / ".mcp.json").exists()


def test_dry_run_error_exits_1(project: Project) -> None:
    result = project.run("--dry-run", "--profile", "no-such-profile")
    assert result.returncode == 1
    assert "no-such-profile" in result.stderr and "Traceback" not in result.stderr


def test_profile_error_without_dry_run_is_a_config_error(project: Project) -> None:
    (project.path / "bad.yaml").write_text("mode: native\nprot: 5\n")
    result = project.run("--full", "--profile", "bad.yaml")
    assert result.returncode == 3
    assert "bad.yaml:2" in result.stderr and "did you mean 'port'" in result.stderr


def test_install_and_status_json_shapes(project: Project) -> None:
    result = project.install("--binaries", "embedded", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["changes"] > 0
    assert {"mode", "server", "database", "files", "steps", "warnings"} <= set(report)
    assert str(project.path / ".mcp.json") in report["files"]
    env = project.read_env()
    assert env["PGPASSWORD"] not in result.stdout
    status = json.loads(project.run("status", "--json").stdout)
    assert status["healthy"] is True
    assert {"check", "state", "detail"} <= set(status["checks"][0])


def test_print_config_shows_sources_and_masks_passwords(project: Project) -> None:
    quiet = project.install("--binaries", "embedded", "--quiet", check=True)
    assert quiet.stdout == "" and quiet.stderr == ""
    (project.path / "mine.yaml").write_text("database: learning_system\nhealth_timeout: 30\n"
                                            "mcp_clients: [cursor]\n")
    result = project.run("--print-config", "--json", "--profile", "mine.yaml", "--port",
                         str(project.port), LEARNING_HEALTH_TIMEOUT="45")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)["settings"]
    assert config["port"] == {"value": project.port, "source": "command line"}
    assert config["health_timeout"] == {"value": 45.0,
                                        "source": "environment LEARNING_HEALTH_TIMEOUT"}
    assert config["mcp_clients"]["source"].endswith("mine.yaml:3")
    assert config["database"]["source"].endswith("mine.yaml:1")
    assert config["agent_role"]["source"] == ".env (recorded)"
    assert config["service_user"]["source"] == "default"
    env = project.read_env()
    for key in ("PGPASSWORD", "LEARNING_ADMIN_PASSWORD", "LEARNING_AGENT_PASSWORD"):
        assert env[key] not in result.stdout
    assert config["owner password"]["value"].endswith("******")


def test_errors_are_one_message_and_traceback_only_when_verbose(project: Project) -> None:
    result = project.run("restore", "/nonexistent.dump", "--yes")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "error:" in result.stderr and "hint:" in result.stderr
    verbose = project.run("restore", "/nonexistent.dump", "--yes", "--verbose")
    assert "Traceback" in verbose.stderr
