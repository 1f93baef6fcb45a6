"""raw_messages against a real Dovecot: day edges, idempotence, increments, UIDVALIDITY, failures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pytest
from dagster import materialize

from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.graph import raw_messages
from mail_pipeline_tests.mailgen import message

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)
UTC = UTC


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")


def seed(dovecot):
    """Three days in two folders, with messages on both sides of each UTC midnight."""
    mail = [
        (
            "INBOX",
            message("a1", datetime(2026, 11, 10, 0, 0, 0, tzinfo=UTC)),
            datetime(2026, 11, 10, 0, 0, 0, tzinfo=UTC),
        ),
        (
            "INBOX",
            message("a2", datetime(2026, 11, 10, 12, 0, tzinfo=UTC)),
            datetime(2026, 11, 10, 12, 0, tzinfo=UTC),
        ),
        (
            "INBOX",
            message("a3", datetime(2026, 11, 10, 23, 59, 59, tzinfo=UTC)),
            datetime(2026, 11, 10, 23, 59, 59, tzinfo=UTC),
        ),
        (
            "INBOX",
            message("b1", datetime(2026, 11, 11, 0, 0, 0, tzinfo=UTC)),
            datetime(2026, 11, 11, 0, 0, 0, tzinfo=UTC),
        ),
        (
            "Archive",
            message("b2", datetime(2026, 11, 11, 9, 0, tzinfo=UTC)),
            datetime(2026, 11, 11, 9, 0, tzinfo=UTC),
        ),
        # 01:30 at +02:00 is still the 11th in UTC: the server's timezone must not decide the day.
        (
            "Archive",
            message("b3", datetime(2026, 11, 11, 23, 30, tzinfo=UTC)),
            datetime.fromisoformat("2026-11-12T01:30:00+02:00"),
        ),
        (
            "Archive",
            message("c1", datetime(2026, 11, 12, 8, 0, tzinfo=UTC)),
            datetime(2026, 11, 12, 8, 0, tzinfo=UTC),
        ),
    ]
    dovecot.append(mail)
    return {D1: {"a1", "a2", "a3"}, D2: {"b1", "b2", "b3"}, D3: {"c1"}}


def run(instance, day, account="alice"):
    instance.add_dynamic_partitions("accounts", [account])
    result = materialize(
        [raw_messages],
        partition_key=partition_key(account, day),
        resources=build_resources(get_settings()),
        instance=instance,
        raise_on_error=False,
    )
    return result


def stored_ids(data_dir, day, deleted: bool = False) -> list[str]:
    """Message-ids stored on `day`: those still on the server, or (`deleted`) those kept after leaving it."""
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            f"SELECT message_id FROM raw_messages WHERE day = ? AND deleted_at IS {'NOT ' if deleted else ''}NULL "
            "ORDER BY message_id",
            [day],
        ).fetchall()
    finally:
        con.close()
    return [r[0].split("@")[0] for r in rows]


def fetch_counter(monkeypatch) -> list[int]:
    from mail_pipeline import imap

    counts: list[int] = []
    original = imap.ImapSession.fetch_messages

    def counting(self, metas, **kw):
        for message_ in original(self, metas, **kw):
            counts.append(message_.uid)
            yield message_

    monkeypatch.setattr(imap.ImapSession, "fetch_messages", counting)
    return counts


def test_each_day_holds_exactly_its_messages_and_reruns_fetch_nothing(
    dovecot, alice, data_dir, instance, monkeypatch
):
    expected = seed(dovecot)
    for day in (D1, D2, D3):
        assert run(instance, day).success
    for day, ids in expected.items():
        assert set(stored_ids(data_dir, day)) == ids
    files = {
        d: (data_dir / f"lake/raw_messages/account=alice/day={d}/part-0.parquet").read_bytes()
        for d in expected
    }
    fetched = fetch_counter(monkeypatch)
    for day in (D1, D2, D3):
        assert run(instance, day).success
    assert fetched == []
    assert {
        d: (data_dir / f"lake/raw_messages/account=alice/day={d}/part-0.parquet").read_bytes()
        for d in expected
    } == files

    dovecot.append(
        [
            (
                "INBOX",
                message("b4", datetime(2026, 11, 11, 15, 0, tzinfo=UTC)),
                datetime(2026, 11, 11, 15, 0, tzinfo=UTC),
            )
        ]
    )
    assert run(instance, D2).success
    assert len(fetched) == 1
    assert stored_ids(data_dir, D2) == ["b1", "b2", "b3", "b4"]


def test_uidvalidity_change_leaves_right_rows_and_no_duplicates(dovecot, alice, data_dir, instance):
    """The folder's old UIDs are void: what the new folder does not hold is kept as deleted (policy keep)."""
    seed(dovecot)
    assert run(instance, D2).success
    client = dovecot.client()
    client.delete_folder("Archive")
    client.create_folder("Archive")
    client.logout()
    dovecot.append(
        [
            (
                "Archive",
                message("b5", datetime(2026, 11, 11, 10, 0, tzinfo=UTC)),
                datetime(2026, 11, 11, 10, 0, tzinfo=UTC),
            )
        ]
    )
    assert run(instance, D2).success
    assert stored_ids(data_dir, D2) == ["b1", "b5"]
    assert stored_ids(data_dir, D2, deleted=True) == ["b2", "b3"]


