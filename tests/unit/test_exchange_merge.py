"""The exports merge driver as git runs it (a script with BASE OURS THEIRS PATH), and the
line-end tolerant checksum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from installer.exchange import merge
from installer.exchange.manifest import Manifest, TableEntry, read_manifest, sha256_file

HEADER = "id,note,updated_at\n"
T1, T2, T3 = ("2025-01-01 00:00:00+00", "2025-01-02 00:00:00.5+00", "2025-01-03 00:00:00+00")


def _row(n: int, note: str, at: str) -> str:
    return f"0000000{n}-0000-4000-8000-000000000000,{note},{at}\n"


def _driver(tmp_path: Path, base: str, ours: str, theirs: str,
            name: str = "exports/csv/t.csv") -> tuple[int, str, str]:
    paths = []
    for label, text in (("base", base), ("ours", ours), ("theirs", theirs)):
        path = tmp_path / label
        path.write_bytes(text.encode())
        paths.append(str(path))
    script = Path(merge.__file__)
    result = subprocess.run([sys.executable, str(script), *paths, name], capture_output=True,
                            text=True, cwd=tmp_path, check=False)
    return result.returncode, (tmp_path / "ours").read_text(), result.stderr


def test_rows_merge_by_key_with_last_writer_wins_and_deletes(tmp_path: Path) -> None:
    base = HEADER + _row(1, "one", T1) + _row(2, "two", T1) + _row(3, "three", T1) + \
        _row(4, "four", T1) + _row(5, "five", T1)
    ours = HEADER + _row(1, "one ours", T3) + _row(2, "two ours", T1) + _row(4, "four", T1) + \
        _row(5, "five ours", T2) + _row(6, "six ours", T1)
    theirs = HEADER + _row(1, "one theirs", T2) + _row(2, "two", T1) + _row(3, "three", T1) + \
        _row(5, '"five, theirs"', T3) + _row(7, "seven theirs", T1)
    code, merged, _ = _driver(tmp_path, base, ours, theirs)
    assert code == 0
    assert merged == (HEADER + _row(1, "one ours", T3)  # both changed: newer wins
                      + _row(2, "two ours", T1)  # only ours changed
                      # 3: deleted by ours, unchanged by theirs: gone; 4: deleted by theirs
                      + _row(5, '"five, theirs"', T3)  # newer, quoting kept byte for byte
                      + _row(6, "six ours", T1) + _row(7, "seven theirs", T1))


def test_a_row_changed_on_one_side_and_deleted_on_the_other_stays(tmp_path: Path) -> None:
    base = HEADER + _row(1, "one", T1)
    code, merged, _ = _driver(tmp_path, base, HEADER, HEADER + _row(1, "edited", T2))
    assert code == 0 and merged == HEADER + _row(1, "edited", T2)  # tombstones decide later


def test_equal_versions_pick_the_same_row_on_both_machines(tmp_path: Path) -> None:
    a, b = _row(1, "alpha", T2), _row(1, "beta", T2)
    _, one, _ = _driver(tmp_path, HEADER, HEADER + a, HEADER + b)
    _, two, _ = _driver(tmp_path, HEADER, HEADER + b, HEADER + a)
    assert one == two == HEADER + b


def test_multi_line_values_and_crlf_checkouts_merge(tmp_path: Path) -> None:
    row = '00000001-0000-4000-8000-000000000000,"two\nlines",' + T1 + "\n"
    crlf = (HEADER + row).replace("\n", "\r\n")
    code, merged, _ = _driver(tmp_path, HEADER + row, crlf, HEADER + row + _row(2, "x", T1))
    assert code == 0 and merged == HEADER + row + _row(2, "x", T1)


def test_different_headers_are_left_to_git_as_a_conflict(tmp_path: Path) -> None:
    code, merged, err = _driver(tmp_path, HEADER, HEADER + _row(1, "a", T1),
                                "id,note,extra,updated_at\n")
    assert code == 1 and "different columns" in err
    assert merged == HEADER + _row(1, "a", T1)  # ours untouched


def _manifest(rows: dict[str, int]) -> str:
    tables = {name: TableEntry(name, f"csv/{name}.csv", n, f"{n:064x}", (("id", "uuid"),))
              for name, n in rows.items()}
    return Manifest({"learning": 70}, tables).to_bytes().decode()


def test_manifest_merge_marks_tables_both_sides_changed(tmp_path: Path) -> None:
    base = _manifest({"a": 1, "b": 1, "c": 1})
    ours = _manifest({"a": 2, "b": 1, "c": 3})
    theirs = _manifest({"a": 1, "b": 5, "c": 4, "d": 1})
    code, merged, _ = _driver(tmp_path, base, ours, theirs, "exports/manifest.json")
    assert code == 0
    (tmp_path / "manifest.json").write_text(merged)
    parsed = read_manifest(tmp_path / "manifest.json")
    assert (parsed.tables["a"].rows, parsed.tables["b"].rows, parsed.tables["d"].rows) == (2, 5, 1)
    assert parsed.tables["c"].merged and parsed.tables["c"].sha256 is None
    assert json.loads(merged)["tables"]["c"]["merged"] is True


def test_checksum_ignores_crlf_line_ends_git_added(tmp_path: Path) -> None:
    lf, crlf = tmp_path / "lf.csv", tmp_path / "crlf.csv"
    text = HEADER + '00000001-0000-4000-8000-000000000000,"a\nb",' + T1 + "\n"
    lf.write_bytes(text.encode())
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    assert sha256_file(lf) == sha256_file(crlf)
    carriage = tmp_path / "cr.csv"  # an LF file keeps a \r that belongs to a value
    carriage.write_bytes(text.replace('"a\nb"', '"a\r\nb"').encode())
    assert sha256_file(carriage) != sha256_file(lf)


def test_a_manifest_that_is_json_but_not_an_object_is_left_to_git(tmp_path: Path) -> None:
    ours = _manifest({"a": 2})
    for theirs in ("[1, 2]", '"text"', "42", '{"format": "learning-exports", "tables": [1]}',
                   '{"format": "learning-exports", "tables": {"a": 3}}'):
        code, merged, err = _driver(tmp_path, _manifest({"a": 1}), ours, theirs,
                                    "exports/manifest.json")
        assert code == 1, theirs
        assert "learning exports: cannot merge exports/manifest.json by row" in err
        assert "is not an export manifest" in err and "Traceback" not in err
        assert merged == ours  # ours untouched: git reports the conflict
