"""`doctor`'s proof of the agents' path: each configured MCP client's entry, started as the
client starts it, answers one read as the agent role.

The entry is read from the file the client reads (`mcp_config.CLIENTS`), and its command, args
and env are launched on stdio by the `mcp` SDK's client with the SDK's default environment
(HOME, PATH, USER…; a client adds nothing else), from the checkout. The probe runs
`initialize`, lists the tools and calls `query` with one SELECT, under one deadline. Clients
that share an identical entry are probed once and each is reported.

A failure before the handshake is the command's (it does not start, or exits); one after it is
the database path's, classified by `db.cause_of` from the tool's error and the server's stderr.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from installer import db, program
from installer.credentials import mask
from installer.errors import InstallerError
from installer.mcp_config import SERVER_NAME, McpClient, read_text

TIMEOUT = 30.0  # seconds for start, handshake and the read (npx may fetch its package first)
PROBE_SQL = "SELECT current_user AS role, current_database() AS database"


@dataclass(frozen=True)
class Launch:
    """What a client starts: the entry's command, args and env (other fields are the client's)."""

    command: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Launch:
        command, args, env = entry.get("command"), entry.get("args", []), entry.get("env", {})
        if not isinstance(command, str) or not command or not isinstance(args, list) \
                or not isinstance(env, dict):
            raise ValueError("the entry needs a `command` (text), `args` (a list) and at most "
                             "an `env` (an object)")
        return cls(command, tuple(str(a) for a in args),
                   tuple(sorted((str(k), str(v)) for k, v in env.items())))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str
    cause: str = ""  # db.Cause.kind, or "command" / "protocol" / "entry"
    todo: str = ""


@dataclass(frozen=True)
class ClientReport:
    client: McpClient
    path: Path
    outcome: Outcome
    same_as: str = ""  # the label of the client whose identical entry was probed


class _Failed(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.detail)
        self.outcome = outcome


def _command_failed(what: str) -> Outcome:
    return Outcome(False, what, "command",
                   f"fix the entry's command, or let {program.command('--full')} rewrite it")


async def _session(launch: Launch, cwd: Path, errlog: TextIO) -> str:
    params = StdioServerParameters(command=launch.command, args=list(launch.args),
                                   env=dict(launch.env) or None, cwd=str(cwd))
    async with stdio_client(params, errlog=errlog) as (read, write), \
            ClientSession(read, write) as session:
        try:
            await session.initialize()
            tools = [tool.name for tool in (await session.list_tools()).tools]
        except Exception as exc:  # the process exited, or spoke no MCP
            raise _Failed(_command_failed(f"no MCP handshake ({exc or type(exc).__name__})")
                          ) from exc
        if "query" not in tools:
            raise _Failed(Outcome(False, f"no `query` tool (it offers: {', '.join(tools)})",
                                  "protocol", "point the entry at the learning-db server"))
        try:
            result = await session.call_tool("query", {"sql": PROBE_SQL})
        except Exception as exc:  # a server that fails the request instead of the tool call
            raise _Failed(_database_failed(str(exc))) from exc
    text = "".join(getattr(part, "text", "") for part in getattr(result, "content", []))
    if not isinstance(result, CallToolResult) or result.is_error:
        raise _Failed(_database_failed(text))
    return text


def _database_failed(text: str) -> Outcome:
    cause = db.cause_of(text)
    return Outcome(False, f"{cause.summary} ({text.strip()[:300]})", cause.kind, cause.todo)


def _last_lines(stream: TextIO, lines: int = 3) -> str:
    stream.seek(0)
    return " | ".join(line.strip() for line in stream.read().splitlines()[-lines:]
                      if line.strip())


def _run(session: Coroutine[Any, Any, str], timeout: float) -> str:
    """The session's answer; an exception the SDK's task groups wrapped comes out alone."""
    try:
        return asyncio.run(asyncio.wait_for(session, timeout))
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from group


def probe(launch: Launch, cwd: Path, expected: str, timeout: float = TIMEOUT) -> Outcome:
    """Start `launch` on stdio, handshake, list tools and run one read, which must answer as
    `expected` ("role@database"); never raises."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            text = _run(_session(launch, cwd, errlog), timeout)
        except TimeoutError:
            stderr = _last_lines(errlog)
            return Outcome(False, f"no answer within {timeout:g} s"
                           + (f"; its stderr: {stderr}" if stderr else ""), "timeout",
                           "run the entry's command by hand to see where it hangs")
        except OSError as exc:  # the command itself: not found, not executable
            return _command_failed(f"{launch.command} does not start: {exc.strerror or exc}")
        except _Failed as failed:
            stderr = _last_lines(errlog)
            outcome = failed.outcome
            if outcome.cause == "command" and stderr:
                outcome = _command_failed(f"it exited: {stderr}")
            elif outcome.cause == "unknown" and stderr:
                cause = db.cause_of(stderr)
                outcome = Outcome(False, f"{outcome.detail}; its stderr: {stderr}", cause.kind,
                                  cause.todo)
            return outcome
        except Exception as exc:  # doctor reports whatever else went wrong, and goes on
            return Outcome(False, f"the probe failed: {exc or type(exc).__name__}", "unknown",
                           "run the entry's command by hand to see what it says")
    answered = _answered_as(text)
    if answered != expected:  # e.g. a user-wide file still naming another checkout's database
        return Outcome(False, f"it reads as {answered}, not {expected}", "entry",
                       f"let {program.command('--full')} rewrite the entry")
    return Outcome(True, f"{answered} through `query` in {time.monotonic() - started:.1f} s")


def _answered_as(text: str) -> str:
    """`role@database` from the answer of either server, or the answer itself."""
    try:
        data: Any = json.loads(text)
        rows: Any = data.get("rows") if isinstance(data, dict) else data
        row: Any = rows[0]
        return f"{row['role']}@{row['database']}"
    except (ValueError, TypeError, KeyError, IndexError):
        return text.strip()[:100]


def probe_clients(clients: list[McpClient], project_dir: Path, expected: str,
                  secrets: tuple[str, ...] = (), timeout: float = TIMEOUT
                  ) -> list[ClientReport]:
    """One report per client; each distinct entry is started once. `secrets` never appear
    in a report (a server's stderr could echo one)."""
    reports: list[ClientReport] = []
    probed: dict[Launch, tuple[str, Outcome]] = {}
    for client in clients:
        path = client.path(project_dir)
        try:
            entry = client.entry_in(read_text(path), path) if path.exists() else None
        except InstallerError as exc:
            reports.append(ClientReport(client, path, Outcome(False, exc.message, "entry",
                                                              exc.hint or "")))
            continue
        if not entry:
            reports.append(ClientReport(client, path, Outcome(
                False, f"no `{SERVER_NAME}` entry in {path}", "entry",
                f"run {program.command('--full')}: it writes it")))
            continue
        try:
            launch = Launch.of(entry)
        except ValueError as exc:
            reports.append(ClientReport(client, path, Outcome(False, f"{path}: {exc}", "entry",
                                                              f"run {program.command('--full')}")))
            continue
        if launch in probed:
            label, outcome = probed[launch]
            reports.append(ClientReport(client, path, outcome, same_as=label))
            continue
        outcome = _scrubbed(probe(launch, project_dir, expected, timeout), secrets)
        probed[launch] = (client.label, outcome)
        reports.append(ClientReport(client, path, outcome))
    return reports


def _scrubbed(outcome: Outcome, secrets: tuple[str, ...]) -> Outcome:
    detail = outcome.detail
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, mask(secret))
    return Outcome(outcome.ok, detail, outcome.cause, outcome.todo)
