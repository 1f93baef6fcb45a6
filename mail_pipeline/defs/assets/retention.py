"""retention: everything older than the window leaves every store, and the UI, for real."""

import time
from datetime import date
from typing import Any

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from mail_pipeline.defs.instance_records import forget_partitions
from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.resources import LakeResource, VectorsResource
from mail_pipeline.stages import STAGES
from mail_pipeline.stages.retention import drop_before


def wipe_records(context: AssetExecutionContext, first_kept: date) -> dict[str, int]:
    """Forget the dropped partitions' materializations, so the UI shows them as missing."""
    wiped = {}
    for name in STAGES:
        key = AssetKey(name)
        old = [
            k
            for k in context.instance.get_materialized_partitions(key)
            if split_key(k)[1] < first_kept
        ]
        still = forget_partitions(context.instance, key, old)
        if still:
            context.log.warning(
                f"{name}: {len(still)} dropped partition(s) stay recorded until the range run "
                "that also made kept ones leaves the window (Dagster cannot delete single events)"
            )
        wiped[name] = len(old) - len(still)
    return wiped


@asset(group_name="maintenance", kinds={"parquet", "lancedb"})
def retention(
    context: AssetExecutionContext, lake: LakeResource, vectors: VectorsResource
) -> MaterializeResult[Any]:
    """Drops every stage's data older than the retention window: lake files, LanceDB rows and versions, run records."""
    started = time.monotonic()
    first_kept = lake.window.cutoff()
    dropped = drop_before(first_kept, lake.lake, vectors.maintaining)
    wiped = wipe_records(context, first_kept)
    total = sum(dropped.partitions.values())
    return MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "duration_s": round(time.monotonic() - started, 3),
            "summary": MetadataValue.md(
                f"cutoff {first_kept}: {total} lake partitions ({dropped.lake_bytes / 1e6:.1f} MB) and "
                f"{dropped.vector_rows} vector rows ({dropped.vector_bytes / 1e6:.1f} MB) dropped"
            ),
            "cutoff": first_kept.isoformat(),
            "partitions_dropped": MetadataValue.json(dropped.partitions),
            "lake_bytes_freed": dropped.lake_bytes,
            "vector_rows_deleted": dropped.vector_rows,
            "vector_bytes_freed": dropped.vector_bytes,
            "records_wiped": MetadataValue.json(wiped),
        }
    )
