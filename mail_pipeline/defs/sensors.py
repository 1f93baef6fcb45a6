"""new_mail_sensor: one STATUS per folder per tick; runs of `ingest` only for the days that got mail."""

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mail_pipeline import logs
from mail_pipeline.defs.jobs import ingest_job
from mail_pipeline.defs.partitions import ACCOUNTS, accounts_partitions, partition_key
from mail_pipeline.defs.resources import ImapResource, LakeResource
from mail_pipeline.imap import sync_folders
from mail_pipeline.imap.errors import ImapError
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.runtime.webserver import ACCOUNT_TAG, TRIGGER_TAG
from mail_pipeline.storage.accounts import Account
from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync import changes
from mail_pipeline.sync.reconcile import StoredIndex, StoredMessage
from mail_pipeline.watch import signals


def run_key(
    account: str,
    day: date,
    cursors: dict[str, changes.FolderCursor],
    reconciled_at: float | None = None,
) -> str:
    # Same mailbox state -> same key: a repeated tick requests nothing twice. Flags changed on a
    # server without CONDSTORE leave the state as it was: the full comparison's time tells them apart.
    state = ",".join(
        f"{f}:{c.uidvalidity}:{c.uidnext}:{c.highestmodseq}:{c.messages}"
        for f, c in sorted(cursors.items())
    )
    return f"{account}|{day.isoformat()}|{state}" + (
        f"|{int(reconciled_at)}" if reconciled_at else ""
    )


# Up to this many days get one run each (the common case: today's new mail). More (a new account,
# a UIDVALIDITY reset) become one run of `ingest` over the account's range of days: one process
# start, one IMAP login and one model load instead of one per day. Days in the range that got no
# new mail are re-synced too, which stores nothing new (every stage is idempotent).
MAX_SEPARATE_RUNS = 2
# A tick polls every account inside Dagster's sensor timeout (60 s by default): one server's
# outage must not use it up, so the sensor retries briefly and the next tick tries again.
SENSOR_RETRY_S = 5.0
# Accounts polled at once, each on its own connection (one per account, as a run's own): enough
# to overlap the sign-ins' waits on the servers, few enough for a small machine and a provider's
# per-user connection limit, which counts one per account here.
POLL_THREADS = 8
# Dagster's documented tags for one run over a range of partitions (what a single-run backfill
# sets); their constants live only in dagster._core, so the strings are ours.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_requests(
    account: str,
    days: list[date],
    cursors: dict[str, changes.FolderCursor],
    reconciled_at: float | None = None,
) -> list[RunRequest]:
    tags = {TRIGGER_TAG: "new_mail_sensor", ACCOUNT_TAG: account}
    if len(days) <= MAX_SEPARATE_RUNS:
        return [
            RunRequest(
                run_key=run_key(account, day, cursors, reconciled_at),
                partition_key=partition_key(account, day),
                tags=tags,
            )
            for day in days
        ]
    first, last = str(partition_key(account, days[0])), str(partition_key(account, days[-1]))
    return [
        RunRequest(
            run_key=f"{run_key(account, days[0], cursors, reconciled_at)}..{days[-1].isoformat()}",
            tags={
                **tags,
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last,
            },
        )
    ]


def sync_dynamic_partitions(
    context: SensorEvaluationContext, slugs: list[str]
) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
    """Account partitions follow the registry: its new slugs are added, and partitions it does not
    know (the UI's "Add a partition", an `account remove`) are deleted, with a warning."""
    existing = set(context.instance.get_dynamic_partitions(ACCOUNTS))
    new, unknown = sorted(set(slugs) - existing), sorted(existing - set(slugs))
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = (
        [accounts_partitions.build_add_request(new)] if new else []
    )
    if unknown:
        context.log.warning(
            f"new_mail_sensor: removing account partition(s) {', '.join(unknown)}: not in the account "
            "registry (accounts are added with `mail-pipeline account add`)"
        )
        requests.append(accounts_partitions.build_delete_request(unknown))
    return requests


