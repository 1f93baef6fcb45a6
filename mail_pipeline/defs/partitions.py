"""The one partitioning of every stage: account (dynamic, the registry's slugs) x UTC day."""

from __future__ import annotations

from datetime import date

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from mail_pipeline.window import Window


def days_partitions_for(window: Window) -> DailyPartitionsDefinition:
    """One partition per UTC day (of INTERNALDATE) of the retention window, today included.

    The start is fixed when the code location loads and moves on the next load (a restart, or
    Reload in the UI). Until then the days that aged out stay listed, holding nothing once the
    retention run dropped them; a run or backfill of such a day stores nothing (the stages skip
    days outside the window) and a day before the new start can no longer be requested.
    """
    # end_offset=1 makes today's (still filling) day a partition, so new mail is ingested within
    # the sensor's interval rather than tomorrow.
    return DailyPartitionsDefinition(
        start_date=window.cutoff().isoformat(), timezone="UTC", end_offset=1
    )


ACCOUNTS = "accounts"
accounts_partitions = DynamicPartitionsDefinition(name=ACCOUNTS)


def mail_partitions_for(window: Window) -> MultiPartitionsDefinition:
    """Every stage's partitions, for the window the entry point's settings give."""
    return MultiPartitionsDefinition(
        {"account": accounts_partitions, "day": days_partitions_for(window)}
    )


def partition_key(account: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({"account": account, "day": day.isoformat()})


def split_key(key: str | MultiPartitionKey) -> tuple[str, date]:
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["account"], date.fromisoformat(dims["day"])
    # A multi-partition key's string form: its dimensions' keys in the order of their names.
    account, day = key.split("|")
    return account, date.fromisoformat(day)
