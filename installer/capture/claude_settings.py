"""Our capture hooks in Claude Code's project settings (`.claude/settings.json`).

Claude Code runs every hook listed under `hooks.<Event>[].hooks[]`. Ours are the command hooks
whose command runs `installer/capture/hook.py`; everything else in the file (the user's own
hooks, even in the same matcher group, and every other setting) stays as it was. Merging
updates our hooks in place; removing them drops only them, and an event or `hooks` object
left empty.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from installer import jsonc
from installer.capture import hook
from installer.errors import ConfigError
from installer.fileutil import write_if_changed

MARKER = "capture/hook.py"  # in every command we write, whatever the path before it
TOOL_MATCHER = f"^({'|'.join(hook.TOOLS)})$"  # anchored: not TaskCreate, AgentX…
TIMEOUT = 10  # seconds; the hook takes a few hundredths


def settings_path(project_dir: Path) -> Path:
    return project_dir / ".claude" / "settings.json"


def _shell_path(path: Path, project_dir: Path) -> str:
    """A path for the command line: relative to $CLAUDE_PROJECT_DIR when inside the project, so
    the committed file works in every checkout; otherwise absolute. Always shell-quoted."""
    try:
        inside = path.absolute().relative_to(project_dir.absolute())
    except ValueError:
        return shlex.quote(str(path))
    return '"$CLAUDE_PROJECT_DIR"/' + shlex.quote(inside.as_posix())


def command(project_dir: Path, env_file: Path | None = None,
            python: Path = Path(sys.executable)) -> str:
    script = Path(hook.__file__).resolve()
    parts = [_shell_path(python, project_dir), "-S", _shell_path(script, project_dir),
             "--project-dir", '"$CLAUDE_PROJECT_DIR"']
    if env_file is not None and env_file.absolute() != (project_dir / ".env").absolute():
        parts += ["--env-file", _shell_path(env_file, project_dir)]
    # In a checkout where the installer has not run yet there is no Python at that path: the
    # shell's complaint must not reach Claude Code as a failed hook on every event.
    return " ".join(parts) + " 2>/dev/null || true"


def ours(entry: Any) -> bool:
    return (isinstance(entry, dict) and entry.get("type") == "command"
            and MARKER in str(entry.get("command", "")).replace("\\", "/"))


def _matcher(event: str) -> str | None:
    return TOOL_MATCHER if event in hook.TOOL_EVENTS else None


def _hooks_object(text: str, source: Path) -> dict[str, Any]:
    data = jsonc.loads(text, str(source))
    if not isinstance(data, dict):
        raise ConfigError(f"{source} does not hold a JSON object",
                          hint="fix or remove the file; nothing was changed")
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict) or not all(isinstance(v, list) for v in hooks.values()):
        raise ConfigError(f"`hooks` in {source} is not an object of lists",
                          hint="fix the file (see Claude Code's hooks documentation); "
                          "nothing was changed")
    return hooks


def _groups_for(groups: list[Any], event: str, our_hook: dict[str, Any] | None) -> list[Any]:
    """`groups` without our hook, plus `our_hook` (in the group where it was, when its matcher
    is still right; else in a group of its own at the end)."""
    matcher = _matcher(event)
    result: list[Any] = []
    placed = our_hook is None
    for group in groups:
        entries = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(entries, list) or not any(ours(e) for e in entries):
            result.append(group)
            continue
        kept = []
        for entry in entries:
            if not ours(entry):
                kept.append(entry)
            elif not placed and group.get("matcher") == matcher:
                kept.append(our_hook)
                placed = True
        if kept:
            result.append({**group, "hooks": kept})
    if not placed:
        result.append({**({"matcher": matcher} if matcher else {}), "hooks": [our_hook]})
    return result


def remove_hooks(project_dir: Path) -> Path | None:
    """Take our hooks out of the project's settings; returns the file changed, or None."""
    path = settings_path(project_dir)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    remaining = without(text, path)
    if remaining is None:
        return None
    write_if_changed(path, remaining.encode("utf-8"), mode=path.stat().st_mode & 0o777)
    return path


def merged(text: str, hook_command: str, source: Path) -> str:
    """`text` with our hook on every event we capture; `text` itself when it already has them."""
    hooks = _hooks_object(text, source)
    entry = {"type": "command", "command": hook_command, "timeout": TIMEOUT}
    for event in hook.EVENTS:
        groups = _groups_for(hooks.get(event, []), event, entry)
        if groups != hooks.get(event):
            text = jsonc.set_member(text if text.strip() else "{}\n", ("hooks",), event, groups)
    return text


def without(text: str, source: Path) -> str | None:
    """`text` without our hooks, or None when it holds none."""
    hooks = _hooks_object(text, source)
    found = False
    for event, groups in hooks.items():
        remaining = _groups_for(groups, event, None)
        if remaining == groups:
            continue
        found = True
        text = (jsonc.set_member(text, ("hooks",), event, remaining) if remaining
                else jsonc.remove_member(text, ("hooks",), event) or text)
    if not found:
        return None
    if not _hooks_object(text, source):
        text = jsonc.remove_member(text, (), "hooks") or text
    return text