def due(last: float | None, interval_s: int, now: float) -> bool:
    return last is None or not 0 <= now - last < interval_s  # < 0: the clock was set back


def poll(
    session: ImapSession,
    account: Account,
    previous: dict[str, changes.FolderCursor],
    listed_at: float | None,
    first: date,
    last: date,
    discovery_interval_s: int,
    stored: changes.StoredLookup | None = None,
    reconcile_flags: bool = False,
) -> tuple[changes.Poll, float | None]:
    """One account's tick: its Poll, and when its folders were last LISTed (None: never needed).

    Named folders are STATUSed as configured, with no LIST: one that no longer exists answers
    NO and comes back REMOVED. An all-folders account STATUSes the folders its cursor knows, and
    LISTs for new ones only on its first tick and then every `folder_discovery_interval_s`.
    """

    def folders_polled(
        folders: Sequence[str], discover: Callable[[], list[str]] | None = None
    ) -> changes.Poll:
        return changes.poll_account(
            session,
            folders,
            previous,
            first,
            last,
            discover=discover,
            stored=stored,
            reconcile_flags=reconcile_flags,
        )

    if not account.all_folders:
        return folders_polled(account.folders), None
    now = time.time()
    if not due(listed_at, discovery_interval_s, now):
        return folders_polled(list(previous)), listed_at

    def discover() -> list[str]:
        return sync_folders(session.list_folders(), account.folders)

    return folders_polled(list(previous), discover), now


def lake_lookup(lake: Lake, account: str, first: date, last: date) -> changes.StoredLookup:
    """`stored(folder, uidvalidity)` for `changes.poll_account`, reading the lake once, when first asked."""
    from datetime import timedelta

    from mail_pipeline.sync.reconcile import read_stored

    index: list[StoredIndex] = []

    def stored(folder: str, uidvalidity: int) -> Mapping[int, StoredMessage]:
        if not index:
            index.append(
                read_stored(
                    lake,
                    account,
                    [first + timedelta(days=i) for i in range((last - first).days + 1)],
                )
            )
        return index[0].get((folder, uidvalidity), {})

    return stored


def removed_notes(
    context: SensorEvaluationContext, account: Account, poll: changes.Poll
) -> list[str]:
    """Warn about folders that no longer exist (STATUS refused, LIST lacks them) or that refuse
    STATUS; the account's other folders were polled."""
    notes = []
    for folder in poll.removed:
        hint = (
            "no longer polled"
            if account.all_folders
            else "re-create it, or re-add the account without it"
        )
        fate = "kept, marked deleted" if account.on_server_delete == "keep" else "erased (mirror)"
        notes.append(
            f"{account.slug}: folder {folder!r} does not exist on the server (deleted or renamed?); {hint}; "
            f"its stored messages are {fate} by the runs of their days"
        )
    for _folder, error in sorted(poll.refused.items()):
        notes.append(f"{account.slug}: {logs.redact(error)}; polled again next tick")
    for note in notes:
        context.log.warning(f"new_mail_sensor: {note}")
    return notes


class LiveGate:
    """With the watcher: the sensor ticks every few seconds, and polls an account only when the
    watcher woke it (IDLE saw a change) or `interval_s` (MAIL_PIPELINE_SENSOR_INTERVAL) has passed,
    so folders the watcher does not hold are polled as often as without it."""

    def __init__(self, context: SensorEvaluationContext, data_dir: str, interval_s: int) -> None:
        self.interval_s = interval_s
        self.wake_ups = signals.wake_ups(Path(data_dir))
        self.polled = changes.load_listed(context.cursor, changes.POLLED_KEY)
        self.answered = changes.load_listed(context.cursor, changes.WOKEN_KEY)

    def due(self, account: str, now: float) -> bool:
        woken = self.wake_ups.get(account, 0.0) > self.answered.get(account, 0.0)
        return woken or due(self.polled.get(account), self.interval_s, now)

    def polled_now(self, account: str, now: float) -> None:
        # Failed polls count too: a server that is down is not asked again every few seconds.
        self.polled[account] = now
        if account in self.wake_ups:
            self.answered[account] = self.wake_ups[account]

    def cursor_parts(self) -> dict[str, dict[str, float]]:
        return {changes.POLLED_KEY: self.polled, changes.WOKEN_KEY: self.answered}