def test_a_configured_folder_gone_from_the_server_fails_alone(dovecot, alice, data_dir, instance):
    seed(dovecot)
    assert run(instance, D2).success
    client = dovecot.client()
    client.delete_folder("Archive")
    client.logout()
    dovecot.append(
        [
            (
                "INBOX",
                message("b4", datetime(2026, 11, 11, 15, 0, tzinfo=UTC)),
                datetime(2026, 11, 11, 15, 0, tzinfo=UTC),
            )
        ]
    )

    result = run(instance, D2)
    assert result.success  # INBOX still syncs
    assert stored_ids(data_dir, D2) == ["b1", "b4"]
    assert stored_ids(data_dir, D2, deleted=True) == [
        "b2",
        "b3",
    ]  # Archive's stored copies are kept, marked deleted
    metadata = result.asset_materializations_for_node("raw_messages")[0].metadata
    assert metadata["folders_missing_on_server"].value == ["alice/Archive"]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        status = dict(
            con.execute(
                "SELECT folder, struct_pack(last_status, consecutive_failures, last_error) "
                "FROM sync_status WHERE account = 'alice'"
            ).fetchall()
        )
    assert status["INBOX"]["last_status"] == "ok" and status["INBOX"]["consecutive_failures"] == 0
    assert (
        status["Archive"]["last_status"] == "missing"
        and status["Archive"]["consecutive_failures"] == 1
    )
    assert "does not exist on the server" in status["Archive"]["last_error"]


def test_server_stopped_mid_fetch_fails_clearly_then_rerun_completes(
    dovecot, alice, data_dir, instance, monkeypatch
):
    many = [
        (
            "INBOX",
            message(f"m{i:03d}", datetime(2026, 11, 10, 10, 0, tzinfo=UTC)),
            datetime(2026, 11, 10, 10, 0, i % 60, tzinfo=UTC),
        )
        for i in range(120)
    ]
    dovecot.append(many)
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_BATCH_MESSAGES", "20")
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_RETRY_SECONDS", "1")  # the server stays down
    # The run's own session fetches, through the hook; test_wan_fetch.py stops a server under the pool.
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_CONNECTIONS", "1")
    from mail_pipeline import imap

    original = imap.ImapSession.fetch_messages

    def stop_server_midway(self, metas, **kw):
        for n, item in enumerate(original(self, metas, **kw)):
            if n == 30:
                dovecot.stop()
            yield item

    monkeypatch.setattr(imap.ImapSession, "fetch_messages", stop_server_midway)
    result = run(instance, D1)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "connection refused" in failure or "connection to 127.0.0.1" in failure
    assert dovecot.users["alice"] not in failure
    monkeypatch.setattr(imap.ImapSession, "fetch_messages", original)
    dovecot.start()
    assert run(instance, D1).success
    ids = stored_ids(data_dir, D1)
    assert len(ids) == 120 and len(set(ids)) == 120
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    statuses = con.execute("SELECT status FROM sync_log ORDER BY started_at").fetchall()
    health = con.execute(
        "SELECT last_status, consecutive_failures FROM sync_status WHERE folder = 'INBOX'"
    ).fetchone()
    con.close()
    assert ("ok",) in statuses and any(s != ("ok",) for s in statuses)
    assert health == ("ok", 0)


def test_reader_holding_the_catalog_open_neither_blocks_nor_breaks(
    dovecot, alice, data_dir, instance
):
    seed(dovecot)
    assert run(instance, D1).success
    reader = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    assert reader.execute("SELECT count(*) FROM raw_messages").fetchone()[0] == 3
    assert run(instance, D2).success and run(instance, D3).success
    assert reader.execute("SELECT count(*) FROM raw_messages").fetchone()[0] == 7
    reader.close()


def test_empty_data_directory_views_return_zero_rows(data_dir):
    from mail_pipeline.storage.catalog import DERIVED_VIEWS, TABLE_VIEWS, ensure_catalog
    from mail_pipeline.storage.lake import Lake

    ensure_catalog(data_dir / "warehouse.duckdb", Lake(data_dir / "lake"))
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    for view in [*TABLE_VIEWS, *DERIVED_VIEWS]:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0, view
    con.close()
