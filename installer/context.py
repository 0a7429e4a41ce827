"""What one run knows before its command starts, built once by `cli.main` and handed to the
command: where the checkout is, the parsed arguments, the settings given on the command line,
the profile and the console."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer import program
from installer.console import Console
from installer.errors import ConfigError, ExitCode
from installer.installation import Installation
from installer.locking import RunLocks
from installer.profile import Profile


@dataclass(frozen=True)
class RunContext:
    project_dir: Path
    args: argparse.Namespace  # the parsed command line; options a command lacks are absent
    flags: Mapping[str, Any]  # settings given as flags (None: not given)
    profile: Profile | None  # --profile, LEARNING_PROFILE or the wizard's answers
    console: Console
    locks: RunLocks | None = None  # held when the command changes state (see cli.main)

    @property
    def settings(self) -> dict[str, Any]:
        """The command-line layer as `resolve_settings` and `Installation.load` take it."""
        return {**self.flags, "profile": self.profile}

    def installation(self, *, installed: bool = True, probe_docker: bool = False,
                     choose_port: bool = False) -> Installation:
        """The installation the settings describe, its notes shown as warnings. `installed`:
        a ConfigError when nothing is installed here yet (no .env). `choose_port`: the install
        alone may move off a port another program took. In a run that changes state, the
        instance's lock is held from here on."""
        found = Installation.load(self.project_dir, self.settings, self.console,
                                  probe_docker=probe_docker, choose_port=choose_port)
        if self.locks is not None and (lock := found.backend.lock_file()) is not None:
            self.locks.hold(lock)
        for note in found.notes:
            self.console.warn(note)
        if installed and not found.recorded:
            raise ConfigError("nothing is installed here yet (no .env)",
                              hint=f"run {program.command('--full')} first")
        return found


Command = Callable[[RunContext], ExitCode]
