"""Fetching over a distant link (shaping_proxy.py: a delay each way before the real Dovecot):
pipelined FETCH commands over several connections store exactly what one connection fetching
one batch at a time stores, in the same order; every UID is accounted for; outages, a stopped
server, connections the server refuses and OAuth sign-ins behave as on one connection."""

from __future__ import annotations

import dataclasses
import hashlib
import imaplib
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mail_pipeline.imap.connection import ImapConfig
from mail_pipeline.imap.errors import ImapAuthError
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.stages.ingest import FetchLimits, ingest
from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync import plan as sync_plan
from mail_pipeline.sync.fetch_pool import FetchPool
from mail_pipeline.sync.plan import utc_day
from mail_pipeline_tests.imap_proxy import no_body_for
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import (
    DAY,
    FOLDERS,
    UTC,
    pin,
    query,
    run,
    seed,
    server_digests,
    stored_digests,
)
from mail_pipeline_tests.shaping_proxy import ShapingProxy
from mail_pipeline_tests.test_flag_sync import commands  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

DAYS = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
# Columns that must come out the same whichever way the bodies were fetched (not fetched_at).
SAME = [
    "folder",
    "uidvalidity",
    "uid",
    "internaldate",
    "flags",
    "size",
    "sha256",
    "message_id",
    "raw",
]


@pytest.fixture
def link(dovecot):
    """Dovecot's plain-text port 5 ms away each way, FETCH commands watched."""
    proxy = ShapingProxy(dovecot.port, delay_ms=5, rate_mbit=400, watch=True).start()
    yield proxy
    proxy.close()


def seed_days(dovecot, per_day: int = 40) -> None:
    """`per_day` messages on each of DAYS, alternating INBOX and Archive."""
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    mail = []
    for number, day in enumerate(DAYS):
        start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
        mail += [
            (FOLDERS[i % 2], message(f"d{number}m{i:03d}", start), start + timedelta(minutes=i))
            for i in range(per_day)
        ]
    dovecot.append(mail)


def opener(dovecot, port: int, retry_s: float = 60.0, password: str | None = None):
    config = ImapConfig(
        host="127.0.0.1", port=port, username="alice", security="plain", retry_s=retry_s
    )
    return lambda: ImapSession(config, password or dovecot.users["alice"])


def fetch_into(root: Path, open_session, limits: FetchLimits) -> dict:
    """ingest over DAYS into a fresh lake under `root`; each day's stored rows, in file order."""
    lake = Lake(root / "lake")
    outcomes = ingest(
        "alice",
        list(FOLDERS),
        DAYS,
        open_session=open_session,
        lake=lake,
        run_id="t",
        limits=limits,
    )
    assert all(not o.figures["uids_not_returned"] for o in outcomes)
    return {
        day: pq.read_table(
            root / f"lake/raw_messages/account=alice/day={day}/part-0.parquet", columns=SAME
        ).to_pylist()
        for day in DAYS
    }


def test_pipelined_parallel_fetch_stores_what_one_connection_stores_in_the_same_order(
    dovecot, link, tmp_path
):
    seed_days(dovecot)
    one = fetch_into(
        tmp_path / "one",
        opener(dovecot, dovecot.port),
        FetchLimits(5, 10**9, connections=1, depth=1),
    )
    pooled = fetch_into(
        tmp_path / "pooled",
        opener(dovecot, link.port),
        FetchLimits(5, 10**9, connections=4, depth=3),
    )
    assert pooled == one
    assert sum(map(len, one.values())) == 120
    assert {
        hashlib.sha256(r["raw"]).hexdigest() for rows in pooled.values() for r in rows
    } == server_digests(dovecot)
    assert link.max_in_flight >= 2  # pipelined: a command sent before the last one's answer
    assert link.fetch_connections >= 2  # and over more than one connection


