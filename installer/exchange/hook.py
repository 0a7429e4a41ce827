"""The git pre-push hook: on push, export the learning data and commit it when it changed.

Git has already chosen what the running push sends when the hook starts, so the export
commit cannot join it. The hook commits the changed exports on the current branch (only the
exports/ paths; other staged work stays staged) and starts a detached follow-up
`git push --no-verify <remote> <commit>:<branch>` that waits for the running push to end; its
output goes to .git/learning-export-push.log. If that push cannot happen (push rejected, no
network) the commit simply goes with the next push: nothing is lost. A failing export never
blocks the push, and `git push --no-verify` skips the hook altogether. An existing pre-push
hook is kept as pre-push.chained and runs first; when it fails, the push fails as before.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg

from installer import db, processes
from installer.console import Console
from installer.credentials import ConnInfo
from installer.errors import ConfigError, DataError, InstallerError
from installer.exchange import merge, prepush
from installer.exchange.sync import run_export
from installer.fileutil import write_atomic

MARKER = "# learning-installer pre-push hook"
CHAINED = "pre-push.chained"
SKIP_ENV = "LEARNING_SKIP_EXPORT_HOOK"
PUSH_LOG = "learning-export-push.log"
PUSHES = "learning-pushes"  # one empty file per running `git push`, named by its pid
PUSH_LOCK = "learning-export-push.lock"
QUIET = 1.0  # seconds without any push running before a follow-up push starts
_ZERO = "0" * 40
_BUSY = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")


def git(project_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, check=False)
    if check and result.returncode != 0:
        raise InstallerError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _git_path(project_dir: Path, name: str) -> Path | None:
    """A path inside the repository's git directory; None outside a work tree or without git."""
    try:
        result = git(project_dir, "rev-parse", "--git-path", name, check=False)
    except FileNotFoundError:
        return None
    if result.returncode != 0:
        return None
    path = Path(result.stdout.strip())
    return path if path.is_absolute() else project_dir / path


def hook_path(project_dir: Path) -> Path | None:
    """Where git looks for this repository's pre-push hook; None outside a git work tree."""
    hooks = _git_path(project_dir, "hooks")
    return hooks / "pre-push" if hooks else None


def hook_script(project_dir: Path) -> str:
    python = shlex.quote(sys.executable)
    entry = shlex.quote(str(project_dir / "installer" / "exchange" / "prepush.py"))
    project = shlex.quote(str(project_dir))
    return f"""#!/bin/sh
{MARKER} (`python install.py hooks uninstall` removes it).
# Exports the learning database to exports/ and commits it; never blocks the push.
input=$(cat)
replay() {{ if [ -n "$input" ]; then printf '%s\\n' "$input"; fi; }}
chained="$(dirname "$0")/{CHAINED}"
if [ -x "$chained" ]; then
    replay | "$chained" "$@" || exit $?
fi
[ -n "${{{SKIP_ENV}:-}}" ] && exit 0
# tell a pending follow-up push that a push is running (it waits until none is)
pushes=$(git rev-parse --git-path {PUSHES}) && mkdir -p "$pushes" && : > "$pushes/$PPID"
replay | {python} {entry} --project-dir {project} --git-pid "$PPID" --remote="$1" \\
    || echo "learning export: the hook failed (see above); the push goes on" >&2
exit 0
"""


