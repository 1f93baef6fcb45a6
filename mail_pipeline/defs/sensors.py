"""new_mail_sensor: one STATUS per folder per tick; runs of `ingest` only for the days that got mail."""

from datetime import date

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mail_pipeline.defs.jobs import ingest_job
from mail_pipeline.defs.partitions import accounts_partitions, partition_key
from mail_pipeline.defs.resources import ImapResource
from mail_pipeline import logs
from mail_pipeline.mail import changes
from mail_pipeline.mail.imap import sync_folders
from mail_pipeline.settings import get_settings
from mail_pipeline.window import cutoff, today

settings = get_settings()


def run_key(account: str, day: date, cursors: dict[str, changes.FolderCursor]) -> str:
    # Same mailbox state -> same key: a repeated tick requests nothing twice.
    state = ",".join(f"{f}:{c.uidvalidity}:{c.uidnext}" for f, c in sorted(cursors.items()))
    return f"{account}|{day.isoformat()}|{state}"


def sync_dynamic_partitions(context: SensorEvaluationContext, slugs: list[str]):
    existing = set(context.instance.get_dynamic_partitions(accounts_partitions.name))
    new = sorted(set(slugs) - existing)
    return [accounts_partitions.build_add_request(new)] if new else []


@sensor(job=ingest_job, minimum_interval_seconds=settings.sensor_interval_s, default_status=DefaultSensorStatus.RUNNING)
def new_mail_sensor(context: SensorEvaluationContext, imap: ImapResource):
    """Polls every active account's folders with STATUS and requests ingest runs for days with new mail."""
    cursors = changes.load_cursors(context.cursor)
    accounts = imap.active_accounts()
    first, last = cutoff(get_settings().retention_days), today()
    requests, failures = [], []
    for account in accounts:
        try:
            with imap.session(account) as session:
                folders = sync_folders(session.list_folders(), account.folders)
                poll = changes.poll_account(session, folders, cursors.get(account.slug, {}), first, last)
        except Exception as error:  # one account failing (login, timeout, DNS) never stops the others
            message = logs.redact(str(error))
            failures.append(f"{account.slug}: {message}")
            context.log.warning(f"new_mail_sensor: account {account.slug!r} failed: {message}")
            continue
        requests += [
            RunRequest(run_key=run_key(account.slug, day, poll.cursors), partition_key=partition_key(account.slug, day),
                       tags={"mail_pipeline/trigger": "new_mail_sensor"})
            for day in sorted(poll.days)
        ]
        cursors[account.slug] = poll.cursors  # only after its runs are requested
    partitions = sync_dynamic_partitions(context, [a.slug for a in imap.registry.list()])
    if not requests and not partitions:
        reason = "no new mail" + (f"; failed: {'; '.join(failures)}" if failures else "")
        return SensorResult(skip_reason=SkipReason(reason), cursor=changes.dump_cursors(cursors))
    return SensorResult(run_requests=requests, cursor=changes.dump_cursors(cursors), dynamic_partitions_requests=partitions)

