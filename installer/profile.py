"""Profiles: YAML files that preseed settings for unattended installs, validated at load.

The schema is derived from the `Settings` dataclass: every field except `project_dir` and
`sources` may appear in a profile, with the field's type. A new setting therefore needs no
change here; only a choice list or a numeric range (below) is declared by hand.

Errors name the file and line. Secrets never appear in a profile: a key ending in `_env`
names the environment variable that holds one, and a key that looks like a secret, or a URL
with a password in it, is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from installer import program
from installer.config import BINARIES, MCP_SERVERS, MODES, Settings
from installer.credentials import SSLMODES
from installer.errors import ConfigError
from installer.fileutil import write_atomic
from installer.mcp_config import CLIENTS

NOT_IN_PROFILE = ("project_dir", "sources")
META_KEYS = {"description": str}  # for people; not a setting
CHOICES: dict[str, tuple[str, ...]] = {
    "mode": MODES, "binaries": BINARIES, "mcp_clients": tuple(CLIENTS), "mcp_server": MCP_SERVERS,
    "sslmode": SSLMODES,
}
RANGES: dict[str, tuple[float, float]] = {"port": (1, 65535), "health_timeout": (1, 3600),
                                          "mcp_timeout": (1, 3600), "mcp_max_rows": (1, 10000)}
_SECRET_WORDS = re.compile(r"password|secret|token|passwd", re.IGNORECASE)
_URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Profile:
    path: Path
    values: dict[str, Any]  # setting name -> value, already typed
    lines: dict[str, int]  # setting name -> line in the file
    description: str = ""

    def where(self, name: str) -> str:
        return f"{self.path}:{self.lines[name]}" if name in self.lines else str(self.path)


def profile_fields() -> dict[str, Any]:
    """Setting name -> its type, for every setting a profile may hold."""
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)
            if f.name not in NOT_IN_PROFILE}


def available_profiles(project_dir: Path) -> list[str]:
    return sorted(p.stem for p in (project_dir / "profiles").glob("*.yaml"))


def find_profile(spec: str, project_dir: Path) -> Path:
    """`spec` is a profile name (profiles/NAME.yaml) or a path to a YAML file."""
    as_path = Path(spec).expanduser()
    looks_like_path = as_path.suffix in (".yaml", ".yml") or "/" in spec or as_path.exists()
    path = as_path if looks_like_path else project_dir / "profiles" / f"{spec}.yaml"
    if not path.is_file():
        names = ", ".join(available_profiles(project_dir)) or "none"
        raise ConfigError(f"profile {spec!r} not found ({path})",
                          hint=f"use a path to a YAML file or one of the profiles: {names}")
    return path


def load_profile(spec: str, project_dir: Path) -> Profile:
    path = find_profile(spec, project_dir)
    return parse_profile(path.read_text(encoding="utf-8"), path, project_dir)


def parse_profile(text: str, path: Path, project_dir: Path) -> Profile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {exc.problem or exc}",
                          hint="fix the YAML syntax at that line (indentation, quotes, colons)"
                          ) from exc
    if root is None:
        return Profile(path, {}, {})
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise ConfigError(f"{path}:{root.start_mark.line + 1}: a profile is a mapping of "
                          "settings (key: value)", hint="see profiles/default.yaml")
    fields = profile_fields()
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        where = f"{path}:{line}"
        if key_node.tag != "tag:yaml.org,2002:str":
            raise ConfigError(f"{where}: {key!r} is not a setting name",
                              hint="see profiles/default.yaml for the settings")
        if key in lines:
            raise ConfigError(f"{where}: {key!r} appears twice", hint="keep one of them")
        lines[key] = line
        _refuse_secret(key, data[key], where)
        if key in META_KEYS:
            if not isinstance(data[key], META_KEYS[key]):
                raise ConfigError(f"{where}: {key} must be text")
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, [*fields, *META_KEYS], n=1, cutoff=0.5)
            raise ConfigError(f"{where}: unknown setting {key!r}"
                              + (f"; did you mean {close[0]!r}?" if close else ""),
                              hint="valid settings: " + ", ".join(sorted(fields)))
        value = _check_value(key, fields[key], data[key], value_node, path, project_dir)
        if value is not None:  # null: the default
            values[key] = value
    lines.pop("description", None)
    return Profile(path, values, lines, str(data.get("description", "")))


def _refuse_secret(key: str, value: Any, where: str) -> None:
    if key.endswith("_env"):
        return
    if _SECRET_WORDS.search(key):
        raise ConfigError(f"{where}: {key!r} would put a secret in a profile file",
                          hint=f"set the secret in an environment variable and name it here "
                          f"instead, e.g. `{key}_env: MY_VARIABLE`")
    if isinstance(value, str) and _URL_WITH_PASSWORD.search(value):
        raise ConfigError(f"{where}: the value of {key!r} holds a password in a URL",
                          hint="remove the password; keep it in an environment variable")


def _type_name(kind: Any) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
             Path: "a path"}
    origin = typing.get_origin(kind)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(kind)[0])} values"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(kind)))
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _check_value(name: str, kind: Any, value: Any, node: yaml.Node, path: Path,
                 project_dir: Path) -> Any:
    where = f"{path}:{node.start_mark.line + 1}"
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        kind = options[0]
        origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {name} must be {_type_name(kind)}, not {value!r}",
                              hint=f"write it as a YAML list, e.g. {name}: [a, b]")
        item_kind = typing.get_args(kind)[0]
        return [_check_value(name, item_kind, item, item_node, path, project_dir)
                for item, item_node in zip(value, node.value, strict=True)]
    if not _is_instance(value, kind):
        raise ConfigError(f"{where}: {name} must be {_type_name(kind)}, not {value!r}",
                          hint=f"see `{name}` in profiles/default.yaml")
    if name.endswith("_env") and not _ENV_NAME.match(value):
        raise ConfigError(f"{where}: {name} must name an environment variable, not {value!r}",
                          hint="use letters, digits and _ only, e.g. PGADMIN_PASSWORD")
    choices = _choices(name, project_dir)
    if choices and value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise ConfigError(f"{where}: {name} {value!r} is not one of: {', '.join(choices)}"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
    if name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
        low, high = RANGES[name]
        raise ConfigError(f"{where}: {name} {value} is out of range ({low:g}-{high:g})")
    if kind is Path:
        given = Path(value).expanduser()
        return given if given.is_absolute() else project_dir / given
    return float(value) if kind is float else value


def _choices(name: str, project_dir: Path) -> tuple[str, ...] | None:
    if name == "modules":  # the schema modules this checkout has
        return tuple(sorted(p.parent.name for p in (project_dir / "sql").glob("*/module.yaml")))
    return CHOICES.get(name)


def _is_instance(value: Any, kind: Any) -> bool:
    if typing.get_origin(kind) is typing.Literal:
        return value in typing.get_args(kind)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Path:
        return isinstance(value, str) and bool(value)
    return isinstance(value, kind) if isinstance(kind, type) else True


def save_profile(path: Path, values: dict[str, Any], description: str) -> None:
    """Write answers as a profile that `--profile PATH` replays (validated before writing)."""
    plain = {key: str(value) if isinstance(value, Path) else value
             for key, value in values.items() if value is not None}
    replay = program.command(f"--profile {path}")
    text = (f"# Saved by the installer's wizard; replay with {replay}.\n" + yaml.safe_dump(
        {"description": description, **plain}, sort_keys=False, allow_unicode=True))
    parse_profile(text, path, path.parent)
    write_atomic(path, text.encode("utf-8"))
