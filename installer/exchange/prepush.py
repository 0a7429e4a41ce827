"""What the git pre-push hook runs first: deadlines, and a fast answer when nothing changed.

Started by the hook script as `python installer/exchange/prepush.py` (no CLI to load), it
- sets deadlines for every database call of this process (PGOPTIONS: lock_timeout,
  statement_timeout; connect_timeout is 5 s anyway), so a lock held by another session makes
  the hook give up with a message instead of holding the push;
- answers "exports unchanged" from one query when exports/ is clean in git, its manifest is the
  one this database last exported or imported, and exchange_change_seq has not moved since
  (asked through psql when a native installation has one: no psycopg to import);
- otherwise hands over to `install.py hooks run-pre-push` in this process (hook.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by the hook as a script: make `installer` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from installer.credentials import ConnInfo

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
    from installer.binaries import find_client

    return find_client(env.get("LEARNING_PG_BINARIES", ""))


def _ask(owner: ConnInfo, psql: Path | None, manifest_sha256: str) -> bool:
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


def unchanged(project_dir: Path) -> bool:
    """True when an export now would change nothing; False when unsure."""
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


def main(argv: list[str]) -> int:
    """argv: the arguments of `install.py hooks run-pre-push` after the project dir."""
    apply_deadlines()
    project_dir = Path(argv[argv.index("--project-dir") + 1])
    refs = sys.stdin.read()
    if unchanged(project_dir):  # printed here: loading the console would cost more than this
        print("learning export: exports unchanged (nothing changed since the last export)",
              file=sys.stderr)
        return 0
    from installer.cli import main as cli_main

    sys.stdin = io.StringIO(refs)
    return int(cli_main(["hooks", "run-pre-push", *argv]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
