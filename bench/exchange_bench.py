"""Benchmark: the installer's import and export of interaction_logs against `psql \\copy`.

Run it standalone (it is not part of the test suite):

    python bench/exchange_bench.py [--rows 1000000] [--binaries auto|system|embedded]

It starts a throw-away cluster in a temp directory, generates the rows, and measures in one
run: `psql \\copy … FROM` into an empty table, `psql \\copy (SELECT … ORDER BY id) TO`, and the
installer's export, import into an empty database, and re-import of the same files (every row
already present). Each installer operation runs in its own process, so its peak RSS is its own.
Goals: import >= 0.85x psql's throughput, re-import <= 1.5x the import's time, export >= 0.9x
psql's ordered export throughput, peak RSS <= 200 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from installer.backends.native import NativeBackend  # noqa: E402
from installer.binaries import choose_binaries  # noqa: E402
from installer.credentials import ConnInfo  # noqa: E402
from installer.migrations import migrate_all  # noqa: E402
from installer.ports import next_free_port  # noqa: E402

GENERATE = """
INSERT INTO interaction_logs (from_agent, to_agent, message_type, payload, response,
                              duration_ms, metadata, created_at)
SELECT 'agent-' || (g %% 50), 'agent-' || (g %% 37), 'request',
       jsonb_build_object('task', 'task-' || g, 'step', g %% 11, 'args', jsonb_build_array(g, 'x')),
       'done: ' || md5(g::text), (g %% 10000) / 7.0, jsonb_build_object('run', g %% 1000),
       timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second'
FROM generate_series(1, %s) g
"""
# Runs one installer operation in a child process: python -c CHILD <op> <conninfo…> <dir>
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from installer.console import Console
from installer.credentials import ConnInfo
from installer.exchange.export import export_all
from installer.exchange.import_ import find_source, import_source
op, host, port, db, user, folder = sys.argv[2:8]
conn = ConnInfo(host, int(port), db, user, __import__('os').environ['PGPASSWORD'])
if op == 'export':
    export_all(conn, Path(folder))
else:
    outcomes = import_source(conn, find_source(Path(folder)), Console(quiet=True), force=False)
    bad = [o.error for o in outcomes if o.error]
    assert not bad, bad
"""


def timed_child(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args[:3])}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--binaries", default="auto", choices=("auto", "system", "embedded"))
    opts = parser.parse_args()
    binaries = choose_binaries(opts.binaries)
    base = Path(tempfile.mkdtemp(prefix="exchange-bench-"))
    base.chmod(0o755)
    password = secrets.token_urlsafe(16)
    backend = NativeBackend(
        instance_dir=base / "cluster", binaries=binaries, port=next_free_port(55432),
        host="127.0.0.1", admin_user="postgres", admin_password=password,
        service_user_name="learning-pg", health_timeout=60, rebuilt_from_env=False)
    backend.initialise()
    backend.start()
    admin = backend.admin_conn()
    env = {**os.environ, "PGPASSWORD": password}
    try:
        run(opts.rows, binaries.tool("psql"), admin, base, env)
    finally:
        backend.stop()
        shutil.rmtree(base, ignore_errors=True)


def new_db(admin: ConnInfo, name: str) -> ConnInfo:
    with psycopg.connect(**admin.kwargs(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = admin.to(dbname=name)
    migrate_all(db, REPO / "sql")
    return db


def psql(tool: Path, db: ConnInfo, command: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(tool), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", db.host, "-p",
                    str(db.port), "-U", db.user, "-d", db.dbname, "-c", command],
                   env=env, check=True)
    return time.perf_counter() - started


def run(rows: int, tool: Path, admin: ConnInfo, base: Path, env: dict[str, str]) -> None:
    source = new_db(admin, "bench_source")
    print(f"generating {rows:,} interaction_logs rows …", flush=True)
    with psycopg.connect(**source.kwargs()) as conn:
        conn.execute(GENERATE, (rows,))
    with psycopg.connect(**source.kwargs(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE interaction_logs")
    raw = base / "psql.csv"
    psql_export = psql(tool, source, f"\\copy (SELECT * FROM interaction_logs ORDER BY id) TO "
                       f"'{raw}' WITH (FORMAT csv, HEADER)", env)
    child = [sys.executable, "-c", CHILD, str(REPO)]
    exports = base / "exports"
    export_s, export_rss = timed_child(
        [*child, "export", source.host, str(source.port), source.dbname, source.user,
         str(exports)], env)
    size = (exports / "csv" / "interaction_logs.csv").stat().st_size
    baseline = new_db(admin, "bench_psql")
    psql_import = psql(tool, baseline, f"\\copy interaction_logs FROM '{raw}' WITH "
                       "(FORMAT csv, HEADER)", env)
    target = new_db(admin, "bench_target")
    args = [*child, "import", target.host, str(target.port), target.dbname, target.user,
            str(exports)]
    import_s, import_rss = timed_child(args, env)
    reimport_s, reimport_rss = timed_child(args, env)
    with psycopg.connect(**target.kwargs()) as conn:
        loaded = conn.execute("SELECT count(*) FROM interaction_logs").fetchone()[0]
    assert loaded == rows, (loaded, rows)
    peak = max(export_rss, import_rss, reimport_rss)
    mb = size / 1e6
    results = [
        ("psql \\copy FROM (empty table)", psql_import, None),
        ("installer import (empty database)", import_s, psql_import / import_s >= 0.85),
        ("installer re-import (all present)", reimport_s, reimport_s / import_s <= 1.5),
        ("psql \\copy (… ORDER BY id) TO", psql_export, None),
        ("installer export", export_s, psql_export / export_s >= 0.9),
    ]
    print(f"\n{rows:,} rows, {mb:.0f} MB of CSV, "
          f"self: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB RSS")
    for name, seconds, met in results:
        mark = "" if met is None else ("  ✓ goal met" if met else "  ✗ goal missed")
        print(f"  {name:<36} {seconds:7.2f} s  {mb / seconds:7.1f} MB/s{mark}")
    print(f"  import throughput vs psql:   {psql_import / import_s:5.2f}x  (goal >= 0.85x)")
    print(f"  re-import time vs import:    {reimport_s / import_s:5.2f}x  (goal <= 1.5x)")
    print(f"  export throughput vs psql:   {psql_export / export_s:5.2f}x  (goal >= 0.9x)")
    print(f"  installer peak RSS:          {peak / 2**20:5.0f} MB  (goal <= 200 MB; export "
          f"{export_rss / 2**20:.0f}, import {import_rss / 2**20:.0f}, re-import "
          f"{reimport_rss / 2**20:.0f})")


if __name__ == "__main__":
    main()
