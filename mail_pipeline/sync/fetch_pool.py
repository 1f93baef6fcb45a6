"""Bodies over several connections at once, handed over in the order the run stores them.

A run announces every folder plan it will fetch, in the order it will ask. Worker sessions take
the announced batches ahead of the reader: each keeps its folder selected while that folder has
batches, with `depth` UID FETCH commands in flight (imap/pipelining.py), and together they take
batches the reader has not taken yet up to `readahead_bytes` (by RFC822.SIZE; past it, only the
one the reader waits on). A server a round trip away then streams on every connection while
the reader writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from mail_pipeline.imap.errors import ImapError
from mail_pipeline.imap.pipelining import FetchWindow
from mail_pipeline.imap.records import FetchedMessage, MessageMeta, plan_batches
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.sync.plan import FolderPlan, select_checked

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Batch:
    folder: str
    uidvalidity: int
    metas: list[MessageMeta]
    size: int
    taken: bool = False
    done: bool = False
    wanted: bool = True  # False once the reader moved past it
    messages: list[FetchedMessage] = field(default_factory=list)
    error: Exception | None = None


@dataclass(eq=False)
class Unit:
    plan: FolderPlan
    batches: list[Batch]
    key: tuple[Any, ...] = ()  # the reader's order


class FetchPool:
    """Up to `workers` sessions from `open_session` fetching the announced plans; use as a context manager."""

    def __init__(
        self,
        open_session: Callable[[], AbstractContextManager[ImapSession]],
        *,
        workers: int,
        depth: int,
        max_messages: int,
        max_bytes: int,
        readahead_bytes: int,
    ):
        self._open_session, self._workers, self._depth = open_session, workers, depth
        self._max_messages, self._max_bytes, self._readahead = (
            max_messages,
            max_bytes,
            readahead_bytes,
        )
        self._units: list[Unit] = []
        self._queue: list[Batch] = []  # untaken batches, in the reader's order
        self._pending: list[Batch] = []  # every batch not yet done
        self._ahead = 0  # bytes of batches taken and not yet released by the reader
        self._alive = 0
        self._closed = False
        self._failure: Exception | None = None
        self._lock = threading.Condition()
        self._on: dict[int, str] = {}  # worker thread -> the folder it fetches from
        self._threads: list[threading.Thread] = []
        self._ahead_folder: str | None = None
        self._ahead_named = True  # False from `open` until `ahead`
        self._awaited: Batch | None = None  # the batch the reader waits for

    def __enter__(self) -> FetchPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        for thread in self._threads:
            thread.join()

    def close(self) -> None:
        """Let the workers sign out (without waiting for them: leaving the context waits)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def announce(self, plans: list[FolderPlan], order: list[tuple[Any, ...]] | None = None) -> None:
        """Plans the reader will ask for; workers start on them now. The reader asks in the order
        of `order` (sortable keys, one per plan), or of announcing: plans announced folder by
        folder while the run still plans take their places among the earlier ones."""
        with self._lock:
            for plan, key in zip(
                plans, order or [(len(self._units) + i,) for i in range(len(plans))]
            ):
                self._units.append(self._unit(plan, key))
            self._units.sort(key=lambda unit: unit.key)  # stable: equal keys keep announcing order
            units = {id(batch): unit.key for unit in self._units for batch in unit.batches}
            self._queue = sorted(
                self._pending_untaken(), key=lambda batch: units.get(id(batch), ())
            )
            self._start_workers()
            self._lock.notify_all()

    def _pending_untaken(self) -> list[Batch]:
        return [batch for batch in self._pending if not batch.taken and batch.wanted]

    def _unit(self, plan: FolderPlan, key: tuple[Any, ...] = ()) -> Unit:
        """The plan's batches, pending (lock held)."""
        batches = plan_batches(
            plan.to_fetch, max_messages=self._max_messages, max_bytes=self._max_bytes
        )
        unit = Unit(
            plan,
            [Batch(plan.folder, plan.uidvalidity, m, sum(x.size for x in m)) for m in batches],
            key,
        )
        self._pending += unit.batches
        return unit

    def open(self) -> None:
        """Sign every worker in now, before anything is announced (while the run signs in and
        plans); each then waits for `ahead` to name the folder it selects first."""
        with self._lock:
            self._ahead_named = False
            self._start_workers(self._workers)

    def ahead(self, folder: str | None) -> None:
        """The folder the workers `open` signed in select first (none without `open`): the first
        planned, so its first FETCH waits for nothing."""
        with self._lock:
            if not self._ahead_named:
                self._ahead_folder, self._ahead_named = folder, True
                self._lock.notify_all()

    def _start_workers(self, wanted: int = 0) -> None:
        if self._failure:
            self._fail(self._failure)
        while len(self._threads) < min(self._workers, max(wanted, len(self._pending))):
            thread = threading.Thread(
                target=self._work, daemon=True, name=f"imap-fetch-{len(self._threads)}"
            )
            self._alive += 1
            self._threads.append(thread)
            thread.start()

    def messages(self, plan: FolderPlan) -> Iterator[FetchedMessage]:
        """`plan.to_fetch`'s messages the server returned, in plan order (as `ImapSession.fetch_messages`)."""
        wanted = {m.uid for m in plan.to_fetch}
        for batch in self._unit_for(plan, wanted).batches:
            with self._lock:
                self._awaited = batch
                self._lock.notify_all()
                self._lock.wait_for(lambda: batch.done)  # noqa: B023 (waited on here, in this iteration)
                self._awaited = None
                messages, error = batch.messages, batch.error
                self._release(batch)
            if error is not None:
                raise error
            yield from (m for m in messages if m.uid in wanted)

    def _unit_for(self, plan: FolderPlan, wanted: set[int]) -> Unit:
        """The announced unit holding `wanted`; the ones before it are not needed any more. A plan
        never announced (or grown since) is fetched now, ahead of everything else."""
        with self._lock:
            for index, unit in enumerate(self._units):
                if (unit.plan.folder, unit.plan.uidvalidity) == (
                    plan.folder,
                    plan.uidvalidity,
                ) and wanted <= {m.uid for m in unit.plan.to_fetch}:
                    for skipped in self._units[:index]:
                        for batch in skipped.batches:
                            self._release(batch)
                    del self._units[: index + 1]
                    return unit
            unit = self._unit(plan)
            self._queue[:0] = unit.batches
            self._start_workers()
            self._lock.notify_all()
            return unit

    def _release(self, batch: Batch) -> None:
        """The reader is done with `batch` (lock held): its bytes no longer count ahead."""
        if batch.wanted:
            batch.wanted = False
            if batch.taken:
                self._ahead -= batch.size
            else:
                self._queue.remove(batch)
            batch.messages = []
            self._lock.notify_all()

    def _pick(self, folder: str | None, wait: bool) -> Batch | None:
        """(Lock held.) The batch the reader waits on, whatever the readahead; within it, the
        first not taken when no other worker is on its folder, else the next of `folder`; with
        `wait`, failing that, the first not taken. None ends a worker's window: it drains, then
        waits."""
        awaited = self._awaited if self._awaited is not None and not self._awaited.taken else None
        if awaited is not None and (wait or awaited.folder == folder):
            return awaited
        if self._ahead >= self._readahead:
            return None
        head = self._queue[0] if self._queue else None
        others = {f for worker, f in self._on.items() if worker != threading.get_ident()}
        if head is not None and head.folder != folder and head.folder not in others:
            return head if wait else None
        same = next((b for b in self._queue if b.folder == folder), None)
        return same if same is not None or not wait else head

    def _take(self, folder: str | None, wait: bool) -> Batch | None:
        with self._lock:
            while not (self._closed or self._failure):
                if (batch := self._pick(folder, wait)) is not None:
                    self._queue.remove(batch)
                    batch.taken = True
                    self._ahead += batch.size
                    self._on[threading.get_ident()] = batch.folder
                    return batch
                if not wait:
                    return None
                self._lock.wait()
            return None

    def _work(self) -> None:
        try:
            session_cm = self._open_session()
            session = session_cm.__enter__()
        except Exception as error:
            self._lost(error)
            return
        try:
            self._fetch_on(session)
        except Exception as error:  # what a session's retries could not ride out: the run fails
            self._fail(error)
        finally:
            with self._lock:
                self._on.pop(threading.get_ident(), None)
            session_cm.__exit__(None, None, None)
            self._lost(None)

    def _fetch_on(self, session: ImapSession) -> None:
        """Take batches until the pool closes, keeping a folder selected while it has some."""
        folder, uidvalidity = self._select_ahead(session)
        while (batch := self._take(folder, wait=True)) is not None:
            if (batch.folder, batch.uidvalidity) != (folder, uidvalidity):
                folder = None
                try:
                    select_checked(session, batch.folder, batch.uidvalidity)
                except ImapError as error:
                    if error.transient:
                        raise
                    # missing now, or its UIDs void: each of its batches says so
                    self._fail(error, batch.folder)
                    continue
                folder, uidvalidity = batch.folder, batch.uidvalidity
            handed: dict[int, Batch] = {id(batch.metas): batch}
            first = [batch]

            # FetchWindow calls take() only within this iteration, so the loop's names are current.
            def take() -> list[MessageMeta] | None:
                next_batch = first.pop() if first else self._take(folder, wait=False)  # noqa: B023
                if next_batch is None:
                    return None
                handed[id(next_batch.metas)] = next_batch  # noqa: B023
                return next_batch.metas

            for metas, data in FetchWindow(session, take, self._depth):
                self._deliver(handed.pop(id(metas)), session.received(metas, data))

    def _select_ahead(self, session: ImapSession) -> tuple[str | None, int | None]:
        """The folder `ahead` named, selected, and its UIDVALIDITY (a batch of another is selected again)."""
        with self._lock:
            self._lock.wait_for(
                lambda: self._ahead_named or self._queue or self._closed or self._failure
            )
            folder = self._ahead_folder
        if folder is None:
            return None, None
        try:
            uidvalidity = session.select(folder).uidvalidity
        except ImapError as error:
            if error.transient:
                raise
            return None, None  # gone since LIST: its batches, if any, fail as they are taken
        with self._lock:
            self._on[threading.get_ident()] = folder
        return folder, uidvalidity

    def _deliver(self, batch: Batch, messages: list[FetchedMessage]) -> None:
        with self._lock:
            self._done(batch, messages, None)

    def _done(self, batch: Batch, messages: list[FetchedMessage], error: Exception | None) -> None:
        if not batch.done:  # (lock held) a batch failed with the pool stays failed
            batch.messages, batch.error, batch.done = messages if batch.wanted else [], error, True
            self._pending.remove(batch)
            self._lock.notify_all()

    def _fail(self, error: Exception, folder: str | None = None) -> None:
        """Every batch not yet fetched (of `folder`, or all: the pool stops) fails with `error`."""
        with self._lock:
            if folder is None:
                self._failure = error
            for batch in [b for b in self._pending if folder is None or b.folder == folder]:
                if batch in self._queue:
                    self._queue.remove(batch)
                    batch.taken = True
                    self._ahead += batch.size if batch.wanted else 0
                self._done(batch, [], error)

    def _lost(self, error: Exception | None) -> None:
        """A worker ended; when it could not sign in, the others fetch its share, unless none is left."""
        with self._lock:
            self._alive -= 1
            last = self._alive == 0 and not self._closed
        if error is not None:
            log.warning(
                "an extra IMAP connection could not be opened (%s); fetching over the others", error
            )
        if last:
            self._fail(error or ImapError("no IMAP connection left to fetch with"))
