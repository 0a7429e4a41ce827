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
import site
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
SKIP_ENV = prepush.SKIP_ENV
PUSH_LOG = "learning-export-push.log"
PUSHES = "learning-pushes"  # the hook's state: a file per running `git push` named by its pid,
# and the follow-up push's lock, record and failure note (prepush.LOCK, PUSHED, FAILED)
ATTRIBUTES_ADDED = "learning-installer.gitattributes"  # how install added the line, if it did
QUIET = 1.0  # seconds without any push running before a follow-up push starts
PUSH_TIMEOUT = 300  # seconds a follow-up push may take (it holds the lock meanwhile)
_ZERO = prepush.ZERO
_BUSY = {"MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
         "rebase-merge": "a rebase", "rebase-apply": "a rebase or `git am`"}


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
    # the installer's site-packages, for `python -S` (prepush.py: no `site`, a faster start)
    packages = [path for path in [*site.getsitepackages(), *(
        [site.getusersitepackages()] if site.ENABLE_USER_SITE else [])] if os.path.isdir(path)]
    site_dirs = shlex.quote(os.pathsep.join(packages))
    return f"""#!/bin/sh
{MARKER} (`python install.py hooks uninstall` removes it).
# Exports the learning database to exports/ and commits it; never blocks the push.
# (Shell built-ins where they do: every process started here adds to each push.)
# Tell a pending follow-up push that a push is running (it waits until none is).
state=$(git rev-parse --git-path {PUSHES}) && {{ [ -d "$state" ] || mkdir -p "$state"; }} \\
    && : > "$state/$PPID"
export_() {{
    [ -n "${{{SKIP_ENV}:-}}" ] && return
    {python} -S {entry} --site {site_dirs} --state "$state" --project-dir {project} \\
        --git-pid "$PPID" --remote="$1" \\
        || echo "learning export: the hook failed (see above); the push goes on" >&2
}}
chained="${{0%/*}}/{CHAINED}"
if [ -x "$chained" ]; then  # yours runs first, with the same arguments and input
    input=$(cat)
    replay() {{ if [ -n "$input" ]; then printf '%s\\n' "$input"; fi; }}
    replay | "$chained" "$@" || exit $?
    replay | export_ "$@"
else
    export_ "$@"
fi
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
    (committed with the project; added here when a checkout lacks it, and remembered in
    ATTRIBUTES_ADDED so that uninstalling removes it again)."""
    for key, value in merge_driver_config(project_dir).items():
        git(project_dir, "config", "--local", key, value)
    attributes = project_dir / ".gitattributes"
    text = attributes.read_text() if attributes.exists() else ""
    if merge.ATTRIBUTES not in text.splitlines():
        git(project_dir, "config", "--local", ATTRIBUTES_ADDED,
            "appended" if attributes.exists() else "created")
        write_atomic(attributes, (text + ("" if not text or text.endswith("\n") else "\n")
                                  + merge.ATTRIBUTES + "\n").encode())
        return "merge driver registered; .gitattributes updated (commit it)"
    return "merge driver registered"


def _unset(project_dir: Path, keys: list[str]) -> list[str]:
    """Unset local git config keys, and their sections once empty; returns those that were set."""
    removed = [key for key in keys if git(project_dir, "config", "--local", "--unset-all", key,
                                          check=False).returncode == 0]
    for section in {key.rsplit(".", 1)[0] for key in removed}:
        pattern = "^" + section.replace(".", r"\.") + r"\."
        if not git(project_dir, "config", "--local", "--get-regexp", pattern,
                   check=False).stdout.strip():
            git(project_dir, "config", "--local", "--remove-section", section, check=False)
    return removed


