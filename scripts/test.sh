#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv, installs the project with its
# test extra (playwright, podman-compose among them), installs Debian's chromium for the pgAdmin
# browser tests when missing (as root, with apt), warms the npm cache for the MCP server the
# tests launch, then runs pytest. The docker-mode tests set up podman and build their images
# themselves (scripts/dockermode.sh).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k migrations`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --editable '.[test]'

# The pgAdmin tests drive Debian's chromium through Playwright (never Playwright's own browser
# download); without root or apt they are skipped with the reason.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o DPkg::Lock::Timeout=300 chromium >/dev/null; } \
        || echo "warning: could not install chromium; the browser tests will be skipped" >&2
fi

# The MCP tests start the real @modelcontextprotocol/server-postgres through npx, exactly as
# .mcp.json says; fetch it once here so the tests do not depend on download timing.
if command -v npm >/dev/null 2>&1; then
    npm cache add @modelcontextprotocol/server-postgres@0.6.2 >/dev/null 2>&1 \
        || echo "warning: could not fetch the MCP server package; its tests will be skipped" >&2
fi

exec .venv/bin/python -m pytest -n 2 "$@"