@dataclass(frozen=True)
class Polled:
    """One account's part of a tick, as its thread hands it back: its Poll and LIST time, or the
    error (redacted) that stopped it."""

    account: Account
    at: float
    reconcile_flags: bool
    result: changes.Poll | None = None
    listed_at: float | None = None
    error: str | None = None


def poll_one(
    imap: ImapResource,
    lake: LakeResource,
    account: Account,
    cursors: dict[str, changes.FolderCursor],
    listed_at: float | None,
    at: float,
    reconcile_flags: bool,
) -> Polled:
    """Sign `account` in on its own connection and poll it; any failure (login, timeout, DNS) is
    returned, not raised, so one account never stops the others."""
    first, last = lake.window.cutoff(), lake.window.today()
    try:
        with imap.session(account, retry_s=SENSOR_RETRY_S) as session:
            result, listed = poll(
                session,
                account,
                cursors,
                listed_at,
                first,
                last,
                imap.folder_discovery_interval_s,
                lake_lookup(lake.lake, account.slug, first, last),
                reconcile_flags,
            )
    except Exception as error:
        # "error (auth): ...": the same words as the CLI, e.g. naming `account reauth` for a dead grant.
        message = logs.redact(
            f"error ({error.kind}): {error}" if isinstance(error, ImapError) else str(error)
        )
        return Polled(account, at, reconcile_flags, error=message)
    return Polled(account, at, reconcile_flags, result, listed)


def poll_all(
    imap: ImapResource,
    lake: LakeResource,
    accounts: list[Account],
    cursors: dict[str, dict[str, changes.FolderCursor]],
    listed: dict[str, float],
    reconciled: dict[str, float],
) -> list[Polled]:
    """Every account polled, POLL_THREADS at a time, one connection per account: a no-op tick is
    mostly connecting and signing in (TLS, LOGIN), round trips to each server that overlap across
    accounts (20 accounts one after another took about a second on loopback; a remote host adds
    its latency to each round trip). Results come back in `accounts`' order."""
    now = time.time()

    def one(account: Account) -> Polled:
        reconcile_flags = due(reconciled.get(account.slug), imap.flag_reconcile_interval_s, now)
        previous, listed_at = cursors.get(account.slug, {}), listed.get(account.slug)
        return poll_one(imap, lake, account, previous, listed_at, now, reconcile_flags)

    if len(accounts) <= 1:  # no thread for the common single account
        return [one(account) for account in accounts]
    with ThreadPoolExecutor(min(POLL_THREADS, len(accounts)), "new_mail_sensor") as threads:
        return list(threads.map(one, accounts))


# A run in these has not fetched yet: it will store whatever a poll saw before it starts.
NOT_STARTED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]


def queued_run_covers(instance: DagsterInstance, account: str, day: date) -> bool:
    """Whether a run of the account x day partition waits to start (one the watcher requested the
    moment IDLE reported new mail, watch/launch.py): it fetches after this poll, so requesting the
    partition again would only run it twice."""
    return bool(
        instance.get_run_records(
            RunsFilter(
                tags={"dagster/partition": str(partition_key(account, day))}, statuses=NOT_STARTED
            ),
            limit=1,
        )
    )


