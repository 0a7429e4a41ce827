"""Schema modules: `sql/<module>/` holds a module's migrations and its `module.yaml`.

module.yaml:
    description: one line for people
    requires: [other_module, ...]   # applied first; selecting a module selects these too
    order: 10                       # position among modules with no dependency between them
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import yaml

from installer.errors import ConfigError


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    description: str
    requires: tuple[str, ...]
    order: int


def discover_modules(sql_dir: Path) -> dict[str, Module]:
    modules = {}
    for meta in sorted(sql_dir.glob("*/module.yaml")):
        try:
            data = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{meta}: not valid YAML: {exc}") from exc
        modules[meta.parent.name] = Module(
            name=meta.parent.name, path=meta.parent, description=str(data.get("description", "")),
            requires=tuple(data.get("requires") or ()), order=int(data.get("order", 100)))
    if not modules:
        raise ConfigError(f"no schema modules found in {sql_dir}",
                          hint="each module is a folder sql/<name>/ with a module.yaml")
    return modules


def select_modules(sql_dir: Path, wanted: list[str] | None) -> list[Module]:
    """The wanted modules (all when None) plus what they require, in dependency order."""
    available = discover_modules(sql_dir)
    if wanted is not None and not wanted:
        raise ConfigError("no schema module selected",
                          hint=f"choose from: {', '.join(sorted(available))} (or all)")
    names = list(available) if wanted is None else list(wanted)
    chosen: set[str] = set()
    while names:
        name = names.pop()
        if name not in available:
            raise ConfigError(f"unknown schema module {name!r}",
                              hint=f"available modules: {', '.join(sorted(available))}")
        if name not in chosen:
            chosen.add(name)
            names.extend(available[name].requires)
    sorter = TopologicalSorter({n: available[n].requires for n in chosen})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ConfigError(f"schema modules require each other in a cycle: {exc.args[1]}") from exc
    ordered: list[Module] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: (available[n].order, n))
        ordered.extend(available[n] for n in ready)
        sorter.done(*ready)
    return ordered
