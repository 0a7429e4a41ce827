"""What Claude Code runs on each hook event: spool the event, start a delivery, exit 0.

Run as `python -S .../installer/capture/hook.py --project-dir DIR [--env-file FILE]` with one
JSON object on stdin. Standard library only and no site-packages, so it costs little more than
the interpreter's start-up; the database write happens in `deliver.py`, started detached. It
never prints and always exits 0: a failure goes to `.learning/capture.log`, never to the agent.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the package importable without site
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from installer.capture import spool

TOOLS = ("Task", "Agent")  # the tool that runs a sub-agent (renamed Agent in newer versions)
EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
          "SubagentStop", "Stop", "SessionEnd")
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
MAX_TEXT = 4000  # longer strings in a payload are cut: the spool stays small
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def clip(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, dict) and depth < 6:
        return {str(k): clip(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list) and depth < 6:
        return [clip(v, depth + 1) for v in value[:50]]
    return value if isinstance(value, int | float | bool) or value is None else None


def _running_file(project_dir: Path, tool_use_id: str) -> Path:
    return spool.directory(project_dir) / spool.RUNNING / _SAFE_NAME.sub("_", tool_use_id)[:128]


def record(project_dir: Path, payload: dict[str, Any], now: float) -> bool:
    """Spool what `payload` tells; True when there is something to deliver."""
    event = payload.get("hook_event_name")
    if event not in EVENTS:
        return False
    tool_use_id = str(payload.get("tool_use_id") or "")
    if event in TOOL_EVENTS:
        if payload.get("tool_name") not in TOOLS:
            return False
        if event == "PreToolUse":  # only the start time is needed, for the duration
            if tool_use_id:
                started = _running_file(project_dir, tool_use_id)
                started.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                started.write_text(repr(now))
            return False
    entry: dict[str, Any] = {"received_at": now, "payload": clip(payload)}
    entry["payload"].pop("transcript_path", None)  # local paths stay local
    entry["payload"].pop("agent_transcript_path", None)
    if event in TOOL_EVENTS and tool_use_id:
        started = _running_file(project_dir, tool_use_id)
        try:
            entry["started_at"] = float(started.read_text())
            started.unlink()
        except (OSError, ValueError):
            pass
    spool.append(spool.spool_path(project_dir), entry)
    return True


def start_delivery(project_dir: Path, env_file: str | None) -> None:
    """Run deliver.py detached (own session, no stdio), so the agent never waits for it."""
    script = str(Path(__file__).resolve().with_name("deliver.py"))
    argv = [sys.executable, script, "--project-dir", str(project_dir)]
    if env_file:
        argv += ["--env-file", env_file]
    if hasattr(os, "posix_spawn"):  # no subprocess import: it costs more than the spawn
        null = os.devnull
        os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0)])
        return
    import subprocess

    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, close_fds=True,
                     creationflags=getattr(subprocess, "DETACHED_PROCESS", 0))


def _arguments(argv: list[str]) -> tuple[Path, str | None]:
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    project = options.get("--project-dir") or os.environ.get("CLAUDE_PROJECT_DIR") or "."
    return Path(project).absolute(), options.get("--env-file")


def main(argv: list[str]) -> int:
    project_dir, env_file = _arguments(argv)
    try:
        payload = json.loads(sys.stdin.buffer.read() or b"{}")
        if isinstance(payload, dict) and record(project_dir, payload, time.time()):
            start_delivery(project_dir, env_file)
    except Exception as exc:  # fail open: the agent goes on whatever happens here
        spool.log(project_dir, f"hook: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