def new_mail(
    context: SensorEvaluationContext,
    imap: ImapResource,
    lake: LakeResource,
    live_interval_s: int | None = None,
) -> SensorResult:
    """Polls every active account's folders with STATUS and requests ingest runs for days with new
    mail, flag changes or messages gone from the server (`sync.reconcile`).

    A tick with no new mail is, per account, a login and one STATUS per folder, INBOX first (see
    `changes.inbox_first`: on Dovecot any other order, or a LIST first, makes STATUS INBOX grow
    with the mailbox); accounts are polled in parallel (`poll_all`). Accounts syncing all folders
    find new folders with a LIST after the STATUSes at most every
    MAIL_PIPELINE_FOLDER_DISCOVERY_INTERVAL seconds (default 600), remembered in the cursor: mail
    landing only in a brand-new folder waits up to that long (unless a run of the same day LISTs
    first), and in exchange the ticks between send no LIST, whose cost grows with the number of
    folders and, placed before STATUS INBOX, with the mailbox. A folder that vanished is reported
    in the log and the skip reason and dropped from the cursor; the account's other folders are
    still polled.
    """
    cursors, listed = changes.load_cursors(context.cursor), changes.load_listed(context.cursor)
    reconciled = changes.load_listed(context.cursor, changes.RECONCILED_KEY)
    accounts = imap.active_accounts()
    gate = LiveGate(context, imap.data_dir, live_interval_s) if live_interval_s else None
    if gate is not None:
        now = time.time()
        accounts = [a for a in accounts if gate.due(a.slug, now)]
        for account in accounts:
            gate.polled_now(account.slug, now)
    last = lake.window.today()
    requests, failures, notes = [], [], []
    for polled in poll_all(imap, lake, accounts, cursors, listed, reconciled):
        account, result = polled.account, polled.result
        if result is None:
            failures.append(f"{account.slug}: {polled.error}")
            context.log.warning(f"new_mail_sensor: account {account.slug!r} failed: {polled.error}")
            continue
        notes += removed_notes(context, account, result)
        days = sorted(result.days)
        if last in days and queued_run_covers(context.instance, account.slug, last):
            days.remove(last)
        requests += run_requests(
            account.slug,
            days,
            result.cursors,
            polled.at if polled.reconcile_flags and result.flag_days else None,
        )
        cursors[account.slug] = result.cursors  # only after its runs are requested
        if polled.reconcile_flags:
            reconciled[account.slug] = polled.at
        if polled.listed_at is None:
            listed.pop(account.slug, None)
        else:
            listed[account.slug] = polled.listed_at
    partitions = sync_dynamic_partitions(context, [a.slug for a in imap.registry.list()])
    cursor = changes.dump_cursors(
        cursors, listed, reconciled, gate.cursor_parts() if gate is not None else None
    )
    if not requests and not partitions:
        reason = "; ".join(
            ["no new mail", *notes, *([f"failed: {'; '.join(failures)}"] if failures else [])]
        )
        return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)
    return SensorResult(
        run_requests=requests, cursor=cursor, dynamic_partitions_requests=partitions
    )


def new_mail_sensor_every(interval_s: int, live_tick_s: int | None = None) -> SensorDefinition:
    """The new-mail sensor, ticking at most every `interval_s` seconds (MAIL_PIPELINE_SENSOR_INTERVAL);
    with `live_tick_s` (the watcher on), every `live_tick_s` seconds, polling the accounts woken by
    the watcher and the others every `interval_s` (`LiveGate`)."""

    def evaluate(
        context: SensorEvaluationContext, imap: ImapResource, lake: LakeResource
    ) -> SensorResult:
        return new_mail(context, imap, lake, interval_s if live_tick_s else None)

    return sensor(
        name="new_mail_sensor",
        job=ingest_job,
        minimum_interval_seconds=min(live_tick_s, interval_s) if live_tick_s else interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Polls every active account's folders with STATUS and requests `ingest` runs for exactly "
        "the days that received mail; keeps the account partitions equal to the account registry.",
    )(evaluate)
