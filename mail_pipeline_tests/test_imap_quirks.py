"""raw_messages, the sensor and the IMAP session against the real Dovecot behind imap_proxy.py,
which reshapes its answers as other servers do: FETCH spacing and order, unsolicited FETCH
responses, requested messages left out, other wordings of NO, no UIDNEXT, an outage."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest
from dagster import Definitions, build_sensor_context, materialize

from mail_pipeline.defs.assets.raw_messages import raw_messages
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.sensors import new_mail_sensor_every
from mail_pipeline.imap.errors import ImapAuthError, ImapError
from mail_pipeline.imap.records import MessageMeta
from mail_pipeline.imap.session import ImapConfig, ImapSession
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.sync import changes
from mail_pipeline_tests import imap_proxy
from mail_pipeline_tests.imap_proxy import ImapProxy
from mail_pipeline_tests.mailgen import message

pytestmark = pytest.mark.integration
UTC = timezone.utc
DAY = date(2026, 11, 10)
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
FOLDERS = ("INBOX", "Archive")


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.date().isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_BATCH_MESSAGES", "5")  # several FETCH batches per folder


@pytest.fixture
def proxy(dovecot):
    proxy = ImapProxy(dovecot.port).start()
    yield proxy
    proxy.close()


@pytest.fixture
def account(dovecot, proxy, data_dir):
    """Alice's INBOX and Archive through the proxy (plain IMAP, allowed on loopback)."""
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    return AccountRegistry(data_dir / "accounts.json").add(
        Account(slug="alice", email="alice@example.test", host="127.0.0.1", port=proxy.port, username="alice",
                password_token="", security="plain", folders=FOLDERS),
        dovecot.users["alice"], crypto.load_cipher())


def seed(dovecot, count: int = 12) -> None:
    when = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    dovecot.append([(FOLDERS[i % 2], message(f"m{i:03d}", when), when + timedelta(seconds=i)) for i in range(count)])
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([1, 3], [b"\\Flagged", b"$Label1"])
    client.logout()


def server_digests(dovecot) -> set[str]:
    client = dovecot.client()
    digests = set()
    for folder in FOLDERS:
        client.select_folder(folder, readonly=True)
        digests |= {hashlib.sha256(item[b"BODY[]"]).hexdigest()
                    for item in client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]"]).values()}
    client.logout()
    return digests


def query(data_dir, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def stored_digests(data_dir) -> list[str]:
    return [row[0] for row in query(data_dir, "SELECT sha256 FROM raw_messages")]


def run(instance, day: date = DAY):
    instance.add_dynamic_partitions("accounts", ["alice"])
    return materialize([raw_messages], partition_key=partition_key("alice", day), instance=instance,
                       resources=build_resources(get_settings()), raise_on_error=False)


QUIRKS = {
    "space-before-close": [imap_proxy.space_before_close(1)],
    "two-spaces-before-close": [imap_proxy.space_before_close(2)],
    "runs-of-spaces": [imap_proxy.runs_of_spaces],
    "uid-right-after-literal": [imap_proxy.uid_last],
    "unsolicited-fetch-responses": [imap_proxy.unsolicited],
    "all-at-once": [imap_proxy.uid_last, imap_proxy.runs_of_spaces, imap_proxy.space_before_close(2),
                    imap_proxy.unsolicited],
}


@pytest.mark.parametrize("quirk", QUIRKS)
def test_raw_messages_stores_exactly_the_servers_messages_under_each_quirk(quirk, dovecot, proxy, account, data_dir,
                                                                           instance):
    seed(dovecot)
    proxy.rewrites = QUIRKS[quirk]
    result = run(instance)
    assert result.success
    assert proxy.rewritten > 0  # the quirk was played
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}
    flags = dict(query(data_dir, "SELECT message_id, flags FROM raw_messages WHERE folder = 'INBOX'"))
    assert set(flags["m000@example.test"]) == {"\\Flagged", "$Label1"}


LEFT_OUT = {
    "ok-with-no-data": imap_proxy.no_body_for({2}, drop=True),  # UID 2 of both folders
    "nil-body": imap_proxy.no_body_for({2}, drop=False),
    "no-with-the-others": imap_proxy.fetch_no_for({2}),
}


@pytest.mark.parametrize("left_out", LEFT_OUT)
def test_a_requested_message_left_out_is_recorded_and_fetched_next_run(left_out, dovecot, proxy, account, data_dir,
                                                                       instance):
    seed(dovecot)
    proxy.rewrites = [LEFT_OUT[left_out]]
    result = run(instance)
    assert result.success
    metadata = result.asset_materializations_for_node("raw_messages")[0].metadata
    assert metadata["uids_not_returned"].value == {"INBOX": [2], "Archive": [2]}
    assert "2 requested message(s) not returned by the server" in metadata["summary"].value
    stored = stored_digests(data_dir)
    assert len(stored) == 10 and set(stored) < server_digests(dovecot)
    logged = dict(query(data_dir, "SELECT folder, struct_pack(status, error) FROM sync_log"))
    for folder in FOLDERS:
        assert logged[folder]["status"] == "partial"
        assert "1 requested message(s)" in logged[folder]["error"] and "UIDs 2)" in logged[folder]["error"]

    proxy.rewrites = []
    assert run(instance).success
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT last_status FROM sync_status")} == {"ok"}


