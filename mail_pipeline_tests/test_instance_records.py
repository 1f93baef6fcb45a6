"""forget_partitions through Dagster's public API: runs that made only dropped partitions go with
their records; a run that also made a kept partition, or another asset's, stays, and says so."""

from __future__ import annotations

from dagster import AssetKey, DailyPartitionsDefinition, MaterializeResult, asset, materialize

from mail_pipeline.defs.instance_records import forget_partitions
from mail_pipeline.defs.sensors import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

DAYS = DailyPartitionsDefinition(start_date="2026-01-01")
KEY = AssetKey("daily")


@asset(partitions_def=DAYS)
def daily(context) -> MaterializeResult:
    return MaterializeResult()


@asset
def summary() -> MaterializeResult:
    return MaterializeResult()


def run_of(instance, assets=(daily,), **kwargs) -> str:
    result = materialize(list(assets), instance=instance, **kwargs)
    assert result.success
    return result.run_id


def test_runs_of_dropped_partitions_only_are_deleted_and_the_partitions_show_missing(instance):
    runs = {
        day: run_of(instance, partition_key=day)
        for day in ("2026-01-01", "2026-01-02", "2026-01-03")
    }
    run_of(instance, partition_key="2026-01-02")  # materialized twice: both runs go
    assert forget_partitions(instance, KEY, ["2026-01-01", "2026-01-02"]) == set()
    assert instance.get_materialized_partitions(KEY) == {"2026-01-03"}
    assert instance.get_run_by_id(runs["2026-01-01"]) is None and instance.get_run_by_id(
        runs["2026-01-03"]
    )
    assert [r.partition_key for r in instance.fetch_materializations(KEY, limit=10).records] == [
        "2026-01-03"
    ]


def test_a_range_run_that_made_a_kept_partition_is_kept_and_reported(instance):
    ranged = run_of(
        instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: "2026-01-04",
            ASSET_PARTITION_RANGE_END_TAG: "2026-01-06",
        },
    )
    assert instance.get_materialized_partitions(KEY) == {"2026-01-04", "2026-01-05", "2026-01-06"}
    assert forget_partitions(instance, KEY, ["2026-01-04", "2026-01-05"]) == {
        "2026-01-04",
        "2026-01-05",
    }
    assert instance.get_run_by_id(ranged) is not None
    assert forget_partitions(instance, KEY, ["2026-01-04", "2026-01-05", "2026-01-06"]) == set()
    assert (
        instance.get_materialized_partitions(KEY) == set()
        and instance.get_run_by_id(ranged) is None
    )


def test_a_run_that_also_materialized_another_asset_is_kept(instance):
    both = run_of(instance, partition_key="2026-01-07", assets=[daily, summary])
    assert forget_partitions(instance, KEY, ["2026-01-07"]) == {"2026-01-07"}
    assert instance.get_run_by_id(both) is not None
    assert instance.get_latest_materialization_event(AssetKey("summary")) is not None
