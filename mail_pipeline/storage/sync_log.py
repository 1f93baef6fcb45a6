"""sync_log rows for failures outside IMAP: a stage that fails on a full disk or a damaged file
still leaves a row, so `mail-pipeline status` and the sync_status view show it."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from mail_pipeline import logs
from mail_pipeline.storage.lake import Lake, WriteResult
from mail_pipeline.storage.schemas import SYNC_LOG

log = logging.getLogger(__name__)
# The folder of a row about the whole account rather than one folder (as IMAP login failures use).
ACCOUNT_WIDE = "*"
FAILED = "failed"
MAX_ERROR_CHARS = 1000


def failure_row(
    run_id: str, day: date, stage: str, error: BaseException, started_at: datetime | None = None
) -> dict[str, Any]:
    """One sync_log row saying `stage` failed for the partition `day`; the message is redacted."""
    now = datetime.now(UTC)
    message = logs.redact(f"{stage}: {type(error).__name__}: {error}")[:MAX_ERROR_CHARS]
    return {
        "run_id": run_id,
        "folder": ACCOUNT_WIDE,
        "partition_day": day,
        "started_at": started_at or now,
        "finished_at": now,
        "uidvalidity": 0,
        "highest_uid": 0,
        "messages_fetched": 0,
        "bytes_fetched": 0,
        "status": FAILED,
        "error": message,
    }


def record_failure(
    lake: Lake,
    account: str,
    run_id: str,
    day: date,
    stage: str,
    error: BaseException,
    started_at: datetime | None = None,
) -> WriteResult | None:
    """Append the failure row; returns None when even that write fails (the disk that failed the
    stage may be full): the stage's own error is the one to raise, never this one."""
    row = failure_row(run_id, day, stage, error, started_at)
    try:
        return lake.append(
            "sync_log",
            account,
            datetime.now(UTC).date(),
            pa.Table.from_pylist([row], schema=SYNC_LOG),
        )
    except Exception as failure:
        log.warning(
            "could not record the failure of %s for %s/%s in sync_log: %s",
            stage,
            account,
            day,
            failure,
        )
        return None
