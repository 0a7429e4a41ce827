"""The README's first command on a fresh checkout: `python install.py --full` with nothing but
the standard library creates .venv, installs the project there and finishes the install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, stop_instance

pytestmark = pytest.mark.slow


def _checkout(target: Path) -> None:
    """What a fresh clone of the working tree would hold (tracked and new, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())


def test_fresh_checkout_bootstraps_its_own_environment(tmp_path: Path,
                                                       shared_tmp: Path) -> None:
    checkout = tmp_path / "clone"
    checkout.mkdir()
    _checkout(checkout)
    home = tmp_path / "home"
    home.mkdir()
    data_dir = shared_tmp / "bootstrap-data"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEARNING_", "PG", "VIRTUAL_ENV", "PYTHON"))}
    # a fresh HOME, but the machine's pip cache: the download is not what is under test
    env.update(HOME=str(home), PIP_CACHE_DIR=str(Path.home() / ".cache" / "pip"), NO_COLOR="1")
    base_python = str(Path(sys.base_prefix) / "bin" / "python3")
    command = [base_python, "-S", "install.py", "--full", "--data-dir", str(data_dir),
               "--port", str(free_port())]  # -S: the base interpreter's site-packages unseen
    try:
        result = subprocess.run(command, cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Preparing the installer's environment in .venv/" in result.stderr
        assert (checkout / ".venv" / "bin" / "python").exists()
        status = subprocess.run([base_python, "-S", "install.py", "status", "--json"],
                                cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=300)
        assert json.loads(status.stdout)["healthy"] is True
        assert "Preparing" not in status.stderr  # the environment is reused
    finally:
        stop_instance(data_dir)
