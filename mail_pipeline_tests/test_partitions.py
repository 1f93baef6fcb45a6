"""The day partitions cover the retention window: the UI counts 31 days under a 30-day
retention, not every day since a fixed start."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mail_pipeline.defs.partitions import days_partitions_for
from mail_pipeline.storage import crypto
from mail_pipeline.window import Window

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("retention_days", "today", "first"),
    [
        (30, date(2026, 11, 20), "2026-10-21"),
        (7, date(2026, 11, 20), "2026-11-13"),
        (30, date(2027, 3, 1), "2027-01-30"),
    ],
)
def test_day_partitions_start_at_the_windows_first_day(retention_days, today, first):
    days = days_partitions_for(Window(retention_days, today))
    noon = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    keys = days.get_partition_keys(current_time=noon)
    assert keys[0] == first and keys[-1] == today.isoformat()  # today is a partition while it fills
    assert len(keys) == retention_days + 1


def test_the_code_location_takes_its_start_from_the_window_at_load(tmp_path):
    today = datetime.now(UTC).date() - timedelta(days=3)
    env = {
        **os.environ,
        "MAIL_PIPELINE_TODAY": today.isoformat(),
        "MAIL_PIPELINE_RETENTION_DAYS": "7",
        "FERNET_KEY": crypto.generate_key(),
        "PYTHONPATH": str(ROOT),
    }
    probe = (
        "from mail_pipeline.definitions import defs\n"
        "asset = defs.get_repository_def().asset_graph.get(__import__('dagster').AssetKey('raw_messages'))\n"
        "day = asset.partitions_def.get_partitions_def_for_dimension('day')\n"
        "print(day.get_first_partition_key())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == (today - timedelta(days=7)).isoformat()
