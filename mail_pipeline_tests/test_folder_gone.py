"""A folder that disappears from the server, end to end on a real Dovecot through the real asset
graph: deleted, its messages stay with deleted_at (keep) or are erased everywhere (mirror), for an
--all-folders account and a fixed-folder one alike, and the run and `status` say so; renamed, its
messages follow it to the new name without a body downloaded again; deleted and re-created, the
UIDVALIDITY-reset rule applies."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from dagster import materialize

from mail_pipeline import cli, search
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.accounts import AccountRegistry
from mail_pipeline_tests.conftest import register_user
from mail_pipeline_tests.graph import CHECKS
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import register as register_proxied
from mail_pipeline_tests.proxied_mailbox import tick
from mail_pipeline_tests.test_flag_sync import body_fetches, commands  # noqa: F401 (a fixture)
from mail_pipeline_tests.test_pipeline_e2e import GRAPH
from mail_pipeline_tests.test_retention import files_containing

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UTC = UTC
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = [TODAY - timedelta(days=n) + timedelta(hours=9) for n in (2, 1)]
ARCHIVED = {
    f"zqxarchived{n}": DAYS[n % 2] for n in range(3)
}  # marker -> its day: two on one, one on the other
KINDS = {"all_folders": ("*",), "fixed": ("INBOX", "Archive")}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.date().isoformat())


def register(dovecot, data_dir, folders: tuple[str, ...], policy: str) -> None:
    register_user(dovecot, data_dir / "accounts.json", folders=folders, on_server_delete=policy)


def archived(marker: str, without_id: bool = False) -> bytes:
    raw = message(
        marker, ARCHIVED[marker], subject=f"Archived {marker}", body=f"Note {marker} here.\r\n"
    )
    return raw.split(b"\r\n", 1)[1] if without_id else raw  # Message-ID is its first header


def seed(dovecot, without_id: bool = False) -> None:
    """One INBOX message a day, and the three archived ones in Archive (the first without a
    Message-ID when `without_id`: only its UIDVALIDITY and UID can tell it moved)."""
    dovecot.append(
        [
            ("INBOX", message(f"inbox{n}", day, subject=f"Inbox {n}"), day)
            for n, day in enumerate(DAYS)
        ]
    )
    dovecot.append(
        [
            ("Archive", archived(marker, without_id and n == 0), day)
            for n, (marker, day) in enumerate(ARCHIVED.items())
        ]
    )


def run_days(instance) -> list[dict]:
    """Every stage for each of DAYS; raw_messages' metadata of each day."""
    figures = []
    for day in DAYS:
        result = materialize(
            GRAPH + CHECKS,
            partition_key=partition_key("alice", day.date()),
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert result.success
        assert [e.check_name for e in result.get_asset_check_evaluations() if not e.passed] == []
        metadata = result.asset_materializations_for_node("raw_messages")[0].metadata
        figures.append({name: value.value for name, value in metadata.items()})
    return figures


def synced(dovecot, data_dir, instance, kind: str, policy: str, without_id: bool = False) -> None:
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    register(dovecot, data_dir, KINDS[kind], policy)
    seed(dovecot, without_id)
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_days(instance)
    assert len(emails(data_dir)) == 5


def emails(data_dir) -> dict[str, dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT subject, deleted_at, locations, deleted_reason FROM emails")
        return {
            row[0]: {
                "deleted_at": row[1],
                "folders": [loc["folder"] for loc in row[2]],
                "reason": row[3],
            }
            for row in cursor.fetchall()
        }


def query(data_dir, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def on_server(dovecot, change) -> None:
    client = dovecot.client()
    change(client)
    client.logout()


def status_lines(capsys) -> list[str]:
    capsys.readouterr()
    assert cli.main(["status"]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("policy", ["keep", "mirror"])
def test_a_deleted_folder_is_kept_marked_or_erased_and_said(
    dovecot, data_dir, instance, capsys, kind, policy
):
    synced(dovecot, data_dir, instance, kind, policy)
    on_server(dovecot, lambda client: client.delete_folder("Archive"))

    figures = run_days(instance)

    stored = emails(data_dir)
    assert len(stored) == (5 if policy == "keep" else 2)
    assert [f["folders_missing_on_server"] for f in figures] == [["alice/Archive"]] * 2
    assert [f["folder_gone"] for f in figures] == [2, 1]  # ARCHIVED's messages of each day
    assert [f["erased"] for f in figures] == ([0, 0] if policy == "keep" else [2, 1])
    assert [f["gone_from_server"] for f in figures] == [2, 1]
    archive = [line for line in status_lines(capsys) if " Archive " in line]
    assert (
        len(archive) == 1
        and "missing" in archive[0]
        and "does not exist on the server" in archive[0]
    )
    if policy == "keep":
        assert len(stored) == 5
        assert all(stored[f"Archived {m}"]["deleted_at"] is not None for m in ARCHIVED)
        assert {stored[f"Archived {m}"]["reason"] for m in ARCHIVED} == {"folder_gone"}
        assert all(stored[f"Inbox {n}"]["deleted_at"] is None for n in range(2))
        assert query(
            data_dir, "SELECT DISTINCT deleted_reason FROM raw_messages WHERE folder = 'Archive'"
        ) == [("folder_gone",)]
        assert (
            query(data_dir, "SELECT count(*) FROM email_chunks WHERE deleted_at IS NOT NULL")[0][0]
            >= 3
        )
        for marker in ARCHIVED:
            hits = search(marker, mode="text")
            assert [h.subject for h in hits] == [f"Archived {marker}"] and hits[
                0
            ].deleted_at is not None
        assert "3 stored" in archive[0]
    else:
        assert sorted(stored) == ["Inbox 0", "Inbox 1"]
        assert query(data_dir, "SELECT count(*) FROM raw_messages WHERE folder = 'Archive'") == [
            (0,)
        ]
        for marker in ARCHIVED:
            assert search(marker, mode="text") == []
            assert files_containing(data_dir, marker) == []

    quiet = run_days(instance)  # a later run: nothing left to mark, nothing erased twice
    assert [(f["folder_gone"], f["erased"]) for f in quiet] == [(0, 0), (0, 0)]
    # A gone folder's marked rows do not send an all-folders account's later runs to the full plan.
    assert [f["sync_path"] for f in quiet] == ["plan" if kind == "fixed" else "changes"] * 2
    assert emails(data_dir) == stored


def test_a_folder_missing_from_one_list_is_confirmed_before_anything_is_marked(
    dovecot, proxy, data_dir, instance
):
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    register_proxied(dovecot, proxy, data_dir, folders=("*",))
    seed(dovecot)
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_days(instance)
    hidden = []

    def hide_once(response):
        """The first LIST line naming Archive left out: the run's own LIST; a LIST of its name shows it."""
        line = response[0] if len(response) == 1 and isinstance(response[0], bytes) else b""
        if not hidden and line.startswith(b"* LIST ") and line.endswith(b" Archive"):
            hidden.append(line)
            return []
        return [response]

    proxy.rewrites = [hide_once]
    figures = run_days(instance)

    assert hidden
    assert [
        (f["folder_gone"], f["gone_from_server"], f["folders_missing_on_server"]) for f in figures
    ] == [(0, 0, [])] * 2
    assert [f["messages_already_stored"] for f in figures] == [3, 2]
    assert all(e["deleted_at"] is None for e in emails(data_dir).values())


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_sensor_requests_the_days_a_deleted_folder_held(dovecot, data_dir, instance, kind):
    synced(dovecot, data_dir, instance, kind, "keep")
    first = tick(instance, None)
    on_server(dovecot, lambda client: client.delete_folder("Archive"))

    found = tick(instance, first.cursor)

    assert sorted(str(r.partition_key) for r in found.run_requests) == [
        f"alice|{day.date()}" for day in DAYS
    ]


@pytest.mark.parametrize("policy", ["keep", "mirror"])
def test_a_renamed_folder_is_followed_without_downloading_again(
    dovecot, data_dir, instance, commands, policy
):
    synced(dovecot, data_dir, instance, "all_folders", policy, without_id=True)
    assert query(data_dir, "SELECT count(*) FROM raw_messages WHERE message_id IS NULL") == [(1,)]
    on_server(dovecot, lambda client: client.rename_folder("Archive", "Projects"))

    commands.clear()
    figures = run_days(instance)

    assert body_fetches(commands) == []
    assert [
        (f["messages_new"], f["bodies_reused"], f["gone_from_server"], f["erased"]) for f in figures
    ] == [(0, 2, 0, 0), (0, 1, 0, 0)]
    assert [f["folders_missing_on_server"] for f in figures] == [["alice/Archive"]] * 2
    stored = emails(data_dir)
    assert len(stored) == 5 and all(e["deleted_at"] is None for e in stored.values())
    assert all(stored[f"Archived {m}"]["folders"] == ["Projects"] for m in ARCHIVED)
    assert query(
        data_dir, "SELECT folder, count(*) FROM raw_messages GROUP BY folder ORDER BY folder"
    ) == [("INBOX", 2), ("Projects", 3)]
    for marker in ARCHIVED:
        hits = search(marker, mode="text")
        assert [h.subject for h in hits] == [f"Archived {marker}"] and hits[0].deleted_at is None


@pytest.mark.parametrize("policy", ["keep", "mirror"])
def test_a_renamed_folder_of_a_fixed_list_is_gone(dovecot, data_dir, instance, policy):
    synced(dovecot, data_dir, instance, "fixed", policy)
    on_server(dovecot, lambda client: client.rename_folder("Archive", "Projects"))

    figures = run_days(instance)

    assert [(f["messages_new"], f["folder_gone"]) for f in figures] == [
        (0, 2),
        (0, 1),
    ]  # Projects is not synced
    stored = emails(data_dir)
    if policy == "keep":
        assert all(stored[f"Archived {m}"]["deleted_at"] is not None for m in ARCHIVED)
    else:
        assert sorted(stored) == ["Inbox 0", "Inbox 1"]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("policy", ["keep", "mirror"])
def test_a_folder_recreated_with_a_new_uidvalidity_is_a_reset(
    dovecot, data_dir, instance, commands, kind, policy
):
    synced(dovecot, data_dir, instance, kind, policy)
    before = query(
        data_dir, "SELECT DISTINCT uidvalidity FROM raw_messages WHERE folder = 'Archive'"
    )
    on_server(dovecot, lambda client: client.delete_folder("Archive"))
    time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock's seconds
    seed_archive = [("Archive", archived(marker), day) for marker, day in ARCHIVED.items()]
    dovecot.append(seed_archive)

    commands.clear()
    figures = run_days(instance)

    assert body_fetches(commands) == []
    assert [(f["messages_new"], f["bodies_reused"], f["folder_gone"]) for f in figures] == [
        (0, 2, 0),
        (0, 1, 0),
    ]
    after = query(
        data_dir, "SELECT DISTINCT uidvalidity FROM raw_messages WHERE folder = 'Archive'"
    )
    assert len(after) == 1 and after != before
    stored = emails(data_dir)
    assert len(stored) == 5 and all(e["deleted_at"] is None for e in stored.values())


def test_mirror_counts_every_row_it_erases(dovecot, data_dir, instance):
    """Tombstones kept under `keep` and erased once the account mirrors count as erased (issue #24:
    a run that removed 4 rows reported 1)."""
    synced(dovecot, data_dir, instance, "fixed", "keep")

    def expunge(folder: str, *subjects: str):
        def change(client):
            client.select_folder(folder)
            client.delete_messages(
                [uid for subject in subjects for uid in client.search(["SUBJECT", subject])]
            )
            client.expunge()

        on_server(dovecot, change)

    expunge("Archive", "zqxarchived0", "zqxarchived2")  # both on DAYS[0]
    assert [f["gone_from_server"] for f in run_days(instance)] == [2, 0]
    AccountRegistry(data_dir / "accounts.json").update("alice", on_server_delete="mirror")
    expunge("INBOX", "Inbox 0")

    figures = run_days(instance)

    assert [(f["gone_from_server"], f["erased"]) for f in figures] == [(1, 3), (0, 0)]
    assert sorted(emails(data_dir)) == ["Archived zqxarchived1", "Inbox 1"]
