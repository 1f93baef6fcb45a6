"""Pure pieces of the raw sync: day spans, Message-ID from headers, FETCH batch planning, flags kept,
requested UIDs the server did not return."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mail_pipeline.imap.records import (
    MessageMeta,
    fetched_message,
    header_message_id,
    message_meta,
    plan_batches,
)
from mail_pipeline.sync.plan import FolderOutcome, day_spans, head_apart, record_missing

D = date.fromisoformat


@pytest.mark.parametrize(
    ("days", "spans"),
    [
        ([], []),
        ([D("2026-11-10")], [(D("2026-11-10"), D("2026-11-10"))]),
        ([D("2026-11-12"), D("2026-11-10"), D("2026-11-11")], [(D("2026-11-10"), D("2026-11-12"))]),
        (
            [D("2026-11-10"), D("2026-11-12"), D("2026-11-12")],
            [(D("2026-11-10"), D("2026-11-10")), (D("2026-11-12"), D("2026-11-12"))],
        ),
        ([D("2026-10-31"), D("2026-11-01")], [(D("2026-10-31"), D("2026-11-01"))]),
    ],
)
def test_day_spans(days, spans):
    assert day_spans(days) == spans


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Subject: x\r\nMessage-ID: <a@b.c>\r\n\r\nbody", "a@b.c"),
        (b"message-id:\r\n <folded@b.c>\r\nX: y\r\n\r\n", "folded@b.c"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@b.c>\r\n", None),
        (b"Subject: no id\r\n\r\n", None),
    ],
)
def test_header_message_id(raw, expected):
    assert header_message_id(raw) == expected


@pytest.mark.parametrize(
    ("spans", "apart"),
    [
        ([], []),
        ([(1, 3)], [(1, 3)]),  # no more than the head
        ([(1, 30)], [(1, 3), (4, 30)]),
        ([(1, 4), (6, 9)], [(1, 3), (4, 4), (6, 9)]),  # only the first run
    ],
)
def test_the_first_runs_head_is_planned_apart(spans, apart):
    day = date(2026, 11, 1)

    def dated(runs):
        return [(day.replace(day=a), day.replace(day=b)) for a, b in runs]

    assert head_apart(dated(spans)) == dated(apart)


def test_batches_capped_by_count_and_bytes():
    when = datetime(2026, 11, 1, tzinfo=UTC)
    metas = [
        MessageMeta(uid=i, internaldate=when, size=size)
        for i, size in enumerate([10, 10, 10, 50, 10, 200, 10])
    ]
    batches = [[m.uid for m in b] for b in plan_batches(metas, max_messages=3, max_bytes=60)]
    assert batches == [[0, 1, 2], [3, 4], [5], [6]]
    assert sum(len(b) for b in batches) == len(metas)


def test_recent_is_session_state_and_never_stored():
    item = {
        b"UID": 4,
        b"INTERNALDATE": datetime(2026, 11, 1, tzinfo=UTC),
        b"RFC822.SIZE": 1,
        b"BODY[]": b"x",
        b"FLAGS": (b"\\Seen", b"\\Recent", b"\\recent", b"$Label1"),
    }
    assert message_meta(4, item).flags == ("\\Seen", "$Label1")
    assert fetched_message(MessageMeta(4, item[b"INTERNALDATE"], 1), item).flags == (
        "\\Seen",
        "$Label1",
    )


PLANNED = MessageMeta(
    uid=4, internaldate=datetime(2026, 11, 1, 8, tzinfo=UTC), size=1234, flags=("\\Seen",)
)


@pytest.mark.parametrize(
    ("item", "flags"),
    [
        # the body alone: everything else is the plan's
        (
            {b"UID": 4, b"BODY[]": b"x"},
            ("\\Seen",),
        ),
        # changed since: the server's
        (
            {b"UID": 4, b"BODY[]": b"x", b"FLAGS": (b"\\Flagged",)},
            ("\\Flagged",),
        ),
        ({b"UID": 4, b"BODY[]": b"x", b"FLAGS": ()}, ()),
    ],
)
def test_a_fetched_body_carries_the_plans_date_and_size(item, flags):
    fetched = fetched_message(PLANNED, item)
    assert (fetched.uid, fetched.internaldate, fetched.size, fetched.flags, fetched.raw) == (
        4,
        PLANNED.internaldate,
        1234,
        flags,
        b"x",
    )


def test_requested_uids_not_returned_mark_the_outcome_partial():
    outcome = FolderOutcome(folder="INBOX", uidvalidity=9, highest_uid=40)
    record_missing(outcome, [])
    assert (outcome.status, outcome.error, outcome.missing_uids) == ("ok", None, [])
    record_missing(outcome, [7, 12])
    record_missing(outcome, list(range(20, 41)))
    assert outcome.status == "partial" and outcome.missing_uids == [7, 12, *range(20, 41)]
    assert outcome.error.startswith(
        "23 requested message(s) of 'INBOX' not returned by the server (UIDs 7, 12, 20,"
    )
    assert "37 ...): not stored; the next run asks for them again" in outcome.error
