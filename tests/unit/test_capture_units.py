"""Capture pieces without a server: the settings merge, the hook's failure modes and cost."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from installer.capture import claude_settings, hook, spool
from installer.errors import ConfigError
from tests.conftest import REPO

SOURCE = Path("settings.json")
HOOK = REPO / "installer" / "capture" / "hook.py"
USER = {
    "model": "opus",
    "hooks": {
        "PreToolUse": [{"matcher": "^(Task|Agent)$", "hooks": [
            {"type": "command", "command": "audit-subagents"}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
    },
}


def ours_per_event(text: str) -> dict[str, int]:
    hooks = json.loads(text)["hooks"]
    return {event: sum(claude_settings.ours(e) for g in groups for e in g["hooks"])
            for event, groups in hooks.items()}


def test_merge_keeps_the_users_hooks_and_settings_and_is_idempotent() -> None:
    text = json.dumps(USER, indent=2) + "\n"
    merged = claude_settings.merged(text, "py -S /p/installer/capture/hook.py", SOURCE)
    data = json.loads(merged)
    assert data["model"] == "opus"
    assert USER["hooks"]["PreToolUse"][0] in data["hooks"]["PreToolUse"]
    assert data["hooks"]["Notification"] == USER["hooks"]["Notification"]
    assert ours_per_event(merged) == {**dict.fromkeys(hook.EVENTS, 1), "Notification": 0}
    assert claude_settings.merged(merged, "py -S /p/installer/capture/hook.py", SOURCE) == merged


def test_a_new_command_replaces_ours_in_place_and_removal_restores_the_users_file() -> None:
    first = claude_settings.merged(json.dumps(USER, indent=2), "old/capture/hook.py", SOURCE)
    second = claude_settings.merged(first, "new/capture/hook.py", SOURCE)
    assert "old/capture" not in second
    assert ours_per_event(second) == ours_per_event(first)
    assert list(json.loads(second)["hooks"]) == list(json.loads(first)["hooks"])  # same order
    removed = claude_settings.without(second, SOURCE)
    assert removed is not None and json.loads(removed) == USER
    assert claude_settings.without(removed, SOURCE) is None
    only_ours = claude_settings.merged("", "x/capture/hook.py", SOURCE)
    assert json.loads(claude_settings.without(only_ours, SOURCE) or "") == {}


def test_a_settings_file_we_cannot_read_is_refused_and_left_alone() -> None:
    for text in ('{"hooks": []}', '{"hooks": {"Stop": {}}}', "[1]", "{oops"):
        with pytest.raises(ConfigError):
            claude_settings.merged(text, "x/capture/hook.py", SOURCE)


def test_the_command_quotes_paths_and_is_relative_to_the_project_inside_it(
        tmp_path: Path) -> None:
    project = tmp_path / "my project; rm -rf x"
    inside = claude_settings.command(project, project / "conf" / "my .env",
                                     python=project / ".venv" / "bin" / "python")
    assert inside.startswith('"$CLAUDE_PROJECT_DIR"/.venv/bin/python -S ')
    words = shlex.split(inside)
    assert words[-5:-3] == ["--env-file", "$CLAUDE_PROJECT_DIR/conf/my .env"]
    outside = claude_settings.command(project, python=tmp_path / "other dir" / "python")
    assert shlex.split(outside)[0] == str(tmp_path / "other dir" / "python")
    assert "--env-file" not in claude_settings.command(project, project / ".env")


def test_the_command_says_nothing_where_the_installer_never_ran(tmp_path: Path) -> None:
    """A teammate's checkout: the committed settings name a .venv that does not exist."""
    command = claude_settings.command(tmp_path, python=tmp_path / ".venv" / "bin" / "python")
    result = subprocess.run(["/bin/sh", "-c", command], input=b"{}", capture_output=True,
                            env={**os.environ, "CLAUDE_PROJECT_DIR": str(tmp_path)}, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def _run_hook(project: Path, stdin: bytes, *python_flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", *python_flags, str(HOOK), "--project-dir",
                           str(project)], input=stdin, capture_output=True, timeout=30,
                          env={**os.environ, "PATH": os.environ["PATH"]})


def test_the_hook_fails_open_and_says_nothing(tmp_path: Path) -> None:
    result = _run_hook(tmp_path, b"this is not json")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert "ValueError" in (tmp_path / ".learning" / "capture.log").read_text()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the project should be")
    stop = (REPO / "tests" / "data" / "claude-hooks" / "09_stop.json").read_bytes()
    result = _run_hook(blocked, stop)
    assert (result.returncode, result.stdout) == (0, b"")
    gone = tmp_path / "deleted project"
    assert _run_hook(gone, stop).returncode == 0
    assert not gone.exists()  # a project that is gone is not made again


def test_the_hook_path_loads_no_database_driver_nor_ui_library(tmp_path: Path) -> None:
    payload = (REPO / "tests" / "data" / "claude-hooks" / "02_user_prompt_submit.json")
    result = _run_hook(tmp_path, payload.read_bytes(), "-X", "importtime")
    assert result.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.decode().splitlines()}
    assert "installer.capture.spool" in imported
    assert not {"psycopg", "rich", "yaml", "dotenv", "subprocess", "json", "re", "pathlib",
                "typing"} & imported


def test_the_capture_log_stays_bounded(tmp_path: Path) -> None:
    log = tmp_path / ".learning" / "capture.log"
    log.parent.mkdir()
    log.write_bytes(b"x" * (spool.LOG_LIMIT + 1))
    spool.log(tmp_path, "deliver: the server is down")
    assert log.read_text().endswith("deliver: the server is down\n")
    assert (tmp_path / ".learning" / "capture.log.1").stat().st_size == spool.LOG_LIMIT + 1
    assert log.stat().st_mode & 0o777 == 0o600
