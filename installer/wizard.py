"""Where a run's profile layer comes from: `--profile`, or the wizard's answers.

The wizard asks only on a terminal, only on a first install (no `.env` yet), and never for a
setting already given on the command line or in the environment (preseeded answers are not
asked again). `--yes`, `--json`, `--quiet` and `--dry-run` never ask. Its answers can be saved
as a profile, so the next machine installs the same way unattended.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from installer import backends, program
from installer.config import Settings, find_env_file, resolve_settings
from installer.console import Console
from installer.detect import detect
from installer.envfile import read_env
from installer.installation import auto_mode
from installer.mcp_config import CLIENTS
from installer.ports import next_free_port
from installer.profile import Profile, load_profile, save_profile
from installer.prompts import interactive

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PRESEEDED = ("command line", "environment")


def profile_for_run(project_dir: Path, args: argparse.Namespace, cli: dict[str, Any],
                    console: Console) -> Profile | None:
    spec = getattr(args, "profile", None) or os.environ.get("LEARNING_PROFILE")
    if spec:
        return load_profile(spec, project_dir)
    if not _may_ask(project_dir, args, cli, console):
        return None
    return run_wizard(project_dir, cli, console)


def _may_ask(project_dir: Path, args: argparse.Namespace, cli: dict[str, Any],
             console: Console) -> bool:
    if (args.command or "install") != "install" or getattr(args, "dry_run", False):
        return False
    if getattr(args, "yes", False) or console.quiet or getattr(args, "print_config", False):
        return False
    return interactive() and not read_env(find_env_file(project_dir, cli))


def _port_default(default: int, settings: Settings) -> int:
    return next_free_port(settings.port or default)


def _valid_port(text: str) -> bool | str:
    return (text.isdigit() and 1 <= int(text) <= 65535) or "a number from 1 to 65535"


def _valid_admin_url(text: str) -> bool | str:
    if not re.match(r"^postgres(ql)?://[^@/\s]+@[^/\s]+", text) or "HOST" in text:
        return "postgresql://USER@HOST:PORT/postgres"
    return ":" not in text.split("://", 1)[1].split("@", 1)[0] or "no password here, please"


def _valid_name(text: str) -> bool | str:
    return bool(_IDENTIFIER.match(text)) or "lower-case letters, digits and _ (max 63)"


def run_wizard(project_dir: Path, cli: dict[str, Any], console: Console) -> Profile:
    import questionary  # imported on demand: it costs 0.15 s at start-up
    from questionary import Choice

    settings = resolve_settings(project_dir, cli)
    asked = {name for name, source in settings.sources.items() if source not in _PRESEEDED}
    answers: dict[str, Any] = {}
    console.heading("A few questions (Enter takes the suggested answer; --yes skips them)")
    with console.working("Looking at this machine"):
        detection = detect()
    mode = settings.mode
    if "mode" in asked:
        mode, why = auto_mode(detection)
        mode = answers["mode"] = questionary.select(
            f"Where should PostgreSQL run? (recommended: {mode}, because {why})",
            choices=[Choice(f"{name} — {backend.summary}", value=name)
                     for name, backend in backends.registered().items()],
            default=mode).unsafe_ask()
    default_port = backends.backend_class(mode).default_port
    if default_port is None and "admin_url" in asked:  # a server the installer does not run
        answers["admin_url"] = questionary.text(
            "Admin connection of the server, without its password (the password goes in "
            "LEARNING_ADMIN_PASSWORD or ~/.pgpass; add ?sslrootcert=CA-FILE to verify the "
            "server's TLS certificate)", default="postgresql://postgres@HOST:5432/"
            "postgres", validate=_valid_admin_url).unsafe_ask()
    if "port" in asked and default_port is not None:
        answers["port"] = int(questionary.text(
            "Port for the server", default=str(_port_default(default_port, settings)),
            validate=_valid_port).unsafe_ask())
    if "database" in asked:
        answers["database"] = questionary.text(
            "Name of the learning database", default=settings.database,
            validate=_valid_name).unsafe_ask()
    if "mcp_clients" in asked:
        answers["mcp_clients"] = questionary.checkbox(
            "MCP clients to configure (space toggles)",
            choices=[Choice(f"{client.label} ({client.path(project_dir)})", value=name,
                            checked=name in settings.mcp_clients)
                     for name, client in CLIENTS.items()]).unsafe_ask()
    if "import_exports" in asked:
        answers["import_exports"] = questionary.confirm(
            "Import the learning data exported in exports/ (if any)?",
            default=settings.import_exports).unsafe_ask()
    if "install_hooks" in asked:
        answers["install_hooks"] = questionary.confirm(
            "Install the git hook that exports learning data on push?",
            default=settings.install_hooks and (project_dir / ".git").exists()).unsafe_ask()
    if "capture_agent_work" in asked:
        answers["capture_agent_work"] = questionary.confirm(
            "Record Claude Code sessions and sub-agent runs in the learning tables (hooks in "
            ".claude/settings.json)?", default=settings.capture_agent_work).unsafe_ask()
    path = Path("(wizard answers)")
    if questionary.confirm("Save these answers as a profile for unattended installs?",
                           default=False).unsafe_ask():
        path = Path(questionary.text("Profile file", default=str(
            project_dir / "profiles" / "local.yaml")).unsafe_ask()).expanduser()
        save_profile(path, answers, "answers given to the installer's wizard")
        console.info(f"Saved {path}; replay with {program.command(f'--profile {path}')}.")
    return Profile(path, answers, {})
