"""What Claude Code runs on each hook event: spool the event, start a delivery, exit 0.

Run as `python -S .../installer/capture/hook.py --project-dir DIR [--env-file FILE]` with one
JSON object on stdin. It loads nothing but `os`, `sys` and `time` (no JSON parser, no
site-packages), so it costs little more than the interpreter's start-up: the payload goes to
the spool as it came, and `deliver.py`, started detached, reads it and writes the database. It
never prints and always exits 0: a failure goes to `.learning/capture.log`, never to the agent.
"""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":  # run as a script: make the package importable without site
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))

from installer.capture import spool

TOOLS = ("Task", "Agent")  # the tool that runs a sub-agent (renamed Agent in newer versions)
# The events the installer registers. Not PostToolUseFailure: a Claude Code version that does not
# know an event skips the whole settings file. Its payload is understood when a user adds it.
EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "SubagentStop", "Stop",
          "SessionEnd")
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")


def spool_event(project_dir: str, payload: bytes, now: float) -> None:
    """Append `{"received_at": now, "payload": <payload as sent>}` to the spool. A newline in
    JSON can only be whitespace (in strings it is escaped), so blanking them keeps it valid."""
    body = payload.strip().replace(b"\r", b" ").replace(b"\n", b" ")
    if not (body.startswith(b"{") and body.endswith(b"}")):
        raise ValueError(f"stdin holds no JSON object ({len(payload)} bytes)")
    line = b'{"received_at":%s,"payload":%s}\n' % (repr(now).encode(), body)
    spool.append(spool.spool_path(project_dir), line)


def start_delivery(project_dir: str, env_file: str | None) -> None:
    """Run deliver.py detached (own session, no stdio), so the agent never waits for it."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deliver.py")
    argv = [sys.executable, script, "--project-dir", project_dir]
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


def main(argv: list[str]) -> int:
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    project_dir = os.path.abspath(options.get("--project-dir")
                                  or os.environ.get("CLAUDE_PROJECT_DIR") or ".")
    try:
        spool_event(project_dir, sys.stdin.buffer.read(), time.time())
        if not spool.delivering(project_dir):
            start_delivery(project_dir, options.get("--env-file"))
    except Exception as exc:  # fail open: the agent goes on whatever happens here
        spool.log(project_dir, f"hook: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