def test_bodies_are_fetched_alone_and_rows_carry_the_servers_date_size_and_flags(
    dovecot, link, tmp_path
):
    """INTERNALDATE, RFC822.SIZE and FLAGS come from the planning's metadata FETCH, not again
    with each body: the stored row still holds what the server says of its message."""
    seed_days(dovecot, per_day=10)
    client = dovecot.client()
    client.normalise_times = False
    client.select_folder("INBOX")
    client.add_flags([1, 4], [b"\\Flagged", b"$Label1"])
    server = {}
    for folder in FOLDERS:
        client.select_folder(folder, readonly=True)
        for uid, item in client.fetch(
            client.search(["ALL"]), [b"INTERNALDATE", b"RFC822.SIZE", b"FLAGS"]
        ).items():
            flags = sorted(f.decode() for f in item[b"FLAGS"] if f.upper() != b"\\RECENT")
            server[(folder, uid)] = (
                item[b"INTERNALDATE"].astimezone(UTC),
                item[b"RFC822.SIZE"],
                flags,
            )
    client.logout()
    rows = fetch_into(
        tmp_path, opener(dovecot, link.port), FetchLimits(4, 10**9, connections=4, depth=2)
    )
    stored = {
        (r["folder"], r["uid"]): (r["internaldate"], r["size"], sorted(r["flags"]))
        for day in rows.values()
        for r in day
    }
    assert stored == server and len(stored) == 30
    assert any("\\Flagged" in flags for _, _, flags in stored.values())
    assert {items for items in link.fetch_items if b"BODY.PEEK[]" in items} == {b"(BODY.PEEK[])"}


@pytest.mark.parametrize("stored_first", [False, True])
def test_a_backfill_signs_its_own_connection_out_once_planned(
    stored_first, dovecot, tmp_path, monkeypatch
):
    """With nothing stored to match bodies against, the planning connection is not needed past
    planning: its LOGOUT goes before the first day is written, not after the last."""
    seed_days(dovecot, per_day=10)
    open_session, limits = (
        opener(dovecot, dovecot.port),
        FetchLimits(4, 10**9, connections=3, depth=2),
    )
    if stored_first:  # a day already stored: its new bodies may match a stored copy
        ingest(
            "alice",
            list(FOLDERS),
            DAYS[:1],
            open_session=open_session,
            lake=Lake(tmp_path / "lake"),
            run_id="t0",
            limits=limits,
        )
    events = []
    send, write = imaplib.IMAP4.send, Lake.write_partition

    def sending(self, data: bytes):
        if (
            threading.current_thread() is threading.main_thread()
            and b" LOGOUT" in data[:40].upper()
        ):
            events.append("LOGOUT")
        return send(self, data)

    def writing(self, *args, **kwargs):
        events.append("write")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(imaplib.IMAP4, "send", sending)
    monkeypatch.setattr(Lake, "write_partition", writing)
    ingest(
        "alice",
        list(FOLDERS),
        DAYS,
        open_session=open_session,
        lake=Lake(tmp_path / "lake"),
        run_id="t",
        limits=limits,
    )
    assert events.count("LOGOUT") == 1 and events.count("write") >= 2
    assert (events.index("LOGOUT") < events.index("write")) != stored_first


def test_one_connection_still_pipelines_within_a_folder(dovecot, link, tmp_path):
    seed_days(dovecot, per_day=20)
    fetch_into(tmp_path, opener(dovecot, link.port), FetchLimits(3, 10**9, connections=1, depth=2))
    assert link.max_in_flight == 2 and link.fetch_connections == 1


def test_the_first_folders_first_day_is_planned_alone_and_each_message_once(dovecot):
    """A backfill's fetching waits for a few days' metadata, not the first folder's whole window;
    a message found by the SEARCH of two runs of days is planned once, on its own day."""
    seed_days(dovecot, per_day=10)
    window = [*DAYS, DAYS[-1] + timedelta(days=1)]  # the head's 3 days, then one more, empty
    heard = []
    with opener(dovecot, dovecot.port)() as session:
        plans, _ = sync_plan.plan_folders(
            session,
            list(FOLDERS),
            window,
            {},
            lambda folder, by_day: heard.append((folder, sorted(by_day))),
        )
    assert sync_plan.HEAD_DAYS == 3
    assert heard == [("INBOX", DAYS), ("INBOX", window[3:]), ("Archive", window)]
    for folder in FOLDERS:
        assert not plans[folder][window[3]].to_fetch
        uids = [m.uid for day in DAYS for m in plans[folder][day].to_fetch]
        assert len(uids) == len(set(uids)) == 15
        assert all(
            utc_day(m.internaldate) == day for day in DAYS for m in plans[folder][day].to_fetch
        )


