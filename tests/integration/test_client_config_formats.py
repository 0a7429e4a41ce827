"""Each MCP client's file, as the installer writes it, checked against that client's
DOCUMENTED format with plain `json`/`tomllib` (never the installer's own reader):

* Claude Code — `.mcp.json` in the project root (project scope), `mcpServers.<name>` with
  `command` and `args`; `type` optional, stdio by default (code.claude.com/docs/en/mcp).
* Cursor — `.cursor/mcp.json` in the project, `mcpServers.<name>` with `command`, `args`
  (cursor.com/docs/mcp).
* VS Code — `.vscode/mcp.json` in the workspace, `servers.<name>` with `type` (required,
  "stdio") and `command`; `args` optional (code.visualstudio.com/docs/copilot/reference/
  mcp-configuration).
* Claude Desktop — `claude_desktop_config.json` under `~/Library/Application Support/Claude/`
  (macOS) or `%APPDATA%\\Claude\\` (Windows); Linux builds use `$XDG_CONFIG_HOME/Claude/`
  (default `~/.config`); `mcpServers.<name>` with `command`, `args`
  (modelcontextprotocol.io/quickstart/user).
* Gemini CLI — `.gemini/settings.json` in the project root (or `~/.gemini/settings.json`),
  `mcpServers.<name>` with `command`, `args` (github.com/google-gemini/gemini-cli
  docs/tools/mcp-server.md).
* Codex CLI — `~/.codex/config.toml` (`$CODEX_HOME`), table `[mcp_servers.<name>]` with
  `command`, `args` (developers.openai.com/codex/mcp).
"""

from __future__ import annotations

import json
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Project

SERVER = "learning-db"
ALL_CLIENTS = "claude-code,cursor,vscode,claude-desktop,gemini,codex"


@pytest.fixture
def configured(project: Project) -> Project:
    result = project.install("--mcp-clients", ALL_CLIENTS)
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def documented_files(project: Project) -> dict[str, tuple[Any, str]]:
    """client -> (parsed file, key holding the servers), at each client's documented path."""
    home = project.home

    def js(path: str) -> Any:
        return json.loads((project.path / path if not path.startswith("~") else
                           home / path.removeprefix("~/")).read_text())

    return {
        "claude-code": (js(".mcp.json"), "mcpServers"),
        "cursor": (js(".cursor/mcp.json"), "mcpServers"),
        "vscode": (js(".vscode/mcp.json"), "servers"),
        "claude-desktop": (js("~/.config/Claude/claude_desktop_config.json"), "mcpServers"),
        "gemini": (js(".gemini/settings.json"), "mcpServers"),
        "codex": (tomllib.loads((home / ".codex" / "config.toml").read_text()), "mcp_servers"),
    }


def test_every_client_file_has_the_documented_shape(configured: Project) -> None:
    env = configured.read_env()
    for client, (data, key) in documented_files(configured).items():
        assert isinstance(data, dict), client
        entry = data[key][SERVER]
        assert isinstance(entry["command"], str) and entry["command"], client
        assert isinstance(entry["args"], list), client
        assert all(isinstance(arg, str) for arg in entry["args"]), client
        if client == "vscode":
            assert entry["type"] == "stdio"  # required by VS Code
        elif "type" in entry:
            assert entry["type"] == "stdio", client
        urls = [urlsplit(a) for a in entry["args"] if a.startswith("postgres")]
        assert len(urls) == 1, (client, entry["args"])
        url = urls[0]
        assert url.username == "learning_agent" and url.password is None, client
        assert (url.hostname, str(url.port), url.path.lstrip("/")) == (
            env["PGHOST"], env["PGPORT"], env["PGDATABASE"]), client
        text = json.dumps(entry)
        for secret in ("PGPASSWORD", "LEARNING_ADMIN_PASSWORD", "LEARNING_AGENT_PASSWORD"):
            assert env[secret] not in text, (client, secret)


def test_gemini_uses_its_project_settings_file_not_another_name(configured: Project) -> None:
    settings = configured.path / ".gemini" / "settings.json"
    assert settings.is_file()
    assert [p.name for p in settings.parent.iterdir()] == ["settings.json"]
    assert "mcpServers" in json.loads(settings.read_text())


def test_other_settings_in_client_files_survive(project: Project) -> None:
    gemini = project.path / ".gemini" / "settings.json"
    gemini.parent.mkdir()
    gemini.write_text(json.dumps({"theme": "GitHub", "mcpServers": {"mine": {
        "command": "my-server"}}}))
    codex = project.home / ".codex" / "config.toml"
    codex.parent.mkdir()
    codex.write_text('model = "o3"\n\n[mcp_servers.mine]\ncommand = "my-server"\n')
    result = project.install("--mcp-clients", "gemini,codex")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(gemini.read_text())
    assert data["theme"] == "GitHub" and set(data["mcpServers"]) == {"mine", SERVER}
    toml = tomllib.loads(codex.read_text())
    assert toml["model"] == "o3" and set(toml["mcp_servers"]) == {"mine", SERVER}
