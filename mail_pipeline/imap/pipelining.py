"""Pipelined body FETCH on one connection: the next batch is asked for before the last answer
is read, so a server a round trip away keeps streaming while the client reads."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mail_pipeline.imap.fetch_response import FetchValue

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from mail_pipeline.imap.session import ImapSession

# The body alone: its INTERNALDATE, RFC822.SIZE and FLAGS are the plan's (the metadata FETCH),
# about 70 bytes a message less over the link.
FETCH_ITEMS = [b"BODY.PEEK[]"]
Answer = dict[int, dict[bytes, FetchValue]]


class FetchWindow:
    """Body FETCHes on one connection, up to `depth` sent before the oldest answer is read
    (RFC 3501 5.5 allows it), so a distant server streams while the client reads. Iterating
    gives (batch, answer by UID) in the order `take` handed the batches out; `take` returns
    None when it has none now. A reconnect (`ImapSession._retrying`) sends the unanswered again."""

    def __init__(
        self,
        session: ImapSession,
        take: Callable[[], Sequence[Any] | None],
        depth: int,
        items: Sequence[bytes] = FETCH_ITEMS,
        uids: Callable[[Sequence[Any]], list[int]] | None = None,
    ):
        self.session, self.take, self.depth, self.items = session, take, max(depth, 1), items
        # batches of MessageMeta by default
        self.uids = uids or (lambda batch: [m.uid for m in batch])
        self.waiting: deque[Sequence[Any]] = deque()  # handed out, not yet answered, in order
        self.tags: deque[bytes] = deque()
        self.connection: IMAPClient | None = None  # the one `tags` were sent on
        self.early: Answer = {}  # read with an earlier command's answer

    def __iter__(self) -> Iterator[tuple[Sequence[Any], Answer]]:
        while (answered := self.session._retrying(self._next)) is not None:
            yield answered

    def _send(self, batch: Sequence[Any]) -> None:
        self.tags.append(self.session.send_fetch(self.uids(batch), self.items))

    def _next(self) -> tuple[Sequence[Any], Answer] | None:
        if self.session.client is not self.connection:  # what was sent on the last one is lost
            self.connection, self.tags, self.early = self.session.client, deque(), {}
            for batch in self.waiting:
                self._send(batch)
        while len(self.waiting) < self.depth and (taken := self.take()) is not None:
            self.waiting.append(taken)  # before sending: a failed send is sent again on reconnect
            self._send(taken)
        if not self.waiting:
            return None
        # Commands in flight have disjoint UIDs: a response read early is kept for its own batch.
        requested = {uid for batch in self.waiting for uid in self.uids(batch)}
        for uid, items in self.session.finish_fetch(self.tags[0], requested).items():
            self.early.setdefault(uid, {}).update(items)
        self.tags.popleft()
        batch = self.waiting.popleft()
        return batch, {uid: self.early.pop(uid) for uid in self.uids(batch) if uid in self.early}
