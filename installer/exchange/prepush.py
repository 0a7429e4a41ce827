"""What the git pre-push hook runs first: deadlines, and a fast answer when nothing changed.

Started by the hook script as `python -S installer/exchange/prepush.py --site DIRS …` (no CLI
to load; without `site`, whose .pth processing costs more than the rest of the fast path, and
with the installer's site-packages DIRS put on sys.path directly), it
- sets deadlines for every database call of this process (PGOPTIONS: lock_timeout,
  statement_timeout; connect_timeout is 5 s anyway), so a lock held by another session makes
  the hook give up with a message instead of holding the push;
- answers "exports unchanged" from one query when exports/ is clean in git, its manifest is the
  one this database last exported or imported, and exchange_change_seq has not moved since
  (asked through psql when a native installation has one: no psycopg to import);
- before either, makes sure a follow-up push (hook.py) that moved the remote ref after this
  push read it cannot get this push rejected (`undo_racing_follow_up`), and tells about a
  follow-up push that failed;
- otherwise hands over to `install.py hooks run-pre-push` in this process (hook.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO

    from installer.credentials import ConnInfo

if __package__ in (None, ""):  # run by the hook as a script: make `installer` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# In the hook's state folder (`git rev-parse --git-path learning-pushes`), beside the markers
# of running pushes (files named by the pid of their `git push`):
LOCK = "follow-up.lock"  # held exclusively while a follow-up push runs
PUSHED = "follow-up.pushed"  # what the last follow-up push did: remote, ref, old, new per line
FAILED = "follow-up.failed"  # why the last follow-up push failed, until the next push says it
LOCK_WAIT = 10.0  # seconds a push waits for a running follow-up push before it goes on
SKIP_ENV = "LEARNING_SKIP_EXPORT_HOOK"
ZERO = "0" * 40
LOCK_TIMEOUT = "2s"
STATEMENT_TIMEOUT = "60s"
DEADLINES = f"-c lock_timeout={LOCK_TIMEOUT} -c statement_timeout={STATEMENT_TIMEOUT}"
_UNCHANGED = """
SELECT s.manifest_sha256 = %s AND s.change_seq = (
       SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM exchange_change_seq)
  FROM installer.exchange_state s WHERE s.source = 'exports'
