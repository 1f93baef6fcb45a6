"""Lake files checked against what was written (storage/integrity.py): page checksums and raw
messages' sha256; `status` and `doctor` name a damaged file, a state file's included, with its
remedy instead of a traceback."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from mail_pipeline import cli
from mail_pipeline.cli.doctor import check_lake, diagnose
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto, integrity, state
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.storage.lake import Lake, LakeReadError, read_file
from mail_pipeline.storage.schemas import RAW_MESSAGES

DAY = date(2026, 11, 19)
WHEN = datetime(2026, 11, 19, 12, tzinfo=UTC)


def raw(uid: int, body: bytes, sha256: str | None = None) -> dict:
    return {
        "folder": "INBOX",
        "uidvalidity": 7,
        "uid": uid,
        "internaldate": WHEN,
        "flags": [],
        "size": len(body),
        "sha256": sha256 or hashlib.sha256(body).hexdigest(),
        "message_id": f"m{uid}",
        "raw": body,
        "fetched_at": WHEN,
        "deleted_at": None,
    }


@pytest.fixture
def lake(data_dir) -> Lake:
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="a",
            email="a@example.test",
            host="imap.example.test",
            port=993,
            username="a",
            password_token="",
        ),
        "pw-a-123",
        crypto.load_cipher(),
    )
    lake = Lake(data_dir / "lake")
    lake.write_partition(
        "raw_messages",
        "a",
        DAY,
        pa.Table.from_pylist([raw(1, b"one"), raw(2, b"two")], schema=RAW_MESSAGES),
    )
    state.write(
        lake, state.RAW, "a", DAY, {("INBOX", 7, 1): {"flags": ["\\Seen"], "deleted_at": None}}
    )
    return lake


def truncated_state_file(lake: Lake):
    path = lake.partition_file("message_state", "a", DAY)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_a_raw_message_whose_bytes_do_not_match_its_sha256_is_damage(tmp_path):
    lake = Lake(tmp_path / "lake")
    written = lake.write_partition(
        "raw_messages",
        "a",
        DAY,
        pa.Table.from_pylist(
            [raw(1, b"one"), raw(2, b"two", sha256=hashlib.sha256(b"tw0").hexdigest())],
            schema=RAW_MESSAGES,
        ),
    )
    assert len(read_file(written.path)) == 2  # every page reads: only the hash tells
    [damage] = integrity.scrub(lake)
    assert (damage.table, damage.path) == ("raw_messages", written.path)
    assert "INBOX UID 2 (row 1) do not match their sha256" in damage.error
    with pytest.raises(LakeReadError, match="mail-pipeline repair"):
        integrity.check_file("raw_messages", written.path)


def test_each_tables_remedy_says_what_it_costs_and_ends_once():
    for table, says in [
        ("raw_messages", "server still has"),
        ("message_state", "flags from the server again"),
        ("emails", "nothing is lost"),
        ("sync_log", "sync history only"),
    ]:
        error = LakeReadError(
            f"/d/lake/{table}/account=a/day=2026-11-19/part-0.parquet", OSError("short read.")
        )
        assert "mail-pipeline repair" in str(error) and "then the backfill it prints" in str(error)
        assert says in str(error) and ".." not in str(error)
        assert ("fetch" in str(error)) == (table == "raw_messages")


def test_status_names_a_truncated_state_file_and_its_remedy(lake, capsys):
    path = truncated_state_file(lake)
    assert cli.main(["status"]) == 1
    out = capsys.readouterr().out
    assert str(path) in out and "message_state" in out and "mail-pipeline repair" in out
    assert "flags from the server again" in out and "Traceback" not in out


def test_doctor_names_a_truncated_state_file_and_its_remedy(lake):
    path = truncated_state_file(lake)
    [finding] = diagnose(get_settings(), [check_lake])
    assert finding.check == "lake message_state" and not finding.ok and str(path) in finding.detail
    assert "mail-pipeline repair" in finding.hint and "flags from the server again" in finding.hint


def test_a_healthy_lake_passes_the_scrub(lake, capsys):
    assert integrity.scrub(lake) == []
    assert cli.main(["scrub"]) == 0
    assert "reads back as written" in capsys.readouterr().out


def test_a_damaged_chunks_file_is_rebuilt_from_emails_and_said_so(tmp_path):
    from mail_pipeline.indexing import Embedder
    from mail_pipeline.stages.chunks import chunk_day
    from mail_pipeline.storage.schemas import EMAILS
    from mail_pipeline_tests.damage import damage_column

    lake, tokens = Lake(tmp_path / "lake"), Embedder().tokens
    emails = [
        {
            "email_id": f"e{i}",
            "subject": f"subject {i}",
            "from_address": "c@example.test",
            "received_at": WHEN,
            "search_text": f"text of email {i} " * 40,
            "thread_id": f"t{i}",
            "sha256": f"s{i}",
        }
        for i in range(3)
    ]
    lake.write_partition("emails", "a", DAY, pa.Table.from_pylist(emails, schema=EMAILS))
    first = chunk_day(lake, "a", DAY, tokens, 128)
    path = lake.partition_file("email_chunks", "a", DAY)
    damage_column(path, "text")
    again = chunk_day(lake, "a", DAY, tokens, 128)
    [note] = again.figures["damaged_files_rebuilt"]
    assert note.startswith("email_chunks file damaged") and "rebuilt" in again.summary
    assert integrity.check_file("email_chunks", path) == first.rows > 0


@pytest.mark.parametrize(
    "values",
    [
        pa.array([b"one", None, b"", b"three" * 100], pa.large_binary()),
        # offsets past the buffer's start
        pa.array([b"one", None, b"", b"three" * 100], pa.large_binary()).slice(1, 3),
        pa.array([b"one", b"two"], pa.binary()),
        pa.array([None, b""], pa.large_binary()),  # no data buffer
    ],
)
def test_digests_hash_each_value_in_place(values):
    assert list(integrity.digests(values)) == [
        None if v is None else hashlib.sha256(v).hexdigest() for v in values.to_pylist()
    ]
