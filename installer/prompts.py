"""Questions to a person — only ever asked on a terminal."""

from __future__ import annotations

import sys


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(question: str) -> bool:
    """Ask yes/no on a terminal; without one the answer is no (pass --yes to agree)."""
    if not interactive():
        return False
    import questionary  # imported on demand: it costs 0.15 s at start-up

    return bool(questionary.confirm(question, default=False).ask())
