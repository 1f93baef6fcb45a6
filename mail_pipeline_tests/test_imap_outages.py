"""Outages through imap_proxy.py (every connection dropped, new ones refused): a run rides them out
and re-selects its folder, gives up after MAIL_PIPELINE_IMAP_RETRY_SECONDS with the cause, never
retries bad credentials, and never reads other messages when UIDVALIDITY changed meanwhile."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from mail_pipeline.imap.errors import ImapAuthError, ImapError
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import (
    DAY,
    UTC,
    pin,
    query,
    run,
    seed,
    server_digests,
    session,
    stored_digests,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    pin(monkeypatch)


# the run's session alone; a pool of fetching ones
@pytest.mark.parametrize("connections", ["1", "4"])
def test_a_3s_outage_mid_fetch_leaves_the_run_successful_with_nothing_missing(
    dovecot, proxy, proxied_alice, data_dir, instance, monkeypatch, connections
):
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_CONNECTIONS", connections)
    seed(dovecot, count=60)
    proxy.outage_after(bodies=17, seconds=3)
    result = run(instance)
    assert result.success
    assert proxy.outages == 1
    stored = stored_digests(data_dir)
    assert len(stored) == 60 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}


def test_the_session_reselects_its_folder_after_failed_reconnects(dovecot, proxy):
    seed(dovecot)
    with session(dovecot, proxy) as imap:
        imap.select("Archive")
        proxy.outage(2.5)  # refused long enough for several failed attempts
        uids = imap.search_between(DAY, DAY + timedelta(days=1))
        assert proxy.outages == 1 and proxy.connections >= 2
        metas = imap.fetch_meta(uids)
    assert [m.uid for m in metas] == [1, 2, 3, 4, 5, 6]  # Archive's, read after a re-select


def test_retries_give_up_after_retry_s_with_the_real_cause(dovecot, proxy):
    with session(dovecot, proxy, retry_s=1.0) as imap:
        proxy.outage(60)
        with pytest.raises(
            ImapError, match=r"(refused by|connection to) 127\.0\.0\.1.*gave up after \d+ attempt"
        ) as failure:
            imap.status("INBOX")
    assert failure.value.transient


def test_bad_credentials_are_never_retried(dovecot, proxy):
    with pytest.raises(ImapAuthError):
        session(dovecot, proxy, password="wrong").__enter__()
    assert proxy.connections == 1


def test_a_uidvalidity_change_during_an_outage_fails_instead_of_reading_other_messages(
    dovecot, proxy
):
    seed(dovecot)
    with session(dovecot, proxy) as imap:
        imap.select("Archive")
        proxy.outage(1.5)
        client = dovecot.client()  # straight to Dovecot: the folder is re-created meanwhile
        client.delete_folder("Archive")
        client.create_folder("Archive")
        client.logout()
        dovecot.append(
            [
                (
                    "Archive",
                    message("other", datetime(2026, 11, 10, 9, tzinfo=UTC)),
                    datetime(2026, 11, 10, 9, tzinfo=UTC),
                )
            ]
        )
        with pytest.raises(ImapError, match="UIDVALIDITY of 'Archive' changed while reconnecting"):
            imap.fetch_meta([1])
