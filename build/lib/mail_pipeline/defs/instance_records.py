"""Forgetting dropped partitions in Dagster's instance, so the UI shows them as missing.

`DagsterInstance.wipe_asset_partitions` exists, but every OSS event log storage (SQLite and
PostgreSQL alike, dagster 1.13) raises NotImplementedError from it. Both are SQL event logs with
one index table keyed by asset and partition, so the fallback deletes those rows there and then
drops the asset's cached partition status, which the UI recomputes from the remaining events.
"""

from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance


def forget_partitions(instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str]) -> None:
    if not partition_keys:
        return
    try:
        instance.wipe_asset_partitions(asset_key, partition_keys)
        return
    except NotImplementedError:
        pass
    from dagster._core.storage.event_log.schema import AssetEventTagsTable, SqlEventLogStorageTable
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise NotImplementedError(f"cannot forget partitions in {type(storage).__name__}")
    events = SqlEventLogStorageTable
    selected = (events.c.asset_key == asset_key.to_string()) & events.c.partition.in_(list(partition_keys))
    with storage.index_connection() as conn:
        ids = [row[0] for row in conn.execute(events.select().with_only_columns(events.c.id).where(selected))]
        for start in range(0, len(ids), 500):
            conn.execute(AssetEventTagsTable.delete().where(AssetEventTagsTable.c.event_id.in_(ids[start:start + 500])))
        conn.execute(events.delete().where(selected))
    instance.wipe_asset_cached_status([asset_key])
