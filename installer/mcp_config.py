"""MCP client configuration: one server entry for the learning database, no password in it.

The entry starts `@modelcontextprotocol/server-postgres` with a URL naming the read-only agent
role and no password; the server's driver finds the password in `~/.pgpass` (see pgpass.py).
The role, not the server, is the security boundary: that server runs whatever the agent sends
in one simple query, so only SELECT rights and a read-only default keep the data safe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from installer.credentials import ConnInfo
from installer.errors import ConfigError
from installer.fileutil import write_if_changed

SERVER_NAME = "learning-db"
MCP_SERVER_PACKAGE = "@modelcontextprotocol/server-postgres@0.6.2"


def server_entry(agent: ConnInfo) -> dict[str, Any]:
    return {"command": "npx", "args": ["-y", MCP_SERVER_PACKAGE, agent.url(with_password=False)]}


def load_json_config(path: Path) -> dict[str, Any]:
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                          f"{exc.msg}", hint="fix or remove the file; nothing was changed") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object", hint="fix or remove the file")
    return data


def merged_claude_config(existing: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    servers = existing.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError("`mcpServers` in .mcp.json is not an object",
                          hint="fix the file; nothing was changed")
    return {**existing, "mcpServers": {**servers, SERVER_NAME: entry}}


def render(config: dict[str, Any]) -> bytes:
    return (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_claude_config(path: Path, agent: ConnInfo) -> bool:
    config = merged_claude_config(load_json_config(path), server_entry(agent))
    if path.exists() and load_json_config(path) == config:
        return False
    return write_if_changed(path, render(config))


def remove_claude_entry(path: Path) -> bool:
    config = load_json_config(path)
    servers = config.get("mcpServers")
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        return False
    del servers[SERVER_NAME]
    return write_if_changed(path, render(config))