"""


def apply_deadlines() -> None:
    """Every connection this process opens from now on gets the hook's deadlines."""
    os.environ["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " " + DEADLINES).strip()


def _psql(env: dict[str, str]) -> Path | None:
    """The psql of a native installation's binaries: asking it costs a few milliseconds where
    importing psycopg costs a tenth of a second or more."""
    from installer.pgclient import find_client

    return find_client(env.get("LEARNING_PG_BINARIES", ""))


def _ask(owner: ConnInfo, psql: Path | None, manifest_sha256: str) -> bool:
    """Whether the database says nothing changed since it last exported this manifest."""
    if psql is not None:
        query = _UNCHANGED.replace("%s", f"'{manifest_sha256}'")  # 64 hex digits
        result = subprocess.run(
            [str(psql), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
            env={**os.environ, **owner.env(), "PGCONNECT_TIMEOUT": "5"})
        return result.returncode == 0 and result.stdout.strip() == "t"
    import psycopg

    try:
        with psycopg.connect(**owner.kwargs(), autocommit=True) as conn:
            row = conn.execute(_UNCHANGED, (manifest_sha256,)).fetchone()
    except psycopg.Error:
        return False  # the full path says what is wrong
    return bool(row and row[0])


def hold(handle: IO[str], shared: bool = False, timeout: float | None = None) -> bool:
    """Lock an open file until it is closed: exclusive, or shared; False when `timeout`
    seconds passed first. Without flock (Windows) it returns True at once: the follow-up push
    then relies on its quiet wait alone."""
    try:
        import fcntl
    except ImportError:
        return True
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if timeout is None:
        fcntl.flock(handle, mode)
        return True
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _git(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=LOCK_WAIT,
                          env={**os.environ, SKIP_ENV: "1"})


def undo_racing_follow_up(project_dir: Path, state: Path, remote: str, refs: str) -> None:
    """Keep a follow-up push from getting this push rejected.

    git reads the remote's refs before it runs the hook and later updates each ref only if it
    still holds what was read. A follow-up push that moved a ref in between (it could not see
    this push yet) would make git reject this push. Such a move is recognised exactly: the
    follow-up's record says it moved the ref from the value this push read (its `remote_sha`).
    Then, when the commit it pushed is part of what this push sends, the ref is set back to
    the value this push read (`--force-with-lease`: only while it still holds our commit), and
    this push brings the commit again with everything else. Waits for a running follow-up
    push first (at most LOCK_WAIT seconds)."""
    lock = state / LOCK
    if not lock.exists():  # no follow-up push ever ran here
        return
    with lock.open("a") as held:
        if not hold(held, shared=True, timeout=LOCK_WAIT):
            print(f"learning export: a follow-up push to {remote} is still running after "
                  f"{LOCK_WAIT:.0f} s; if git rejects this push, run `git push` again",
                  file=sys.stderr)
            return
        try:
            pushed = [line.split("\t") for line in (state / PUSHED).read_text().splitlines()]
        except FileNotFoundError:
            return
        for line in refs.splitlines():
            parts = line.split()
            if len(parts) != 4 or parts[1] == ZERO:
                continue
            _, local_sha, remote_ref, remote_sha = parts
            for entry in pushed:
                if (len(entry) == 4 and entry[0] == remote and entry[1] == remote_ref
                        and entry[2] == remote_sha != ZERO and entry[3] != remote_sha
                        and _git(project_dir, "merge-base", "--is-ancestor", entry[3],
                                 local_sha).returncode == 0):
                    _set_back(project_dir, remote, remote_ref, entry[3], remote_sha)


def _set_back(project_dir: Path, remote: str, ref: str, ours: str, read: str) -> None:
    try:
        result = _git(project_dir, "push", "--no-verify", "--porcelain",
                      f"--force-with-lease={ref}:{ours}", remote, f"{read}:{ref}")
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 1, "", f"no answer from {remote} in "
                                                        f"{LOCK_WAIT:.0f} s")
    if "stale info" in result.stdout or "\n=\t" in f"\n{result.stdout}":
        return  # the ref moved on from our commit, or holds what this push read: no race
    said = f"{result.stdout}{result.stderr}"
    if result.returncode == 0:
        print(f"learning export: the export commit {ours[:10]} reached {remote} after this "
              f"push read {ref}; set {ref} back to {read[:10]} so this push (which carries "
              f"{ours[:10]}) goes through", file=sys.stderr)
    else:
        print(f"learning export: the export commit {ours[:10]} reached {remote} after this push "
              f"read {ref}, and setting it back failed ({' '.join(said.split())}); if git rejects "
              f"this push, run `git push` again", file=sys.stderr)


def report_failed_follow_up(state: Path) -> None:
    """Say once, on the next push, why the last follow-up push failed."""
    note = state / FAILED
    try:
        text = note.read_text().strip()
        note.unlink()
    except FileNotFoundError:
        return
    print(f"learning export: {text}", file=sys.stderr)


def unchanged(project_dir: Path) -> bool:
    """True when an export now would change nothing; False when unsure."""
    from installer.credentials import ConnInfo
    from installer.envfile import read_env

    manifest = project_dir / "exports" / "manifest.json"
    env_path = project_dir / ".env"
    if not manifest.exists() or not env_path.exists():
        return False
    status = subprocess.run(["git", "status", "--porcelain", "--", "exports"], cwd=project_dir,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            check=False)
    if status.returncode != 0 or status.stdout.strip():
        return False
    env = read_env(env_path)
    try:
        owner = ConnInfo.from_env(env)
    except (KeyError, ValueError):
        return False
    return _ask(owner, _psql(env), hashlib.sha256(manifest.read_bytes()).hexdigest())


def use_site_packages(dirs: str) -> None:
    """Import from the installer's site-packages (passed by the hook) without running `site`;
    when there are none or one is gone (.venv rebuilt for another Python), run `site` after all."""
    paths = [path for path in dirs.split(os.pathsep) if path]
    if paths and all(os.path.isdir(path) for path in paths):
        sys.path.extend(path for path in paths if path not in sys.path)
    else:
        import site

        site.main()


def main(argv: list[str]) -> int:
    """argv: `--site DIRS --state DIR` (the hook's state folder), then the arguments of
    `install.py hooks run-pre-push`."""
    apply_deadlines()
    use_site_packages(argv[1])
    state, argv = Path(argv[3]), argv[4:]
    project_dir = Path(argv[argv.index("--project-dir") + 1])
    remote = next(arg.removeprefix("--remote=") for arg in argv if arg.startswith("--remote="))
    refs = sys.stdin.read()
    report_failed_follow_up(state)
    undo_racing_follow_up(project_dir, state, remote, refs)
    if unchanged(project_dir):  # printed here: loading the console would cost more than this
        print("learning export: exports unchanged (nothing changed since the last export)",
              file=sys.stderr)
        return 0
    if sys.flags.no_site:  # the whole installer runs now: its usual sys.path, .pth files too
        import site

        site.main()
    from installer.cli import main as cli_main

    sys.stdin = io.StringIO(refs)
    return int(cli_main(["hooks", "run-pre-push", *argv]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
