"""The package's Python API for notebooks: sql() over the warehouse views, as polars DataFrames."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pyarrow as pa

import mail_pipeline
from mail_pipeline.settings import Settings
from mail_pipeline.storage import catalog
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import SYNC_LOG


def test_sql_returns_a_polars_frame_of_the_views(tmp_path):
    settings = Settings(data_dir=tmp_path)
    lake = Lake(settings.lake_dir)
    catalog.ensure_catalog(settings.warehouse_path, lake)
    empty = mail_pipeline.sql("SELECT count(*) AS n FROM emails", settings=settings)
    assert isinstance(empty, pl.DataFrame) and empty["n"].to_list() == [0]

    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    row = {
        "run_id": "r1",
        "folder": "INBOX",
        "partition_day": date(2026, 11, 20),
        "started_at": now,
        "finished_at": now,
        "uidvalidity": 7,
        "highest_uid": 42,
        "messages_fetched": 3,
        "bytes_fetched": 900,
        "status": "ok",
        "error": None,
    }
    lake.append(
        "sync_log", "alice", date(2026, 11, 20), pa.Table.from_pylist([row], schema=SYNC_LOG)
    )
    found = mail_pipeline.sql(
        "SELECT account, folder, messages_fetched FROM sync_log WHERE account = ?",
        "alice",
        settings=settings,
    )
    assert found.to_dicts() == [{"account": "alice", "folder": "INBOX", "messages_fetched": 3}]
