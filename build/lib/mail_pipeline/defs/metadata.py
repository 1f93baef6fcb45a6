"""Materialization metadata shared by every stage: row count, duration and a Markdown summary."""

from __future__ import annotations

from dagster import MetadataValue


def summary_metadata(*, rows: int, seconds: float, summary: str, extra: dict | None = None) -> dict:
    return {
        "dagster/row_count": rows,
        "duration_s": round(seconds, 3),
        "summary": MetadataValue.md(summary),
        **(extra or {}),
    }
