#!/usr/bin/env python3
"""Mutation testing of the installer: do the tests notice when the code breaks?

Each mutant is one small, deliberate breakage: (file, original snippet, replacement, the tests
that should catch it). For each, the repository is copied to a temp directory (without .venv
and .git), the snippet replaced, and the named tests run there with this checkout's Python; a
mutant is *killed* when those tests fail, *survives* when they pass. A snippet that is no
longer in its file (the code moved on) makes the mutant "not applicable", never an error.

    .venv/bin/python scripts/mutation.py                 # all mutants, 1 at a time
    .venv/bin/python scripts/mutation.py --jobs 2        # two at a time (each in its copy)
    .venv/bin/python scripts/mutation.py --only status-exit-0-when-unhealthy --keep
    .venv/bin/python scripts/mutation.py --list          # the mutants and their tests
    .venv/bin/python scripts/mutation.py --baseline      # first check the tests pass unmutated

Exit code: 0 when the score (killed / applicable) reaches --goal (default 80%), 1 otherwise.
Not part of the normal test run: it takes roughly 10-30 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache",
                                     ".ruff_cache", "backups", "*.egg-info")

# the tests, by the promise they check (node ids relative to the repository)
UB = "tests/integration/test_user_visible_breakages.py"
LEAKS = "tests/integration/test_secret_leaks.py"
CLIENTS = "tests/integration/test_client_config_formats.py"
MIGRATIONS = "tests/integration/test_migrations.py"
EXCHANGE = "tests/integration/test_exchange.py"
INTEGRITY = "tests/integration/test_exchange_integrity.py"
NATIVE = "tests/integration/test_native_install.py"
PROMISES = "tests/integration/test_documented_promises.py"
PLAN = "tests/integration/test_plan_and_output.py"
POOLER = "tests/integration/test_pgbouncer.py"
UNIT = "tests/unit"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]


MUTANTS = [
    # -- the twelve breakages of issue 16 --------------------------------------------------
    Mutant("export-skips-pulled-import", "installer/exchange/sync.py",
           "    source = pending_import(owner, exports_dir)\n    if source is not None",
           "    source = None\n    if source is not None",
           (f"{UB}::test_export_first_imports_what_was_pulled_from_another_machine",)),
    Mutant("failed-import-recorded-as-done", "installer/exchange/sync.py",
           "if problem is None and record and source.fingerprint:",
           "if record and source.fingerprint:",
           (f"{UB}::test_a_failed_import_is_not_recorded_so_the_next_full_retries_it",)),
    Mutant("status-prints-owner-password", "installer/commands.py",
           '        "database": installation.owner_conn().masked_url(),\n'
           '        "pending_migrations": pending,',
           '        "database": installation.owner_conn().url(),\n'
           '        "pending_migrations": pending,',
           (f"{UB}::test_status_never_prints_the_owners_password",)),
    Mutant("status-exit-0-when-unhealthy", "installer/commands.py",
           "return ExitCode.OK if healthy else ExitCode.SERVER", "return ExitCode.OK",
           (f"{UB}::test_status_exits_5_when_unhealthy",)),
    Mutant("native-never-creates-pgvector", "installer/provision.py",
           "        if not available:\n            return ok(\"not available",
           "        if True:\n            return ok(\"not available",
           (f"{UB}::test_native_install_with_pgvector_binaries_creates_the_extension",)),
    Mutant("env-mode-not-repaired", "installer/project_steps.py",
           '        if self.path.stat().st_mode & 0o777 != 0o600:\n'
           '            return Check("repair", "permissions to 0600")\n'
           '        return ok()\n\n    def apply(self, check: Check) -> str:\n'
           '        write_env(',
           '        if False:\n'
           '            return Check("repair", "permissions to 0600")\n'
           '        return ok()\n\n    def apply(self, check: Check) -> str:\n'
           '        write_env(',
           (f"{UB}::test_env_with_loose_permissions_is_repaired_by_full",)),
    Mutant("gemini-wrong-path", "installer/mcp_config.py",
           'p / ".gemini" / "settings.json"', 'p / ".gemini" / "mcp.json"',
           (f"{CLIENTS}::test_every_client_file_has_the_documented_shape",)),
    Mutant("gemini-wrong-key", "installer/mcp_config.py",
           'JsonClient("gemini", "Gemini CLI", lambda p: p / ".gemini" / "settings.json")',
           'JsonClient("gemini", "Gemini CLI", lambda p: p / ".gemini" / "settings.json", '
           'servers_key="servers")',
           (f"{CLIENTS}::test_every_client_file_has_the_documented_shape",)),
    Mutant("mcp-config-holds-password", "installer/mcp_config.py",
           "    url = agent.url(with_password=False)\n", "    url = agent.url()\n",
           (f"{CLIENTS}::test_every_client_file_has_the_documented_shape",)),
    Mutant("vscode-without-type", "installer/mcp_config.py",
           'servers_key="servers",\n               extra={"type": "stdio"})',
           'servers_key="servers")',
           (f"{CLIENTS}::test_every_client_file_has_the_documented_shape",)),
    Mutant("mask-shows-whole-secret", "installer/credentials.py",
           'return secret[:2] + "…" + "*" * 6', 'return secret + "…"',
           (f"{UB}::test_status_never_prints_the_owners_password",
            f"{PLAN}::test_print_config_shows_sources_and_masks_passwords",
            f"{LEAKS}::test_no_password_in_any_output")),
    Mutant("status-always-healthy", "installer/commands.py",
           "    healthy = all(check.ok for _, check in checks)\n", "    healthy = True\n",
           (f"{UB}::test_status_exits_5_when_unhealthy",)),
    # -- steps ------------------------------------------------------------------------------
    Mutant("dry-run-applies", "installer/steps.py",
           "            elif dry_run:", "            elif False:",
           (f"{PLAN}::test_dry_run_on_a_fresh_machine_changes_nothing",)),
    Mutant("ok-step-applied-again", "installer/steps.py",
           "            if check.ok:\n                result = StepResult(step.title, \"ok\"",
           "            if False:\n                result = StepResult(step.title, \"ok\"",
           (f"{NATIVE}::test_rerun_on_healthy_install_changes_nothing",)),
    Mutant("later-steps-never-prepared", "installer/steps.py",
           "ahead.submit(later.prepare)", "ahead.submit(lambda: None)",
           (f"{UNIT}/test_steps_fake_backend.py::"
            "test_later_steps_prepare_in_the_background_while_an_earlier_one_applies",)),
    Mutant("migrations-prepare-nothing", "installer/project_steps.py",
           "                statements(migration.sql)\n", "                pass\n",
           (f"{UNIT}/test_steps_fake_backend.py::"
            "test_the_migrations_step_prepares_every_file_split_into_statements",)),
    Mutant("pgpass-mode-not-repaired", "installer/project_steps.py",
           '        if self.path.stat().st_mode & 0o777 != 0o600:\n'
           '            return Check("repair", "permissions to 0600")\n'
           '        return ok()\n\n    def apply(self, check: Check) -> str:\n'
           '        existing = read_pgpass(self.path)',
           '        if False:\n'
           '            return Check("repair", "permissions to 0600")\n'
           '        return ok()\n\n    def apply(self, check: Check) -> str:\n'
           '        existing = read_pgpass(self.path)',
           (f"{PROMISES}::test_pgpass_with_loose_permissions_is_repaired_by_full",)),
    Mutant("env-written-world-readable", "installer/envfile.py",
           'write_atomic(path, merged.encode("utf-8"), mode=0o600)',
           'write_atomic(path, merged.encode("utf-8"), mode=0o644)',
           (f"{NATIVE}::test_first_install_gives_healthy_migrated_database",)),
    Mutant("env-values-never-updated", "installer/project_steps.py",
           "changed = [key for key, value in self.values.items() if current.get(key) != value]",
           "changed = []",
           (f"{NATIVE}::test_recorded_port_taken_by_another_program_moves_on",)),
    # -- migrations -------------------------------------------------------------------------
    Mutant("edited-migration-not-noticed", "installer/migrations.py",
           "elif row.checksum != migration.checksum:", "elif False:",
           (f"{MIGRATIONS}::test_edited_applied_file_is_refused_until_accepted",
            f"{PROMISES}::test_migrate_refuses_an_edited_file_with_exit_6_until_accepted")),
    Mutant("out-of-order-silently-pending", "installer/migrations.py",
           "target = result.out_of_order if migration.version < highest else result.pending",
           "target = result.pending",
           (f"{MIGRATIONS}::test_out_of_order_file_is_reported_not_skipped",
            f"{PROMISES}::test_migrate_reports_out_of_order_and_applies_it_when_allowed")),
    Mutant("allow-out-of-order-ignored", "installer/migrations.py",
           "if current.out_of_order and not allow_out_of_order:",
           "if current.out_of_order:",
           (f"{MIGRATIONS}::test_out_of_order_file_is_reported_not_skipped",
            f"{PROMISES}::test_migrate_reports_out_of_order_and_applies_it_when_allowed")),
    Mutant("no-advisory-lock", "installer/migrations.py",
           'holder.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY:d})")',
           'holder.execute("SELECT 1")',
           (f"{MIGRATIONS}::test_two_concurrent_runs_apply_each_file_once",)),
    Mutant("commit-inside-file-allowed", "installer/migrations.py",
           "            if statement.word in _TRANSACTION_CONTROL:", "            if False:",
           (f"{MIGRATIONS}::test_commit_inside_a_file_is_refused",)),
    Mutant("bom-changes-checksum", "installer/migrations.py",
           'return text.removeprefix("\\ufeff").replace', "return text.replace",
           (f"{MIGRATIONS}::test_line_endings_and_bom_do_not_change_the_checksum",)),
    Mutant("migration-file-not-atomic", "installer/migrations.py",
           "            with conn.transaction():\n                before = objects(conn)",
           "            if True:\n                before = objects(conn)",
           (f"{MIGRATIONS}::test_syntax_error_names_file_and_line_and_keeps_earlier_files",
            f"{PROMISES}::test_a_failing_migration_exits_6_naming_file_and_line")),
    Mutant("accept-checksum-does-nothing", "installer/migrations.py",
           "            if migration.id == migration_id:", "            if False:",
           (f"{MIGRATIONS}::test_edited_applied_file_is_refused_until_accepted",
            f"{PROMISES}::test_migrate_refuses_an_edited_file_with_exit_6_until_accepted")),
    Mutant("failure-line-off-by-one", "installer/migrations.py",
           'return sql.count("\\n", 0, offset) + 1', 'return sql.count("\\n", 0, offset)',
           (f"{MIGRATIONS}::test_syntax_error_names_file_and_line_and_keeps_earlier_files",)),
    # -- exchange ---------------------------------------------------------------------------
    Mutant("checksum-mismatch-imported", "installer/exchange/import_.py",
           "if entry.sha256 is not None and reading.digest.hexdigest() != entry.sha256:",
           "if False:",
           (f"{EXCHANGE}::test_checksum_mismatch_is_refused_unless_forced",)),
    Mutant("older-row-overwrites-newer", "installer/exchange/import_.py",
           "t.{} < EXCLUDED.{} RETURNING", "t.{} > EXCLUDED.{} RETURNING",
           (f"{EXCHANGE}::test_two_machines_merge_with_last_writer_wins",)),
    Mutant("export-unordered", "installer/exchange/export.py",
           "ORDER BY {}) TO STDOUT", "ORDER BY {} DESC) TO STDOUT",
           (f"{PROMISES}::test_export_files_are_ordered_by_primary_key",)),
    Mutant("unchanged-export-rewritten", "installer/exchange/export.py",
           "if item.target.exists() and sha256_file(item.target) == item.entry.sha256:",
           "if False:",
           (f"{EXCHANGE}::test_export_twice_gives_identical_bytes_and_rewrites_nothing",)),
    Mutant("wide-field-quotes-not-doubled", "installer/exchange/export.py",
           "out.write(chunk.replace(b'\"', b'\"\"') if quoted else chunk)", "out.write(chunk)",
           (f"{INTEGRITY}::test_wide_fields_are_exported_in_chunks_byte_for_byte",)),
    Mutant("tombstones-purged-before-export", "installer/exchange/tombstones.py",
           "ids, times = _exported(previous, old) if old else ([], [])",
           "ids, times = list(old), ['infinity'] * len(old)",
           (f"{INTEGRITY}::test_old_tombstones_are_purged_once_exported",)),
    Mutant("merge-driver-trusts-json-shape", "installer/exchange/merge.py",
           "if not isinstance(doc, dict):", "if False:",
           (f"{UNIT}/test_exchange_merge.py::"
            "test_a_manifest_that_is_json_but_not_an_object_is_left_to_git",)),
    Mutant("import-reruns-every-time", "installer/exchange/sync.py",
           "return source.manifest is not None and state.recorded(conn) == source.fingerprint",
           "return False",
           ("tests/integration/test_exchange_install.py::"
            "test_install_imports_exports_once_and_export_changes_nothing",)),
    Mutant("import-row-count-unchecked", "installer/exchange/import_.py",
           "if entry.rows is not None and rows != entry.rows:", "if False:",
           (f"{PROMISES}::test_a_file_whose_row_count_differs_from_the_manifest_is_refused",)),
    Mutant("views-not-refreshed-after-import", "installer/exchange/sync.py",
           "    if result.changed:\n        refresh(",
           "    if False:\n        refresh(",
           (f"{PROMISES}::test_import_refreshes_the_materialised_views",)),
    Mutant("hook-blocks-the-push", "installer/exchange/hook.py",
           'fi\nexit 0\n"""', 'fi\nexit 1\n"""',
           ("tests/integration/test_exchange_hook.py::"
            "test_hook_chains_never_blocks_and_uninstalls_cleanly",)),
    Mutant("hook-ignores-skip-variable", "installer/exchange/hook.py",
           '[ -n "${{{SKIP_ENV}:-}}" ] && return', "true",
           (f"{PROMISES}::test_hook_stays_out_of_skipped_detached_and_other_branch_pushes",)),
    Mutant("hook-exports-for-any-branch", "installer/exchange/hook.py",
           "for r in refs if r.local_ref == branch and r.local_sha == head]",
           "for r in refs]",
           (f"{PROMISES}::test_hook_stays_out_of_skipped_detached_and_other_branch_pushes",)),
    Mutant("hook-runs-during-a-merge", "installer/exchange/hook.py",
           "        if (path := _git_path(project_dir, name)) and path.exists():",
           "        if False:",
           (f"{PROMISES}::test_hook_stays_out_of_skipped_detached_and_other_branch_pushes",)),
    # -- credentials ------------------------------------------------------------------------
    Mutant("passwords-regenerated-each-run", "installer/credentials.py",
           'values[name] = recorded.get(key) or ""', 'values[name] = ""',
           (f"{UNIT}/test_credentials_promises.py",)),
    Mutant("weak-constant-password", "installer/credentials.py",
           "return secrets.token_urlsafe(24)", 'return "learning-password"',
           (f"{UNIT}/test_credentials_promises.py",)),
    Mutant("url-password-unquoted", "installer/credentials.py",
           'auth += ":" + quote(self.password, safe="")', 'auth += ":" + self.password',
           (f"{UNIT}/test_credentials_promises.py",)),
    Mutant("pgpass-unescaped", "installer/pgpass.py",
           'return value.replace("\\\\", "\\\\\\\\").replace(":", "\\\\:")', "return value",
           (UNIT,)),
    Mutant("pgpass-duplicate-lines", "installer/pgpass.py",
           "    kept = [old for old in existing.splitlines() if not old.startswith(key)]\n"
           "    return \"\\n\".join([*kept,",
           "    kept = existing.splitlines()\n    return \"\\n\".join([*kept,",
           (UNIT,)),
    Mutant("agent-role-writable", "installer/provision.py",
           '"default_transaction_read_only=on", "statement_timeout=30s"',
           '"default_transaction_read_only=off", "statement_timeout=30s"',
           (f"{PROMISES}::test_agent_role_sessions_are_read_only_with_a_30s_timeout",)),
    Mutant("socket-name-not-counted", "installer/backends/native.py",
           'len(os.fsencode(directory / f".s.PGSQL.{int(port)}")) < _SUN_PATH',
           "len(os.fsencode(directory)) < 100",
           ("tests/integration/test_non_root_install.py",)),
    # -- issue 15: doctor proves the agents' path; external mode keeps the agent out --------
    Mutant("mcp-probe-skips-the-read", "installer/mcp_probe.py",
           'result = await session.call_tool("query", {"sql": PROBE_SQL})',
           'result = CallToolResult(content=[], is_error=False)',
           ("tests/integration/test_doctor_paths.py::"
            "test_doctor_probes_each_mcp_entry_and_names_the_cause",)),
    Mutant("pg-hba-read-as-tls", "installer/db.py",
           '    (r"no pg_hba\\.conf entry|pg_hba\\.conf rejects", "pg_hba",',
           '    (r"no pg_hba\\.conf entry|pg_hba\\.conf rejects", "tls",',
           ("tests/integration/test_doctor_paths.py::"
            "test_real_connection_failures_are_named_by_their_cause",)),
    Mutant("separation-trusts-the-catalog", "installer/lifecycle.py",
           "reached = [name for name in others if db.answers(own.to(dbname=name), timeout=3)]",
           "reached = []",
           ("tests/integration/test_doctor_paths.py::"
            "test_doctor_probes_each_mcp_entry_and_names_the_cause",)),
    Mutant("other-databases-users-lose-connect", "installer/other_databases.py",
           "                    if roles:\n", "                    if False:\n",
           ("tests/integration/test_external_mode.py::"
            "test_agent_is_kept_out_of_the_admins_application_database",)),
    Mutant("uninstall-keeps-public-out", "installer/commands.py",
           "    if Record.load(project_dir).databases:", "    if False:",
           ("tests/integration/test_external_mode.py::"
            "test_agent_is_kept_out_of_the_admins_application_database",)),
    Mutant("provider-role-name-accepted", "installer/config.py",
           '    reserved = next((p for p in RESERVED_ROLE_PREFIXES if role.lower().startswith(p)), '
           'None)', "    reserved = None", (f"{UNIT}/test_precedence.py",)),
    # -- issue 15: through a transaction pooler --------------------------------------------
    Mutant("prepared-statements-behind-a-pooler", "installer/db.py",
           "prepare_threshold=None)", "prepare_threshold=5)",
           (f"{POOLER}::test_install_import_and_rerun_through_pgbouncer",)),
    Mutant("exchange-settings-for-the-session", "installer/exchange/catalog.py",
           "return db.transaction(conn, TRANSACTION_SETTINGS)",
           "return db.transaction(conn, {})",
           (f"{POOLER}::test_install_import_and_rerun_through_pgbouncer",)),
    Mutant("migration-lock-on-the-session", "installer/migrations.py",
           'self.holder.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY:d})")',
           'self.conn.execute(f"SELECT pg_advisory_lock({LOCK_KEY:d})")',
           (f"{POOLER}::test_concurrent_migrations_through_pgbouncer_apply_each_file_once",)),
    # -- issue 13: records of any length streamed ---------------------------------------------
    Mutant("streamed-record-keeps-crlf", "installer/exchange/csvfile.py",
           '                piece = piece[:-2] + b"\\n"', "                pass",
           (f"{UNIT}/test_csvfile.py::test_a_streamed_record_reads_as_one_held_whole",)),
    Mutant("record-ends-at-a-line-break-inside-quotes", "installer/exchange/csvfile.py",
           "            if ended and not quoted:", "            if ended:",
           (f"{UNIT}/test_csvfile.py::test_records_know_lines_values_and_truncation",)),
    Mutant("streamed-records-compared-by-length", "installer/exchange/csvfile.py",
           "self._digest == other._digest", "self.length == other.length",
           (f"{UNIT}/test_csvfile.py::test_text_order_of_streamed_records",)),
]


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed | survived | not applicable | error
    seconds: float
    note: str = ""


def apply(mutant: Mutant, root: Path) -> str | None:
    """Applies the mutant under `root`; returns why it cannot, or None."""
    path = root / mutant.file
    if not path.exists():
        return f"{mutant.file} is gone"
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant.original)
    if count != 1:
        return "snippet not found" if count == 0 else f"snippet found {count} times"
    path.write_text(text.replace(mutant.original, mutant.replacement), encoding="utf-8")
    return None


def run_tests(root: Path, tests: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEARNING_", "PG"))}
    env.update(PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)  # a skip is a skip here: a mutant is killed by failures only
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(root), *tests], cwd=root, env=env, capture_output=True, text=True,
        timeout=timeout, check=False)


def evaluate(mutant: Mutant | None, timeout: float, keep: bool) -> Outcome:
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="learning-mutant-"))
    root.chmod(0o755)  # the server runs as an unprivileged user when we are root
    name = mutant.name if mutant else "baseline"
    try:
        copy = root / "repo"
        shutil.copytree(REPO, copy, ignore=COPY_IGNORE)
        probe = mutant or Mutant("baseline", "", "", "", tuple(sorted(
            {t for m in MUTANTS for t in m.tests})))
        if mutant:
            why = apply(mutant, copy)
            if why:
                return Outcome(probe, "not applicable", 0.0, why)
        missing = [t for t in probe.tests if not (copy / t.split("::")[0]).exists()]
        if missing:
            return Outcome(probe, "error", 0.0, f"test file missing: {', '.join(missing)}")
        try:
            result = run_tests(copy, probe.tests, timeout)
        except subprocess.TimeoutExpired:
            return Outcome(probe, "killed", time.monotonic() - started, f"timeout {timeout:.0f}s")
        lines = result.stdout.strip().splitlines() or [""]
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        tail = (failed[0][:160] + " | " if failed else "") + lines[-1]
        if result.returncode == 0:
            verdict = "survived" if mutant else "passed"
        elif result.returncode == 1:
            verdict = "killed" if mutant else "failed"
        else:
            verdict = "error"  # interrupted, usage error, no tests collected
        return Outcome(probe, verdict, time.monotonic() - started, tail)
    finally:
        if keep:
            print(f"  kept {root} ({name})", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run these mutants only")
    parser.add_argument("--jobs", type=int, default=1, help="mutants evaluated at once")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests")
    parser.add_argument("--goal", type=float, default=80.0, help="required score in percent")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--baseline", action="store_true",
                        help="first run every mutant's tests on an unmutated copy")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        parser.error(f"unknown mutant in {args.only}; see --list")
    if args.list:
        for m in chosen:
            print(f"{m.name:34} {m.file}\n{'':34} {' '.join(m.tests)}")
        return 0
    if args.baseline:
        base = evaluate(None, args.timeout * 3, args.keep)
        print(f"baseline: {base.verdict} in {base.seconds:.0f}s: {base.note}")
        if base.verdict != "passed":
            return 1
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for outcome in pool.map(lambda m: evaluate(m, args.timeout, args.keep), chosen):
            print(f"{outcome.verdict:15} {outcome.mutant.name:34} {outcome.seconds:5.0f}s  "
                  f"{outcome.note}", flush=True)
            outcomes.append(outcome)
    applicable = [o for o in outcomes if o.verdict != "not applicable"]
    killed = [o for o in applicable if o.verdict == "killed"]
    score = 100.0 * len(killed) / len(applicable) if applicable else 0.0
    print(f"\nscore: {len(killed)}/{len(applicable)} killed = {score:.0f}% (goal {args.goal:.0f}%)"
          f"; {len(outcomes) - len(applicable)} not applicable")
    for o in applicable:
        if o.verdict != "killed":
            print(f"  {o.verdict}: {o.mutant.name} ({o.mutant.file}) {o.note}")
    return 0 if score >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
