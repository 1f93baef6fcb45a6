"""Jobs and schedules of the people group: yesterday's digest and the contacts, each morning
after the daily catch-up (00:15 UTC, defs/schedules.py) has synced yesterday."""

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import ImapResource, LakeResource

digest_job = define_asset_job(
    "digest_job",
    selection=["daily_digest"],
    description="Build (and send) an account's digest of a day",
)
contacts_job = define_asset_job(
    "contacts_job", selection=["contacts"], description="Rebuild an account's contacts"
)


@schedule(
    job=digest_job,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 01:00 UTC, after the catch-up: yesterday's digest of every active "
    "account, sent to the recipients it names (mail-pipeline digest-delivery).",
)
def daily_digest_schedule(
    context: ScheduleEvaluationContext, imap: ImapResource, lake: LakeResource
) -> Iterator[RunRequest]:
    """Yesterday's digest for every active account."""
    yesterday = lake.window.today() - timedelta(days=1)
    for account in imap.active_accounts():
        yield RunRequest(
            run_key=f"digest|{account.slug}|{yesterday.isoformat()}",
            partition_key=partition_key(account.slug, yesterday),
            tags={"mail_pipeline/trigger": "daily_digest"},
        )


@schedule(
    job=contacts_job,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 01:00 UTC: every active account's contacts over the window.",
)
def daily_contacts(
    context: ScheduleEvaluationContext, imap: ImapResource, lake: LakeResource
) -> Iterator[RunRequest]:
    """Every active account's contacts, rebuilt."""
    for account in imap.active_accounts():
        yield RunRequest(
            run_key=f"contacts|{account.slug}|{lake.window.today().isoformat()}",
            partition_key=account.slug,
            tags={"mail_pipeline/trigger": "daily_contacts"},
        )
