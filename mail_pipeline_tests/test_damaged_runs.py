"""A damaged file is never passed over, against a real Dovecot: the next run of its partition
rebuilds it from its source (saying so in the partition's metadata) or fails naming it and the
remedy, and the scrub (command and Dagster job) reports it before anything reads it."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import duckdb
import pytest

from mail_pipeline import cli
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.scrub import scrub_job
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import catalog
from mail_pipeline.storage.integrity import scrub
from mail_pipeline.storage.lake import Lake, verify_file
from mail_pipeline_tests.damage import damage_column
from mail_pipeline_tests.graph import emails, raw_messages
from mail_pipeline_tests.mailgen import message

# the same day, account and resources
from mail_pipeline_tests.test_repair import (
    failure_message,
    run,
)

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 10)
WHEN = datetime(2026, 11, 10, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")


def metadata(result, stage: str) -> dict:
    [materialization] = result.asset_materializations_for_node(stage)
    return {name: value.value for name, value in materialization.metadata.items()}


def flag_on_server(dovecot, message_id: str, flag: bytes) -> None:
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(["HEADER", "Message-ID", message_id]), [flag])
    client.logout()


def scrub_reports(path, capsys) -> str:
    """The scrub command and the scrub job both name the damaged file and the remedy."""
    assert cli.main(["scrub"]) == 1
    out = capsys.readouterr().out
    assert str(path) in out and "mail-pipeline repair" in out
    job = scrub_job.execute_in_process(
        resources=build_resources(get_settings()), raise_on_error=False
    )
    assert not job.success and str(path) in failure_message(job)
    return out


def test_a_damaged_emails_file_is_rebuilt_by_the_next_run_and_said_so(
    dovecot, alice, data_dir, instance, capsys
):
    dovecot.append([("INBOX", message(f"e{i}", WHEN), WHEN) for i in range(3)])
    assert run(instance, [raw_messages, emails]).success
    lake = Lake(data_dir / "lake")
    emails_file = lake.partition_file("emails", "alice", DAY)
    # A column no run reads when only flags changed: such a run would pass over it.
    damage_column(emails_file, "search_text")
    flag_on_server(dovecot, "e1@example.test", b"\\Flagged")
    scrub_reports(emails_file, capsys)

    result = run(instance, [raw_messages, emails])
    assert result.success
    [note] = metadata(result, "emails")["damaged_files_rebuilt"]
    assert note.startswith("emails file damaged") and "rebuilt" in note
    assert verify_file(emails_file) == 3  # the file in place now reads back whole
    assert (
        len(
            list(
                (data_dir / "quarantine").glob(
                    "*/lake/emails/account=alice/day=2026-11-10/part-0.parquet"
                )
            )
        )
        == 1
    )
    flagged = lake.read_partition(
        "emails", "alice", DAY, columns=["message_id", "flagged"]
    ).to_pylist()
    assert {r["message_id"]: r["flagged"] for r in flagged} == {
        "e0@example.test": False,
        "e1@example.test": True,
        "e2@example.test": False,
    }
    assert scrub(lake) == [] and cli.main(["scrub"]) == 0


def test_a_damaged_raw_file_fails_the_next_run_naming_it_even_for_a_flag_change(
    dovecot, alice, data_dir, instance, capsys
):
    dovecot.append([("INBOX", message(f"r{i}", WHEN), WHEN) for i in range(3)])
    assert run(instance, [raw_messages, emails]).success
    raw_file = Lake(data_dir / "lake").partition_file("raw_messages", "alice", DAY)
    damage_column(raw_file, "raw")
    # a run that writes only the state file beside it
    flag_on_server(dovecot, "r1@example.test", b"\\Seen")
    scrub_reports(raw_file, capsys)

    result = run(instance, [raw_messages, emails])
    assert not result.success
    failure = failure_message(result)
    assert (
        str(raw_file) in failure
        and "mail-pipeline repair" in failure
        and "then the backfill it prints" in failure
    )
    [line] = [line for line in failure.splitlines() if "cannot read" in line]
    assert "raw mail is fetched again" not in line and ".." not in line
    # nothing written over it
    assert not Lake(data_dir / "lake").partition_files("message_state", "alice", DAY)


@pytest.mark.parametrize("new_mail", [False, True], ids=["file kept", "file rewritten"])
def test_raw_bytes_that_do_not_match_their_sha256_fail_the_next_run(
    dovecot, alice, data_dir, instance, capsys, new_mail
):
    """Every page reads (its CRC was computed over the wrong bytes): only the sha256 tells, whether
    the run keeps the file or copies it into a new one with the day's new mail."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dovecot.append([("INBOX", message(f"s{i}", WHEN), WHEN) for i in range(2)])
    assert run(instance, [raw_messages, emails]).success
    raw_file = Lake(data_dir / "lake").partition_file("raw_messages", "alice", DAY)
    table = pq.read_table(raw_file)
    raws = table.column("raw").to_pylist()
    raws[1] = raws[1].replace(b"Hello", b"Jello")
    pq.write_table(
        table.set_column(table.schema.get_field_index("raw"), "raw", pa.array(raws, pa.binary())),
        raw_file,
        write_page_checksum=True,
    )
    with duckdb.connect() as con:  # DuckDB serves it without a word
        [(served, expected)] = con.execute(
            f"SELECT raw, sha256 FROM '{raw_file}' WHERE uid = 2"
        ).fetchall()
    assert hashlib.sha256(served).hexdigest() != expected
    out = scrub_reports(raw_file, capsys)
    assert "do not match their sha256" in out

    if new_mail:
        dovecot.append([("INBOX", message("s-new", WHEN), WHEN)])
    damaged = raw_file.read_bytes()
    result = run(instance, [raw_messages])
    assert not result.success and str(raw_file) in failure_message(result)
    assert "INBOX UID 2" in failure_message(result)
    # nothing written over it
    assert raw_file.read_bytes() == damaged and not list(raw_file.parent.glob("*.tmp"))


def test_a_damaged_state_file_is_rebuilt_from_the_servers_flags(dovecot, alice, data_dir, instance):
    dovecot.append([("INBOX", message(f"f{i}", WHEN), WHEN) for i in range(3)])
    assert run(instance, [raw_messages]).success
    flag_on_server(dovecot, "f2@example.test", b"\\Flagged")
    assert run(instance, [raw_messages]).success
    lake = Lake(data_dir / "lake")
    [state_file] = lake.partition_files("message_state", "alice", DAY)
    # truncated by a crash
    state_file.write_bytes(state_file.read_bytes()[: state_file.stat().st_size // 2])

    result = run(instance, [raw_messages])
    assert result.success
    [note] = metadata(result, "raw_messages")["damaged_files_rebuilt"]
    assert note.startswith("message_state file damaged")
    assert scrub(lake) == []
    with catalog.connect(get_settings().warehouse_path) as con:
        flags = dict(con.execute("SELECT message_id, flags FROM raw_messages").fetchall())
    assert "\\Flagged" in flags["f2@example.test"] and "\\Flagged" not in flags["f0@example.test"]
