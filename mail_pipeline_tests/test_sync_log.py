"""sync_log rows for failures outside IMAP, and how `status` shows them until a later success."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from mail_pipeline import cli, logs
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import SYNC_LOG
from mail_pipeline.storage.sync_log import record_failure

DAY = date(2026, 11, 19)


@pytest.fixture
def registered(data_dir):
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="alice",
            email="alice@example.test",
            host="imap.example.test",
            port=993,
            username="alice",
            password_token="",
        ),
        "pw-alice-123",
        crypto.load_cipher(),
    )
    return Lake(data_dir / "lake")


def ok_row(finished_at: datetime) -> dict:
    return {
        "run_id": "r",
        "folder": "INBOX",
        "partition_day": DAY,
        "started_at": finished_at - timedelta(seconds=1),
        "finished_at": finished_at,
        "uidvalidity": 1,
        "highest_uid": 5,
        "messages_fetched": 1,
        "bytes_fetched": 10,
        "status": "ok",
        "error": None,
    }


def status_lines(capsys) -> list[str]:
    assert cli.main(["status"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_stage_failure_is_in_status_until_the_account_syncs_again(registered, capsys):
    lake = registered
    lake.append(
        "sync_log",
        "alice",
        DAY,
        pa.Table.from_pylist([ok_row(datetime.now(UTC))], schema=SYNC_LOG),
    )
    logs.register_secret("s3cret-token-value")
    error = OSError(28, "No space left on device (while holding s3cret-token-value)")
    assert record_failure(lake, "alice", "run-2", DAY, "emails", error) is not None
    [failed] = [line for line in status_lines(capsys) if line.split()[1] == "*"]
    assert "failed" in failed and "1 consecutive failure(s)" in failed
    assert "emails: OSError" in failed and "No space left on device" in failed
    assert "s3cret-token-value" not in failed and logs.REDACTED in failed
    lake.append(
        "sync_log",
        "alice",
        DAY,
        pa.Table.from_pylist([ok_row(datetime.now(UTC) + timedelta(seconds=1))], schema=SYNC_LOG),
    )
    assert [line.split()[1] for line in status_lines(capsys)] == [
        "INBOX"
    ]  # resolved by the later success


def test_recording_never_replaces_the_stages_own_error(registered, tmp_path):
    blocked = Lake(tmp_path / "not-a-dir")
    blocked.root.write_text("a file where the lake should be")  # every write under it fails
    assert (
        record_failure(blocked, "alice", "run-3", DAY, "email_chunks", RuntimeError("boom")) is None
    )
