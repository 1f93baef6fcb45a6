"""Forgetting dropped partitions in Dagster's instance, so the UI shows them as missing.

`DagsterInstance.wipe_asset_partitions` exists, but every OSS event log storage (SQLite and
PostgreSQL alike, dagster 1.13) raises NotImplementedError from it, and Dagster has no public
way to delete single events. Its public grain is the run: `delete_run` removes a run and all its
events. So the runs whose every materialization (of any asset) is of a dropped partition are
deleted (retention's "run records"); a run that also materialized a kept partition (a range run
of a new account that straddles the cutoff) is kept until its last partition leaves the window,
and its dropped partitions still show as materialized until then.
"""

from collections.abc import Sequence

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

PAGE = 1000


def forget_partitions(
    instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str]
) -> set[str]:
    """Delete the records of `partition_keys`; returns those still recorded by a run that also made a kept one."""
    if not partition_keys:
        return set()
    try:
        instance.wipe_asset_partitions(asset_key, partition_keys)
        return set()
    except NotImplementedError:
        pass
    dropped = set(partition_keys)
    left = set()
    for run_id, partitions in runs_materializing(instance, asset_key, partition_keys).items():
        if run_id and made_only(instance, run_id, dropped):
            instance.delete_run(run_id)
        else:  # also made a kept partition, or runless (""): no run to delete
            left |= partitions
    # The partition status cache only moves forward: recomputed from the remaining events.
    instance.wipe_asset_cached_status([asset_key])
    return left


def runs_materializing(
    instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str]
) -> dict[str, set[str]]:
    """The runs that materialized any of `partition_keys`, each with those partitions."""
    runs: dict[str, set[str]] = {}
    for start in range(0, len(partition_keys), PAGE):
        selected = AssetRecordsFilter(
            asset_key=asset_key, asset_partitions=list(partition_keys[start : start + PAGE])
        )
        cursor = None
        while True:
            page = instance.fetch_materializations(selected, limit=PAGE, cursor=cursor)
            for record in page.records:
                if record.partition_key is not None:  # asked for by partition: always set
                    runs.setdefault(record.run_id, set()).add(record.partition_key)
            if not page.has_more:
                break
            cursor = page.cursor
    return runs


def made_only(instance: DagsterInstance, run_id: str, dropped: set[str]) -> bool:
    """Whether every materialization of the run, of any asset, is of a dropped partition."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return all(
        event.dagster_event is not None and event.dagster_event.partition in dropped
        for event in events
    )
