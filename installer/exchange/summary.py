"""exports/EXPORT_SUMMARY.md: counts per table and what changed since the previous export."""

from __future__ import annotations

from installer.exchange.manifest import Manifest

SUMMARY_NAME = "EXPORT_SUMMARY.md"


def _change(name: str, new: Manifest, old: Manifest | None, local: set[str]) -> str:
    entry = new.tables[name]
    before = old.tables.get(name) if old else None
    if name not in local:
        return "kept from the previous export (table not in the exporting database)"
    if before is None:
        return "new table" if old else "first export"
    if before.sha256 == entry.sha256:
        return "unchanged"
    parts = []
    if entry.merged or before.merged:
        parts.append("merged from two machines")
    elif entry.rows is not None and before.rows is not None and entry.rows != before.rows:
        parts.append(f"{entry.rows - before.rows:+d} rows")
    if [c for c, _ in entry.columns] != [c for c, _ in before.columns]:
        parts.append("columns changed")
    return ", ".join(parts) or "rows changed (same count)"


def render_summary(new: Manifest, old: Manifest | None, local: set[str]) -> bytes:
    lines = ["# Learning data export", "",
             "Written by `python install.py export` (also on `git push`). The data is in "
             "`csv/`, one file per table, described by `manifest.json`; "
             "`python install.py --full` or `python install.py import` loads it.", "",
             "Schema version: " + (", ".join(f"{m} {v}" for m, v in
                                             sorted(new.schema_version.items())) or "unknown"),
             "", "| table | rows | since the previous export |", "| --- | ---: | --- |"]
    for name in sorted(new.tables):
        rows = new.tables[name].rows
        lines.append(f"| {name} | {'?' if rows is None else rows} | "
                     f"{_change(name, new, old, local)} |")
    removed = sorted(set(old.tables) - set(new.tables)) if old else []
    lines += [f"| {name} | – | no longer exported |" for name in removed]
    total = sum(e.rows or 0 for e in new.tables.values())
    lines += ["", f"Total: {total} rows in {len(new.tables)} tables.", ""]
    return "\n".join(lines).encode("utf-8")
