"""What the machine offers: OS, container, Docker daemon, PostgreSQL binaries, free ports."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.binaries import PgBinaries, embedded_binaries, system_binaries
from installer.ports import port_is_free

DAEMON_PING_TIMEOUT = 2.0


@dataclass(frozen=True)
class Detection:
    os: str
    in_container: bool
    docker_daemon: str | None  # engine version when a daemon answered, else None
    docker_problem: str | None
    system_pg: PgBinaries | None
    embedded_pg: PgBinaries | None
    free_ports: dict[int, bool]

    def as_dict(self) -> dict[str, Any]:
        def binaries(b: PgBinaries | None) -> str | None:
            return f"{b.version} ({b.bindir})" if b else None

        return {"os": self.os, "in_container": self.in_container,
                "docker_daemon": self.docker_daemon, "docker_problem": self.docker_problem,
                "system_postgresql": binaries(self.system_pg),
                "embedded_postgresql": binaries(self.embedded_pg),
                "free_ports": {str(k): v for k, v in self.free_ports.items()}}


def in_container() -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    # lower-case `container` is what podman and systemd-nspawn set
    if os.environ.get("container") or os.environ.get("KUBERNETES_SERVICE_HOST"):  # noqa: SIM112
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(marker in cgroup for marker in ("docker", "kubepods", "containerd", "libpod"))


def docker_daemon() -> tuple[str | None, str | None]:
    """(engine name and version, None) when a daemon answers a ping; (None, why not) otherwise."""
    try:
        from installer.backends.docker import open_engine

        client, engine = open_engine(DAEMON_PING_TIMEOUT)
        client.close()
        return engine, None
    except Exception as exc:  # the SDK raises many kinds; any of them means "no daemon"
        return None, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def detect(ports: tuple[int, ...] = (5432, 5433), probe_docker: bool = True) -> Detection:
    version, problem = docker_daemon() if probe_docker else (None, "not probed")
    return Detection(
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        in_container=in_container(),
        docker_daemon=version,
        docker_problem=problem,
        system_pg=system_binaries(),
        embedded_pg=embedded_binaries(),
        free_ports={port: port_is_free(port) for port in ports},
    )
