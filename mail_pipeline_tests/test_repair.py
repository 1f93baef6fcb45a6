"""Damaged lake files against a real Dovecot: the stages that read them fail naming the file,
doctor finds them, `mail-pipeline repair` moves them aside and names the messages the server no
longer has, and the partition's next run stores exactly what the server still has."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from dagster import materialize

from mail_pipeline import cli
from mail_pipeline.cli.doctor import check_lake, diagnose
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.objects import Location
from mail_pipeline_tests.damage import damage_column, garbage, truncate
from mail_pipeline_tests.graph import emails, raw_messages
from mail_pipeline_tests.mailgen import message

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 10)
UTC = UTC


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")


def run(instance, assets):
    instance.add_dynamic_partitions("accounts", ["alice"])
    return materialize(
        assets,
        partition_key=partition_key("alice", DAY),
        resources=build_resources(get_settings()),
        instance=instance,
        raise_on_error=False,
    )


def failure_message(result) -> str:
    return "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure
    )


def server_sha256s(dovecot) -> set[str]:
    client = dovecot.client()
    found = set()
    for folder in ("INBOX", "Archive"):
        client.select_folder(folder, readonly=True)
        found |= {
            hashlib.sha256(item[b"BODY[]"]).hexdigest()
            for item in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values()
        }
    client.logout()
    return found


def test_repair_quarantines_lists_the_lost_and_the_next_run_refetches(
    dovecot, alice, data_dir, instance, capsys
):
    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    dovecot.append(
        [("INBOX", message(f"in{i}", when), when) for i in range(3)]
        + [("Archive", message("ar0", when), when)]
    )
    assert run(instance, [raw_messages, emails]).success
    lake = Lake(data_dir / "lake")
    raw_file, emails_file = (
        lake.partition_file("raw_messages", "alice", DAY),
        lake.partition_file("emails", "alice", DAY),
    )
    damage_column(raw_file, "raw")
    # A column the emails stage reads on every run (a run that only updates flags reads no text,
    # and one that finds its raw file unchanged reads the raw file's footer alone).
    damage_column(emails_file, "email_id")
    client = dovecot.client()
    client.select_folder("INBOX")
    gone = client.search(["HEADER", "Message-ID", "in1@example.test"])
    client.delete_messages(gone)
    client.expunge()
    client.logout()

    # it reads the damaged raw file: the failure names it and the remedy
    result = run(instance, [emails])
    assert not result.success
    assert str(raw_file) in failure_message(result) and "mail-pipeline repair" in failure_message(
        result
    )
    # The run set the damaged emails file aside (to rebuild it) before the raw file stopped it.
    found = {f.check: f for f in diagnose(get_settings(), [check_lake])}
    assert (
        not found["lake raw_messages"].ok
        and "lake emails" not in found
        and not emails_file.exists()
    )

    assert cli.main(["repair"]) == 1  # a message is lost: scripts must notice
    out = capsys.readouterr().out
    assert "4 message(s) listed in the file" in out
    assert "3 message(s) of that day are on the server" in out
    assert "1 message(s) are no longer on the server" in out and "<in1@example.test>" in out
    assert "in0@example.test" not in out and f"--account alice --from {DAY} --to {DAY}" in out
    assert not raw_file.exists() and not emails_file.exists()
    [report] = (data_dir / "quarantine").glob("*/report.json")
    entries = {e["table"]: e for e in json.loads(report.read_text())}
    assert [row["message_id"] for row in entries["raw_messages"]["lost"]] == ["in1@example.test"]
    assert (
        report.parent / "lake" / raw_file.relative_to(data_dir / "lake")
    ).is_file()  # moved, never deleted

    assert run(instance, [raw_messages, emails]).success
    stored = (
        lake.read_partition("raw_messages", "alice", DAY, columns=["sha256"])
        .column("sha256")
        .to_pylist()
    )
    assert sorted(stored) == sorted(server_sha256s(dovecot)) and len(stored) == 3
    assert len(lake.read_partition("emails", "alice", DAY)) == 3
    assert all(f.ok for f in diagnose(get_settings(), [check_lake]))
    assert cli.main(["repair"]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_damaged_files_fail_the_stages_that_rely_on_them_and_status_shows_it(
    dovecot, alice, data_dir, instance, capsys
):
    d2 = date(2026, 11, 11)
    first, second = datetime(2026, 11, 10, 9, tzinfo=UTC), datetime(2026, 11, 11, 9, tzinfo=UTC)
    dovecot.append(
        [("INBOX", message("x1", first), first), ("INBOX", message("x2", second), second)]
    )
    assert run(instance, [raw_messages, emails]).success
    lake = Lake(data_dir / "lake")
    raw_file, emails_file = (
        lake.partition_file("raw_messages", "alice", DAY),
        lake.partition_file("emails", "alice", DAY),
    )
    damage_column(raw_file, "raw")
    damage_column(emails_file, "thread_id")

    # Nothing new on the server: the stage still checks the file it keeps, rather than report success.
    result = run(instance, [raw_messages])
    assert not result.success
    assert str(raw_file) in failure_message(result) and "mail-pipeline repair" in failure_message(
        result
    )
    assert f"raw_messages: LakeReadError: cannot read {raw_file}" in account_failure(capsys)
    # Another day's emails thread against this day's stored emails: that read names the damaged file.
    instance.add_dynamic_partitions("accounts", ["alice"])
    result = materialize(
        [raw_messages, emails],
        partition_key=partition_key("alice", d2),
        resources=build_resources(get_settings()),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success and str(emails_file) in failure_message(result)

    # That run's raw_messages synced the account fine, so only the emails failure is news now.
    failed = account_failure(capsys)
    assert (
        "1 consecutive failure(s)" in failed
        and f"emails: LakeReadError: cannot read {emails_file}" in failed
    )


def account_failure(capsys) -> str:
    """`status`'s line for the account-wide ('*') failure."""
    assert cli.main(["status"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.split()[1] == "*"]
    assert " failed " in line
    return line


def test_messages_of_a_renumbered_folder_are_reported_as_unmatched_not_lost(
    dovecot, alice, data_dir, instance, capsys
):
    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    dovecot.append([("INBOX", message("u1", when), when), ("Archive", message("u2", when), when)])
    assert run(instance, [raw_messages]).success
    damage_column(Lake(data_dir / "lake").partition_file("raw_messages", "alice", DAY), "raw")
    client = dovecot.client()
    client.delete_folder("Archive")  # re-created: a new UIDVALIDITY voids the stored UIDs
    client.logout()
    dovecot.append([("Archive", message("u2", when), when)])

    # it cannot prove u2 is the same message: no silent "nothing lost"
    assert cli.main(["repair"]) == 1
    out = capsys.readouterr().out
    assert "2 message(s) of that day are on the server" in out
    assert "0 message(s) are no longer on the server" in out
    assert (
        "1 message(s) were stored under a UIDVALIDITY their folder no longer has" in out
        and "<u2@example.test>" in out
    )
    assert run(instance, [raw_messages]).success
    assert sorted(
        Lake(data_dir / "lake")
        .read_partition("raw_messages", "alice", DAY, columns=["sha256"])
        .column("sha256")
        .to_pylist()
    ) == sorted(server_sha256s(dovecot))


def test_offline_repair_quarantines_and_says_what_it_could_not_check(data_dir, capsys):
    import pyarrow as pa

    from mail_pipeline.storage.schemas import RAW_MESSAGES

    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    rows = [
        {
            "folder": "INBOX",
            "uidvalidity": 7,
            "uid": uid,
            "internaldate": when,
            "flags": [],
            "size": 100,
            "sha256": f"{uid:064x}",
            "message_id": f"m{uid}@example.test",
            "raw": message(f"m{uid}", when),
            "fetched_at": when,
        }
        for uid in (1, 2)
    ]
    lake = Lake(data_dir / "lake")
    written = lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(rows, schema=RAW_MESSAGES)
    )
    damage_column(written.path, "raw")
    assert cli.main(["repair", "--offline"]) == 1  # it cannot say nothing was lost
    out = capsys.readouterr().out
    assert "2 message(s) listed in the file" in out and "server not checked (--offline)" in out
    assert not written.path.exists()
    [report] = (data_dir / "quarantine").glob("*/report.json")
    assert json.loads(report.read_text())[0]["messages_listed"] == 2


