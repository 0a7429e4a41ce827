"""The program's name as the user typed it, for every hint that tells them what to run."""

from __future__ import annotations

import sys
from pathlib import Path

CONSOLE_SCRIPT = "learning-installer"
SCRIPT = "python install.py"


def name() -> str:
    """`learning-installer` when run as the console script, else `python install.py`."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else SCRIPT


def command(arguments: str = "") -> str:
    """A command to show in a hint, quoted with backticks: `python install.py start`."""
    return f"`{name()} {arguments}`" if arguments else f"`{name()}`"