def uninstall_merge_driver(project_dir: Path) -> str:
    """Remove what install_merge_driver added: its config keys (and their section once it is
    empty), and the .gitattributes line only when install added it."""
    added = git(project_dir, "config", "--local", "--get", ATTRIBUTES_ADDED,
                check=False).stdout.strip()
    removed = _unset(project_dir, [*merge_driver_config(project_dir), ATTRIBUTES_ADDED])
    attributes = project_dir / ".gitattributes"
    if added and attributes.exists():
        lines = attributes.read_text().splitlines(keepends=True)
        kept = "".join(line for line in lines if line.rstrip("\r\n") != merge.ATTRIBUTES)
        if added == "created" and not kept.strip():
            attributes.unlink()
        else:
            write_atomic(attributes, kept.encode())
    what = [key for key in removed if key != ATTRIBUTES_ADDED]
    what += [".gitattributes line"] if added else []
    return f"removed {', '.join(what)}" if what else "not registered"


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
    for name, what in _BUSY.items():  # never commit into the middle of one
        if (path := _git_path(project_dir, name)) and path.exists():
            return f"{what} is in progress; the export goes with a push after it ends"
    branch = git(project_dir, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
    if not branch:
        return "HEAD is detached"
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


def _running_pushes(state: Path) -> list[int]:
    """Pids of `git push` runs whose hook started and that are still running."""
    running = []
    for marker in state.iterdir() if state.is_dir() else ():
        if not marker.name.isdigit():
            continue  # the follow-up push's own files
        pid = int(marker.name)
        if pid > 1 and processes.alive(pid):
            running.append(pid)
        else:
            marker.unlink(missing_ok=True)
    return running


def _wait_for_quiet(state: Path, git_pid: int, deadline: float) -> bool:
    """Wait until no push has run for QUIET seconds; False when the deadline came first."""
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if (git_pid > 1 and processes.alive(git_pid)) or _running_pushes(state):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET:
            return True
        time.sleep(0.1)
    return False


def _remote_ref(project_dir: Path, remote: str, ref: str) -> str | None:
    """What the remote's ref holds now ('' when it does not exist); None when unreachable."""
    listed = git(project_dir, "ls-remote", "--exit-code", remote, ref, check=False)
    if listed.returncode not in (0, 2):
        return None
    return listed.stdout.split()[0] if listed.stdout.strip() else ""


def _contains(project_dir: Path, commit: str, ancestor: str) -> bool:
    return git(project_dir, "merge-base", "--is-ancestor", ancestor, commit,
               check=False).returncode == 0


def follow_up_push(project_dir: Path, git_pid: int, remote: str, refspecs: list[str],
                   timeout: float = 600) -> int:
    """Push the export commit once no push has run for QUIET seconds, one follow-up at a time.

    A push the user starts meanwhile usually carries the commit itself (it is on the branch),
    and then nothing is pushed here. The quiet wait and the lock keep this push away from the
    user's pushes whose hook has started; a push that git started but whose hook has not run
    yet cannot be seen, so what this push moved is recorded (prepush.PUSHED) for that push's
    hook to undo (prepush.undo_racing_follow_up). A failure is noted (prepush.FAILED) for the
    next push to report: the commit stays on the branch and goes with that push."""
    state = _git_path(project_dir, PUSHES) or project_dir / PUSHES
    state.mkdir(exist_ok=True)
    log = _git_path(project_dir, PUSH_LOG) or project_dir / PUSH_LOG
    deadline = time.monotonic() + timeout
    while True:
        if not _wait_for_quiet(state, git_pid, deadline):
            return _done(state, log, remote, refspecs, 1,
                         f"pushes kept running for {timeout:.0f} s")
        with (state / prepush.LOCK).open("a") as held:
            prepush.hold(held)
            if _running_pushes(state):
                continue  # a push's hook started meanwhile: it waits for this lock; wait again
            return _push_now(project_dir, state, log, remote, refspecs)


def _push_now(project_dir: Path, state: Path, log: Path, remote: str,
              refspecs: list[str]) -> int:
    """With the lock held: push what the remote lacks, record what moved, note a failure."""
    pending, moves = [], []
    for refspec in refspecs:
        commit, _, ref = refspec.partition(":")
        current = _remote_ref(project_dir, remote, ref)
        if current is None:
            return _done(state, log, remote, refspecs, 1, f"{remote} did not answer")
        if current and _contains(project_dir, current, commit):
            continue  # a later push carried it
        if current and not _contains(project_dir, commit, current):
            return _done(state, log, remote, refspecs, 1,
                         f"{remote}'s {ref} has commits this branch lacks (`git pull` first)")
        pending.append((f"--force-with-lease={ref}:{current}", refspec))
        moves.append("\t".join((remote, ref, current or _ZERO, commit)))
    if not pending:
        return _done(state, log, remote, refspecs, 0, "already there (a later push carried it)")
    try:
        result = subprocess.run(
            ["git", "push", "--no-verify", "--porcelain", *(lease for lease, _ in pending),
             remote, *(refspec for _, refspec in pending)],
            cwd=project_dir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            check=False, env={**os.environ, SKIP_ENV: "1"}, timeout=PUSH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return _done(state, log, remote, refspecs, 1,
                     f"{remote} did not finish the push in {PUSH_TIMEOUT} s")
    if result.returncode == 0:
        write_atomic(state / prepush.PUSHED, ("\n".join(moves) + "\n").encode())
        return _done(state, log, remote, refspecs, 0, "pushed")
    return _done(state, log, remote, refspecs, result.returncode, _why(result))


def _why(result: subprocess.CompletedProcess[str]) -> str:
    """A failed `git push --porcelain` in one line (the remote's words and git's verdict),
    then its whole output for the log."""
    said = [line.removeprefix("remote:").strip() for line in result.stderr.splitlines()
            if line.startswith(("remote:", "fatal:", "ssh:"))]
    said += [line.split("\t")[-1] for line in result.stdout.splitlines() if line.startswith("!")]
    first = "; ".join(line for line in said if line) or f"git push exited {result.returncode}"
    return f"{first}\n{result.stdout}{result.stderr}"


def _done(state: Path, log: Path, remote: str, refspecs: list[str], code: int,
          what: str) -> int:
    """Log the outcome; on failure leave the note the next push prints (prepush.FAILED)."""
    commits = " ".join(refspec.partition(":")[0][:10] for refspec in refspecs)
    with log.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} push of {commits} to {remote}: "
                  f"{what}\n")
    if code == 0:
        (state / prepush.FAILED).unlink(missing_ok=True)
    else:
        write_atomic(state / prepush.FAILED, (
            f"the follow-up push of the export commit {commits} to {remote} failed "
            f"({what.splitlines()[0]}). Nothing is lost: the commit is on your branch and goes "
            f"with your next push of it; if that fails too, fix what git says and run "
            f"`git push` (details: {log})\n").encode())
    return code
