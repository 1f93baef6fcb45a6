"""What changes about a stored message without its content changing (flags, deleted_at), kept in a
small state file beside the content file of the same (account, day), so a flag change or an
expunge writes a few bytes instead of rewriting the day's bodies.

The state file is an overlay: a row of it replaces those columns of the content row with the same
key; content rows without one keep their own values (so a lake written before state files existed
reads as it did). Whoever rewrites the content file folds the overlay into it and then clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import TABLES


@dataclass(frozen=True)
class Overlay:
    table: str  # the state table (storage/schemas.py)
    base: str  # the content table whose rows it overrides
    key: tuple[str, ...]
    columns: tuple[str, ...]

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key)


RAW = Overlay(
    "message_state",
    "raw_messages",
    ("folder", "uidvalidity", "uid"),
    ("flags", "deleted_at", "deleted_reason"),
)
EMAILS = Overlay(
    "email_state",
    "emails",
    ("email_id",),
    ("seen", "answered", "flagged", "keywords", "deleted_at", "deleted_reason"),
)
OVERLAYS = (RAW, EMAILS)


def stored(
    lake: Lake, overlay: Overlay, account: str, day: date
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The overlay's rows by key ({} when the content file is current on its own)."""
    return {
        overlay.key_of(row): {c: row[c] for c in overlay.columns}
        for row in lake.read_partition(overlay.table, account, day).to_pylist()
    }


def read(
    lake: Lake, overlay: Overlay, account: str, day: date, columns: list[str]
) -> list[dict[str, Any]]:
    """The content rows' `columns` (which must include the key), in file order, state applied."""
    rows: list[dict[str, Any]] = lake.read_partition(
        overlay.base, account, day, columns=columns
    ).to_pylist()
    current = stored(lake, overlay, account, day) if rows else {}
    if current:
        for row in rows:
            if (state := current.get(overlay.key_of(row))) is not None:
                row.update((c, v) for c, v in state.items() if c in row)
    return rows


def write(
    lake: Lake,
    overlay: Overlay,
    account: str,
    day: date,
    states: dict[tuple[Any, ...], dict[str, Any]],
) -> int:
    """Replace the overlay with `states` (key -> every state column); return the bytes written."""
    if not states:
        return clear(lake, overlay, account, day)
    rows = [dict(zip(overlay.key, key)) | state for key, state in states.items()]
    return lake.write_partition(
        overlay.table, account, day, pa.Table.from_pylist(rows, schema=TABLES[overlay.table])
    ).bytes


def clear(lake: Lake, overlay: Overlay, account: str, day: date) -> int:
    """Drop the overlay, once the content file holds its values (or nothing overrides it)."""
    lake.drop_partition(overlay.table, account, day)
    return 0


def view_sql(overlay: Overlay, base_scan: str, state_scan: str) -> str:
    """The content table as users see it: each overridden column taken from a matching state row."""
    on = " AND ".join(f"b.{c} = s.{c}" for c in ("account", "day", *overlay.key))
    replaced = ", ".join(
        f"CASE WHEN s.account IS NULL THEN b.{c} ELSE s.{c} END AS {c}" for c in overlay.columns
    )
    return (
        f"SELECT b.* REPLACE ({replaced}) FROM ({base_scan}) b LEFT JOIN ({state_scan}) s ON {on}"
    )
