"""The one partitioning of every stage: account (dynamic, the registry's slugs) x UTC day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from mail_pipeline.settings import get_settings
from mail_pipeline.window import cutoff


def first_day(retention_days: int, now: date | None = None) -> date:
    """The first day partition: the first day of the retention window."""
    return cutoff(retention_days, now)


def days_partitions_for(retention_days: int, now: date | None = None) -> DailyPartitionsDefinition:
    """One partition per UTC day (of INTERNALDATE) of the retention window, today included.

    The start is fixed when the code location loads and moves on the next load (a restart, or
    Reload in the UI). Until then the days that aged out stay listed, holding nothing once the
    retention run dropped them; a run or backfill of such a day stores nothing (the stages skip
    days outside the window) and a day before the new start can no longer be requested.
    """
    # end_offset=1 makes today's (still filling) day a partition, so new mail is ingested within
    # the sensor's interval rather than tomorrow.
    return DailyPartitionsDefinition(start_date=first_day(retention_days, now).isoformat(), timezone="UTC", end_offset=1)


accounts_partitions = DynamicPartitionsDefinition(name="accounts")
days_partitions = days_partitions_for(get_settings().retention_days)
mail_partitions = MultiPartitionsDefinition({"account": accounts_partitions, "day": days_partitions})


def partition_key(account: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({"account": account, "day": day.isoformat()})


def split_key(key: str | MultiPartitionKey) -> tuple[str, date]:
    if not isinstance(key, MultiPartitionKey):
        key = mail_partitions.get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return dims["account"], date.fromisoformat(dims["day"])


def context_partitions(context: AssetExecutionContext) -> dict[str, list[date]]:
    """account -> sorted days for the run's partitions (one, or a range from a single-run backfill)."""
    found: dict[str, set[date]] = {}
    for key in context.partition_keys:
        account, day = split_key(key)
        found.setdefault(account, set()).add(day)
    return {account: sorted(days) for account, days in sorted(found.items())}


def locked_partitions(context: AssetExecutionContext, lake) -> Iterator[tuple[str, list[date]]]:
    """context_partitions(), holding each account's write lock while the caller works on it."""
    for account, days in context_partitions(context).items():
        with lake.account_lock(account):
            yield account, days