def test_a_fetch_answered_unavailable_is_retried(dovecot, proxy, account, data_dir, instance):
    seed(dovecot)
    proxy.rewrites = [imap_proxy.fetch_no_for({2}, b"NO [UNAVAILABLE] Internal error occurred, try again", times=1)]
    assert run(instance).success
    assert proxy.rewritten > 0
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}


def test_a_3s_outage_mid_fetch_leaves_the_run_successful_with_nothing_missing(dovecot, proxy, account, data_dir,
                                                                               instance):
    seed(dovecot, count=60)
    proxy.outage_after(bodies=17, seconds=3)
    result = run(instance)
    assert result.success
    assert proxy.outages == 1
    stored = stored_digests(data_dir)
    assert len(stored) == 60 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}


def test_uidnext_comes_from_status_when_examine_has_none(dovecot, proxy, account, data_dir, instance):
    seed(dovecot)
    proxy.rewrites = [imap_proxy.no_uidnext]
    assert run(instance).success
    assert proxy.rewritten > 0
    client = dovecot.client()
    expected = {folder: client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"] - 1 for folder in FOLDERS}
    client.logout()
    assert dict(query(data_dir, "SELECT folder, highest_uid FROM sync_log")) == expected == {"INBOX": 6, "Archive": 6}


def test_uidnext_is_the_highest_uid_plus_one_when_status_is_refused_too(dovecot, proxy, account, data_dir, instance):
    seed(dovecot)
    client = dovecot.client()  # INBOX's last message expunged: UIDNEXT stays 7, the highest UID is 5
    client.select_folder("INBOX")
    client.delete_messages([6])
    client.expunge()
    client.logout()
    proxy.rewrites = [imap_proxy.no_uidnext, imap_proxy.refuse_status(b"INBOX"), imap_proxy.refuse_status(b"Archive")]
    assert run(instance).success
    assert dict(query(data_dir, "SELECT folder, highest_uid FROM sync_log")) == {"INBOX": 5, "Archive": 6}
    assert len(stored_digests(data_dir)) == 11


def tick(instance, cursor):
    resources = build_resources(get_settings())
    sensor = new_mail_sensor_every(60)
    definitions = Definitions(assets=[raw_messages], sensors=[sensor], resources=resources)
    context = build_sensor_context(instance=instance, cursor=cursor, repository_def=definitions.get_repository_def(),
                                   resources=resources)
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


@pytest.mark.parametrize("wording", [b"Mailbox does not exist", b"Mailbox does not exist, or must be subscribed to."])
def test_a_missing_folder_in_other_words_never_stops_the_sensor(wording, dovecot, proxy, account, instance):
    proxy.rewrites = [imap_proxy.no_wording(wording)]
    at = lambda days: TODAY - timedelta(days=days) + timedelta(hours=9)  # noqa: E731
    dovecot.append([("Archive", message("a", at(2)), at(2))])
    cursor = tick(instance, None).cursor
    client = dovecot.client()
    client.delete_folder("Archive")
    client.logout()

    quiet = tick(instance, cursor)
    assert proxy.rewritten > 0  # STATUS Archive was refused in the other wording
    assert "alice: folder 'Archive' does not exist on the server" in quiet.skip_reason.skip_message
    dovecot.append([("INBOX", message("new", at(0)), at(0))])
    found = tick(instance, quiet.cursor)
    assert [str(r.partition_key) for r in found.run_requests] == [f"alice|{at(0).date()}"]


def session(dovecot, proxy, password: str | None = None, retry_s: float = 60.0) -> ImapSession:
    config = ImapConfig(host="127.0.0.1", port=proxy.port, username="alice", security="plain", retry_s=retry_s)
    return ImapSession(config, password or dovecot.users["alice"])


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
        with pytest.raises(ImapError, match=r"(refused by|connection to) 127\.0\.0\.1.*gave up after \d+ attempt") as failure:
            imap.status("INBOX")
    assert failure.value.transient


def test_bad_credentials_are_never_retried(dovecot, proxy):
    with pytest.raises(ImapAuthError):
        session(dovecot, proxy, password="wrong").__enter__()
    assert proxy.connections == 1


def test_a_folder_that_refuses_status_but_is_listed_keeps_its_cursor(dovecot, proxy, account, instance):
    at = lambda days: TODAY - timedelta(days=days) + timedelta(hours=9)  # noqa: E731
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])

    proxy.rewrites = [imap_proxy.refuse_status(b"Archive")]
    refused = tick(instance, first.cursor)
    assert proxy.rewritten > 0
    assert [str(r.partition_key) for r in refused.run_requests] == [f"alice|{at(0).date()}"]
    assert changes.load_cursors(refused.cursor)["alice"]["Archive"] == changes.load_cursors(first.cursor)["alice"]["Archive"]

    proxy.rewrites = []
    again = tick(instance, refused.cursor)  # Archive's new mail is still found from the kept cursor
    assert [str(r.partition_key) for r in again.run_requests] == [f"alice|{at(1).date()}"]


