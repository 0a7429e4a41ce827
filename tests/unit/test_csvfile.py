"""The bounded-memory CSV reader: a streamed record reads exactly as one held whole.

Streaming starts above csvfile.SMALL bytes and reads lines in csvfile.PIECE pieces; the tests
shrink both to a few bytes, so every record of an ordinary file takes the streamed path and
every split point (inside quotes, between a CR and its LF, inside a UTF-8 sequence) is met.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from installer.exchange import csvfile, legacy, locate, merge
from installer.exchange.csvfile import CsvRecords, Record

DOCUMENTS = {
    "plain": b"id,note,updated_at\n1,one,2025-01-01\n2,,2025-01-02\n",
    "quotes": b'id,note,updated_at\n1,"a, ""quoted"" one",T1\n2,"""",T2\n3,"",T3\n',
    "multi-line": b'id,note,updated_at\n1,"two\nlines\n\nand a blank",T1\n2,x,T2\n',
    "crlf": b'id,note,updated_at\r\n1,"cr\r\nlf",T1\r\n2,y,T2\r\n',
    "no final line break": b"id,note,updated_at\n1,a,T1\n2,b,T2",
    "truncated": b'id,note,updated_at\n1,a,T1\n2,"cut off\nhere',
    "not utf-8": b"id,note,updated_at\n1,ok,T1\n2,caf\xc3\xa9 \xe9t\xe9,T2\n",
    "more fields than the header": b"id,note\n1,a,b,c\n2\n",
}


def _view(path: Path, crlf: bool) -> list[dict[str, Any]]:
    """Everything a caller can learn from each record."""
    seen = []
    with CsvRecords(path, ("id", "updated_at"), crlf=crlf) as records:
        wanted = [records.header.index(c) for c in ("id", "updated_at") if c in records.header]
        for record in records:
            data = b"".join(record.chunks())
            seen.append({
                "lines": (record.first_line, record.last_line),
                "where": (record.start, record.length, record.truncated),
                "bytes": data,
                "values": [record.value(i) for i in wanted],
                "spans": [record.span(i) for i in range(4)],
                "fields at": [record.field_at(o) for o in range(len(data))],
                "invalid utf-8": record.invalid_utf8(),
                "replaced": b"".join(record.replaced(*record.span(0), b"<id>")),
            })
    return seen


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("name", DOCUMENTS)
def test_a_streamed_record_reads_as_one_held_whole(tmp_path: Path, name: str, crlf: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(DOCUMENTS[name])
    whole = _view(path, crlf)
    if crlf:  # line ends read as LF, also inside a quoted field (what git may have added)
        assert [r["bytes"] for r in whole] == [r["bytes"].replace(b"\r\n", b"\n")
                                               for r in _view(path, False)]
    for piece in (1, 2, 3, 5):
        monkeypatch.setattr(csvfile, "PIECE", piece)
        monkeypatch.setattr(csvfile, "SMALL", 0)
        assert _view(path, crlf) == whole, f"piece {piece}"


def test_records_know_lines_values_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(DOCUMENTS["multi-line"] + b'3,"open')
    with CsvRecords(path, ("note",)) as records:
        assert records.header == ["id", "note", "updated_at"]
        rows = list(records)
    assert [(r.first_line, r.last_line, r.truncated) for r in rows] == [
        (2, 5, False), (6, 6, False), (7, 7, True)]
    assert rows[0].value(1) == "two\nlines\n\nand a blank" and rows[1].value(5) == ""


def test_a_wanted_field_too_long_to_keep_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "SMALL", 0)
    monkeypatch.setattr(csvfile, "MAX_VALUE", 8)
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,note\n123456789,short\n")
    with CsvRecords(path, ("id", "note")) as records:
        row = next(iter(records))
        assert row.value(1) == "short"
        with pytest.raises(csvfile.FieldTooLong):
            row.value(0)


def test_text_order_of_streamed_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a\nabc\nabd\nab\nabc\n")
    with CsvRecords(path) as records:
        held = list(records)
    monkeypatch.setattr(csvfile, "SMALL", 0)
    monkeypatch.setattr(csvfile, "PIECE", 2)
    with CsvRecords(path) as records:
        streamed = list(records)

    def order(rows: list[Record]) -> list[int]:
        return [csvfile.compare_text(x, y) for x in rows for y in rows]
    assert order(streamed) == order(held)
    assert streamed[0].same(streamed[3]) and not streamed[0].same(streamed[1])


def test_merge_of_streamed_records_matches_the_merge_of_held_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = b"id,note,updated_at\n"
    big = b'"' + b'long, ""quoted""\ntext ' * 50 + b'"'

    def row(n: int, note: bytes, at: str) -> bytes:
        return b"0000000%d-0000-4000-8000-000000000000,%s,%s\n" % (n, note, at.encode())

    versions = {
        "base": header + row(1, big, "T1") + row(2, b"two", "T1") + row(3, big, "T1"),
        "ours": header + row(1, big + b"!", "2025-01-03") + row(2, big, "2025-01-02")
        + row(4, b"four", "T1"),
        "theirs": (header + row(1, b"one", "2025-01-02") + row(2, b"two", "T1")
                   + row(3, big, "T1") + row(5, big, "T1")).replace(b"\n", b"\r\n"),
    }

    def merged() -> bytes:
        for name, data in versions.items():
            (tmp_path / name).write_bytes(data)
        merge.merge_rows(tmp_path / "base", tmp_path / "ours", tmp_path / "theirs",
                         tmp_path / "ours")
        return (tmp_path / "ours").read_bytes()

    whole = merged()
    assert whole == header + row(1, big + b"!", "2025-01-03") + row(2, big, "2025-01-02") \
        + row(4, b"four", "T1") + row(5, big, "T1")
    monkeypatch.setattr(csvfile, "SMALL", 16)
    monkeypatch.setattr(csvfile, "PIECE", 7)
    assert merged() == whole


def test_legacy_ids_and_error_positions_in_streamed_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent_metrics.csv"
    path.write_bytes(b'id,note,n\n7,"long\nnote, \xc3\xa9",1\n8,x,2\n')
    monkeypatch.setattr(csvfile, "SMALL", 4)
    monkeypatch.setattr(csvfile, "PIECE", 3)
    assert legacy.has_integer_ids(path)
    rewritten = b"".join(chunk for chunk, _ in legacy.rewrite_ids(path, "agent_metrics"))
    assert rewritten == (b'id,note,n\n' + legacy.legacy_uuid("agent_metrics", "7").encode()
                         + b',"long\nnote, \xc3\xa9",1\n'
                         + legacy.legacy_uuid("agent_metrics", "8").encode() + b",x,2\n")
    path.write_bytes(b'id,note,n\n7,"long\nnote, \xe9",1\n')
    assert locate.first_invalid_utf8(path, ["id", "note", "n"]) == (3, "note")
    assert locate.position(path, 3, ["id", "note", "n"], None) == (3, "note")
    path.write_bytes(b'id,note,n\n7,"[1,2]",1\n8,"[1,NaN]",2\n')
    assert locate.first_bad_float_list(path, ["id", "note", "n"], ["note"]) == (3, "note")
    assert locate.line_of(path, "NaN") == 3
