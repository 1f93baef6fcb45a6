"""The lake's streamed partition writes: batches written behind the producer, in order, and a
failure on either side leaves the previous file as it was and no temporary file behind."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mail_pipeline.storage.lake import Lake, rows_to_batches, write_behind
from mail_pipeline.storage.schemas import RAW_MESSAGES

DAY = date(2026, 11, 10)
WHEN = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)


def raw_rows(uids) -> list[dict]:
    return [{"folder": "INBOX", "uidvalidity": 1, "uid": uid, "internaldate": WHEN, "flags": ["\\Seen"], "size": 5,
             "sha256": "0" * 64, "message_id": f"m{uid}@x", "raw": b"hello", "fetched_at": WHEN} for uid in uids]


def partition_state(lake: Lake) -> tuple[bytes, list[str]]:
    path = lake.partition_file("raw_messages", "alice", DAY)
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir())


def test_streamed_batches_are_written_in_order(tmp_path):
    lake = Lake(tmp_path)
    result = lake.write_partition("raw_messages", "alice", DAY, rows_to_batches(iter(raw_rows(range(1000))), RAW_MESSAGES, 64))
    assert result.rows == 1000
    assert pq.read_table(result.path, columns=["uid"]).column("uid").to_pylist() == list(range(1000))


def test_batches_of_a_castable_schema_are_cast(tmp_path):
    narrow = pa.schema([("uid", pa.int32())])
    with pq.ParquetWriter(tmp_path / "x.parquet", pa.schema([("uid", pa.int64())])) as writer:
        rows = write_behind(writer, [pa.RecordBatch.from_pylist([{"uid": 1}, {"uid": 2}], schema=narrow)])
    assert rows == 2 and pq.read_table(tmp_path / "x.parquet").schema.field("uid").type == pa.int64()


def test_a_producer_failure_leaves_the_previous_file(tmp_path):
    lake = Lake(tmp_path)
    lake.write_partition("raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1, 2]), schema=RAW_MESSAGES))
    before = partition_state(lake)

    def failing_rows():
        yield from raw_rows(range(10, 200))
        raise ConnectionError("server gone")

    with pytest.raises(ConnectionError, match="server gone"):
        lake.write_partition("raw_messages", "alice", DAY, rows_to_batches(failing_rows(), RAW_MESSAGES, 16))
    assert partition_state(lake) == before


def test_a_writer_failure_stops_the_producer_and_is_raised(tmp_path):
    lake = Lake(tmp_path)
    lake.write_partition("raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1]), schema=RAW_MESSAGES))
    before = partition_state(lake)
    wrong = pa.schema([("uid", pa.int64())])  # not the table's columns: the write fails
    endless = (pa.RecordBatch.from_pylist([{"uid": 1}], schema=wrong) for _ in itertools.count())

    with pytest.raises(ValueError, match="field names are not matching"):
        lake.write_partition("raw_messages", "alice", DAY, endless)
    assert partition_state(lake) == before