def damaged_lake_repaired(damage: Callable[[Location], None], capsys) -> dict:
    """Offline repair of a lake holding one raw_messages and one sync_log file, the raw one
    damaged by `damage`: what it printed and wrote, with the storage's root and the run's time
    masked, and where the damaged object went."""
    import pyarrow as pa

    from mail_pipeline.storage.schemas import RAW_MESSAGES
    from mail_pipeline_tests.test_storage_s3 import sync_rows

    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    rows = [
        {
            "folder": "INBOX",
            "uidvalidity": 7,
            "uid": uid,
            "internaldate": when,
            "flags": [],
            "size": 100,
            "sha256": hashlib.sha256(message(f"m{uid}", when)).hexdigest(),
            "message_id": f"m{uid}@example.test",
            "raw": message(f"m{uid}", when),
            "fetched_at": when,
        }
        for uid in (1, 2)
    ]
    settings = get_settings()
    lake = Lake(settings.lake_dir)
    written = lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(rows, schema=RAW_MESSAGES)
    )
    lake.write_partition("sync_log", "alice", DAY, sync_rows("r1"))
    damage(written.path)
    code = cli.main(["repair", "--offline"])
    out = capsys.readouterr().out
    root = str(settings.storage_root)

    def masked(text: str) -> str:
        return re.sub(r"\d{8}T\d{6}Z", "<time>", text.replace(root, "<root>"))

    [folder] = list((settings.storage_root / "quarantine").iterdir())
    moved = sorted(masked(str(p)) for p in (folder / "lake").rglob("*") if p.is_file())
    scrub_after = cli.main(["scrub"])
    capsys.readouterr()
    return {
        "exit": code,
        "out": masked(out),
        "report": json.loads(masked((folder / "report.json").read_text())),
        "moved": moved,
        "left": written.path.exists(),
        "scrub after": scrub_after,
    }


