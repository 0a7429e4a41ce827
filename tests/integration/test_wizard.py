"""The wizard, driven through a real pseudo-terminal (pexpect), and its never-prompt rules."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pexpect

from installer.profile import load_profile
from tests.conftest import Project

CLEAR_LINE = "\x15"  # Ctrl-U: empty the suggested answer before typing ours
DOWN = "\x1b[B"


def _spawn(project: Project, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, [str(project.path / "install.py"), *args],
                          cwd=str(project.path), env={**project.env(), "TERM": "xterm"},
                          encoding="utf-8", dimensions=(40, 200), timeout=60)
    return child


def _finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF, timeout=180)
    child.close()
    return child.exitstatus


def test_wizard_answers_drive_the_install_and_replay_as_a_profile(project: Project) -> None:
    child = _spawn(project, "--full", "--data-dir", str(project.data_dir),
                   "--binaries", "embedded")
    child.expect("Where should PostgreSQL run\\? \\(recommended: native")
    child.send("\r")
    child.expect("Port for the server")
    child.send(CLEAR_LINE + f"{project.port}\r")
    child.expect("Name of the learning database")
    child.send(CLEAR_LINE + "wizard_db\r")
    child.expect("MCP clients to configure")
    child.send(DOWN + " \r")  # keep Claude Code, add Cursor
    child.expect("Import the learning data")
    child.send("n")
    child.expect("Install the git hook")
    child.send("n")
    child.expect("Record Claude Code sessions")
    child.send("n")
    child.expect("Save these answers as a profile")
    child.send("y")
    child.expect("Profile file")
    child.send("\r")
    assert _finish(child) == 0, child.before
    env = project.read_env()
    assert env["PGDATABASE"] == "wizard_db" and env["PGPORT"] == str(project.port)
    assert (project.path / ".cursor" / "mcp.json").exists()
    assert not (project.path / ".claude" / "settings.json").exists()  # capture declined
    saved = load_profile("local", project.path)
    assert saved.values == {"mode": "native", "port": project.port, "database": "wizard_db",
                            "mcp_clients": ["claude-code", "cursor"], "import_exports": False,
                            "install_hooks": False, "capture_agent_work": False}
    # a re-run asks nothing (the answers are recorded) and changes nothing
    again = _spawn(project, "--full")
    assert _finish(again) == 0
    assert "Where should" not in again.before
    assert "Nothing to do" in again.before


def test_flags_are_not_asked_again_and_ctrl_c_leaves_no_trace(project: Project) -> None:
    child = _spawn(project, "--full", "--data-dir", str(project.data_dir), "--port",
                   str(project.port), "--mode", "native", "--binaries", "embedded")
    child.expect("Name of the learning database")  # mode and port came from flags
    assert "Where should" not in child.before and "Port for" not in child.before
    child.sendintr()
    assert _finish(child) == 130
    assert not (project.path / ".env").exists() and not project.data_dir.exists()


def test_yes_on_a_terminal_takes_every_default(project: Project) -> None:
    child = _spawn(project, "--full", "--yes", "--data-dir", str(project.data_dir), "--port",
                   str(project.port), "--binaries", "embedded")
    assert _finish(child) == 0
    assert "?" not in child.before.split("Detected")[0]
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", child.before)  # NO_COLOR: no colours
    assert project.read_env()["PGDATABASE"] == "learning_system"


def test_without_a_terminal_it_never_prompts(project: Project) -> None:
    result = project.install("--binaries", "embedded", "--json", "--profile", "ci")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == [str(project.path / ".env")]
    assert not Path(project.path / ".mcp.json").exists()  # ci.yaml: no MCP clients
