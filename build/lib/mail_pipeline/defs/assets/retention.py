"""retention: everything older than the window leaves every store, and the UI, for real."""

import time
from datetime import date

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from mail_pipeline.defs.instance_records import forget_partitions
from mail_pipeline.defs.metadata import summary_metadata
from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.resources import LakeResource, VectorsResource
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import TABLES
from mail_pipeline.window import cutoff

STAGE_ASSETS = ("raw_messages", "emails", "email_chunks", "email_embeddings")


def drop_lake(lake: Lake, first_kept: date) -> tuple[dict[str, int], int]:
    """Delete every lake partition (sync_log included) before `first_kept`."""
    dropped, freed = {}, 0
    for table in TABLES:
        old = [(account, day) for account, day in lake.list_partitions(table) if day < first_kept]
        for account, day in old:
            freed += lake.drop_partition(table, account, day)
        dropped[table] = len(old)
    return dropped, freed


def wipe_records(context: AssetExecutionContext, first_kept: date) -> dict[str, int]:
    """Forget the dropped partitions' materializations, so the UI shows them as missing."""
    wiped = {}
    for name in STAGE_ASSETS:
        key = AssetKey(name)
        old = [k for k in context.instance.get_materialized_partitions(key) if split_key(k)[1] < first_kept]
        forget_partitions(context.instance, key, old)
        wiped[name] = len(old)
    return wiped


@asset(group_name="maintenance", kinds={"parquet", "lancedb"})
def retention(context: AssetExecutionContext, lake: LakeResource, vectors: VectorsResource) -> MaterializeResult:
    """Drops every stage's data older than the retention window: lake files, LanceDB rows and versions, run records."""
    started = time.monotonic()
    first_kept = cutoff(get_settings().retention_days)
    dropped, lake_bytes = drop_lake(lake.lake, first_kept)
    with vectors.maintaining() as store:
        before = store.disk_bytes()
        vector_rows = store.drop_before(first_kept)
        vector_bytes = max(before - store.disk_bytes(), 0)
    wiped = wipe_records(context, first_kept)
    total = sum(dropped.values())
    return MaterializeResult(metadata=summary_metadata(
        rows=total, seconds=time.monotonic() - started,
        summary=f"cutoff {first_kept}: {total} lake partitions ({lake_bytes / 1e6:.1f} MB) and "
                f"{vector_rows} vector rows ({vector_bytes / 1e6:.1f} MB) dropped",
        extra={"cutoff": first_kept.isoformat(), "partitions_dropped": MetadataValue.json(dropped),
               "lake_bytes_freed": lake_bytes, "vector_rows_deleted": vector_rows,
               "vector_bytes_freed": vector_bytes, "records_wiped": MetadataValue.json(wiped)},
    ))