def test_status_and_examine_share_a_round_trip_and_give_the_folders_modseq(dovecot, monkeypatch):
    """Planning a folder asks STATUS (for HIGHESTMODSEQ) and EXAMINE without waiting in between."""
    seed_days(dovecot, per_day=4)
    client = dovecot.client()
    current = client.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    client.logout()
    events = []
    send, get_line = imaplib.IMAP4.send, imaplib.IMAP4._get_line

    def sending(self, data: bytes):
        events.append(("sent", data.split()[1].upper()))
        return send(self, data)

    def reading(self) -> bytes:
        events.append(("read", line := get_line(self)))
        return line

    monkeypatch.setattr(imaplib.IMAP4, "send", sending)
    monkeypatch.setattr(imaplib.IMAP4, "_get_line", reading)
    with opener(dovecot, dovecot.port)() as session:
        events.clear()
        examined = session.select("INBOX", modseq=True)
    status, examine = [i for i, (what, _) in enumerate(events) if what == "sent"][:2]
    assert (events[status][1], events[examine][1]) == (
        b"STATUS",
        b"EXAMINE",
    ) and examine == status + 1
    assert examined.highestmodseq == current


def test_metadata_chunks_go_eight_at_once_and_name_their_uids_as_ranges(dovecot, link, commands):
    seed_days(dovecot, per_day=20)  # 30 messages in INBOX, UIDs 1 to 30
    with opener(dovecot, link.port)() as session:
        session.select("INBOX")
        metas = session.fetch_meta(list(range(1, 31)), batch=3)  # 10 chunks
    assert [m.uid for m in metas] == list(range(1, 31))
    assert link.max_in_flight == 8  # not the bodies' pipeline depth (2)
    fetches = [line.split()[3] for line in commands if line.split()[1:3] == ["UID", "FETCH"]]
    assert fetches == [f"{first}:{first + 2}" for first in range(1, 31, 3)]


@pytest.mark.parametrize("opened", [True, False])
def test_workers_signed_in_at_open_select_the_folder_ahead_names(opened, dovecot, commands):
    """`open` signs the workers in before any plan, each then selecting what `ahead` names; a
    pool never opened ignores `ahead` (its workers select the folder of their first batch)."""
    seed_days(dovecot, per_day=8)
    open_session = opener(dovecot, dovecot.port)
    with open_session() as session:
        archive = list(sync_plan.plan_folder(session, "Archive", DAYS, {}).values())
    commands.clear()
    with FetchPool(
        open_session, workers=2, depth=2, max_messages=2, max_bytes=10**9, readahead_bytes=10**9
    ) as pool:
        if opened:
            pool.open()
        pool.ahead("INBOX")
        pool.announce(archive)
        fetched = [m.uid for plan in archive for m in pool.messages(plan)]
    assert fetched == [m.uid for plan in archive for m in plan.to_fetch] and len(fetched) == 12
    examined = [line.split()[2].strip('"') for line in commands if line.split()[1:2] == ["EXAMINE"]]
    assert examined.count("INBOX") == (2 if opened else 0) and "Archive" in examined


def test_the_pool_hands_over_skipped_subset_and_unannounced_plans(dovecot, tmp_path):
    """The reader may skip an announced plan, ask for part of one (bodies it could reuse), or
    ask for one never announced: each gets exactly its messages, in order."""
    seed_days(dovecot, per_day=12)
    open_session = opener(dovecot, dovecot.port)
    with open_session() as session:
        plans = [
            p
            for folder in FOLDERS
            for p in sync_plan.plan_folder(session, folder, DAYS, {}).values()
        ]
    with FetchPool(
        open_session, workers=2, depth=2, max_messages=2, max_bytes=10**9, readahead_bytes=1
    ) as pool:
        pool.announce(plans[:4])
        subset = dataclasses.replace(plans[1], to_fetch=plans[1].to_fetch[1::2])
        assert [m.uid for m in pool.messages(subset)] == [
            m.uid for m in subset.to_fetch
        ]  # plans[0] skipped
        assert [m.uid for m in pool.messages(plans[5])] == [
            m.uid for m in plans[5].to_fetch
        ]  # never announced
        assert [m.uid for m in pool.messages(plans[3])] == [m.uid for m in plans[3].to_fetch]


