"""Thread resolution: one id per conversation across batches, days, folders and input orders."""

from __future__ import annotations

import hashlib
import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from mail_pipeline.message.parse import is_reply_subject, parse_message
from mail_pipeline.message.threads import ThreadInput, resolve_thread_ids
from mail_pipeline_tests import mime_samples as s

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def tid(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:24]


def msg(mid, refs=(), irt=None, subject="plan", reply=False, hours=0):
    root = refs[0] if refs else irt or mid
    return ThreadInput(mid, root, irt, tuple(refs), subject, reply, T0 + timedelta(hours=hours))


# A conversation over 3 days and 2 folders (INBOX and Sent); d2 has only In-Reply-To.
CONVERSATION = {
    1: [msg("a@x", hours=0), msg("b@y", ["a@x"], "a@x", reply=True, hours=2)],  # INBOX, Sent
    2: [msg("c@x", ["a@x", "b@y"], "b@y", reply=True, hours=24),
        msg("d@y", irt="c@x", reply=True, hours=26)],  # Sent: a client that drops References
    3: [msg("e@x", ["a@x", "b@y", "c@x", "d@y"], "d@y", reply=True, hours=50),
        msg("f@y", ["a@x", "b@y", "c@x", "d@y", "e@x"], "e@x", reply=True, hours=51)],
}  # fmt: skip


def day_by_day(days: dict[int, list[ThreadInput]]) -> dict[str, str]:
    known: dict[str, str] = {}
    for day in sorted(days):
        known.update(resolve_thread_ids(days[day], known))
    return known


def test_conversation_gets_one_thread_as_one_batch_or_day_by_day():
    everything = [m for day in CONVERSATION.values() for m in day]
    batch = resolve_thread_ids(everything, {})
    assert set(batch.values()) == {tid("a@x")}
    assert day_by_day(CONVERSATION) == batch


def test_input_order_does_not_matter():
    everything = [m for day in CONVERSATION.values() for m in day]
    expected = resolve_thread_ids(everything, {})
    for seed in range(20):
        shuffled = everything[:]
        random.Random(seed).shuffle(shuffled)
        assert resolve_thread_ids(shuffled, {}) == expected


def test_same_message_in_two_folders_counts_once():
    copy = msg("b@y", ["a@x"], "a@x", reply=True, hours=2)
    result = resolve_thread_ids([*CONVERSATION[1], copy], {})
    assert result == {"a@x": tid("a@x"), "b@y": tid("a@x")}


# (case, batch, known, expected message -> thread root or stored thread id)
CASES = [
    ("no headers: own id", [msg("m@x")], {}, {"m@x": tid("m@x")}),
    (
        "references[0] unknown is the root",
        [msg("r@x", ["gone@x", "p@x"], "p@x")],
        {},
        {"r@x": tid("gone@x")},
    ),
    (
        "parent known: stored thread",
        [msg("r@x", irt="p@x")],
        {"p@x": "stored-thread"},
        {"r@x": "stored-thread"},
    ),
    ("references[0] known: stored thread", [msg("r@x", ["p@x"])], {"p@x": "T1"}, {"r@x": "T1"}),
    ("in-reply-to unknown: parent id is root", [msg("r@x", irt="p@x")], {}, {"r@x": tid("p@x")}),
    (
        "in-reply-to chain through the batch",
        [msg("a@x"), msg("b@x", irt="a@x", hours=1), msg("c@x", irt="b@x", hours=2)],
        {},
        {"a@x": tid("a@x"), "b@x": tid("a@x"), "c@x": tid("a@x")},
    ),
    (
        "header-less reply joins earliest same subject",
        [msg("o@x", subject="lunch"), msg("r@x", subject="lunch", reply=True, hours=1)],
        {},
        {"o@x": tid("o@x"), "r@x": tid("o@x")},
    ),
    (
        "header-less non-reply stays alone",
        [msg("o@x", subject="lunch"), msg("n@x", subject="lunch", hours=1)],
        {},
        {"o@x": tid("o@x"), "n@x": tid("n@x")},
    ),
    (
        "header-less reply, earliest itself: own id",
        [
            msg("r@x", subject="lunch", reply=True),
            msg("r2@x", subject="lunch", reply=True, hours=1),
        ],
        {},
        {"r@x": tid("r@x"), "r2@x": tid("r@x")},
    ),
    (
        "empty subjects never match",
        [msg("o@x", subject=""), msg("r@x", subject="", reply=True, hours=1)],
        {},
        {"o@x": tid("o@x"), "r@x": tid("r@x")},
    ),
    (
        "truncated references join the group via union",
        [msg("m@x", ["r2@x"]), msg("y@x", ["r1@x", "m@x"], hours=1)],
        {},
        {"m@x": tid("r2@x"), "y@x": tid("r2@x")},
    ),
    (
        "group prefers a stored thread",
        [msg("m@x", ["r2@x"]), msg("y@x", ["r1@x", "m@x"], hours=1)],
        {"r1@x": "T-old"},
        {"m@x": "T-old", "y@x": "T-old"},
    ),
    (
        "reference cycle resolves to smallest id",
        [msg("p@x", ["q@x"]), msg("q@x", ["p@x"], hours=1)],
        {},
        {"p@x": tid("p@x"), "q@x": tid("p@x")},
    ),
    ("self reference is ignored", [msg("s@x", ["s@x"], "s@x")], {}, {"s@x": tid("s@x")}),
    ("message already stored keeps its thread", [msg("a@x")], {"a@x": "T9"}, {"a@x": "T9"}),
]


@pytest.mark.parametrize(
    ("batch", "known", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_resolve_thread_ids(batch, known, expected):
    for order in itertools.permutations(batch):
        assert resolve_thread_ids(order, known) == expected


def test_header_less_reply_joins_a_stored_subject_across_days():
    day1 = [msg("o@x", subject="lunch")]
    day2 = [msg("r@x", subject="lunch", reply=True, hours=24)]
    known = resolve_thread_ids(day1, {})
    assert resolve_thread_ids(day2, known, known_subjects={"lunch": known["o@x"]}) == {
        "r@x": tid("o@x")
    }
    assert resolve_thread_ids(day1 + day2, {}) == {"o@x": tid("o@x"), "r@x": tid("o@x")}


def test_from_parsed_messages():
    # The domain of a Message-ID is case-insensitive (RFC 5322 §3.6.4), its local part is not.
    original = parse_message(s.MISSING_DATE)
    reply = parse_message(
        s.crlf(
            b"From: b@example.com\nMessage-ID: <re@example.com>\nIn-Reply-To: <nodate@EXAMPLE.com>\n"
            b"Subject: Re: no date\n\nok\n"
        )
    )
    inputs = [
        ThreadInput(p.message_id, p.thread_root, p.in_reply_to, tuple(p.references),
                    p.subject_normalized, is_reply_subject(p.subject), p.sent_at)
        for p in (original, reply)
    ]  # fmt: skip
    result = resolve_thread_ids(inputs, {})
    assert set(result.values()) == {tid("nodate@example.com")}
