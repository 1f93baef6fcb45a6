"""retention: every lake partition and LanceDB row older than the window leaves the disk."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date

from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import TABLES
from mail_pipeline.storage.vectors import VectorStore


@dataclass
class Dropped:
    partitions: dict[str, int]
    lake_bytes: int
    vector_rows: int
    vector_bytes: int


def drop_lake(lake: Lake, first_kept: date) -> tuple[dict[str, int], int]:
    """Delete every lake partition (sync_log included) before `first_kept`."""
    dropped, freed = {}, 0
    for table in TABLES:
        old = [(account, day) for account, day in lake.list_partitions(table) if day < first_kept]
        for account, day in old:
            freed += lake.drop_partition(table, account, day)
        dropped[table] = len(old)
    return dropped, freed


def drop_before(
    first_kept: date, lake: Lake, maintaining: Callable[[], AbstractContextManager[VectorStore]]
) -> Dropped:
    """Drop the lake's and LanceDB's data (old versions included) of the days before `first_kept`."""
    partitions, lake_bytes = drop_lake(lake, first_kept)
    with maintaining() as store:
        before = store.disk_bytes()
        vector_rows = store.drop_before(first_kept)
        store.remove_unreferenced()  # what killed writes left; safe here, under the exclusive lock
        vector_bytes = max(before - store.disk_bytes(), 0)
    return Dropped(partitions, lake_bytes, vector_rows, vector_bytes)
