"""A session killed with its clusters running is cleaned up by the next one (tests/sessions.py),
and the directories of sessions still running are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from installer.processes import alive
from tests import sessions
from tests.conftest import REPO, start_cluster, wait_gone


def _session_dir(root: Path, name: str) -> Path:
    path = root / f"{sessions.PREFIX}{name}"
    path.mkdir()
    path.chmod(0o755)
    return path


def test_a_dead_sessions_cluster_is_stopped_and_only_its_directory_removed(
        shared_tmp: Path) -> None:
    root = shared_tmp / "tmp"  # stands for /tmp, with only this test's sessions in it
    root.mkdir()
    root.chmod(0o755)
    dead = _session_dir(root, "dead")
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from tests "
                    "import sessions; sessions.claim(Path(sys.argv[1]))", str(dead)],
                   cwd=REPO, check=True)  # claimed by a session that has exited since
    cluster = start_cluster(dead, "system")
    postmaster = int(next(dead.glob("*/pgdata/postmaster.pid")).read_text().split("\n")[0])
    running = _session_dir(root, "running")
    sessions.claim(running)
    unmarked = _session_dir(root, "unmarked")  # an older suite's, or one being made
    reused = _session_dir(root, "reused")  # its owner's pid now belongs to another process
    (reused / sessions.MARKER).write_text(f"{os.getpid()} 1\n")
    try:
        assert sessions.owner_alive(dead) is False and sessions.owner_alive(running) is True
        assert sessions.owner_alive(unmarked) is None
        assert sessions.sweep(root) == [dead, reused]
        wait_gone(postmaster)
        assert not dead.exists() and not reused.exists()
        assert running.exists() and unmarked.exists()
        assert alive(os.getpid())  # the reused pid (ours) was not signalled
    finally:
        if alive(postmaster):
            cluster.backend.stop()
