"""Backends: where the PostgreSQL server runs. Each registers itself under its mode name;
callers ask the registry, never compare mode strings.

Adding a backend: subclass `base.Backend` in a module here, decorate it with
`@base.register`, and import the module below.
"""

from __future__ import annotations

from installer.backends.base import Backend, registered
from installer.errors import ConfigError

# Each module registers its backend; the order here is the order users see the modes in.
# isort: off
from installer.backends import native  # noqa: F401
from installer.backends import docker  # noqa: F401
from installer.backends import external  # noqa: F401
# isort: on

AUTO = "auto"  # not a backend: detection picks native or docker

__all__ = ["AUTO", "Backend", "backend_class", "modes", "registered"]


def modes() -> tuple[str, ...]:
    """Every backend's mode name."""
    return tuple(registered())


def backend_class(mode: str) -> type[Backend]:
    """The backend registered as `mode`; a ConfigError naming the valid ones otherwise."""
    try:
        return registered()[mode]
    except KeyError:
        raise ConfigError(f"unknown mode {mode!r}",
                          hint=f"use one of: {', '.join((AUTO, *modes()))}") from None
