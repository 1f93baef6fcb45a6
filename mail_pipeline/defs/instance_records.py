"""Forgetting dropped partitions in Dagster's instance, so the UI shows them as missing.

`DagsterInstance.wipe_asset_partitions` exists, but every OSS event log storage (SQLite and
PostgreSQL alike, dagster 1.13) raises NotImplementedError from it, and Dagster has no public
way to delete single events. Its public grain is the run: `delete_run` removes a run and all its
events. So the runs that materialized only dropped partitions are deleted (retention's "run
records"); a run that also materialized a kept partition (a range run of a new account that
straddles the cutoff) is kept until its last partition leaves the window, and its dropped
partitions still show as materialized until then.
"""

from collections.abc import Iterator, Sequence

from dagster import AssetKey, DagsterInstance, EventLogRecord

PAGE = 1000


def forget_partitions(instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str]) -> set[str]:
    """Delete the records of `partition_keys`; returns those still recorded by a run that also made a kept one."""
    if not partition_keys:
        return set()
    try:
        instance.wipe_asset_partitions(asset_key, partition_keys)
        return set()
    except NotImplementedError:
        pass
    dropped = set(partition_keys)
    doomed: set[str] = set()
    kept: set[str] = set()
    left: dict[str, set[str]] = {}
    for record in materializations(instance, asset_key):
        if record.partition_key in dropped:
            doomed.add(record.run_id)
            left.setdefault(record.run_id, set()).add(record.partition_key)
        else:
            kept.add(record.run_id)
    for run_id in doomed - kept:
        if run_id:  # a runless materialization ("") belongs to no run that could be deleted
            instance.delete_run(run_id)
    # The partition status cache only moves forward: recomputed from the remaining events.
    instance.wipe_asset_cached_status([asset_key])
    return {key for run_id in doomed if run_id in kept or not run_id for key in left[run_id]}


def materializations(instance: DagsterInstance, asset_key: AssetKey) -> Iterator[EventLogRecord]:
    cursor = None
    while True:
        page = instance.fetch_materializations(asset_key, limit=PAGE, cursor=cursor, ascending=True)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor
