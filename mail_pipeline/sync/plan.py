"""Sync one (account, UTC day): which UIDs to fetch, and the raw rows they become.

IMAP SEARCH SINCE/BEFORE compares dates in the server's timezone (RFC 3501 6.4.4), so the
search spans a day either side and INTERNALDATE, converted to UTC, decides membership.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from mail_pipeline.imap import modseq
from mail_pipeline.imap.errors import ImapError, ImapFolderMissing
from mail_pipeline.imap.records import FetchedMessage, FolderStatus, MessageMeta, header_message_id
from mail_pipeline.imap.session import ImapSession

log = logging.getLogger(__name__)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@dataclass
class FolderPlan:
    folder: str
    uidvalidity: int
    highest_uid: int
    to_fetch: list[MessageMeta]
    already_stored: int
    on_server: int
    # UID -> the server's INTERNALDATE, size, flags
    present: dict[int, MessageMeta] = field(default_factory=dict)
    highestmodseq: int | None = None


@dataclass
class FolderOutcome:
    folder: str
    uidvalidity: int
    highest_uid: int
    fetched: int = 0
    bytes: int = 0
    kept: int = 0
    dropped_stale: int = 0
    reused: int = 0
    highestmodseq: int | None = None
    # asked for, not returned: not stored, asked again next run
    missing_uids: list[int] = field(default_factory=list)
    status: str = "ok"
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None


def day_spans(days: Iterable[date]) -> list[tuple[date, date]]:
    """Runs of consecutive days, as (first, last): one SEARCH each instead of one per day."""
    spans: list[list[date]] = []
    for day in sorted(set(days)):
        if spans and day - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return [(first, last) for first, last in spans]


# folder -> UIDVALIDITY -> UID -> what the lake holds of a live stored message.
Known = dict[str, dict[int, dict[int, MessageMeta]]]
# (folder, UIDVALIDITY) -> the mod-sequence the run's stored flags of the folder are current at.
Since = Callable[[str, int], "int | None"]


def known_metas(rows: Iterable[dict[str, Any]]) -> Known:
    """The stored messages still on the server, as the metadata the server would send for them."""
    known: Known = {}
    for row in rows:
        if row.get("deleted_at") is None:
            meta = MessageMeta(
                row["uid"], row["internaldate"], row["size"], tuple(row["flags"] or ())
            )
            known.setdefault(row["folder"], {}).setdefault(row["uidvalidity"], {})[row["uid"]] = (
                meta
            )
    return known


def server_metas(
    session: ImapSession,
    candidates: list[int],
    known: dict[int, MessageMeta],
    since: int | None,
    highest: int | None,
) -> list[MessageMeta]:
    """Date, size and flags of `candidates`: asked for in full, or, for the stored ones when the
    lake's flags are current at `since`, only the flags changed since (RFC 7162 3.1.4)."""
    if since is None or highest is None:
        return session.fetch_meta(candidates)
    stored = [uid for uid in candidates if uid in known]
    metas = session.fetch_meta([uid for uid in candidates if uid not in known])
    changed = (
        {
            state.uid: state.flags
            for state in modseq.fetch_flags(session, stored, changed_since=since)
        }
        if stored and highest > since
        else {}
    )
    return sorted(
        metas + [replace(known[uid], flags=changed.get(uid, known[uid].flags)) for uid in stored],
        key=lambda m: m.uid,
    )


def plan_folder(
    session: ImapSession,
    folder: str,
    days: list[date],
    stored: dict[date, dict[int, set[int]]],
    known: dict[int, dict[int, MessageMeta]] | None = None,
    since: Since | None = None,
    ready: Callable[[dict[date, FolderPlan]], None] | None = None,
    head_first: bool = False,
) -> dict[date, FolderPlan]:
    """What each day still needs from `folder`, with one SELECT and, per run of consecutive days,
    one SEARCH and one INTERNALDATE/SIZE fetch (per-day planning cost 43% of a 30-day sync).
    `stored` maps day -> UIDVALIDITY -> UIDs already in the lake; `known` and `since`, when
    given, let the stored messages' metadata come from the lake (only changed flags asked for).
    `ready` hears of each run's plans as soon as they are made; with `head_first` the first days
    are a run of their own, so fetching waits for their metadata, not the whole folder's."""
    # CHANGEDSINCE only where the server advertises CONDSTORE (RFC 7162 3.1). EXAMINE reports
    # HIGHESTMODSEQ only once CONDSTORE is enabled (Dovecot), STATUS always: asked before it, the
    # flags read after it are at least that current.
    condstore = b"CONDSTORE" in session.capabilities
    status = session.select(folder, modseq=True)
    reusable = (known or {}).get(status.uidvalidity, {})
    modseq_since = since(folder, status.uidvalidity) if since and reusable and condstore else None
    plans: dict[date, FolderPlan] = {}
    for first, last in head_apart(day_spans(days)) if head_first else day_spans(days):
        # A day counts in its own run only: a run's SEARCH also finds the next run's edge.
        by_day: dict[date, dict[int, MessageMeta]] = {
            day: {} for day in days if first <= day <= last
        }
        candidates = session.search_between(first - timedelta(days=1), last + timedelta(days=2))
        for meta in server_metas(session, candidates, reusable, modseq_since, status.highestmodseq):
            if utc_day(meta.internaldate) in by_day:
                by_day[utc_day(meta.internaldate)][meta.uid] = meta
        span = {
            day: day_plan(
                folder,
                status,
                list(metas.values()),
                stored.get(day, {}).get(status.uidvalidity, set()),
            )
            for day, metas in by_day.items()
        }
        plans |= span
        if ready:
            ready(span)
    return plans


# Days planned ahead of the rest of the first run: their bodies keep the link busy while the
# rest is planned, its commands queued behind them (one day did not, at 5,000 messages over 30 days).
HEAD_DAYS = 3


def head_apart(spans: list[tuple[date, date]], head: int = HEAD_DAYS) -> list[tuple[date, date]]:
    """The first run's first `head` days as a run of their own."""
    if not spans or (spans[0][1] - spans[0][0]).days < head:
        return spans
    (first, last), rest = spans[0], spans[1:]
    split = first + timedelta(days=head)
    return [(first, split - timedelta(days=1)), (split, last), *rest]


def day_plan(
    folder: str, status: FolderStatus, metas: list[MessageMeta], have: set[int]
) -> FolderPlan:
    """One day's plan of `folder`: its messages on the server, those the lake lacks to fetch."""
    return FolderPlan(
        folder=folder,
        uidvalidity=status.uidvalidity,
        highest_uid=max(status.uidnext - 1, 0),
        to_fetch=[m for m in metas if m.uid not in have],
        already_stored=sum(1 for m in metas if m.uid in have),
        on_server=len(metas),
        present={m.uid: m for m in metas},
        highestmodseq=status.highestmodseq,
    )


def plan_folders(
    session: ImapSession,
    folders: list[str],
    days: list[date],
    stored: dict[date, dict[str, dict[int, set[int]]]],
    planned: Callable[[str, dict[date, FolderPlan]], None] | None = None,
    known: Known | None = None,
    since: Since | None = None,
) -> tuple[dict[str, dict[date, FolderPlan]], list[str]]:
    """`plan_folder` for each folder, and the folders that vanished since LIST (deleted or
    renamed meanwhile): those are left out, so the account's other folders still sync.
    `planned` hears of each run of days' plans as soon as they are made (fetching can start): the
    first folder's first days on their own, as the link idles until some plan is made."""
    plans: dict[str, dict[date, FolderPlan]] = {}
    vanished: list[str] = []
    for folder in folders:
        try:
            plans[folder] = plan_folder(
                session,
                folder,
                days,
                {d: s.get(folder, {}) for d, s in stored.items()},
                (known or {}).get(folder),
                since,
                partial(planned, folder) if planned else None,
                head_first=planned is not None and not plans,
            )
        except ImapFolderMissing as error:
            log.warning("%s", error)
            vanished.append(folder)
    return plans, vanished


# Messages of a plan's `to_fetch`, in plan order: `sequential` on the run's session, or a
# sync.fetch_pool.FetchPool's `messages` over several. Raises ImapFolderMissing when the folder is gone.
Fetch = Callable[["FolderPlan"], Iterator[FetchedMessage]]


def select_checked(session: ImapSession, folder: str, uidvalidity: int) -> None:
    """SELECT `folder` again to fetch a plan's UIDs (planning selected every folder in turn)."""
    if session.select(folder).uidvalidity != uidvalidity:
        raise ImapError(
            f"UIDVALIDITY of {folder!r} changed during the sync; re-run to fetch it afresh"
        )


def sequential(session: ImapSession, *, max_messages: int, max_bytes: int, depth: int = 1) -> Fetch:
    """Fetch each plan on `session` alone, `depth` FETCH commands in flight."""

    def fetch(plan: FolderPlan) -> Iterator[FetchedMessage]:
        select_checked(session, plan.folder, plan.uidvalidity)
        yield from session.fetch_messages(
            plan.to_fetch, max_messages=max_messages, max_bytes=max_bytes, depth=depth
        )

    return fetch


def raw_rows(fetch: Fetch, plan: FolderPlan, outcome: FolderOutcome) -> Iterator[dict[str, Any]]:
    """Fetch the plan's messages as lake rows (schema RAW_MESSAGES), counting into `outcome`."""
    if not plan.to_fetch:
        return
    returned: set[int] = set()
    try:
        for message in fetch(plan):
            returned.add(message.uid)
            outcome.fetched += 1
            outcome.bytes += len(message.raw)
            yield {
                "folder": plan.folder,
                "uidvalidity": plan.uidvalidity,
                "uid": message.uid,
                "internaldate": message.internaldate,
                "flags": list(message.flags),
                "size": message.size,
                "sha256": hashlib.sha256(message.raw).hexdigest(),
                "message_id": header_message_id(message.raw),
                "raw": message.raw,
                "fetched_at": datetime.now(UTC),
            }
    except (
        ImapFolderMissing
    ) as error:  # deleted since planning: its stored rows stay, the others sync
        outcome.status, outcome.error = "missing", str(error)
        return
    record_missing(outcome, [m.uid for m in plan.to_fetch if m.uid not in returned])


def record_missing(outcome: FolderOutcome, missing: list[int]) -> None:
    """Mark the outcome partial: sync_log then shows which UIDs the server did not return."""
    if not missing:
        return
    outcome.missing_uids += missing
    shown = ", ".join(map(str, outcome.missing_uids[:20])) + (
        " ..." if len(outcome.missing_uids) > 20 else ""
    )
    outcome.status = "partial"
    outcome.error = (
        f"{len(outcome.missing_uids)} requested message(s) of {outcome.folder!r} not returned by the "
        f"server (UIDs {shown}): not stored; the next run asks for them again"
    )


def stored_index(rows: Iterable[dict[str, Any]]) -> dict[str, dict[int, set[int]]]:
    """folder -> UIDVALIDITY -> UIDs, from the stored partition's rows still on the server."""
    index: dict[str, dict[int, set[int]]] = {}
    for row in rows:
        if row.get("deleted_at") is None:
            index.setdefault(row["folder"], {}).setdefault(row["uidvalidity"], set()).add(
                row["uid"]
            )
    return index
