"""The one partition loop of every stage asset: lock the account, skip days outside the retention
window, call the stage, and record metadata that is true for each partition (a single-run
backfill materializes many partitions in one run; each gets its own figures)."""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.resources import LakeResource
from mail_pipeline.imap.errors import ImapError
from mail_pipeline.stages.outcome import PartitionOutcome, out_of_window
from mail_pipeline.storage.sync_log import record_failure

StageWork = Callable[[str, list[date]], Iterable[PartitionOutcome]]


def release_freed_memory() -> None:
    """Give the heap's free pages back to the OS: glibc keeps what a day's tables and the model's
    activations freed, scattered over its arenas, and the next day's peak adds to it."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


def per_day(work: Callable[[str, date], PartitionOutcome]) -> StageWork:
    """A stage that works day by day, as a StageWork; a day's memory is released before the next."""

    def each_day(account: str, days: list[date]) -> Iterable[PartitionOutcome]:
        for day in days:
            yield work(account, day)
            release_freed_memory()

    return each_day


def partition_metadata(outcome: PartitionOutcome) -> dict[str, Any]:
    figures = {
        name: MetadataValue.json(value) if isinstance(value, dict | list) else value
        for name, value in outcome.figures.items()
    }
    return {
        "dagster/row_count": outcome.rows,
        "summary": MetadataValue.md(outcome.summary),
        **figures,
    }


def recorded_work(
    context: AssetExecutionContext,
    lake: LakeResource,
    work: StageWork,
    account: str,
    days: list[date],
) -> list[PartitionOutcome]:
    """`work(account, days)`; a failure also leaves a sync_log row, so `status` shows a full disk or a
    damaged file as it shows an IMAP error (ingest logs those itself, per folder)."""
    started = datetime.now(UTC)
    try:
        return list(work(account, days))
    except ImapError:
        raise
    except Exception as error:
        if days:
            record_failure(
                lake.lake,
                account,
                context.run_id,
                days[0],
                context.asset_key.to_user_string(),
                error,
                started,
            )
        raise


def materialize_stage(
    context: AssetExecutionContext, lake: LakeResource, work: StageWork, newest_first: bool = False
) -> MaterializeResult[Any]:
    """Run `work(account, days in the window)` over the run's partitions, one account lock at a
    time; each account's days oldest first, or `newest_first`."""
    started = time.monotonic()
    keys: dict[tuple[str, date], str] = {}
    for key in context.partition_keys:
        keys[split_key(key)] = key
    by_account: dict[str, list[date]] = {}
    for account, day in sorted(
        keys, key=lambda k: (k[0], -k[1].toordinal() if newest_first else k[1].toordinal())
    ):
        by_account.setdefault(account, []).append(day)
    window, outcomes = lake.window, []
    for account, days in by_account.items():
        with lake.account_lock(account):
            outcomes += [out_of_window(account, d) for d in days if not window.contains(d)]
            outcomes += recorded_work(
                context, lake, work, account, [d for d in days if window.contains(d)]
            )
    release_freed_memory()
    for outcome in outcomes:
        context.add_asset_metadata(
            partition_metadata(outcome), partition_key=keys[(outcome.account, outcome.day)]
        )
    # Shared by every partition of the run, so named for the run.
    return MaterializeResult(
        metadata={
            "run_partitions": len(outcomes),
            "run_duration_s": round(time.monotonic() - started, 3),
        }
    )
