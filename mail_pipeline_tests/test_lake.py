"""The lake's streamed partition writes: batches written behind the producer, in order, and a
failure on either side leaves the previous file as it was and no temporary file behind."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mail_pipeline.storage.lake import Lake, conformed, rows_to_batches, write_behind
from mail_pipeline.storage.schemas import RAW_MESSAGES
from mail_pipeline_tests.damage import damage_column

DAY = date(2026, 11, 10)
WHEN = datetime(2026, 11, 10, 12, tzinfo=UTC)


def raw_rows(uids) -> list[dict]:
    return [
        {
            "folder": "INBOX",
            "uidvalidity": 1,
            "uid": uid,
            "internaldate": WHEN,
            "flags": ["\\Seen"],
            "size": 5,
            "sha256": "0" * 64,
            "message_id": f"m{uid}@x",
            "raw": b"hello",
            "fetched_at": WHEN,
        }
        for uid in uids
    ]


def partition_state(lake: Lake) -> tuple[bytes, list[str]]:
    path = lake.partition_file("raw_messages", "alice", DAY)
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir())


def test_streamed_batches_are_written_in_order(tmp_path):
    lake = Lake(tmp_path)
    result = lake.write_partition(
        "raw_messages", "alice", DAY, rows_to_batches(iter(raw_rows(range(1000))), RAW_MESSAGES, 64)
    )
    assert result.rows == 1000
    assert pq.read_table(result.path, columns=["uid"]).column("uid").to_pylist() == list(
        range(1000)
    )


def test_batches_of_a_castable_schema_are_cast(tmp_path):
    narrow = pa.schema([("uid", pa.int32())])
    with pq.ParquetWriter(tmp_path / "x.parquet", pa.schema([("uid", pa.int64())])) as writer:
        rows = write_behind(
            writer, [pa.RecordBatch.from_pylist([{"uid": 1}, {"uid": 2}], schema=narrow)]
        )
    assert (
        rows == 2 and pq.read_table(tmp_path / "x.parquet").schema.field("uid").type == pa.int64()
    )


def test_a_producer_failure_leaves_the_previous_file(tmp_path):
    lake = Lake(tmp_path)
    lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1, 2]), schema=RAW_MESSAGES)
    )
    before = partition_state(lake)

    def failing_rows():
        yield from raw_rows(range(10, 200))
        raise ConnectionError("server gone")

    with pytest.raises(ConnectionError, match="server gone"):
        lake.write_partition(
            "raw_messages", "alice", DAY, rows_to_batches(failing_rows(), RAW_MESSAGES, 16)
        )
    assert partition_state(lake) == before


def test_a_writer_failure_stops_the_producer_and_is_raised(tmp_path):
    lake = Lake(tmp_path)
    lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1]), schema=RAW_MESSAGES)
    )
    before = partition_state(lake)
    wrong = pa.schema([("uid", pa.int64())])  # not the table's columns: the write fails
    endless = (pa.RecordBatch.from_pylist([{"uid": 1}], schema=wrong) for _ in itertools.count())

    with pytest.raises(ValueError, match="field names are not matching"):
        lake.write_partition("raw_messages", "alice", DAY, endless)
    assert partition_state(lake) == before


def test_a_damaged_page_fails_reads_that_touch_it_naming_the_file_and_the_remedy(tmp_path):
    from mail_pipeline.storage.lake import LakeReadError

    lake = Lake(tmp_path)
    noise = random.Random(7)
    rows = [
        {**row, "raw": noise.randbytes(10_000)} for row in raw_rows(range(50))
    ]  # incompressible: pages of its own
    written = lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(rows, schema=RAW_MESSAGES)
    )
    damage_column(written.path, "raw")
    # The few columns a sync plan reads are intact, so that read still works...
    assert len(lake.read_partition("raw_messages", "alice", DAY, columns=["folder", "uid"])) == 50
    # ...and whatever reads the damaged page fails with the path and the remedy.
    for read in (
        lambda: lake.read_partition("raw_messages", "alice", DAY),
        lambda: list(lake.iter_batches("raw_messages", "alice", DAY)),
        lambda: lake.verify_partition("raw_messages", "alice", DAY),
    ):
        with pytest.raises(LakeReadError, match="mail-pipeline repair") as caught:
            read()
        assert caught.value.path == written.path and str(written.path) in str(caught.value)


def test_a_truncated_file_fails_with_its_path(tmp_path):
    from mail_pipeline.storage.lake import LakeReadError

    lake = Lake(tmp_path)
    written = lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1, 2]), schema=RAW_MESSAGES)
    )
    written.path.write_bytes(written.path.read_bytes()[:-100])
    with pytest.raises(LakeReadError, match=str(written.path)):
        lake.read_partition("raw_messages", "alice", DAY, columns=["uid"])


def test_leftover_temporary_files_go_at_the_partitions_next_write(tmp_path):
    lake = Lake(tmp_path)
    written = lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1]), schema=RAW_MESSAGES)
    )
    # a killed writer's, as _write names them
    leftover = written.path.with_name(".part-0.parquet.0123abcd.tmp")
    leftover.write_bytes(b"half a file")
    other_day = lake.partition_file("raw_messages", "alice", date(2026, 11, 11)).with_name(
        ".part-0.parquet.99.tmp"
    )
    other_day.parent.mkdir(parents=True)
    other_day.write_bytes(b"another partition's")
    lake.write_partition(
        "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1, 2]), schema=RAW_MESSAGES)
    )
    assert sorted(p.name for p in written.path.parent.iterdir()) == ["part-0.parquet"]
    assert other_day.exists()  # only the partition being written is swept


def test_an_appends_leftover_goes_at_the_next_append_but_never_a_write_in_progress(tmp_path):
    """A sync_log append killed with SIGKILL leaves its temporary file; the next append removes it
    at once, while the temporary file of an append still running in another process stays."""
    import signal
    import subprocess
    import sys

    from mail_pipeline.storage.schemas import SYNC_LOG

    lake = Lake(tmp_path)
    log_dir = lake.partition_dir("sync_log", "alice", DAY)
    # Another process in the middle of an append: its temporary file claimed as _write claims it.
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from pathlib import Path; from mail_pipeline.storage.lake import claim_temp; "
                f"log_dir = Path({str(log_dir)!r}); log_dir.mkdir(parents=True, exist_ok=True); "
                "tmp, held = claim_temp(log_dir / 'part-x.parquet'); print(tmp, flush=True); sys.stdin.read()"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        in_progress = Path(writer.stdout.readline().strip())
        assert in_progress.exists()
        lake.append("sync_log", "alice", DAY, SYNC_LOG.empty_table())
        assert in_progress.exists()  # its writer is alive: never taken for a leftover, however old
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        lake.append("sync_log", "alice", DAY, SYNC_LOG.empty_table())
        assert not in_progress.exists()  # killed: gone at the next append, not an hour later
        assert not list(log_dir.glob("*.tmp"))
    finally:
        writer.kill()
        writer.wait()


def test_lake_files_and_folders_are_private(tmp_path):
    import stat

    from mail_pipeline.storage.permissions import loose_paths

    # a default umask: the lake must not rely on the caller's
    os_umask = __import__("os").umask(0o022)
    try:
        lake = Lake(tmp_path / "data" / "lake")
        lake.ensure_placeholders()
        written = lake.write_partition(
            "raw_messages", "alice", DAY, pa.Table.from_pylist(raw_rows([1]), schema=RAW_MESSAGES)
        )
    finally:
        __import__("os").umask(os_umask)
    assert stat.S_IMODE(written.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert list(loose_paths(tmp_path / "data")) == []
    written.path.chmod(0o644)
    assert list(loose_paths(tmp_path / "data")) == [(written.path, 0o644)]


def test_a_file_written_before_a_column_was_added_reads_it_as_null(tmp_path):
    lake = Lake(tmp_path)
    older = pa.schema([f for f in RAW_MESSAGES if f.name != "deleted_at"])
    path = lake.partition_file("raw_messages", "alice", DAY)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(raw_rows([1, 2]), schema=older), path)
    whole = lake.read_partition("raw_messages", "alice", DAY)
    assert whole.schema == RAW_MESSAGES and whole.column("deleted_at").to_pylist() == [None, None]
    some = lake.read_partition("raw_messages", "alice", DAY, columns=["uid", "flags", "deleted_at"])
    assert some.to_pylist() == [{"uid": u, "flags": ["\\Seen"], "deleted_at": None} for u in (1, 2)]
    assert lake.read_partition(
        "raw_messages", "alice", DAY, columns=["uid", "flags"]
    ).schema == pa.schema([RAW_MESSAGES.field("uid"), RAW_MESSAGES.field("flags")])


def test_a_table_already_of_the_schema_is_written_as_it_is_and_others_are_cast():
    schema = pa.schema([pa.field("n", pa.int64()), pa.field("s", pa.string())])
    same = pa.Table.from_pylist([{"n": 1, "s": "a"}], schema=schema)
    assert conformed(same, schema) is same  # no cast: it would import pyarrow.compute
    narrower = pa.Table.from_pylist(
        [{"n": 1, "s": "a"}], schema=pa.schema([("n", pa.int32()), ("s", pa.string())])
    )
    assert conformed(narrower, schema).schema == schema
