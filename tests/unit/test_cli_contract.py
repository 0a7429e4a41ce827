"""The CLI's contracts: the --json envelope, and the exit code of a server error anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from installer import cli, mcp_config
from installer.context import RunContext
from installer.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent.parent


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--project-dir", str(REPO), "--env-file", str(tmp_path / ".env")])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_envelope_of_a_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, tmp_path, "--print-config", "--json")
    document = json.loads(out)
    assert code == 0
    assert {k: document[k] for k in ("version", "command", "ok", "steps", "warnings")} == {
        "version": 1, "command": "print-config", "ok": True, "steps": [], "warnings": []}
    assert "database" in document["settings"]  # the command's own keys sit beside


def test_json_envelope_of_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, tmp_path, "restore", str(tmp_path / "none.dump"), "--json")
    document = json.loads(out)
    assert code == document["exit_code"] == ExitCode.CONFIG
    assert (document["version"], document["command"], document["ok"]) == (1, "restore", False)
    assert "none.dump" in document["error"] and document["hint"]


def _refused(ctx: RunContext) -> ExitCode:
    raise psycopg.errors.InsufficientPrivilege("permission denied for table learning_events")


def test_a_server_error_escaping_a_command_is_exit_5(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "refresh", _refused)
    code, _, err = _run(capsys, tmp_path, "refresh")
    assert code == ExitCode.SERVER == 5
    assert "permission denied for table learning_events" in err
    assert "unexpected" not in err and "Traceback" not in err


def test_with_dry_run_a_server_error_is_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "install", _refused)
    code, _, _ = _run(capsys, tmp_path, "--dry-run", "--yes")
    assert code == ExitCode.FAILED


def test_compose_reads_the_env_file_a_profile_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEARNING_PORT", "LEARNING_MODE", "LEARNING_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "project"
    (project / "sql").mkdir(parents=True)
    env_file = tmp_path / "elsewhere.env"
    env_file.write_text("LEARNING_MODE=docker\nPGPORT=6111\nLEARNING_ADMIN_PASSWORD=kept\n")
    profile = tmp_path / "team.yaml"
    profile.write_text(f"env_file: {env_file}\n")
    code = cli.main(["compose", "--project-dir", str(project), "--profile", str(profile),
                     "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["warnings"] == []
    assert "127.0.0.1:6111:5432" in (project / "compose.yaml").read_text()


def test_mcp_clients_help_names_every_registered_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(mcp_config.CLIENTS, "zed", mcp_config.JsonClient(
        "zed", "Zed", lambda p: p / ".zed" / "settings.json"))
    [option] = [a for a in cli.build_parser()._actions if "--mcp-clients" in a.option_strings]
    assert option.help is not None
    assert all(name in option.help for name in mcp_config.CLIENTS)