def test_a_uidvalidity_change_during_an_outage_fails_instead_of_reading_other_messages(dovecot, proxy):
    seed(dovecot)
    with session(dovecot, proxy) as imap:
        imap.select("Archive")
        proxy.outage(1.5)
        client = dovecot.client()  # straight to Dovecot: the folder is re-created meanwhile
        client.delete_folder("Archive")
        client.create_folder("Archive")
        client.logout()
        dovecot.append([("Archive", message("other", datetime(2026, 11, 10, 9, tzinfo=UTC)), datetime(2026, 11, 10, 9, tzinfo=UTC))])
        with pytest.raises(ImapError, match="UIDVALIDITY of 'Archive' changed while reconnecting"):
            imap.fetch_meta([1])


def test_all_folders_skips_trash_junk_and_drafts_by_name_without_special_use(dovecot, proxy, data_dir, instance):
    AccountRegistry(data_dir / "accounts.json").add(
        Account(slug="alice", email="alice@example.test", host="127.0.0.1", port=proxy.port, username="alice",
                password_token="", security="plain", folders=("*",)),
        dovecot.users["alice"], crypto.load_cipher())
    at = TODAY - timedelta(days=1)
    dovecot.append([(folder, message(folder, at), at) for folder in ("INBOX", "Trash", "Junk", "Drafts", "Projects")])
    proxy.rewrites = [imap_proxy.no_special_use]
    first = tick(instance, None)
    assert proxy.rewritten > 0  # Dovecot's \Trash, \Junk and \Drafts were hidden
    assert set(changes.load_cursors(first.cursor)["alice"]) == {"INBOX", "Projects"}


def test_uids_left_out_of_any_fetch_are_warned_about(dovecot, proxy, caplog):
    seed(dovecot)
    proxy.rewrites = [imap_proxy.no_body_for({2}, drop=True, bodies_only=False)]
    with session(dovecot, proxy) as imap:
        imap.select("INBOX")
        metas = imap.fetch_meta([1, 2, 3])
        asked = [*metas, MessageMeta(uid=2, internaldate=metas[0].internaldate, size=1)]
        fetched = list(imap.fetch_messages(asked, max_messages=10, max_bytes=10**9))
    assert [m.uid for m in metas] == [1, 3] and [m.uid for m in fetched] == [1, 3]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert all("returned nothing for 1 of 3 requested UID(s) in 'INBOX': 2 (not stored" in w for w in warnings)



def test_a_folder_deleted_between_list_and_examine_fails_alone(dovecot, proxy, account, data_dir, instance):
    seed(dovecot)
    assert run(instance).success

    def delete_archive():
        client = dovecot.client()  # straight to Dovecot, while the run waits for its LIST
        client.delete_folder("Archive")
        client.logout()

    proxy.rewrites = [imap_proxy.after_first(b"* LIST ", delete_archive), imap_proxy.no_wording(b"Mailbox does not exist")]
    dovecot.append([("INBOX", message("late", datetime(2026, 11, 10, 18, tzinfo=UTC)), datetime(2026, 11, 10, 18, tzinfo=UTC))])
    assert run(instance).success
    assert len(stored_digests(data_dir)) == 13  # INBOX's new message, and Archive's stored ones kept
    status = dict(query(data_dir, "SELECT folder, last_status FROM sync_status"))
    assert status == {"INBOX": "ok", "Archive": "missing"}


def test_the_sensor_reads_new_mail_through_every_fetch_quirk(dovecot, proxy, account, instance):
    at = lambda days: TODAY - timedelta(days=days) + timedelta(hours=9)  # noqa: E731
    proxy.rewrites = QUIRKS["all-at-once"]
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])
    found = tick(instance, first.cursor)  # its FETCH of INTERNALDATE and size, reshaped
    assert proxy.rewritten > 0
    assert sorted(str(r.partition_key) for r in found.run_requests) == [f"alice|{at(1).date()}", f"alice|{at(0).date()}"]


def test_a_folder_deleted_between_status_and_examine_leaves_the_sensor_polling(dovecot, proxy, account, instance):
    at = lambda days: TODAY - timedelta(days=days) + timedelta(hours=9)  # noqa: E731
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])

    deleted = []

    def delete_archive():
        client = dovecot.client()  # straight to Dovecot, after the sensor saw Archive's new UIDNEXT
        client.delete_folder("Archive")
        client.logout()
        deleted.append("Archive")

    proxy.rewrites = [imap_proxy.after_first(b"* STATUS Archive ", delete_archive),
                      imap_proxy.no_wording(b"Mailbox does not exist")]
    found = tick(instance, first.cursor)
    assert deleted == ["Archive"]
    assert [str(r.partition_key) for r in found.run_requests] == [f"alice|{at(0).date()}"]
    assert set(changes.load_cursors(found.cursor)["alice"]) == {"INBOX"}
