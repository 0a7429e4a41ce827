"""Each MCP client writer merges our entry without clobbering: other servers, other settings,
comments and formatting stay; no password is written; a broken file is refused untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomlkit

from installer import jsonc
from installer.config import resolve_settings
from installer.credentials import ConnInfo
from installer.errors import ConfigError
from installer.mcp_config import (
    CLIENTS,
    MCP_SERVER_PACKAGE,
    SERVER_NAME,
    ServerChoice,
    read_text,
    server_entry,
)
from installer.mcp_server.command import agent_from
from installer.project_steps import McpConfigStep

AGENT = ConnInfo("127.0.0.1", 5999, "learning_system", "learning_agent", "s3cret-Pass")


@pytest.fixture(autouse=True)
def _home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("APPDATA", raising=False)
    return home


def _apply(name: str, project: Path) -> tuple[McpConfigStep, str]:
    step = McpConfigStep(CLIENTS[name], project, AGENT)
    check = step.check()
    if not check.ok:
        step.apply(check)
    return step, read_text(step.path)


def _assert_entry(name: str, text: str, path: Path) -> None:
    entry = CLIENTS[name].entry_in(text, path)
    assert entry is not None and entry["args"][1] == "mcp-server"
    assert entry["args"][-1] == "postgresql://learning_agent@127.0.0.1:5999/learning_system"
    assert "s3cret-Pass" not in text


@pytest.mark.parametrize("name", list(CLIENTS))
def test_new_file_then_idempotent(name: str, tmp_path: Path) -> None:
    step, text = _apply(name, tmp_path)
    _assert_entry(name, text, step.path)
    assert step.check().ok
    before = step.path.stat().st_mtime_ns
    _apply(name, tmp_path)
    assert step.path.stat().st_mtime_ns == before


@pytest.mark.parametrize("name", ["claude-code", "cursor", "claude-desktop", "gemini"])
def test_json_clients_keep_other_servers_and_settings(name: str, tmp_path: Path) -> None:
    path = CLIENTS[name].path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"theme": "dark", "mcpServers": {
        "other": {"command": "other-server", "args": ["--x"]},
        SERVER_NAME: {"command": "old", "args": []}}}, indent=4) + "\n")
    _, text = _apply(name, tmp_path)
    data = json.loads(text)
    assert data["theme"] == "dark"
    assert data["mcpServers"]["other"] == {"command": "other-server", "args": ["--x"]}
    _assert_entry(name, text, path)
    assert '    "theme": "dark"' in text  # the file's own indentation is kept


def test_vscode_keeps_comments_and_requires_type(tmp_path: Path) -> None:
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    original = """{
  // my servers
  "inputs": [],
  "servers": {
    /* a comment inside */
    "github": {"type": "http", "url": "https://example.com/mcp"}, // trailing comma next
  },
}
"""
    path.write_text(original)
    _, text = _apply("vscode", tmp_path)
    assert "// my servers" in text and "/* a comment inside */" in text
    servers = jsonc.loads(text, "x")["servers"]
    assert servers["github"]["url"] == "https://example.com/mcp"
    assert servers[SERVER_NAME]["type"] == "stdio"
    _assert_entry("vscode", text, path)
    assert CLIENTS["vscode"].without(text, path) == original


def test_codex_keeps_comments_and_other_tables(tmp_path: Path, home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text('# my codex settings\nmodel = "o4"  # keep me\n\n'
                    '[mcp_servers.other]\ncommand = "other"\nargs = ["a"]\n')
    _, text = _apply("codex", tmp_path)
    assert "# my codex settings" in text and "# keep me" in text
    data = tomlkit.parse(text)
    assert data["model"] == "o4"
    assert data["mcp_servers"]["other"]["command"] == "other"
    assert f"[mcp_servers.{SERVER_NAME}]" in text
    _assert_entry("codex", text, path)
    removed = CLIENTS["codex"].without(text, path)
    assert removed is not None and SERVER_NAME not in removed and "# keep me" in removed


def test_codex_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    assert CLIENTS["codex"].path(tmp_path) == tmp_path / "codex" / "config.toml"


@pytest.mark.parametrize(("name", "broken"), [
    ("cursor", '{"mcpServers": {'), ("vscode", '{"servers": []}'), ("gemini", "[1, 2]"),
    ("codex", "[mcp_servers\n"),
])
def test_broken_file_is_refused_and_left_untouched(name: str, broken: str,
                                                    tmp_path: Path) -> None:
    path = CLIENTS[name].path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(broken)
    with pytest.raises(ConfigError) as caught:
        McpConfigStep(CLIENTS[name], tmp_path, AGENT).check()
    assert str(path) in caught.value.message and "nothing was changed" in (caught.value.hint or "")
    assert path.read_text() == broken


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o600)
    _apply("cursor", tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_dry_run_diff_shows_only_our_entry(tmp_path: Path) -> None:
    path = tmp_path / ".mcp.json"
    original = json.dumps({"mcpServers": {"other": {"command": "x"}}}, indent=2) + "\n"
    path.write_text(original)
    diff = McpConfigStep(CLIENTS["claude-code"], tmp_path, AGENT).diff()
    assert f'+    "{SERVER_NAME}": {{' in diff
    removed = [line for line in diff.splitlines() if line.startswith("-")][1:]  # after ---
    assert removed == []  # the other server's lines are untouched
    assert path.read_text() == original


def test_npx_choice_and_builtin_limits_shape_the_entry(tmp_path: Path) -> None:
    npx = server_entry(AGENT, tmp_path, ServerChoice(kind="npx"))
    assert npx == {"command": "npx", "args": [
        "-y", MCP_SERVER_PACKAGE, "postgresql://learning_agent@127.0.0.1:5999/learning_system"]}
    builtin = server_entry(AGENT, tmp_path, ServerChoice(timeout=2.5, max_rows=40))
    assert Path(builtin["command"]).is_absolute()
    assert builtin["args"][0] == str(tmp_path / "install.py")
    assert builtin["args"][1:] == ["mcp-server", "--timeout", "2.5", "--max-rows", "40", "--url",
                                   "postgresql://learning_agent@127.0.0.1:5999/learning_system"]


def test_unknown_mcp_server_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown MCP server 'node'"):
        resolve_settings(tmp_path, {}, environ={"LEARNING_MCP_SERVER": "node"})


def test_server_takes_the_password_from_env_never_from_the_url() -> None:
    recorded = {"LEARNING_AGENT_USER": "learning_agent", "LEARNING_AGENT_PASSWORD": "pw"}
    agent = agent_from("postgresql://learning_agent@127.0.0.1:5999/learning_system", recorded)
    assert (agent.host, agent.port, agent.dbname, agent.password) == (
        "127.0.0.1", 5999, "learning_system", "pw")
    assert agent_from("postgresql://other@h:1/d", recorded).password is None  # ~/.pgpass
    with pytest.raises(ConfigError, match="holds a password"):
        agent_from("postgresql://learning_agent:secret@h:1/d", recorded)
