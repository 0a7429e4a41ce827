"""JSON with comments and trailing commas (VS Code's JSONC), edited in place.

An edit replaces or inserts one member of an object as text, so everything else in the file —
comments, formatting, key order — stays exactly as it was. The text is first "cleaned":
comments and trailing commas become spaces, which keeps every offset valid for the original.
"""

from __future__ import annotations

import json
from typing import Any

from installer.errors import ConfigError

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def clean(text: str) -> str:
    """`text` with comments and trailing commas blanked out; same length, same line breaks."""
    out = list(text)
    i, n, in_string = 0, len(text), False
    while i < n:
        char = text[i]
        if in_string:
            if char == "\\":
                i += 2
                continue
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
            continue
        elif char == ",":
            after = _next_token(text, i + 1)
            if after < n and text[after] in "}]":
                out[i] = " "
        i += 1
    return "".join(out)


def _next_token(text: str, i: int) -> int:
    """Index of the next character that is neither whitespace nor inside a comment."""
    while i < len(text):
        if text[i] in _WHITESPACE:
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        else:
            return i
    return i


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def loads(text: str, source: str) -> Any:
    try:
        return json.loads(clean(text)) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                          f"{exc.msg}", hint="fix or remove the file; nothing was changed") from exc


def _members(cleaned: str, start: int) -> tuple[dict[str, tuple[int, int, int]], int]:
    """Members of the object opening at `start`: key -> (key start, value start, value end);
    and the index of its closing brace."""
    members: dict[str, tuple[int, int, int]] = {}
    i = _skip_ws(cleaned, start + 1)
    while cleaned[i] != "}":
        key, after_key = _DECODER.raw_decode(cleaned, i)
        value_start = _skip_ws(cleaned, _skip_ws(cleaned, after_key) + 1)  # past the colon
        _, value_end = _DECODER.raw_decode(cleaned, value_start)
        members[key] = (i, value_start, value_end)
        i = _skip_ws(cleaned, value_end)
        if cleaned[i] == ",":
            i = _skip_ws(cleaned, i + 1)
    return members, i


def _indent_of(text: str, index: int) -> str:
    line_start = text.rfind("\n", 0, index) + 1
    prefix = text[line_start:index]
    return prefix if not prefix.strip() else ""


def _render(value: Any, indent: str, unit: str) -> str:
    lines = json.dumps(value, indent=len(unit) or 2, ensure_ascii=False).splitlines()
    return "\n".join([lines[0], *(indent + line for line in lines[1:])])


def set_member(text: str, path: tuple[str, ...], name: str, value: Any) -> str:
    """`text` with object member path[0]...[-1] -> name set to `value`; the rest untouched.
    Missing objects along `path` are created. `text` must hold a valid JSON(C) object."""
    cleaned = clean(text)
    start = _skip_ws(cleaned, 0)
    members, close = _members(cleaned, start)
    unit = _indent_of(text, next(iter(members.values()))[0]) if members else "  "
    unit = unit or "  "
    depth = 1
    for key in path:
        if key not in members:
            return _insert(text, members, start, close, key,
                           _nest(path[path.index(key) + 1:], name, value), unit * depth, unit)
        _, start, _ = members[key]
        members, close = _members(cleaned, start)
        depth += 1
    if name in members:
        _, value_start, value_end = members[name]
        indent = _indent_of(text, members[name][0]) or unit * depth
        return text[:value_start] + _render(value, indent, unit) + text[value_end:]
    return _insert(text, members, start, close, name, value, unit * depth, unit)


def _nest(path: tuple[str, ...], name: str, value: Any) -> Any:
    """Nested objects along `path` down to `name: value`."""
    for key in reversed((*path, name)):
        value = {key: value}
    return value


def _insert(text: str, members: dict[str, tuple[int, int, int]], start: int, close: int,
            key: str, value: Any, indent: str, unit: str) -> str:
    member = f'{json.dumps(key)}: {_render(value, indent, unit)}'
    if members:
        last_end = max(end for _, _, end in members.values())
        return text[:last_end] + f",\n{indent}{member}" + text[last_end:]
    outer = indent[: -len(unit)] if len(indent) >= len(unit) else ""
    return text[: start + 1] + f"\n{indent}{member}\n{outer}" + text[close:]


def remove_member(text: str, path: tuple[str, ...], name: str) -> str | None:
    """`text` without member path -> name, or None when it is not there."""
    cleaned = clean(text)
    start = _skip_ws(cleaned, 0)
    members, _ = _members(cleaned, start)
    for key in path:
        if key not in members or cleaned[members[key][1]] != "{":
            return None
        members, _ = _members(cleaned, members[key][1])
    if name not in members:
        return None
    key_start, _, value_end = members[name]
    after = _skip_ws(cleaned, value_end)
    if cleaned[after] == ",":  # up to the next member (or a comment before it)
        return text[:key_start] + text[_skip_ws(text, after + 1):]
    before = key_start - 1
    while before >= 0 and cleaned[before] in _WHITESPACE:
        before -= 1
    begin = before if cleaned[before] == "," else key_start
    return text[:begin] + text[value_end:]