def merge_driver_config(project_dir: Path) -> dict[str, str]:
    """The git config that makes `git pull` merge exports/ by row (merge.py)."""
    script = project_dir / "installer" / "exchange" / "merge.py"
    return {f"merge.{merge.DRIVER}.name": "learning exports: rows by key, last writer wins",
            f"merge.{merge.DRIVER}.driver":
                f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %O %A %B %P"}


def merge_driver_missing(project_dir: Path) -> list[str]:
    """What is not in place yet: config keys, or the .gitattributes line."""
    todo = [key for key, value in merge_driver_config(project_dir).items()
            if git(project_dir, "config", "--local", "--get", key, check=False
                   ).stdout.rstrip("\n") != value]
    attributes = project_dir / ".gitattributes"
    lines = attributes.read_text().splitlines() if attributes.exists() else []
    if merge.ATTRIBUTES not in lines:
        todo.append(".gitattributes")
    return todo


def install_merge_driver(project_dir: Path) -> str:
    """Register the merge driver in this clone's git config; add the .gitattributes line
    (committed with the project; added here when a checkout lacks it)."""
    for key, value in merge_driver_config(project_dir).items():
        git(project_dir, "config", "--local", key, value)
    attributes = project_dir / ".gitattributes"
    text = attributes.read_text() if attributes.exists() else ""
    if merge.ATTRIBUTES not in text.splitlines():
        write_atomic(attributes, (text + ("" if not text or text.endswith("\n") else "\n")
                                  + merge.ATTRIBUTES + "\n").encode())
        return "merge driver registered; .gitattributes updated (commit it)"
    return "merge driver registered"


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install_hook(project_dir: Path) -> str:
    path = hook_path(project_dir)
    if path is None:
        raise ConfigError(f"{project_dir} is not a git work tree", hint="run `git init` first")
    chained = path.with_name(CHAINED)
    done = "installed"
    if path.exists() and not is_ours(path):
        if chained.exists():
            raise ConfigError(f"both {path} and {chained} exist",
                              hint=f"merge them into {chained} and remove {path}, then retry")
        path.rename(chained)
        done = f"installed; your existing hook runs first ({chained.name})"
    write_atomic(path, hook_script(project_dir).encode(), mode=0o755)
    return f"{done}: {path}"


def uninstall_hook(project_dir: Path) -> str:
    path = hook_path(project_dir)
    if path is None or not is_ours(path):
        return "not installed"
    path.unlink()
    chained = path.with_name(CHAINED)
    if chained.exists():
        chained.rename(path)
        return f"removed; your earlier hook is back in {path}"
    return f"removed {path}"


@dataclass(frozen=True)
class PushedRef:
    local_ref: str
    local_sha: str
    remote_ref: str


def parse_refs(lines: list[str]) -> list[PushedRef]:
    refs = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[1] != _ZERO:
            refs.append(PushedRef(parts[0], parts[1], parts[2]))
    return refs


def _targets(project_dir: Path, remote: str, refs: list[PushedRef]) -> list[str] | str:
    """The remote refs that receive the checked-out branch, or why the hook stays out."""
    branch = git(project_dir, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
    if not branch:
        return "HEAD is detached"
    if any((p := _git_path(project_dir, name)) and p.exists() for name in _BUSY):
        return "a merge, rebase or cherry-pick is in progress"
    head = git(project_dir, "rev-parse", "HEAD").stdout.strip()
    targets = [r.remote_ref for r in refs if r.local_ref == branch and r.local_sha == head]
    if not refs:  # "Everything up-to-date": new data still goes to the branch's upstream
        short = branch.removeprefix("refs/heads/")
        config = {key: git(project_dir, "config", f"branch.{short}.{key}",
                           check=False).stdout.strip() for key in ("remote", "merge")}
        if config["remote"] == remote and config["merge"]:
            targets = [config["merge"]]
    return targets or "this push does not send the checked-out branch"


def run_pre_push(project_dir: Path, owner: ConnInfo, console: Console, remote: str,
                 lines: list[str], git_pid: int) -> str:
    """Export, commit changed exports, schedule their push. Returns what happened."""
    prepush.apply_deadlines()
    targets = _targets(project_dir, remote, parse_refs(lines))
    if isinstance(targets, str):
        return f"no export: {targets}"
    try:
        result = run_export(owner, project_dir / "exports", console)
    except psycopg.errors.LockNotAvailable as exc:
        raise DataError(f"another session holds a lock the export needs; gave up after "
                        f"{prepush.LOCK_TIMEOUT} ({db.reason(exc)})",
                        hint="the data goes with a later push, or run the export by hand") from exc
    except psycopg.errors.QueryCanceled as exc:
        raise DataError(f"the export took longer than {prepush.STATEMENT_TIMEOUT}; gave up "
                        f"({db.reason(exc)})",
                        hint="run the export by hand; the data goes with a later push") from exc
    git(project_dir, "add", "--", "exports")
    if not git(project_dir, "status", "--porcelain", "--", "exports").stdout.strip():
        return "exports unchanged"
    message = "Update learning exports\n\n" + "\n".join(
        f"{name}: {entry.rows} rows" for name, entry in sorted(result.manifest.tables.items()))
    git(project_dir, "commit", "--no-verify", "--quiet", "-m", message, "--", "exports")
    commit = git(project_dir, "rev-parse", "HEAD").stdout.strip()
    log = _git_path(project_dir, PUSH_LOG) or project_dir / PUSH_LOG
    with log.open("a") as out:
        subprocess.Popen(
            [sys.executable, str(project_dir / "install.py"), "hooks", "follow-up-push",
             "--project-dir", str(project_dir), "--git-pid", str(git_pid), f"--remote={remote}",
             *(f"--refspec={commit}:{ref}" for ref in targets)],
            cwd=project_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True, env={**os.environ, SKIP_ENV: "1"})
    return (f"exports committed as {commit[:10]}; it is pushed to {remote} right after this "
            f"push (log: {log})")


def _running_pushes(project_dir: Path) -> list[int]:
    """Pids of `git push` runs whose hook started and that are still running."""
    folder = _git_path(project_dir, PUSHES)
    running = []
    for marker in folder.iterdir() if folder and folder.is_dir() else ():
        pid = int(marker.name) if marker.name.isdigit() else 0
        if pid > 1 and processes.alive(pid):
            running.append(pid)
        else:
            marker.unlink(missing_ok=True)
    return running


def _hold(handle: IO[str]) -> None:
    """An exclusive lock on an open file until it is closed (where the OS has flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: the quiet wait alone keeps follow-up pushes apart
        return
    fcntl.flock(handle, fcntl.LOCK_EX)


def _already_there(project_dir: Path, remote: str, refspec: str) -> bool:
    """Whether the remote ref already holds the commit (e.g. your next push carried it)."""
    commit, _, ref = refspec.partition(":")
    listed = git(project_dir, "ls-remote", remote, ref, check=False).stdout.split()
    return bool(listed) and git(project_dir, "merge-base", "--is-ancestor", commit, listed[0],
                                check=False).returncode == 0


def follow_up_push(project_dir: Path, git_pid: int, remote: str, refspecs: list[str],
                   timeout: float = 600) -> int:
    """Push the export commit once no push has run for QUIET seconds, one follow-up at a time.

    A push the user starts meanwhile usually carries the commit itself (it is on the branch),
    and then nothing is pushed here. Waiting for quiet keeps this push from updating the remote
    ref while the user's next push is between reading the remote refs and updating them (which
    would make git reject the user's push)."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if (git_pid > 1 and processes.alive(git_pid)) or _running_pushes(project_dir):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET:
            break
        time.sleep(0.1)
    log = _git_path(project_dir, PUSH_LOG) or project_dir / PUSH_LOG
    lock = _git_path(project_dir, PUSH_LOCK) or project_dir / PUSH_LOCK
    with lock.open("a") as held:
        _hold(held)  # one follow-up push at a time
        pending = [r for r in refspecs if not _already_there(project_dir, remote, r)]
        if not pending:
            with log.open("a") as out:
                out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(refspecs)}: already "
                          f"on {remote} (a later push carried it)\n")
            return 0
        result = subprocess.run(["git", "push", "--no-verify", remote, *pending],
                                cwd=project_dir, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, check=False, env={**os.environ, SKIP_ENV: "1"})
    with log.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} git push {remote} "
                  f"{' '.join(pending)}: exit {result.returncode}\n"
                  f"{result.stdout}{result.stderr}")
    return result.returncode
