"""Writes spooled hook events into the learning tables, exactly once.

Each row's id is derived from the event (uuid5 of the Claude Code session id and the tool use
or sub-agent id, or the time the hook received it), and every insert is ON CONFLICT DO
NOTHING: a replay after a partial delivery, or the same event spooled twice, adds nothing.
What is written (see README "What agents' work leaves behind"):

* `sessions` (collaboration module): one row per Claude Code session, agent `claude-code`;
  started, last activity, ended and why;
* `agent_metrics`: one row per sub-agent run: agent, duration, success, error, tokens;
* `interaction_logs`: the delegation (parent -> sub-agent: description, prompt, result) and a
  sub-agent's final message when it stops.

Run detached by hook.py (`python deliver.py --project-dir DIR [--env-file FILE]`), and by
`--full` through `flush()`. Never raises in the detached run: problems go to capture.log.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script by the hook: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg
from psycopg.types.json import Jsonb

from installer import db
from installer.capture import spool
from installer.capture.hook import TOOL_EVENTS, TOOLS
from installer.credentials import ConnInfo
from installer.errors import ConfigError

NAMESPACE = uuid.UUID("5b0e7c64-3f7e-4d0a-9d55-6c1f0a7e2c11")  # never change: ids derive from it
MAIN_AGENT = "claude-code"
PROMPT_CHARS = 2000
TEXT_CHARS = 4000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def row_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "\x1f".join(parts))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _text(value: Any, limit: int = TEXT_CHARS) -> str | None:
    """A string, or the text blocks of a content list, cut at `limit` characters."""
    if isinstance(value, list):
        value = "\n".join(str(b.get("text", "")) for b in value if isinstance(b, dict))
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


class _Starts:
    """When each sub-agent run began (its PreToolUse), kept in .learning/running/ until its
    PostToolUse: the two events may be delivered in different runs."""

    def __init__(self, project_dir: Path):
        self.directory = Path(spool.directory(project_dir)) / spool.RUNNING

    def _file(self, tool_use: str) -> Path:
        return self.directory / _SAFE_NAME.sub("_", tool_use)[:128]

    def begin(self, tool_use: str, at: float) -> None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self._file(tool_use).write_text(repr(at))

    def of(self, tool_use: str) -> float | None:
        try:
            return float(self._file(tool_use).read_text())
        except (OSError, ValueError):
            return None

    def end(self, tool_use: str) -> None:
        self._file(tool_use).unlink(missing_ok=True)

    def prune(self, now: float, max_age: float = 86400) -> None:
        """Forget runs that never ended (interrupted) after a day."""
        for path in self.directory.glob("*") if self.directory.is_dir() else ():
            if now - path.stat().st_mtime > max_age:
                path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Tables:
    sessions: bool
    metrics: bool
    interactions: bool

    @classmethod
    def present(cls, conn: psycopg.Connection) -> _Tables:
        row = conn.execute("SELECT to_regclass('public.sessions') IS NOT NULL "
                           "AND to_regclass('public.agents') IS NOT NULL, "
                           "to_regclass('public.agent_metrics') IS NOT NULL, "
                           "to_regclass('public.interaction_logs') IS NOT NULL").fetchone()
        assert row is not None
        return cls(*row)


_AGENT = """
INSERT INTO agents (name, agent_type, last_seen_at, metadata)
VALUES (%s, 'claude-code', %s, '{"source": "claude-code hooks"}')
ON CONFLICT (name) DO UPDATE SET last_seen_at = greatest(agents.last_seen_at, EXCLUDED.last_seen_at)
RETURNING id
"""
# A session row is created by whichever of its events arrives first; SessionStart (re)opens it,
# SessionEnd ends it, every event moves last_activity forward. Replayed in order, the same events
# give the same row.
_SESSION = """
INSERT INTO sessions (id, agent_id, title, project, status, started_at, ended_at, last_activity,
                      metadata)
VALUES (%(id)s, %(agent)s, %(title)s, %(project)s, %(status)s, %(at)s, %(ended)s, %(at)s,
        %(metadata)s)
ON CONFLICT (id) DO UPDATE SET
    last_activity = greatest(sessions.last_activity, EXCLUDED.last_activity),
    status = CASE %(event)s WHEN 'SessionStart' THEN 'active' WHEN 'SessionEnd' THEN 'ended'
                  ELSE sessions.status END,
    ended_at = CASE %(event)s WHEN 'SessionStart' THEN NULL
                    WHEN 'SessionEnd' THEN greatest(EXCLUDED.ended_at, sessions.started_at)
                    ELSE sessions.ended_at END,
    metadata = sessions.metadata || EXCLUDED.metadata
