#!/usr/bin/env bash
# A real container engine for the docker-mode tests on a machine with no Docker daemon and no
# registry: rootful podman (Debian) + runc serving the Docker Engine API on a unix socket, and a
# locally built PostgreSQL 16 + pgvector image tagged with the official names, so the
# installer's unchanged image references resolve locally. Adapted from
# shared/docker-mode/RECIPE.md (Appendix B).
#
#   dockermode.sh up      install podman (if needed) + build the image (if absent) + start the
#                         API service and the health pump; prints the exports for the tests
#   dockermode.sh down    stop pump + service (by PID), remove containers/volumes labelled $TEST_LABEL
#   dockermode.sh pgadmin build the pgAdmin 4 stand-in image (tagged dpage/pgadmin4) if absent
#   dockermode.sh env     print the exports
#   dockermode.sh pump    (internal) the healthcheck loop started by `up`
# Knobs: STATE (per session: socket, PIDs, logs), IMAGE, ALIASES, TEST_LABEL, PUMP_INTERVAL,
# FORCE_BUILD=1, PYTHON. The engine install and the image build are serialised machine-wide
# with a lock, so parallel sessions (pytest-xdist workers) can each run `up`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${STATE:-${TMPDIR:-/tmp}/learning-dockermode}"
SOCK="${SOCK:-$STATE/podman.sock}"
IMAGE="${IMAGE:-localhost/pgvector-local:pg16}"
PGADMIN_IMAGE="${PGADMIN_IMAGE:-localhost/pgadmin4-local:latest}"
ALIASES="${ALIASES:-docker.io/pgvector/pgvector:pg16 docker.io/library/postgres:16}"
TEST_LABEL="${TEST_LABEL:-dockermode.test=1}"
PUMP_INTERVAL="${PUMP_INTERVAL:-1}"
LOCK="${LOCK:-${TMPDIR:-/tmp}/learning-dockermode.lock}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$STATE/containers.conf}"
mkdir -p "$STATE"

log() { printf '[dockermode %(%T)T] %s\n' -1 "$*" >&2; }

install_engine() {
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
        log "installing podman + runc"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 podman runc >/dev/null
    fi
    # crun fails on cgroup v1 hosts ("cgroups in hybrid mode not supported"); podman's default
    # rlimits exceed a sandbox's hard limits ("setrlimit ... Operation not permitted").
    cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
}

build_image() {
    if [ "${FORCE_BUILD:-0}" != 1 ] && podman image exists "$IMAGE"; then log "image $IMAGE present"; else
        log "building $IMAGE"; local t=$SECONDS
        WORK="$STATE/imgbuild" bash "$HERE/build-pg-image.sh" "$IMAGE" $ALIASES >/dev/null
        rm -rf "$STATE/imgbuild"; log "built in $((SECONDS - t))s"
    fi
    for a in $ALIASES; do podman tag "$IMAGE" "$a"; done
}

build_pgadmin() { # pgAdmin from PyPI on bookworm's Python: ~1-3 min once per machine
    if [ "${FORCE_BUILD:-0}" != 1 ] && podman image exists "$PGADMIN_IMAGE"; then log "image $PGADMIN_IMAGE present"; else
        log "building $PGADMIN_IMAGE"; local t=$SECONDS
        WORK="$STATE/pgadmin-imgbuild" PYTHON="${PYTHON:-python3}" bash "$HERE/build-pgadmin-image.sh" "$PGADMIN_IMAGE" >/dev/null
        rm -rf "$STATE/pgadmin-imgbuild"; log "built in $((SECONDS - t))s"
    fi
    podman tag "$PGADMIN_IMAGE" docker.io/dpage/pgadmin4:latest
}

start_service() {
    if alive "$STATE/service.pid" "podman system service" && [ -S "$SOCK" ]; then log "service already up"; return; fi
    rm -f "$SOCK"
    # setsid + redirected fds: the service must not hold the caller's stdout/stderr open
    setsid podman system service --time=0 "unix://$SOCK" >"$STATE/service.log" 2>&1 < /dev/null &
    echo $! > "$STATE/service.pid"
    for _ in $(seq 1 100); do
        [ -S "$SOCK" ] && "${PYTHON:-python3}" - "$SOCK" <<'PY' 2>/dev/null && break
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n"); sys.exit(0 if b"OK" in s.recv(4096) else 1)
PY
        sleep 0.1
    done
    [ -S "$SOCK" ] || { log "service did not come up"; cat "$STATE/service.log" >&2; exit 1; }
    log "podman API service up on unix://$SOCK (pid $(cat "$STATE/service.pid"))"
}

start_pump() {
    [ "$PUMP_INTERVAL" = 0 ] && return
    if alive "$STATE/pump.pid" "dockermode.sh pump"; then return; fi
    STATE="$STATE" setsid bash "$HERE/dockermode.sh" pump >/dev/null 2>&1 < /dev/null &
    echo $! > "$STATE/pump.pid"
    log "health pump pid $(cat "$STATE/pump.pid") (every ${PUMP_INTERVAL}s)"
}

alive() { # alive PIDFILE PATTERN  -- pid alive AND its cmdline matches (guards against PID reuse)
    local p; [ -f "$1" ] || return 1; p="$(cat "$1")"
    kill -0 "$p" 2>/dev/null && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "$2"
}

stop_pid() { # stop_pid PIDFILE PATTERN
    local f="$1" p
    [ -f "$f" ] || return 0; p="$(cat "$f")"
    if alive "$f" "$2"; then
        kill "$p"; for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -9 "$p"
    fi
    rm -f "$f"
}

down() {
    stop_pid "$STATE/pump.pid" "dockermode.sh pump"
    stop_pid "$STATE/service.pid" "podman system service"
    rm -f "$SOCK"
    command -v podman >/dev/null || return 0
    local ids
    ids="$(podman ps -aq --filter "label=$TEST_LABEL" 2>/dev/null)"; [ -z "$ids" ] || podman rm -f -v -t 2 $ids >/dev/null 2>&1
    ids="$(podman volume ls -q --filter "label=$TEST_LABEL" 2>/dev/null)"; [ -z "$ids" ] || podman volume rm -f $ids >/dev/null 2>&1
    log "down (image kept)"
}

print_env() {
    echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
    echo "export DOCKER_HOST=unix://$SOCK"
}

pump() { # podman 4.3 runs healthchecks from systemd timers; with no systemd they never fire
    while :; do
        for id in $(podman ps -q --filter status=running 2>/dev/null); do
            podman healthcheck run "$id" >/dev/null 2>&1 || true
        done
        sleep "$PUMP_INTERVAL"
    done
}

case "${1:-up}" in
    pump)  pump ;;
    up)    ( flock 9; install_engine; build_image ) 9>"$LOCK"; start_service; start_pump; print_env ;;
    pgadmin) ( flock 9; install_engine; build_pgadmin ) 9>"$LOCK" ;;
    down)  down ;;
    env)   print_env ;;
    *)     echo "usage: $0 up|down|pgadmin|env" >&2; exit 2 ;;
esac
