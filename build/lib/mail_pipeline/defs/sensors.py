"""new_mail_sensor: one STATUS per folder per tick; runs of `ingest` only for the days that got mail."""

from datetime import date

from dagster import (
    AssetKey,
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
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey

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


# Up to this many days get one run each (the common case: today's new mail). More (a new account,
# a UIDVALIDITY reset) become one backfill, which the single-run policy turns into one run for
# the account: one process start, one IMAP login and one model load instead of one per day.
MAX_SEPARATE_RUNS = 2
STAGES = ("raw_messages", "emails", "email_chunks", "email_embeddings")


def run_requests(context: SensorEvaluationContext, account: str, days: list[date], cursors) -> list[RunRequest]:
    tags = {"mail_pipeline/trigger": "new_mail_sensor", "mail_pipeline/account": account}
    if len(days) <= MAX_SEPARATE_RUNS:
        return [RunRequest(run_key=run_key(account, day, cursors), partition_key=partition_key(account, day), tags=tags)
                for day in days]
    wanted = {AssetKeyPartitionKey(AssetKey(stage), str(partition_key(account, day))) for stage in STAGES for day in days}
    subset = AssetGraphSubset.from_asset_partition_set(wanted, context.repository_def.asset_graph)
    return [RunRequest.for_asset_graph_subset(subset, tags=tags)]


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
        requests += run_requests(context, account.slug, sorted(poll.days), poll.cursors)
        cursors[account.slug] = poll.cursors  # only after its runs are requested
    partitions = sync_dynamic_partitions(context, [a.slug for a in imap.registry.list()])
    if not requests and not partitions:
        reason = "no new mail" + (f"; failed: {'; '.join(failures)}" if failures else "")
        return SensorResult(skip_reason=SkipReason(reason), cursor=changes.dump_cursors(cursors))
    return SensorResult(run_requests=requests, cursor=changes.dump_cursors(cursors), dynamic_partitions_requests=partitions)