def test_a_server_refusing_extra_connections_leaves_the_others_to_fetch(dovecot, tmp_path, caplog):
    """Only the first fetching connection signs in (the others are refused, as past a provider's
    limit): that one fetches everything."""
    seed_days(dovecot, per_day=12)
    good, bad = opener(dovecot, dovecot.port), opener(dovecot, dovecot.port, password="wrong")
    opened = []

    def open_session():
        opened.append(True)
        return good() if len(opened) <= 2 else bad()  # the run's own session, then one fetcher

    rows = fetch_into(tmp_path, open_session, FetchLimits(2, 10**9, connections=4, depth=2))
    assert len(opened) == 4 and sum(map(len, rows.values())) == 36
    # The README's troubleshooting entry quotes this warning.
    assert "an extra IMAP connection could not be opened" in caplog.text


def test_no_fetching_connection_at_all_fails_the_run_with_the_cause(dovecot, tmp_path):
    seed_days(dovecot, per_day=12)
    good, bad = opener(dovecot, dovecot.port), opener(dovecot, dovecot.port, password="wrong")
    opened = []

    def open_session():
        opened.append(True)
        return good() if len(opened) == 1 else bad()

    with pytest.raises(ImapAuthError):
        fetch_into(tmp_path, open_session, FetchLimits(2, 10**9, connections=3, depth=2))


def test_uids_the_server_does_not_return_are_reported_under_the_pool(
    dovecot, proxy, proxied_alice, data_dir, instance, monkeypatch
):
    pin(monkeypatch)
    seed(dovecot, count=40)
    proxy.rewrites = [no_body_for({4, 13}, drop=True)]
    result = run(instance)
    assert result.success and proxy.connections >= 3  # the run's session and the fetching ones
    metadata = result.asset_materializations_for_node("raw_messages")[0].metadata
    assert metadata["uids_not_returned"].value == {"INBOX": [4, 13], "Archive": [4, 13]}
    assert len(stored_digests(data_dir)) == 36


def test_a_server_gone_for_good_under_the_pool_fails_clearly_then_a_rerun_completes(
    dovecot, proxy, proxied_alice, data_dir, instance, monkeypatch
):
    pin(monkeypatch)
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_RETRY_SECONDS", "1")
    seed(dovecot, count=60)
    proxy.outage_after(bodies=20, seconds=3600)
    result = run(instance)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "gave up after" in failure and dovecot.users["alice"] not in failure
    assert proxy.connections >= 3  # it was the fetching connections' failure
    proxy.close()
    proxy.start()
    assert run(instance).success
    stored = stored_digests(data_dir)
    assert len(stored) == 60 and set(stored) == server_digests(dovecot)
    assert ("ok",) in query(data_dir, "SELECT status FROM sync_log")


def test_an_oauth_account_signs_in_on_every_fetching_connection(
    oauth_dovecot, token_server, data_dir, instance, capsys, monkeypatch
):
    from mail_pipeline_tests.test_cli_accounts import run_cli
    from mail_pipeline_tests.test_oauth_accounts import (
        CLIENT_SECRET,
        add_args,
        at,
        stored_count,
        sync,
    )

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    monkeypatch.setenv("TESTS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_BATCH_MESSAGES", "2")
    token_server.client_secret = CLIENT_SECRET
    oauth_dovecot.append([("INBOX", message(f"m{i}", at(9)), at(9)) for i in range(8)])
    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(oauth_dovecot, token_server),
        stdin=token_server.issue_grant() + "\n",
    )
    assert code == 0, out
    before = token_server.introspections
    assert sync(instance).success
    assert stored_count(data_dir) == 8
    # the run's own sign-in and three fetching connections'
    assert token_server.introspections - before >= 4


