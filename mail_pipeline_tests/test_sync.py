"""Pure pieces of the raw sync: day spans, Message-ID from headers, FETCH batch planning."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from mail_pipeline.imap.messages import MessageMeta, plan_batches
from mail_pipeline.sync.plan import day_spans, header_message_id

D = date.fromisoformat


@pytest.mark.parametrize(
    "days, spans",
    [
        ([], []),
        ([D("2026-11-10")], [(D("2026-11-10"), D("2026-11-10"))]),
        ([D("2026-11-12"), D("2026-11-10"), D("2026-11-11")], [(D("2026-11-10"), D("2026-11-12"))]),
        ([D("2026-11-10"), D("2026-11-12"), D("2026-11-12")], [(D("2026-11-10"), D("2026-11-10")), (D("2026-11-12"), D("2026-11-12"))]),
        ([D("2026-10-31"), D("2026-11-01")], [(D("2026-10-31"), D("2026-11-01"))]),
    ],
)
def test_day_spans(days, spans):
    assert day_spans(days) == spans


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"Subject: x\r\nMessage-ID: <a@b.c>\r\n\r\nbody", "a@b.c"),
        (b"message-id:\r\n <folded@b.c>\r\nX: y\r\n\r\n", "folded@b.c"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@b.c>\r\n", None),
        (b"Subject: no id\r\n\r\n", None),
    ],
)
def test_header_message_id(raw, expected):
    assert header_message_id(raw) == expected


def test_batches_capped_by_count_and_bytes():
    when = datetime(2026, 11, 1, tzinfo=timezone.utc)
    metas = [MessageMeta(uid=i, internaldate=when, size=size) for i, size in enumerate([10, 10, 10, 50, 10, 200, 10])]
    batches = [[m.uid for m in b] for b in plan_batches(metas, max_messages=3, max_bytes=60)]
    assert batches == [[0, 1, 2], [3, 4], [5], [6]]
    assert sum(len(b) for b in batches) == len(metas)
