"""Pure logic: settings precedence, pgpass lines, MCP merge, modules, checksums."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.config import resolve_settings
from installer.credentials import ConnInfo, mask
from installer.errors import ConfigError, MigrationError
from installer.mcp_config import CLIENTS, SERVER_NAME, server_entry
from installer.migrations import normalise, split_down
from installer.modules import select_modules
from installer.pgpass import merge_pgpass, pgpass_line, remove_from_pgpass


def test_precedence_cli_over_environment_over_recorded(tmp_path: Path) -> None:
    settings = resolve_settings(
        tmp_path, {"port": 7000}, environ={"LEARNING_PORT": "6000", "LEARNING_DATABASE": "env_db"},
        recorded={"PGPORT": "5000", "PGDATABASE": "rec_db", "PGUSER": "owner"})
    assert (settings.port, settings.sources["port"]) == (7000, "command line")
    assert (settings.database, settings.sources["database"]) == ("env_db", "environment")
    assert (settings.owner_role, settings.sources["owner_role"]) == ("owner", ".env (recorded)")


def test_recorded_mode_is_used_only_when_auto(tmp_path: Path) -> None:
    recorded = {"LEARNING_MODE": "native"}
    assert resolve_settings(tmp_path, {}, environ={}, recorded=recorded).mode == "native"
    assert resolve_settings(tmp_path, {"mode": "external"}, environ={},
                            recorded=recorded).mode == "external"


def test_bad_values_name_their_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port from environment is invalid"):
        resolve_settings(tmp_path, {}, environ={"LEARNING_PORT": "99999"})
    with pytest.raises(ConfigError, match="unknown mode 'cloud'"):
        resolve_settings(tmp_path, {"mode": "cloud"}, environ={})


def test_pgpass_escapes_and_replaces_only_its_line() -> None:
    line = pgpass_line("127.0.0.1", 5432, "db", "agent", "p:a\\ss")
    assert line == "127.0.0.1:5432:db:agent:p\\:a\\\\ss"
    merged = merge_pgpass("other:1:x:y:z\n127.0.0.1:5432:db:agent:old\n", "127.0.0.1", 5432,
                          "db", "agent", "p:a\\ss")
    assert merged == f"other:1:x:y:z\n{line}\n"
    assert remove_from_pgpass(merged, "127.0.0.1", 5432, "db", "agent") == "other:1:x:y:z\n"


def test_mcp_entry_has_no_password_and_merge_keeps_other_servers() -> None:
    agent = ConnInfo("127.0.0.1", 5432, "learning_system", "learning_agent", "secret")
    entry = server_entry(agent, Path("/checkout"))
    assert "secret" not in str(entry)
    existing = json.dumps({"mcpServers": {"x": {"command": "y"}}, "k": 1})
    merged = CLIENTS["claude-code"].merged(existing, entry, Path(".mcp.json"))
    assert json.loads(merged) == {"mcpServers": {"x": {"command": "y"}, SERVER_NAME: entry},
                                  "k": 1}


def test_masked_url_hides_the_password() -> None:
    conn = ConnInfo("h", 1, "d", "u", "supersecretvalue")
    assert "supersecretvalue" not in conn.masked_url()
    assert "supersecretvalue" not in mask("supersecretvalue")


def test_modules_are_ordered_by_dependency(tmp_path: Path) -> None:
    for name, requires in (("base", []), ("mid", ["base"]), ("top", ["mid"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "module.yaml").write_text(f"requires: {requires}\n")
    assert [m.name for m in select_modules(tmp_path, ["top"])] == ["base", "mid", "top"]
    with pytest.raises(ConfigError, match="unknown schema module 'nope'"):
        select_modules(tmp_path, ["nope"])


def test_module_cycle_is_reported(tmp_path: Path) -> None:
    for name, requires in (("a", ["b"]), ("b", ["a"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "module.yaml").write_text(f"requires: {requires}\n")
    with pytest.raises(ConfigError, match="cycle"):
        select_modules(tmp_path, None)


def test_normalise_strips_bom_and_line_endings() -> None:
    assert normalise(b"\xef\xbb\xbfA\r\nB\rC\n", Path("x.sql")) == "A\nB\nC\n"
    with pytest.raises(MigrationError, match="line 2 is not valid UTF-8"):
        normalise(b"ok\n\xff\n", Path("x.sql"))


def test_restore_leaves_out_extensions_and_large_objects() -> None:
    from installer.lifecycle import _left_out

    assert _left_out("3385; 3079 16385 EXTENSION - vector ")
    assert _left_out("3386; 2613 16402 BLOB - 16402 learning_agent")
    assert _left_out("3387; 0 0 BLOBS - BLOBS ")
    assert _left_out("3388; 0 0 ACL - LARGE OBJECT 16402 learning_agent")
    assert _left_out("3389; 2613 16402 LARGE OBJECT - 16402 learning")
    assert not _left_out("215; 1259 16410 TABLE public blob_notes learning")


def test_down_part_follows_its_marker_line_only() -> None:
    assert split_down("CREATE TABLE a ();\n") == ("CREATE TABLE a ();\n", None)
    assert split_down("CREATE TABLE a ();\n-- migrate:down\nDROP TABLE a;\n") == (
        "CREATE TABLE a ();\n", "DROP TABLE a;\n")
    assert split_down("SELECT 1;\n-- migrate:down\n-- nothing to undo\n") == ("SELECT 1;\n", "")
    text = "SELECT '-- migrate:down';\n  -- migrate:down later\n"
    assert split_down(text) == (text, None)  # only a line that is exactly the marker
