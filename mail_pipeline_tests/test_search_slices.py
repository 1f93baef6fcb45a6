"""A folder holding more messages than `session.SEARCH_SLICE` is searched a slice of messages at a
time (imaplib reads no SEARCH answer longer than 1,000,000 bytes: about 90,000 UIDs), with the
same UIDs found as one SEARCH finds. The slice is made small here: the real one needs a folder of
100,000 messages (the scale bench's 200,000-message rung is where it failed)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from mail_pipeline.imap import session as session_module
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import DAY, UTC, session

pytestmark = pytest.mark.integration

SLICE = 4


@pytest.fixture
def gappy_inbox(dovecot):
    """23 INBOX messages over DAY-1..DAY+1, 5 of them expunged: UIDs with gaps, 18 left."""
    # The days in turn, so each day's UIDs are spread over every slice.
    when = [
        datetime.combine(DAY + timedelta(days=i % 3 - 1), time(9), UTC) + timedelta(seconds=i)
        for i in range(23)
    ]
    dovecot.append([("INBOX", message(f"s{i:02d}", w), w) for i, w in enumerate(when)])
    client = dovecot.client()
    client.select_folder("INBOX")
    client.delete_messages([2, 3, 9, 16, 17])
    client.expunge()
    client.logout()
    return dovecot


def search_answers(proxy) -> list[int]:
    """The number of UIDs in each `* SEARCH` answer the server sends through `proxy`."""
    sizes: list[int] = []

    def count(response):
        first = response[0] if isinstance(response[0], bytes) else response[0][0]
        if first.startswith(b"* SEARCH"):
            sizes.append(len(first.split()) - 2)
        return [response]

    proxy.rewrites.append(count)
    return sizes


def one_search(dovecot, *criteria) -> list[int]:
    client = dovecot.client()
    client.select_folder("INBOX", readonly=True)
    try:
        return sorted(client.search(list(criteria)))
    finally:
        client.logout()


def test_a_folder_past_the_slice_is_searched_a_slice_at_a_time_with_the_same_uids(
    gappy_inbox, proxy, monkeypatch
):
    monkeypatch.setattr(session_module, "SEARCH_SLICE", SLICE)
    sizes = search_answers(proxy)
    with session(gappy_inbox, proxy) as imap:
        imap.select("INBOX")
        between = imap.search_between(DAY, DAY + timedelta(days=2))
        after = imap.search_from(12)
    assert between == one_search(gappy_inbox, "SINCE", DAY, "BEFORE", DAY + timedelta(days=2))
    assert len(between) == 11  # DAY and DAY+1 of the 18 messages left (6 and 5)
    assert after == [uid for uid in one_search(gappy_inbox, "ALL") if uid >= 12]
    # each call: the slices' first UIDs (messages 5, 9, 13 and 17 of 18), then 5 slices
    assert sizes[0] == 4 and sizes[6] == 4 and len(sizes) == 12
    assert max(sizes) <= SLICE


def test_a_folder_within_the_slice_is_searched_once(gappy_inbox, proxy, monkeypatch):
    monkeypatch.setattr(session_module, "SEARCH_SLICE", 18)
    sizes = search_answers(proxy)
    with session(gappy_inbox, proxy) as imap:
        imap.select("INBOX")
        found = imap.search_between(DAY - timedelta(days=1), DAY + timedelta(days=2))
    assert len(found) == 18 and sizes == [18]
