"""MCP client configuration: one server entry for the learning database, no password in it.

By default the entry starts the project's own server (installer/mcp_server/) with the
installer's Python: one statement per read, typed writes through `agent_api`. The setting
`mcp_server: npx` writes `@modelcontextprotocol/server-postgres` instead (needs Node; reads
only, and runs whatever one simple query holds, so only the role keeps the data safe). Either
way the URL names the agent role without a password: libpq and node-postgres find it in
`~/.pgpass` (see pgpass.py).

Each client has a writer with the same interface: where its file is, the file's text with our
entry merged in, and without it. Merges touch only our entry: other servers, other settings,
comments (VS Code's JSONC, Codex's TOML) and formatting stay as they were.
"""

from __future__ import annotations

import difflib
import os
import platform
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from installer import jsonc
from installer.credentials import ConnInfo
from installer.errors import ConfigError
from installer.fileutil import write_if_changed

SERVER_NAME = "learning-db"
MCP_SERVER_PACKAGE = "@modelcontextprotocol/server-postgres@0.6.2"


@dataclass(frozen=True)
class ServerChoice:
    """Which server the entry starts, and the builtin server's limits."""

    kind: str = "builtin"
    timeout: float = 30.0  # seconds a statement may run
    max_rows: int = 500


def installer_python(project_dir: Path) -> Path:
    """The installer's own interpreter: the project's .venv when there is one (not resolved:
    a venv's python is a symlink that only works under its own name)."""
    own = project_dir / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return own.absolute() if own.exists() else Path(sys.executable).absolute()


BUILTIN = ServerChoice()


def server_entry(agent: ConnInfo, project_dir: Path,
                 choice: ServerChoice = BUILTIN) -> dict[str, Any]:
    url = agent.url(with_password=False)
    if choice.kind == "npx":
        return {"command": "npx", "args": ["-y", MCP_SERVER_PACKAGE, url]}
    return {"command": str(installer_python(project_dir)),
            "args": [str(project_dir.absolute() / "install.py"), "mcp-server", "--timeout",
                     f"{choice.timeout:g}", "--max-rows", str(choice.max_rows), "--url", url]}


class McpClient(ABC):
    """One MCP client's configuration file and how our entry is merged into it."""

    name: str  # as written in a profile's mcp_clients
    label: str

    @abstractmethod
    def path(self, project_dir: Path) -> Path: ...

    @abstractmethod
    def entry_in(self, text: str, source: Path) -> dict[str, Any] | None:
        """Our entry as the file holds it now, or None."""

    @abstractmethod
    def merged(self, text: str, entry: dict[str, Any], source: Path) -> str:
        """`text` with our entry set to `entry`; returns `text` itself when it already is."""

    @abstractmethod
    def without(self, text: str, source: Path) -> str | None:
        """`text` without our entry, or None when it holds none."""


@dataclass(frozen=True)
class JsonClient(McpClient):
    name: str
    label: str
    locate: Callable[[Path], Path]
    servers_key: str = "mcpServers"
    extra: dict[str, Any] = field(default_factory=dict)  # fields this client requires

    def path(self, project_dir: Path) -> Path:
        return self.locate(project_dir)

    def _servers(self, text: str, source: Path) -> dict[str, Any]:
        data = jsonc.loads(text, str(source))
        if not isinstance(data, dict):
            raise ConfigError(f"{source} does not hold a JSON object",
                              hint="fix or remove the file; nothing was changed")
        servers = data.get(self.servers_key, {})
        if not isinstance(servers, dict):
            raise ConfigError(f"`{self.servers_key}` in {source} is not an object",
                              hint="fix the file; nothing was changed")
        return servers

    def entry_in(self, text: str, source: Path) -> dict[str, Any] | None:
        return self._servers(text, source).get(SERVER_NAME)

    def merged(self, text: str, entry: dict[str, Any], source: Path) -> str:
        entry = {**self.extra, **entry}
        if self.entry_in(text, source) == entry:
            return text
        if not text.strip():
            text = "{}\n"
        return jsonc.set_member(text, (self.servers_key,), SERVER_NAME, entry)

    def without(self, text: str, source: Path) -> str | None:
        if self.entry_in(text, source) is None:
            return None
        return jsonc.remove_member(text, (self.servers_key,), SERVER_NAME)


