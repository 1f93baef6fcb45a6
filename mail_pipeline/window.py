"""The retention window: which days the pipeline keeps, by one clock that tests can pin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class Window:
    retention_days: int
    pinned_today: date | None = None

    def today(self) -> date:
        """UTC today, or the pinned day."""
        return self.pinned_today or datetime.now(UTC).date()

    def cutoff(self) -> date:
        """The first day kept: days before it are outside the window and get dropped."""
        return self.today() - timedelta(days=self.retention_days)

    def contains(self, day: date) -> bool:
        # Tomorrow counts: INTERNALDATE is the server's clock, which may run ahead of ours.
        return self.cutoff() <= day <= self.today() + timedelta(days=1)
