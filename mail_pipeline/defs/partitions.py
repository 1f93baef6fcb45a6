"""The one partitioning of every stage: account (dynamic, the registry's slugs) x UTC day."""

from __future__ import annotations

from datetime import date

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

accounts_partitions = DynamicPartitionsDefinition(name="accounts")
# INTERNALDATE in UTC decides the day. end_offset=1 makes today's (still filling) day a
# partition, so new mail is ingested within the sensor's interval rather than tomorrow.
days_partitions = DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC", end_offset=1)
mail_partitions = MultiPartitionsDefinition({"account": accounts_partitions, "day": days_partitions})


def partition_key(account: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({"account": account, "day": day.isoformat()})


def split_key(key: str | MultiPartitionKey) -> tuple[str, date]:
    if not isinstance(key, MultiPartitionKey):
        key = mail_partitions.get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return dims["account"], date.fromisoformat(dims["day"])
