"""`--print-config`: the effective settings and where each came from, secrets masked."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from rich.table import Table

from installer import credentials as cred
from installer.config import Settings, environment_variable, find_env_file, resolve_settings
from installer.context import RunContext
from installer.envfile import read_env
from installer.errors import ExitCode

_PASSWORDS = (("admin password", cred.ADMIN_PASSWORD), ("owner password", cred.OWNER_PASSWORD),
              ("agent password", cred.AGENT_PASSWORD))
_URL_PASSWORD = re.compile(r"://([^/@\s:]+):([^/@\s]+)@")


def effective_config(project_dir: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Setting -> {value, source}; passwords and variables named by `*_env` settings masked."""
    profile = settings.get("profile")
    env_file = find_env_file(project_dir, settings)
    recorded = read_env(env_file)
    resolved = resolve_settings(project_dir, settings, recorded=recorded)
    result: dict[str, dict[str, Any]] = {}
    for field in dataclasses.fields(Settings):
        if field.name == "sources":
            continue
        value = getattr(resolved, field.name)
        source = resolved.sources.get(field.name, "command line")
        if source == "profile" and profile:
            source = f"profile {profile.where(field.name)}"
        elif source == "environment":
            source = f"environment {environment_variable(field.name)}"
        if field.name == "admin_url" and isinstance(value, str):
            value = _URL_PASSWORD.sub(lambda m: f"://{m[1]}:{cred.mask(m[2])}@", value)
        if field.name.endswith("_env") and isinstance(value, str):
            held = os.environ.get(value)
            value = f"{value} ({'set: ' + cred.mask(held) if held else 'not set'})"
        result[field.name] = {"value": value, "source": source}
    for label, key in _PASSWORDS:
        held = recorded.get(key)
        result[label] = {"value": cred.mask(held) if held else "(generated on install)",
                         "source": f".env (recorded) {env_file}" if held else "generated"}
    return result


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return "(default)" if value is None else str(value)


def cmd_print_config(ctx: RunContext) -> ExitCode:
    project_dir, settings, console = ctx.project_dir, ctx.settings, ctx.console
    config = effective_config(project_dir, settings)
    table = Table(title="effective settings (highest wins: command line > environment > "
                        "profile > .env > default)")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    for name, entry in config.items():
        table.add_row(name, _shown(entry["value"]), entry["source"])
    console.table(table)
    profile = settings.get("profile")
    console.emit_json({"ok": True, "profile": str(profile.path) if profile else None,
                       "settings": config})
    return ExitCode.OK
