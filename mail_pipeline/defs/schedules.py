"""Schedules: a daily catch-up of yesterday and today for every active account, and retention."""

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from mail_pipeline.defs.jobs import ingest_job
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import ImapResource, LakeResource

retention_job = define_asset_job(
    "retention_job",
    selection=["retention"],
    description="Drop every stage's data older than the retention window",
)


@schedule(
    job=ingest_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 00:15 UTC: re-syncs yesterday and today for every active account "
    "(catches anything the new-mail sensor missed).",
)
def daily_catch_up(
    context: ScheduleEvaluationContext, imap: ImapResource, lake: LakeResource
) -> Iterator[RunRequest]:
    """Re-syncs yesterday and today for every active account (catches anything the sensor missed)."""
    now = lake.window.today()
    for account in imap.active_accounts():
        for day in (now - timedelta(days=1), now):
            yield RunRequest(
                run_key=f"catch-up|{account.slug}|{day.isoformat()}|{context.scheduled_execution_time:%Y%m%d}",
                partition_key=partition_key(account.slug, day),
                tags={"mail_pipeline/trigger": "daily_catch_up"},
            )


@schedule(
    job=retention_job,
    cron_schedule="45 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 00:45 UTC: drops every stage's data older than the retention window "
    "(MAIL_PIPELINE_RETENTION_DAYS).",
)
def daily_retention(context: ScheduleEvaluationContext) -> RunRequest:
    """Drops data older than the retention window, every day."""
    return RunRequest(run_key=f"retention|{context.scheduled_execution_time:%Y%m%d}")