@pytest.mark.parametrize(
    "damage",
    [lambda path: damage_column(path, "raw"), truncate, garbage],
    ids=["zeroed-pages", "truncated", "garbage"],
)
def test_repair_on_s3_does_what_it_does_on_local_disk(
    damage, data_dir, seaweedfs, tmp_path, monkeypatch, capsys
):
    local = damaged_lake_repaired(damage, capsys)
    for name, value in seaweedfs.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAIL_PIPELINE_STORAGE_URL", f"s3://{seaweedfs.bucket}/{uuid.uuid4().hex}")
    monkeypatch.setenv("MAIL_PIPELINE_DATA_DIR", str(tmp_path / "s3-host"))
    remote = damaged_lake_repaired(damage, capsys)

    assert remote == local
    assert local["exit"] == 1 and not local["left"] and local["scrub after"] == 0
    assert local["moved"] == [
        f"<root>/quarantine/<time>/lake/raw_messages/account=alice/day={DAY}/part-0.parquet"
    ]
    [entry] = local["report"]
    assert entry["moved_to"] == local["moved"][0] and entry["server_error"] == "--offline"
    # Zeroed pages leave the small columns readable: the messages are listed; the others, not.
    listed = 2 if damage not in (truncate, garbage) else None
    assert entry["messages_listed"] == listed
    # With storage on S3 neither the lake nor the quarantine touched the host's disk.
    assert not any((tmp_path / "s3-host" / name).exists() for name in ("lake", "quarantine"))
