"""The mod-sequence at which each stored day's flags were last brought current, per account and
folder: a run over days all reconciled at or after M asks the server only for the flags changed
since M (RFC 7162 CHANGEDSINCE) instead of every message's date, size and flags. Lost, damaged or
under another UIDVALIDITY, it answers None and the run asks for everything, as a first run does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from mail_pipeline.storage import objects
from mail_pipeline.storage.lake import Lake

log = logging.getLogger(__name__)
DIRECTORY = "_flag_cursors"  # under the lake root, beside the tables
# Entries older than this before the newest recorded day go (retention has dropped those days).
KEEP_DAYS = 62


class FlagCursor:
    """One account's cursor: folder -> {"uidvalidity": V, "days": {ISO day: modseq}}."""

    def __init__(self, lake: Lake, account: str):
        self.path = lake.root / DIRECTORY / f"{account}.json"
        self._folders: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning(
                "flag cursor %s unreadable (%s): this run asks the server for every message's flags",
                self.path,
                error,
            )
            return {}

    def since(self, folder: str, uidvalidity: int, days: Iterable[date]) -> int | None:
        """The modseq every one of `days` was reconciled at or after; None when one never was."""
        entry = self._folders.get(folder)
        if not entry or entry.get("uidvalidity") != uidvalidity:
            return None
        marks = [entry["days"].get(day.isoformat()) for day in days]
        return None if not marks or None in marks else min(marks)

    def covers(self, folder: str, days: Iterable[date]) -> bool:
        """Whether every one of `days` of `folder` has a mark (under whichever UIDVALIDITY): asked
        before a run spends round trips to learn the UIDVALIDITY `since` needs."""
        marks = (self._folders.get(folder) or {}).get("days", {})
        return all(day.isoformat() in marks for day in days)

    def record(
        self, folder: str, uidvalidity: int, modseq: int | None, days: Iterable[date]
    ) -> None:
        """`days` of `folder` now hold the flags the server had at `modseq` (or later)."""
        entry = self._folders.get(folder)
        if modseq is None or not entry or entry.get("uidvalidity") != uidvalidity:
            entry = self._folders[folder] = {"uidvalidity": uidvalidity, "days": {}}
            if modseq is None:  # the folder has no mod-sequences (NOMODSEQ): nothing to remember
                return
        entry["days"].update({day.isoformat(): int(modseq) for day in days})
        newest = max(date.fromisoformat(d) for d in entry["days"])
        entry["days"] = {
            d: m
            for d, m in entry["days"].items()
            if date.fromisoformat(d) >= newest - timedelta(days=KEEP_DAYS)
        }

    def save(self) -> None:
        objects.write_bytes(self.path, json.dumps(self._folders, sort_keys=True).encode())

    def forget(self) -> None:
        """Drop the cursor: the next run compares every message's flags (after a repair)."""
        self.path.unlink(missing_ok=True)
        self._folders = {}