@dataclass(frozen=True)
class CodexClient(McpClient):
    """`~/.codex/config.toml` (or $CODEX_HOME), table `[mcp_servers.NAME]`, edited with
    tomlkit so comments and layout survive."""

    name: str = "codex"
    label: str = "Codex CLI"

    def path(self, project_dir: Path) -> Path:
        return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex") / "config.toml"

    def _parse(self, text: str, source: Path) -> tomlkit.TOMLDocument:
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}",
                              hint="fix or remove the file; nothing was changed") from exc
        servers = document.get("mcp_servers")
        if servers is not None and not isinstance(servers, dict):
            raise ConfigError(f"`mcp_servers` in {source} is not a table",
                              hint="fix the file; nothing was changed")
        return document

    def entry_in(self, text: str, source: Path) -> dict[str, Any] | None:
        entry = (self._parse(text, source).get("mcp_servers") or {}).get(SERVER_NAME)
        return entry.unwrap() if entry is not None else None

    def merged(self, text: str, entry: dict[str, Any], source: Path) -> str:
        if self.entry_in(text, source) == entry:
            return text
        document = self._parse(text, source)
        if "mcp_servers" not in document:
            document["mcp_servers"] = tomlkit.table(is_super_table=True)
        table = tomlkit.table()
        table.update(entry)
        document["mcp_servers"][SERVER_NAME] = table  # type: ignore[index]
        return tomlkit.dumps(document)

    def without(self, text: str, source: Path) -> str | None:
        if self.entry_in(text, source) is None:
            return None
        document = self._parse(text, source)
        del document["mcp_servers"][SERVER_NAME]  # type: ignore[union-attr]
        return tomlkit.dumps(document).rstrip("\n") + "\n"  # no blank line left behind


def claude_desktop_config() -> Path:
    """Claude Desktop's per-user file: macOS, Windows, and the Linux community builds."""
    system = platform.system()
    if system == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    elif system == "Windows":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "Claude" / "claude_desktop_config.json"


CLIENTS: dict[str, McpClient] = {client.name: client for client in (
    JsonClient("claude-code", "Claude Code", lambda p: p / ".mcp.json"),
    JsonClient("cursor", "Cursor", lambda p: p / ".cursor" / "mcp.json"),
    JsonClient("vscode", "VS Code", lambda p: p / ".vscode" / "mcp.json", servers_key="servers",
               extra={"type": "stdio"}),
    JsonClient("claude-desktop", "Claude Desktop", lambda p: claude_desktop_config()),
    JsonClient("gemini", "Gemini CLI", lambda p: p / ".gemini" / "settings.json"),
    CodexClient(),
)}


def clients_named(names: list[str]) -> list[McpClient]:
    unknown = [name for name in names if name not in CLIENTS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], CLIENTS, n=1)
        raise ConfigError(f"unknown MCP client {unknown[0]!r}"
                          + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"MCP clients: {', '.join(CLIENTS)}")
    return [CLIENTS[name] for name in names]


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def remove_entry(client: McpClient, project_dir: Path, agent: ConnInfo) -> Path | None:
    """Remove our entry when it points at this installation (a user-wide file may hold
    another checkout's); returns the file changed, or None."""
    path = client.path(project_dir)
    text = read_text(path)
    entry = client.entry_in(text, path) if text else None
    if not entry or agent.url(with_password=False) not in entry.get("args", []):
        return None
    write_if_changed(path, (client.without(text, path) or "").encode("utf-8"),
                     mode=path.stat().st_mode & 0o777)
    return path
