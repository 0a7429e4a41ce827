"""Capture of agent work: Claude Code's hook payloads, fed to the command the installer wrote
into `.claude/settings.json` exactly as Claude Code runs it (through a shell, with
$CLAUDE_PROJECT_DIR set), end up as rows in the learning tables, once, and leave with the next
export. With the server stopped they wait in the spool until `--full` delivers them."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import psycopg

from installer.capture import claude_settings, hook
from installer.capture.deliver import row_id
from tests.conftest import REPO, Project

PAYLOADS = sorted((REPO / "tests" / "data" / "claude-hooks").glob("*.json"))
SESSION = json.loads(PAYLOADS[0].read_text())["session_id"]
TASK_USE = "toolu_01DUmYk3Task000000000000"
REVIEW_USE = "toolu_02Review00000000000000"
USER_SETTINGS = {
    "permissions": {"allow": ["Bash(git log:*)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "echo user-bash-hook"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def our_command(project: Project, event: str) -> str:
    """The one command of ours registered for `event` (asserts there is exactly one)."""
    settings = json.loads(claude_settings.settings_path(project.path).read_text())
    found = [entry["command"] for group in settings["hooks"][event]
             for entry in group["hooks"] if claude_settings.ours(entry)]
    assert len(found) == 1, found
    return found[0]


def fire(project: Project, payload: bytes) -> subprocess.Popen[bytes]:
    event = json.loads(payload)["hook_event_name"]
    if event not in hook.EVENTS:  # PostToolUseFailure: as a user would add it, same command
        event = "PostToolUse"
    process = subprocess.Popen(
        ["/bin/sh", "-c", our_command(project, event)], cwd=project.path,
        env=project.env(CLAUDE_PROJECT_DIR=str(project.path)), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write(payload)
    process.stdin.close()
    return process


def fire_all(project: Project, payloads: list[bytes]) -> None:
    for payload in payloads:
        process = fire(project, payload)
        assert process.wait(30) == 0
        assert process.stdout is not None and process.stdout.read() == b""  # nothing for Claude
        if json.loads(payload).get("tool_use_id") == REVIEW_USE:
            time.sleep(0.3)  # a measurable pre -> post duration for the failing sub-agent


def query(project: Project, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(project.read_env()["DATABASE_URL"]) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the captured rows did not arrive"
        time.sleep(0.2)


def counts(project: Project) -> tuple[int, int, int]:
    row = query(project, "SELECT (SELECT count(*) FROM sessions), "
                "(SELECT count(*) FROM agent_metrics), (SELECT count(*) FROM interaction_logs)")
    return row[0]


def assert_session_recorded(project: Project) -> None:
    (session,) = query(project, "SELECT s.status, s.project, s.ended_at IS NOT NULL, s.metadata, "
                       "a.name FROM sessions s JOIN agents a ON a.id = s.agent_id WHERE s.id = %s",
                       row_id("session", SESSION))
    status, name, ended, metadata, agent = session
    assert (status, name, ended, agent) == ("ended", project.path.name, True, "claude-code")
    assert metadata["claude_session_id"] == SESSION
    assert (metadata["start"], metadata["end_reason"]) == ("startup", "prompt_input_exit")
    assert metadata["model"].startswith("claude-")
    metrics = {row[0]: row[1:] for row in query(
        project, "SELECT agent_name, success, execution_time_ms, error_message, metadata "
        "FROM agent_metrics")}
    assert set(metrics) == {"Explore", "code-reviewer"}  # the Bash call is not a sub-agent
    success, duration, error, meta = metrics["Explore"]
    assert (success, duration, error) == (True, 48211, None)
    assert (meta["tokens"], meta["tool_uses"], meta["usage"]["input_tokens"]) == (12450, 7, 8320)
    assert meta["description"] == "Find the retry window"
    success, duration, error, meta = metrics["code-reviewer"]
    assert not success and "overloaded" in error
    assert duration >= 250  # from PreToolUse to PostToolUseFailure
    talks = {(row[0], row[1], row[2]): row[3:] for row in query(
        project, "SELECT from_agent, to_agent, message_type, payload, response FROM "
        "interaction_logs")}
    assert set(talks) == {("claude-code", "Explore", "task"),
                          ("claude-code", "code-reviewer", "task"),
                          ("Explore", "claude-code", "result")}
    request, response = talks[("claude-code", "Explore", "task")]
    assert request["description"] == "Find the retry window"
    assert response == "The retry window is 30 s (exchange/hook.py)."
    assert "transcript" not in json.dumps([m for *_, m in metrics.values()])


def test_hooks_record_a_session_and_its_subagents_and_the_rows_leave_with_export(
        project: Project) -> None:
    settings = claude_settings.settings_path(project.path)
    settings.parent.mkdir()
    settings.write_text(json.dumps(USER_SETTINGS, indent=2) + "\n")
    assert project.install().returncode == 0
    written = json.loads(settings.read_text())
    assert written["permissions"] == USER_SETTINGS["permissions"]
    assert USER_SETTINGS["hooks"]["PreToolUse"][0] in written["hooks"]["PreToolUse"]
    assert USER_SETTINGS["hooks"]["Stop"][0] in written["hooks"]["Stop"]
    for event in hook.EVENTS:
        assert '"$CLAUDE_PROJECT_DIR"/installer/capture/hook.py' in our_command(project, event)

    payloads = [path.read_bytes() for path in PAYLOADS]
    fire_all(project, payloads)
    wait_for(lambda: counts(project) == (1, 2, 3)
             and query(project, "SELECT status FROM sessions")[0][0] == "ended")
    assert_session_recorded(project)
    spooled = project.path / ".learning" / "spool.jsonl"
    wait_for(lambda: spooled.stat().st_size == 0)
    assert not list((project.path / ".learning" / "running").iterdir())

    fire_all(project, payloads)  # the same events again: same ids, nothing new
    wait_for(lambda: spooled.stat().st_size == 0)
    assert counts(project) == (1, 2, 3)

    stop = json.loads(PAYLOADS[4].read_text())
    together = [fire(project, json.dumps({**stop, "agent_id": f"agent-{n:02}"}).encode())
                for n in range(12)]  # while deliveries run: each event is taken by one of them
    assert [process.wait(30) for process in together] == [0] * 12
    wait_for(lambda: counts(project) == (1, 2, 3 + 12))
    wait_for(lambda: spooled.stat().st_size == 0)

    assert project.run("export").returncode == 0
    for table, key in (("sessions", row_id("session", SESSION)),
                       ("interaction_logs", row_id("subagent-stop", SESSION, "agent-11")),
                       ("agent_metrics", row_id("subagent-run", SESSION, TASK_USE)),
                       ("interaction_logs", row_id("delegation", SESSION, REVIEW_USE))):
        with (project.path / "exports" / "csv" / f"{table}.csv").open(newline="") as handle:
            assert str(key) in {record["id"] for record in csv.DictReader(handle)}, table

    assert project.run("uninstall").returncode == 0  # takes our hooks out, keeps the user's
    assert json.loads(settings.read_text()) == USER_SETTINGS


def test_events_spool_while_the_server_is_down_and_full_delivers_them_once(
        project: Project) -> None:
    assert project.install().returncode == 0
    assert project.run("stop").returncode == 0
    payloads = [path.read_bytes() for path in PAYLOADS]
    fire_all(project, payloads)
    stop = json.loads(PAYLOADS[4].read_text())
    together = [fire(project, json.dumps({**stop, "agent_id": f"agent-{n:02}"}).encode())
                for n in range(12)]  # hooks firing at once append whole lines
    assert [process.wait(30) for process in together] == [0] * 12

    spooled = project.path / ".learning" / "spool.jsonl"
    assert spooled.stat().st_mode & 0o777 == 0o600
    lines = spooled.read_text().splitlines()
    assert len(lines) == len(PAYLOADS) + 12
    assert all(json.loads(line)["payload"]["session_id"] == SESSION for line in lines)
    log = project.path / ".learning" / "capture.log"
    wait_for(lambda: log.exists() and "cannot connect" in log.read_text())

    result = project.install()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "22 event(s) delivered" in result.stdout
    assert counts(project) == (1, 2, 3 + 12)
    assert_session_recorded_once = query(project, "SELECT count(*) FROM sessions WHERE id = %s",
                                         row_id("session", SESSION))
    assert assert_session_recorded_once == [(1,)]
    assert spooled.read_text() == ""

    spooled.write_text("\n".join(lines) + "\n")  # a delivery that died before trimming
    assert project.install().returncode == 0
    assert counts(project) == (1, 2, 3 + 12)

    result = project.install("--no-capture-agent-work")
    assert result.returncode == 0, result.stdout + result.stderr
    settings = claude_settings.settings_path(project.path)
    assert "hook.py" not in settings.read_text()
    assert project.read_env()["LEARNING_CAPTURE_AGENT_WORK"] == "false"
    assert project.install().returncode == 0  # the recorded choice holds
    assert "hook.py" not in settings.read_text()
