"""The README's first command on a fresh checkout: `python install.py --full` with nothing but
the standard library creates .venv, installs the project there and finishes the install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def test_interrupted_then_concurrent_first_runs_share_one_environment(
        tmp_path: Path, shared_tmp: Path) -> None:
    """Ctrl-C while .venv/ is being built: one line, exit 130. Then two first runs at once:
    one builds .venv/ and installs, the other waits for it, and both end healthy."""
    checkout = tmp_path / "clone"
    checkout.mkdir()
    _checkout(checkout)
    home = tmp_path / "home"
    home.mkdir()
    data_dir = shared_tmp / "bootstrap-race-data"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEARNING_", "PG", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), PIP_CACHE_DIR=str(Path.home() / ".cache" / "pip"), NO_COLOR="1")
    command = [str(Path(sys.base_prefix) / "bin" / "python3"), "-S", "install.py", "--full",
               "--data-dir", str(data_dir), "--port", str(free_port())]

    def spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(command, cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    try:
        first = spawn()
        assert first.stderr is not None
        assert "Preparing the installer's environment" in first.stderr.readline()
        time.sleep(1)  # inside venv creation or pip
        os.killpg(first.pid, signal.SIGINT)
        _, err = first.communicate(timeout=120)
        assert first.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        runs = [spawn() for _ in range(2)]
        outputs = [run.communicate(timeout=900) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, out + err
            assert "No module named" not in err
        assert any("holds the lock" in err for _, err in outputs)
        status = subprocess.run([*command[:3], "status", "--json"], cwd=checkout, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=300)
        assert json.loads(status.stdout)["healthy"] is True
    finally:
        stop_instance(data_dir)
