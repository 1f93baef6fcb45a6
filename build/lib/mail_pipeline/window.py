"""The retention window: which days the pipeline keeps. One clock for every stage and test."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone


def today() -> date:
    """UTC today; MAIL_PIPELINE_TODAY (YYYY-MM-DD) pins it, for tests and reproducible demos."""
    pinned = os.environ.get("MAIL_PIPELINE_TODAY")
    return date.fromisoformat(pinned) if pinned else datetime.now(timezone.utc).date()


def cutoff(retention_days: int, now: date | None = None) -> date:
    """The first day kept: days before it are outside the window and get dropped."""
    return (now or today()) - timedelta(days=retention_days)


def in_window(day: date, retention_days: int, now: date | None = None) -> bool:
    return cutoff(retention_days, now) <= day <= (now or today()) + timedelta(days=1)


def window_days(retention_days: int, now: date | None = None) -> list[date]:
    first, last = cutoff(retention_days, now), now or today()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
