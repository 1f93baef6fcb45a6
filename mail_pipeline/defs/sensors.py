"""new_mail_sensor: one STATUS per folder per tick; runs of `ingest` only for the days that got mail."""

import time
from datetime import date

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from mail_pipeline.defs.jobs import ingest_job
from mail_pipeline.defs.partitions import accounts_partitions, partition_key
from mail_pipeline.defs.resources import ImapResource, LakeResource

from mail_pipeline import logs
from mail_pipeline.sync import changes
from mail_pipeline.imap import sync_folders
from mail_pipeline.imap.errors import ImapError


def run_key(account: str, day: date, cursors: dict[str, changes.FolderCursor]) -> str:
    # Same mailbox state -> same key: a repeated tick requests nothing twice.
    state = ",".join(f"{f}:{c.uidvalidity}:{c.uidnext}" for f, c in sorted(cursors.items()))
    return f"{account}|{day.isoformat()}|{state}"


# Up to this many days get one run each (the common case: today's new mail). More (a new account,
# a UIDVALIDITY reset) become one run of `ingest` over the account's range of days: one process
# start, one IMAP login and one model load instead of one per day. Days in the range that got no
# new mail are re-synced too, which stores nothing new (every stage is idempotent).
MAX_SEPARATE_RUNS = 2
# Range runs cannot carry a dagster/partition/account tag (Dagster would read the run as that one
# partition); the run queue limits this tag to one run per account too (dagster.yaml).
ACCOUNT_TAG = "mail_pipeline/account"


def run_requests(account: str, days: list[date], cursors) -> list[RunRequest]:
    tags = {"mail_pipeline/trigger": "new_mail_sensor", ACCOUNT_TAG: account}
    if len(days) <= MAX_SEPARATE_RUNS:
        return [RunRequest(run_key=run_key(account, day, cursors), partition_key=partition_key(account, day), tags=tags)
                for day in days]
    first, last = str(partition_key(account, days[0])), str(partition_key(account, days[-1]))
    return [RunRequest(run_key=f"{run_key(account, days[0], cursors)}..{days[-1].isoformat()}", tags={
        **tags, ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})]


def sync_dynamic_partitions(context: SensorEvaluationContext, slugs: list[str]):
    """Account partitions follow the registry: its new slugs are added, and partitions it does not
    know (the UI's "Add a partition", an `account remove`) are deleted, with a warning."""
    existing = set(context.instance.get_dynamic_partitions(accounts_partitions.name))
    new, unknown = sorted(set(slugs) - existing), sorted(existing - set(slugs))
    requests = [accounts_partitions.build_add_request(new)] if new else []
    if unknown:
        context.log.warning(f"new_mail_sensor: removing account partition(s) {', '.join(unknown)}: not in the account "
                            "registry (accounts are added with `mail-pipeline account add`)")
        requests.append(accounts_partitions.build_delete_request(unknown))
    return requests


def poll(session, account, previous: dict[str, changes.FolderCursor], listed_at: float | None, first: date, last: date,
         discovery_interval_s: int):
    """One account's tick: its Poll, and when its folders were last LISTed (None: never needed).

    Named folders are STATUSed as configured, with no LIST: one that no longer exists answers
    NO and comes back REMOVED. An all-folders account STATUSes the folders its cursor knows, and
    LISTs for new ones only on its first tick and then every `folder_discovery_interval_s`.
    """
    if not account.all_folders:
        return changes.poll_account(session, account.folders, previous, first, last), None
    now = time.time()
    if listed_at is not None and 0 <= now - listed_at < discovery_interval_s:  # < 0: the clock was set back
        return changes.poll_account(session, list(previous), previous, first, last), listed_at
    return changes.poll_account(session, list(previous), previous, first, last,
                                discover=lambda: sync_folders(session.list_folders(), account.folders)), now


def removed_notes(context: SensorEvaluationContext, account, poll: changes.Poll) -> list[str]:
    """Warn about folders STATUS says no longer exist; the account's other folders were polled."""
    notes = []
    for folder in poll.removed:
        hint = "no longer polled" if account.all_folders else "re-create it, or re-add the account without it"
        notes.append(f"{account.slug}: folder {folder!r} does not exist on the server (deleted or renamed?); {hint}")
        context.log.warning(f"new_mail_sensor: {notes[-1]}")
    return notes


def new_mail(context: SensorEvaluationContext, imap: ImapResource, lake: LakeResource):
    """Polls every active account's folders with STATUS and requests ingest runs for days with new mail.

    A tick with no new mail is, per account, a login and one STATUS per folder, INBOX first (see
    `changes.inbox_first`: on Dovecot any other order, or a LIST first, makes STATUS INBOX grow
    with the mailbox). Accounts syncing all folders find new folders with a LIST after the
    STATUSes at most every MAIL_PIPELINE_FOLDER_DISCOVERY_INTERVAL seconds (default 600),
    remembered in the cursor: mail landing only in a brand-new folder waits up to that long
    (unless a run of the same day LISTs first), and in exchange the ticks between send no LIST,
    whose cost grows with the number of folders and, placed before STATUS INBOX, with the
    mailbox. A folder that vanished is reported in the log and the skip reason and dropped from
    the cursor; the account's other folders are still polled.
    """
    cursors, listed = changes.load_cursors(context.cursor), changes.load_listed(context.cursor)
    accounts = imap.active_accounts()
    first, last = lake.window.cutoff(), lake.window.today()
    requests, failures, notes = [], [], []
    for account in accounts:
        try:
            with imap.session(account) as session:
                result, listed_at = poll(session, account, cursors.get(account.slug, {}), listed.get(account.slug), first, last,
                                         imap.folder_discovery_interval_s)
        except Exception as error:  # one account failing (login, timeout, DNS) never stops the others
            # "error (auth): ...": the same words as the CLI, e.g. naming `account reauth` for a dead grant.
            message = logs.redact(f"error ({error.kind}): {error}" if isinstance(error, ImapError) else str(error))
            failures.append(f"{account.slug}: {message}")
            context.log.warning(f"new_mail_sensor: account {account.slug!r} failed: {message}")
            continue
        notes += removed_notes(context, account, result)
        requests += run_requests(account.slug, sorted(result.days), result.cursors)
        cursors[account.slug] = result.cursors  # only after its runs are requested
        if listed_at is None:
            listed.pop(account.slug, None)
        else:
            listed[account.slug] = listed_at
    partitions = sync_dynamic_partitions(context, [a.slug for a in imap.registry.list()])
    cursor = changes.dump_cursors(cursors, listed)
    if not requests and not partitions:
        reason = "; ".join(["no new mail", *notes, *([f"failed: {'; '.join(failures)}"] if failures else [])])
        return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor, dynamic_partitions_requests=partitions)


def new_mail_sensor_every(interval_s: int):
    """The new-mail sensor, ticking at most every `interval_s` seconds (MAIL_PIPELINE_SENSOR_INTERVAL)."""
    return sensor(name="new_mail_sensor", job=ingest_job, minimum_interval_seconds=interval_s,
                  default_status=DefaultSensorStatus.RUNNING,
                  description="Polls every active account's folders with STATUS and requests `ingest` runs for exactly "
                              "the days that received mail; keeps the account partitions equal to the account registry.",
                  )(new_mail)
