"""The run queue, with every run of one account carrying that account's tag.

The instance's `tag_concurrency_limits` keep one account's runs apart (one run per value of
`mail_pipeline/account` or `dagster/partition/account`), in the instance's database, so on any
host. A run over a range of partitions, which is what a backfill launched from the UI makes of
assets with a single-run BackfillPolicy, carries only `dagster/asset_partition_range_start` and
`_end` (Dagster 1.13's asset_backfill.py builds its tags from the range and the backfill's own
tags, and has no per-partition tag hook for ranges). Here, when such a run is submitted and
before it is queued, it gets the account tag its range names, so the same limit holds it back
while a sensor run of the account is running, and the other way round.

Dagster groups a backfill's partitions by whichever dimension has fewer distinct keys, so a range
spans several accounts only when the backfill selects more accounts than days; such a run has no
one account to be tagged with, and on shared storage (where no file lock stands in) it is failed
before it starts, with a message saying how to launch it instead.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance, DagsterRun, QueuedRunCoordinator, SubmitRunContext

from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.sensors import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from mail_pipeline.runtime.webserver import ACCOUNT_DIMENSION_TAG, ACCOUNT_TAG
from mail_pipeline.storage.objects import is_remote_url


def range_accounts(tags: Mapping[str, str]) -> list[str] | None:
    """The accounts a range run's tags name (first and last), or None when it is no range run
    of the account x day partitions or already carries an account tag."""
    if ACCOUNT_TAG in tags or ACCOUNT_DIMENSION_TAG in tags:
        return None
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if not start or not end or "|" not in start or "|" not in end:
        return None
    first, last = split_key(start)[0], split_key(end)[0]
    return [first] if first == last else [first, last]


def several_accounts_message(accounts: list[str]) -> str:
    return (
        f"this run covers several accounts ({accounts[0]} to {accounts[-1]}) and, with "
        "MAIL_PIPELINE_STORAGE_URL on object storage, nothing would keep it apart from those "
        "accounts' other runs: launch the backfill with at least as many days as accounts "
        "selected (Dagster then makes one run per account), or with `mail-pipeline backfill`"
    )


class AccountRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator that gives a range run its account tag before queueing it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._instance_ref: weakref.ref[DagsterInstance] | None = None

    def register_instance(self, instance: DagsterInstance) -> None:
        super().register_instance(instance)
        self._instance_ref = weakref.ref(instance)  # the base class keeps it only privately

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        instance = self._instance_ref() if self._instance_ref else None
        accounts = range_accounts(run.tags)
        if instance is not None and accounts and len(accounts) == 1:
            instance.add_run_tags(run.run_id, {ACCOUNT_TAG: accounts[0]})
            context = SubmitRunContext(instance.get_run_by_id(run.run_id) or run, context.workspace)
        elif instance is not None and accounts and remote_storage():
            instance.report_run_failed(run, several_accounts_message(accounts))
            return instance.get_run_by_id(run.run_id) or run
        return super().submit_run(context)


def remote_storage() -> bool:
    """Whether the lake is on object storage, where no file lock keeps one account's runs apart."""
    return is_remote_url(os.environ.get("MAIL_PIPELINE_STORAGE_URL", ""))
