#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv, installs the project with its
# test extra (playwright, podman-compose among them), installs podman, npm and Debian's
# chromium when missing (root + apt), warms the npm cache for the MCP server the tests launch,
# then runs ruff check, mypy and pytest. The docker-mode tests build their images themselves
# (scripts/dockermode.sh).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k migrations`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --editable '.[test]'

# Required areas (tests/required_areas.py): with CI=true a skipped docker-mode, MCP, pgvector
# or pgbouncer test fails the run, so install what they need here. As root with apt: podman +
# runc for the docker-mode tests (scripts/dockermode.sh builds the image), node + npm for the
# MCP tests, pgbouncer for the connection-pooler tests (they start it themselves, never its
# system service). pgvector comes with the embedded PostgreSQL of the project's dependencies.
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v npx >/dev/null 2>&1 || missing+=(nodejs npm)
# the external-mode TLS tests make their CA and certificates with the openssl command
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# the pgAdmin tests drive Debian's chromium through Playwright (never its own browser download)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || echo "warning: could not install ${missing[*]}" >&2
fi

# The MCP tests start the real @modelcontextprotocol/server-postgres through npx, exactly as
# .mcp.json says, from this npm cache (with its dependencies); fetch it once here.
MCP_PACKAGE="$(.venv/bin/python -c 'from installer.mcp_config import MCP_SERVER_PACKAGE as p; print(p)')"
if command -v npm >/dev/null 2>&1; then
    npm exec --yes --package="$MCP_PACKAGE" -- true >/dev/null 2>&1 \
        || echo "warning: could not fetch $MCP_PACKAGE; its tests will skip (fail with CI=true)" >&2
fi

# Lint and types first (config in pyproject.toml): a failure stops the run before pytest.
.venv/bin/ruff check . || { echo "ruff check failed: fix the findings above" >&2; exit 1; }
.venv/bin/mypy || { echo "mypy failed: fix the type errors above" >&2; exit 1; }

exec .venv/bin/python -m pytest -n 2 "$@"
