"""Exchange pieces that need no server: locating errors, legacy ids, manifests, hook input."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from installer.errors import DataError
from installer.exchange import hook, legacy, locate
from installer.exchange.manifest import Manifest, TableEntry, read_manifest
from installer.exchange.summary import render_summary


def test_position_gives_first_line_of_a_multi_line_record(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'id,note,n\n1,"a\nb\nc",2\n2,x,bad\n')
    header = ["id", "note", "n"]
    assert locate.position(path, 4, header, "note") == (2, "note")  # record on lines 2-4
    assert locate.position(path, 5, header, "n") == (5, "n")


def test_position_finds_the_column_of_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'id,note,n\n1,"a,\nb",\xff\n')
    assert locate.position(path, 3, ["id", "note", "n"], None) == (3, "n")
    assert locate.first_invalid_utf8(path, ["id", "note", "n"]) == (3, "n")


def test_position_of_a_record_cut_off_by_the_end_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'id,note\n1,x\n2,"unterminated\n')
    assert locate.position(path, 4, ["id", "note"], None) == (3, None)


def test_legacy_ids_are_deterministic_per_table() -> None:
    assert legacy.legacy_uuid("agent_metrics", "7") == legacy.legacy_uuid("agent_metrics", "007")
    assert legacy.legacy_uuid("agent_metrics", "7") != legacy.legacy_uuid("interaction_logs", "7")
    assert uuid.UUID(legacy.legacy_uuid("agent_metrics", "7")).version == 5


def test_legacy_rewrite_names_the_line_of_a_bad_id(tmp_path: Path) -> None:
    path = tmp_path / "agent_metrics.csv"
    path.write_text('id,name\n1,"two\nlines"\nx7,b\n')
    with pytest.raises(legacy.LegacyRowError) as caught:
        b"".join(chunk for chunk, _ in legacy.rewrite_ids(path, "agent_metrics"))
    assert caught.value.line == 4 and caught.value.column == "id"


def _manifest(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    return path


def test_manifest_round_trips_and_is_stable(tmp_path: Path) -> None:
    entry = TableEntry("t", "csv/t.csv", 2, "a" * 64, (("id", "uuid"), ("x", "text")))
    manifest = Manifest({"learning": 1}, {"t": entry})
    path = tmp_path / "manifest.json"
    path.write_bytes(manifest.to_bytes())
    assert read_manifest(path) == manifest
    assert Manifest({"learning": 1}, {"t": entry}).to_bytes() == manifest.to_bytes()


@pytest.mark.parametrize("doc, message", [
    ([], "format"),
    ({"format": "other"}, "format"),
    ({"format": "learning-exports"}, "format_version"),
    ({"format": "learning-exports", "format_version": 1, "tables": {"t": {"file": "x"}}},
     "lacks"),
    ({"format": "learning-exports", "format_version": 1, "tables": {"t": {
        "file": "csv/t.csv", "rows": 1, "sha256": "zz", "columns": []}}}, "malformed"),
])
def test_manifest_problems_refuse_the_export(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_manifest(_manifest(tmp_path, doc))


def test_summary_says_what_changed() -> None:
    def entry(rows: int, sha: str) -> TableEntry:
        return TableEntry("t", "csv/t.csv", rows, sha * 64, (("id", "uuid"),))

    old = Manifest({"learning": 1}, {"t": entry(2, "a"), "u": entry(1, "b"),
                                     "gone": entry(1, "c")})
    new = Manifest({"learning": 1}, {"t": entry(5, "d"), "u": entry(1, "b"), "v": entry(0, "e"),
                                     "gone": entry(1, "c")})
    text = render_summary(new, old, {"t", "u", "v"}).decode()
    assert "| t | 5 | +3 rows |" in text
    assert "| u | 1 | unchanged |" in text
    assert "| v | 0 | new table |" in text
    assert "| gone | 1 | kept from the previous export" in text


def test_hook_reads_pushed_refs_and_ignores_deletions() -> None:
    zero = "0" * 40
    refs = hook.parse_refs([f"refs/heads/main {'a' * 40} refs/heads/main {zero}",
                            f"(delete) {zero} refs/heads/old {'b' * 40}", ""])
    assert refs == [hook.PushedRef("refs/heads/main", "a" * 40, "refs/heads/main")]


def test_hook_script_chains_and_never_fails(tmp_path: Path) -> None:
    script = hook.hook_script(tmp_path)
    assert script.startswith("#!/bin/sh\n") and hook.MARKER in script
    assert hook.CHAINED in script and script.rstrip().endswith("exit 0")