def test_the_shaping_proxy_passes_bytes_untouched_both_ways():
    """A loopback echo server behind the proxy: 3 MB of random bytes come back unchanged, and
    the proxy counted them each way."""
    import os
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def echo():
        peer, _ = listener.accept()
        with peer:
            while data := peer.recv(65536):
                peer.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    proxy = ShapingProxy(listener.getsockname()[1], delay_ms=1, rate_mbit=800).start()
    payload = os.urandom(3_000_000)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as client:
            threading.Thread(
                target=lambda: (client.sendall(payload), client.shutdown(socket.SHUT_WR)),
                daemon=True,
            ).start()
            received = bytearray()
            while data := client.recv(65536):
                received += data
        crossed = proxy.stats()
    finally:
        proxy.close()
        listener.close()
    assert bytes(received) == payload
    assert (
        crossed["up"]["bytes"] == crossed["down"]["bytes"] == len(payload)
        and crossed["connections"] == 1
    )
    # the link's own clock: 3 MB at 800 Mbit/s, and what it spanned
    for way in (
        crossed["up"],
        crossed["down"],
    ):
        assert way["busy_s"] == pytest.approx(len(payload) / 100e6)
        assert way["idle_s"] == pytest.approx(
            way["last_s"] - way["first_s"] - way["busy_s"], abs=1e-6
        )


@pytest.mark.parametrize(
    ("chunks", "in_flight"),
    [
        # Two commands sent together, the first answered: one left.
        (
            [
                (b"c", b"A1 UID FETCH 1 (BODY.PEEK[])\r\nA2 UID FETCH 2 (BODY.PEEK[])\r\n"),
                (b"s", b"* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\nA1 OK done\r\n"),
            ],
            {b"A2"},
        ),
        # A body holding what looks like A1's completion, split across reads: A1 is still in flight.
        (
            [
                (b"c", b"A1 UID FETCH 1 (BODY.PEEK[])\r\n"),
                (b"s", b"* 1 FETCH (UID 1 BODY[] {14}\r\nx\r\nA1 OK "),
                (b"s", b"done\r\n"),
            ],
            {b"A1"},
        ),
        (
            [
                (b"c", b"A1 UID FETCH 1 (BODY.PEEK[])\r\n"),
                (b"s", b"* 1 FETCH (UID 1 BODY[] {14}\r\nx\r\nA1 OK done\r\n"),
                (b"s", b")\r\nA1 OK Fetch completed.\r\n"),
            ],
            set(),
        ),
    ],
)
def test_the_proxy_reads_tagged_completions_around_literals(chunks, in_flight):
    from mail_pipeline_tests.shaping_proxy import FetchWatch

    watch = FetchWatch(ShapingProxy(0))
    for side, data in chunks:
        (watch.client if side == b"c" else watch.server)(data)
    assert watch.pending == in_flight


def test_fetched_bodies_waiting_for_the_reader_stay_within_the_readahead(dovecot, monkeypatch):
    """Workers take a batch beyond the readahead only when the reader needs it next: with a slow
    reader, what waits is bounded by the readahead plus one batch per worker."""
    import time

    seed_days(dovecot, per_day=12)
    open_session = opener(dovecot, dovecot.port)
    with open_session() as session:
        plans = [
            p
            for folder in FOLDERS
            for p in sync_plan.plan_folder(session, folder, DAYS, {}).values()
        ]
    most, original = [0], FetchPool._take

    def take(self, folder, wait):
        batch = original(self, folder, wait)
        most[0] = max(most[0], self._ahead)
        return batch

    monkeypatch.setattr(FetchPool, "_take", take)
    readahead = 3000
    with FetchPool(
        open_session, workers=2, depth=2, max_messages=2, max_bytes=10**9, readahead_bytes=readahead
    ) as pool:
        pool.announce(plans)
        largest = max(
            sum(m.size for m in p.to_fetch[i : i + 2])
            for p in plans
            for i in range(0, len(p.to_fetch), 2)
        )
        for plan in plans:
            for _ in pool.messages(plan):
                time.sleep(0.01)  # a slow reader
    total = sum(m.size for p in plans for m in p.to_fetch)
    assert most[0] <= readahead + 2 * largest < total
