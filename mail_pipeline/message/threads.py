"""Conversation threads across messages, folders and days.

A thread id is ``sha256(root message-id)`` as hex, first 24 characters (`parse.message_key`),
so every message sharing the root's Message-ID, in whatever version, is in it. The root of a message is
found by following parent links through ``known`` (message-id -> thread id of messages already
stored for the account) and through the batch itself:

1. With References, the parent is ``references[0]``: by RFC 5322 §3.6.4 the first entry is the
   conversation's first message.
2. Else with In-Reply-To, the parent is that message.
3. Else, when the subject carries a reply prefix, the parent is the earliest message (by
   ``sent_at``, then id) with the same non-empty ``subject_normalized``: from
   ``known_subjects`` if given (stored threads come first), else from the batch. The earliest
   message itself has no parent.
4. Else the message has no parent.

Following stops at a message found in ``known``, the message itself included (its stored
thread id is the answer), at an id that is neither known nor in the batch (that id is the
root), or at a message without a parent (its own id is the root); a cycle resolves to its
smallest id.

Messages linked through any References or In-Reply-To entry form one conversation (union-find
over the batch and the ids it mentions). When the rule above gives such a group more than one
thread id (a client dropped the start of References), the whole group takes one: that of its
earliest message whose thread id was already stored, else that of its earliest message.

Every choice sorts by (sent_at, message_id), so the result does not depend on input order; and
since the root of a conversation is its first message's id, feeding the days one at a time with
``known`` carried forward gives the same ids as one batch when messages arrive in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mail_pipeline.message.parse import message_key

_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ThreadInput:
    """What threading needs from one parsed message (ids normalized as `parse` does)."""

    message_id: str
    thread_root: str
    in_reply_to: str | None
    references: Sequence[str]
    subject_normalized: str
    is_reply: bool  # the subject had a reply prefix
    sent_at: datetime | None


def _order(message: ThreadInput) -> tuple[datetime, str]:
    sent = message.sent_at or _LATEST
    return (sent if sent.tzinfo else sent.replace(tzinfo=UTC), message.message_id)


def _rank(message: ThreadInput) -> tuple[Any, ...]:
    return (len(message.references), message.in_reply_to or "", tuple(message.references),
            message.subject_normalized, message.is_reply, str(message.sent_at))  # fmt: skip


def _dedupe(messages: Iterable[ThreadInput]) -> dict[str, ThreadInput]:
    """One input per message id; of differing copies the one with the most headers wins."""
    chosen: dict[str, ThreadInput] = {}
    for message in messages:
        current = chosen.get(message.message_id)
        if current is None or _rank(message) > _rank(current):
            chosen[message.message_id] = message
    return chosen


def _parents(
    batch: dict[str, ThreadInput], known_subjects: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(message id -> parent id, message id -> thread id taken from a stored subject)."""
    earliest: dict[str, ThreadInput] = {}
    for message in sorted(batch.values(), key=_order):
        if message.subject_normalized:
            earliest.setdefault(message.subject_normalized, message)
    parents: dict[str, str] = {}
    by_subject: dict[str, str] = {}
    for mid, message in batch.items():
        refs = [ref for ref in message.references if ref != mid]
        if refs:
            parents[mid] = refs[0]
        elif message.in_reply_to and message.in_reply_to != mid:
            parents[mid] = message.in_reply_to
        elif message.is_reply and message.subject_normalized:
            if message.subject_normalized in known_subjects:
                by_subject[mid] = known_subjects[message.subject_normalized]
            elif (first := earliest[message.subject_normalized]).message_id != mid:
                parents[mid] = first.message_id
    return parents, by_subject


@dataclass
class _Chains:
    known: Mapping[str, str]
    parents: dict[str, str]  # only batch messages that have a parent
    by_subject: dict[str, str]
    memo: dict[str, str] = field(default_factory=dict)

    def _stop(self, current: str) -> str | None:
        for table in (self.memo, self.known, self.by_subject):
            if current in table:
                return table[current]
        return None if current in self.parents else message_key(current)

    def thread_of(self, mid: str) -> str:
        path: list[str] = []
        on_path: set[str] = set()
        current = mid
        while (result := self._stop(current)) is None:
            if current in on_path:  # a cycle of References: its smallest id is the root
                result = message_key(min(path[path.index(current) :]))
                break
            path.append(current)
            on_path.add(current)
            current = self.parents[current]
        self.memo.update(dict.fromkeys(path, result))
        return result


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression keeps long reply chains cheap
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _harmonize(batch: dict[str, ThreadInput], primary: dict[str, str], known: Mapping[str, str],
               parents: dict[str, str]) -> dict[str, str]:  # fmt: skip
    groups = _UnionFind()
    for mid, message in batch.items():
        for other in (*message.references, message.in_reply_to, parents.get(mid)):
            if other:
                groups.union(mid, other)
    members: dict[str, list[ThreadInput]] = {}
    for message in sorted(batch.values(), key=_order):
        members.setdefault(groups.find(message.message_id), []).append(message)
    stored = set(known.values())
    result: dict[str, str] = {}
    for group in members.values():
        ids = [primary[m.message_id] for m in group]
        chosen = next((tid for tid in ids if tid in stored), ids[0])
        result.update((m.message_id, chosen) for m in group)
    return result


def resolve_thread_ids(
    messages: Iterable[ThreadInput],
    known: Mapping[str, str],
    known_subjects: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Thread id of every given message (see the module docstring for the rule).

    ``known``: message id -> thread id of the account's stored messages. ``known_subjects``
    (optional): subject_normalized -> thread id of the earliest stored message with that
    subject, so header-less replies join threads from earlier days too.
    """
    batch = _dedupe(messages)
    parents, by_subject = _parents(batch, known_subjects or {})
    chains = _Chains(known, parents, by_subject)
    primary = {mid: chains.thread_of(mid) for mid in sorted(batch)}
    return _harmonize(batch, primary, known, parents)
