"""Precedence: command line > environment > profile > .env recorded > default, with sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.config import resolve_settings
from installer.errors import ConfigError


def test_each_layer_overrides_the_ones_below(tmp_path: Path) -> None:
    recorded = {"PGPORT": "6001", "PGDATABASE": "from_env_file", "PGUSER": "rec_owner"}
    profile = {"port": 6002, "database": "from_profile", "health_timeout": 5.0}
    environ = {"LEARNING_PORT": "6003", "LEARNING_HEALTH_TIMEOUT": "7"}
    cli = {"port": 6004, "database": None}
    s = resolve_settings(tmp_path, cli, environ=environ, profile=profile, recorded=recorded)
    assert (s.port, s.sources["port"]) == (6004, "command line")
    assert (s.health_timeout, s.sources["health_timeout"]) == (7.0, "environment")
    assert (s.database, s.sources["database"]) == ("from_profile", "profile")
    assert (s.owner_role, s.sources["owner_role"]) == ("rec_owner", ".env (recorded)")
    assert (s.agent_role, s.sources["agent_role"]) == ("learning_agent", "default")


def test_profile_beats_recorded_env_file(tmp_path: Path) -> None:
    s = resolve_settings(tmp_path, {}, environ={}, profile={"port": 7000},
                         recorded={"PGPORT": "7001"})
    assert (s.port, s.sources["port"]) == (7000, "profile")


def test_recorded_mode_is_kept_only_while_nothing_asks_otherwise(tmp_path: Path) -> None:
    recorded = {"LEARNING_MODE": "native"}
    assert resolve_settings(tmp_path, {}, environ={}, recorded=recorded).mode == "native"
    s = resolve_settings(tmp_path, {}, environ={}, profile={"mode": "docker"},
                         recorded=recorded)
    assert (s.mode, s.sources["mode"]) == ("docker", "profile")


def test_mcp_clients_from_a_comma_separated_list(tmp_path: Path) -> None:
    s = resolve_settings(tmp_path, {}, environ={"LEARNING_MCP_CLIENTS": "cursor, codex"},
                         recorded={"LEARNING_MCP_CLIENTS": "vscode"})
    assert (s.mcp_clients, s.sources["mcp_clients"]) == (["cursor", "codex"], "environment")
    recorded = resolve_settings(tmp_path, {}, environ={},
                                recorded={"LEARNING_MCP_CLIENTS": "none"})
    assert recorded.mcp_clients == []


def test_recorded_choices_survive_a_rerun(tmp_path: Path) -> None:
    recorded = {"LEARNING_INSTALL_HOOKS": "false", "LEARNING_IMPORT_EXPORTS": "true"}
    s = resolve_settings(tmp_path, {}, environ={}, recorded=recorded)
    assert (s.install_hooks, s.import_exports) == (False, True)


@pytest.mark.parametrize(("layer", "name", "role"), [
    ("environment", "agent_role", "rds_agent"), ("profile", "owner_role", "cloudsqlowner"),
    ("environment", "owner_role", "pg_learning"), ("profile", "agent_role", "azure_agent"),
    ("environment", "agent_role", "supabase_reader")])
def test_role_names_a_provider_or_postgresql_keeps_are_refused(
        tmp_path: Path, layer: str, name: str, role: str) -> None:
    environ = {f"LEARNING_{name.upper()}": role} if layer == "environment" else {}
    profile = {name: role} if layer == "profile" else {}
    with pytest.raises(ConfigError) as refused:
        resolve_settings(tmp_path, {}, environ=environ, profile=profile)
    assert f"{name} {role!r} (from {layer})" in refused.value.message
    assert "managed service" in refused.value.message
    assert "choose another name" in (refused.value.hint or "")
    fine = resolve_settings(tmp_path, {}, environ={}, profile={name: "learning_rds"})
    assert getattr(fine, name) == "learning_rds"