"""
_METRIC = """
INSERT INTO agent_metrics (id, agent_name, task_type, execution_time_ms, success, error_message,
                           metadata, created_at)
VALUES (%s, %s, 'subagent', %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""
_INTERACTION = """
INSERT INTO interaction_logs (id, from_agent, to_agent, message_type, payload, response,
                              duration_ms, metadata, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""


def _session(conn: psycopg.Connection, entry: dict[str, Any], project: str) -> None:
    payload = entry["payload"]
    event = payload.get("hook_event_name")
    at = _at(entry["received_at"])
    metadata: dict[str, Any] = {"source": "claude-code hooks",
                                "claude_session_id": payload.get("session_id")}
    if event == "SessionStart":
        metadata |= {"start": payload.get("source"), "model": payload.get("model")}
    if event == "SessionEnd":
        metadata["end_reason"] = payload.get("reason")
    agent = conn.execute(_AGENT, (MAIN_AGENT, at)).fetchone()
    assert agent is not None
    conn.execute(_SESSION, {
        "id": row_id("session", str(payload.get("session_id"))), "agent": agent[0],
        "title": f"Claude Code session in {project}", "project": project,
        "status": "ended" if event == "SessionEnd" else "active", "at": at,
        "ended": at if event == "SessionEnd" else None, "event": event,
        "metadata": Jsonb({k: v for k, v in metadata.items() if v is not None})})


def _subagent_run(conn: psycopg.Connection, entry: dict[str, Any], tables: _Tables,
                  started: float | None) -> None:
    """A Task/Agent tool call finished (PostToolUse) or failed (PostToolUseFailure)."""
    payload = entry["payload"]
    session = str(payload.get("session_id"))
    tool_use = str(payload.get("tool_use_id") or entry["received_at"])
    given = payload.get("tool_input")
    given = given if isinstance(given, dict) else {}
    response = payload.get("tool_response")
    response = response if isinstance(response, dict) else {"result": response}
    agent = str(given.get("subagent_type") or response.get("agentType") or "general-purpose")
    parent = str(payload.get("agent_type") or MAIN_AGENT)  # set when a sub-agent delegates
    failed = payload.get("hook_event_name") == "PostToolUseFailure"
    status = response.get("status")
    success = not failed and status in (None, "completed", "async_launched")
    error = (_text(str(payload.get("error") or "failed")) if failed
             else None if success else f"status {status}")
    duration = response.get("totalDurationMs")
    if not isinstance(duration, int | float) and started is not None:
        duration = max(0.0, (entry["received_at"] - started) * 1000)
    duration = duration if isinstance(duration, int | float) else None
    at = _at(started or entry["received_at"])
    usage = {"tokens": response.get("totalTokens"), "tool_uses": response.get("totalToolUseCount"),
             "usage": response.get("usage"), "model": response.get("resolvedModel")}
    metadata = {k: v for k, v in {
        "source": "claude-code hooks", "claude_session_id": session, "tool_use_id": tool_use,
        "session_id": str(row_id("session", session)),
        "description": _text(given.get("description"), 500),
        "agent_id": response.get("agentId"), "status": status, "parent_agent": parent,
        **usage}.items() if v is not None}
    if tables.metrics:
        conn.execute(_METRIC, (row_id("subagent-run", session, tool_use), agent, duration,
                               success, error, Jsonb(metadata), at))
    if tables.interactions:
        request = {k: v for k, v in {"description": _text(given.get("description"), 500),
                                     "prompt": _text(given.get("prompt"), PROMPT_CHARS)
                                     }.items() if v}
        result = _text(response.get("content")) or _text(response.get("result")) or error
        conn.execute(_INTERACTION, (row_id("delegation", session, tool_use), parent, agent,
                                    "task", Jsonb(request), result, duration, Jsonb(metadata), at))


def _subagent_stop(conn: psycopg.Connection, entry: dict[str, Any]) -> None:
    payload = entry["payload"]
    agent = payload.get("agent_type")
    if not agent:  # Claude Code's own internal agents stop without a type: nothing to learn
        return
    session = str(payload.get("session_id"))
    key = str(payload.get("agent_id") or entry["received_at"])
    metadata = {"source": "claude-code hooks", "claude_session_id": session,
                "session_id": str(row_id("session", session)), "agent_id": payload.get("agent_id")}
    message = _text(payload.get("last_assistant_message"))
    conn.execute(_INTERACTION, (
        row_id("subagent-stop", session, key), str(agent), MAIN_AGENT, "result", Jsonb({}),
        message, None, Jsonb({k: v for k, v in metadata.items() if v}),
        _at(entry["received_at"])))


def record(conn: psycopg.Connection, entry: dict[str, Any], tables: _Tables,
           project_dir: Path) -> None:
    """The rows one spooled event gives, in one transaction."""
    payload = entry["payload"]
    event = payload.get("hook_event_name")
    if event in TOOL_EVENTS and payload.get("tool_name") not in TOOLS:
        return  # a tool that runs no sub-agent (a hook matcher wider than ours)
    starts = _Starts(project_dir)
    tool_use = str(payload.get("tool_use_id") or "")
    if event == "PreToolUse" and tool_use:
        starts.begin(tool_use, entry["received_at"])
    ended = event in ("PostToolUse", "PostToolUseFailure")
    with conn.transaction():
        if tables.sessions:
            _session(conn, entry, project_dir.name)
        if ended:
            _subagent_run(conn, entry, tables, starts.of(tool_use) if tool_use else None)
        elif event == "SubagentStop" and tables.interactions:
            _subagent_stop(conn, entry)
    if ended and tool_use:  # only once the rows are committed: a retry still knows the start
        starts.end(tool_use)


@dataclass(frozen=True)
class Flushed:
    delivered: int
    rejected: int  # unreadable or refused by the database: logged and dropped
    left: int  # still in the spool (the server went away during the delivery)


def pending(project_dir: Path) -> int:
    return len(spool.read(spool.spool_path(project_dir)))


def _parse(line: bytes) -> dict[str, Any]:
    entry = json.loads(line)
    if not (isinstance(entry, dict) and isinstance(entry.get("payload"), dict)
            and isinstance(entry.get("received_at"), int | float)):
        raise ValueError("not a spooled hook event")
    return entry


def flush(project_dir: Path, owner: ConnInfo) -> Flushed:
    """Deliver the spool; raises ServerError when the database cannot be reached."""
    path = spool.spool_path(project_dir)
    delivered = rejected = left = 0
    with spool.Delivery(project_dir) as mine:
        if not mine:  # another delivery is running; it will take what is there
            return Flushed(0, 0, pending(project_dir))
        entries = spool.read(path)
        if not entries:
            return Flushed(0, 0, 0)
        done = 0
        _Starts(project_dir).prune(time.time())
        with db.connect(owner, autocommit=True, connect_timeout=3) as conn:
            tables = _Tables.present(conn)
            for index, line in enumerate(entries):
                try:
                    record(conn, _parse(line), tables, project_dir)
                    delivered += 1
                except psycopg.OperationalError as exc:
                    spool.log(project_dir, f"deliver: stopped, server went away: {exc}")
                    left = len(entries) - index
                    break
                except (psycopg.Error, ValueError, TypeError, KeyError) as exc:
                    spool.log(project_dir, f"deliver: event dropped ({type(exc).__name__}: "
                              f"{exc}): {line[:300]!r}")
                    rejected += 1
                done += len(line)
        spool.drop_prefix(path, done)
    return Flushed(delivered, rejected, left)


def owner_from_env(env_file: Path) -> ConnInfo:
    from installer.envfile import read_env

    values = read_env(env_file)
    if not all(values.get(key) for key in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER")):
        raise ConfigError(f"{env_file} holds no connection settings (not installed yet?)")
    return ConnInfo.from_env(values)


def main(argv: list[str]) -> int:
    """The detached delivery: flush until the spool is empty or the server is unreachable."""
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    project_dir = Path(options.get("--project-dir", ".")).absolute()
    env_file = Path(options.get("--env-file") or project_dir / ".env")
    try:
        owner = owner_from_env(env_file)
        while True:  # an event spooled while another delivery held the lock is taken here
            result = flush(project_dir, owner)
            if result.left or not pending(project_dir) or result.delivered + result.rejected == 0:
                return 0
    except Exception as exc:  # the server is down, .env is missing...: the spool keeps the events
        spool.log(project_dir, f"deliver: {type(exc).__name__}: {getattr(exc, 'message', exc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
