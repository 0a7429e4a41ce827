"""The learning database's size at each `status`, and its growth since the reading before.

Readings live in `installer.size_readings` (created by the migration engine), so they follow
the database whatever the mode; the last 1000 are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

_KEPT = 1000


@dataclass(frozen=True)
class SizeReading:
    bytes: int
    previous: int | None = None  # the reading before this one, if any
    previous_at: datetime | None = None

    @property
    def growth(self) -> int | None:
        return None if self.previous is None else self.bytes - self.previous

    def describe(self) -> str:
        text = _human(self.bytes)
        if self.growth is None or self.previous_at is None:
            return f"{text} (first reading)"
        sign = "+" if self.growth >= 0 else "-"
        return (f"{text} ({sign}{_human(abs(self.growth))} since "
                f"{self.previous_at:%Y-%m-%d %H:%M} UTC)")

    def as_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "growth_bytes": self.growth,
                "previous_at": self.previous_at.isoformat() if self.previous_at else None}


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def record_size(conn: psycopg.Connection) -> SizeReading:
    """Read the size now, compare with the last reading, and keep this one."""
    row = conn.execute("SELECT pg_database_size(current_database()), "
                       "to_regclass('installer.size_readings') IS NOT NULL").fetchone()
    assert row is not None
    size, kept = int(row[0]), bool(row[1])
    if not kept:  # a ledger older than this installer: the next migration run creates it
        return SizeReading(size)
    last = conn.execute("SELECT bytes, measured_at AT TIME ZONE 'UTC' FROM "
                        "installer.size_readings ORDER BY measured_at DESC LIMIT 1").fetchone()
    conn.execute("INSERT INTO installer.size_readings (measured_at, bytes) "
                 "VALUES (clock_timestamp(), %s) ON CONFLICT DO NOTHING", (size,))
    conn.execute("DELETE FROM installer.size_readings WHERE measured_at < (SELECT measured_at "
                 "FROM installer.size_readings ORDER BY measured_at DESC OFFSET %s LIMIT 1)",
                 (_KEPT - 1,))
    return SizeReading(size, *last) if last else SizeReading(size)
