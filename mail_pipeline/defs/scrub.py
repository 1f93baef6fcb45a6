"""The scrub: every lake file read back against its checksums on a schedule, so a damaged file is
found by the pipeline, not by the first notebook to read it. By hand: `mail-pipeline scrub`."""

from dagster import (
    DefaultScheduleStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    job,
    op,
    schedule,
)

from mail_pipeline.defs.resources import LakeResource
from mail_pipeline.storage import integrity


@op
def scrub_lake(context: OpExecutionContext, lake: LakeResource) -> int:
    """Reads every page of every lake file (CRC) and hashes every raw message (sha256); fails naming each damaged file."""
    found = integrity.scrub(lake.lake)
    for damage in found:
        context.log.error(damage.describe())
    if found:
        raise Failure(
            description=integrity.render(found, lake.lake.root),
            metadata={
                "damaged_files": len(found),
                "files": MetadataValue.json([str(d.path) for d in found]),
            },
        )
    context.log.info(integrity.render(found, lake.lake.root))
    return 0


@job(
    description="Check every lake file's page checksums and every raw message's sha256 (mail-pipeline scrub)"
)
def scrub_job() -> None:
    scrub_lake()


@schedule(
    job=scrub_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 02:30 UTC: reads every lake file back against its checksums and reports damage.",
)
def daily_scrub(context: ScheduleEvaluationContext) -> RunRequest:
    """Reads every lake file back against its checksums, every day."""
    return RunRequest(run_key=f"scrub|{context.scheduled_execution_time:%Y%m%d}")
