"""MAIL_PIPELINE_STORAGE_URL=s3://...: the lake and the vectors in an S3 bucket (a real SeaweedFS
started by the harness), through the same code as a local data directory.

The graph runs as test_pipeline_e2e.py runs it; what is checked here is where everything lands:
the bucket holds exactly the server's messages, the local disk holds none of the lake or the
vectors, and another process finds the mail with nothing but the variables.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import materialize
from pydantic import ValidationError

from mail_pipeline.defs.assets.retention import retention
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import Settings, get_settings
from mail_pipeline.storage import catalog, integrity
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.objects import StorageUrlError
from mail_pipeline.storage.schemas import TABLES
from mail_pipeline.storage.vectors import VectorStore
from mail_pipeline.sync.flag_cursor import FlagCursor
from mail_pipeline_tests.graph import email_chunks, email_embeddings, emails, raw_messages
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import free_port
from mail_pipeline_tests.test_pipeline_e2e import DAYS, seed

pytestmark = [pytest.mark.integration]
GRAPH = [raw_messages, emails, email_chunks, email_embeddings]
DAY = date(2026, 11, 10)


def sync_rows(run_id: str) -> pa.Table:
    row = {
        "run_id": run_id,
        "folder": "INBOX",
        "partition_day": DAY,
        "started_at": datetime(2026, 11, 10, tzinfo=UTC),
        "finished_at": datetime(2026, 11, 10, tzinfo=UTC),
        "uidvalidity": 1,
        "highest_uid": 1,
        "messages_fetched": 0,
        "bytes_fetched": 0,
        "status": "ok",
        "error": None,
    }
    return pa.Table.from_pylist([row], schema=TABLES["sync_log"])


def prefix_of(url: str) -> str:
    return url.split("/", 3)[3]


def test_lake_on_s3_writes_reads_lists_and_drops(seaweedfs, s3_storage):
    lake = Lake(get_settings().lake_dir)
    state = pa.Table.from_pylist([{"email_id": "e1", "seen": True}], schema=TABLES["email_state"])
    written = lake.write_partition("email_state", "alice", DAY, state)
    assert written.rows == 1 and written.bytes > 0
    lake.append("sync_log", "alice", DAY, sync_rows("r1"))
    lake.append("sync_log", "alice", DAY, sync_rows("r2"))

    prefix = prefix_of(s3_storage)
    keys = seaweedfs.keys(prefix)
    assert f"mail/{prefix}/lake/email_state/account=alice/day={DAY}/part-0.parquet" in keys
    assert len([k for k in keys if "/sync_log/account=alice/" in k]) == 2
    assert lake.read_partition("email_state", "alice", DAY, ["email_id", "seen"]).to_pylist() == [
        {"email_id": "e1", "seen": True}
    ]
    assert sorted(lake.read_partition("sync_log", "alice", DAY)["run_id"].to_pylist()) == [
        "r1",
        "r2",
    ]
    assert lake.list_partitions("sync_log") == [("alice", DAY)]
    assert lake.file_metadata("email_state", "alice", DAY).num_rows == 1
    assert lake.verify_partition("sync_log", "alice", DAY) == 2

    # The views read the same objects, through the filesystem registered on the connection.
    with catalog.memory_connection(lake) as con:
        assert con.execute("SELECT count(*) FROM sync_log").fetchone() == (2,)

    assert lake.drop_partition("sync_log", "alice", DAY) > 0
    assert lake.list_partitions("sync_log") == []
    assert not [k for k in seaweedfs.keys(prefix) if "/sync_log/account=alice/" in k]


def test_flag_cursor_and_quarantine_on_s3(seaweedfs, s3_storage):
    lake = Lake(get_settings().lake_dir)
    cursor = FlagCursor(lake, "alice")
    cursor.record("INBOX", 7, 42, [DAY])
    cursor.save()
    assert FlagCursor(lake, "alice").since("INBOX", 7, [DAY]) == 42

    lake.write_partition("sync_log", "alice", DAY, sync_rows("r1"))
    path = lake.partition_file("sync_log", "alice", DAY)
    damage = integrity.Damage("sync_log", "alice", DAY, path, "test")
    moved = integrity.set_aside(lake, damage, datetime(2026, 11, 11, tzinfo=UTC))
    keys = seaweedfs.keys(prefix_of(s3_storage))
    assert (
        f"mail/{prefix_of(s3_storage)}/quarantine/20261111T000000Z/lake/sync_log/account=alice/day={DAY}/part-0.parquet"
        in keys
    )
    assert moved.exists() and not path.exists()


def test_an_unusable_storage_url_is_refused(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_STORAGE_URL", "ftp://host/lake")
    with pytest.raises(ValidationError, match="neither a local folder nor s3://bucket/prefix"):
        Settings()
    with pytest.raises(StorageUrlError, match="'s3://' is neither"):
        Lake("s3://")


def local_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def search_with_only_the_variables(tmp_path: Path, seaweedfs, s3_storage: str, query: str) -> list:
    """`mail-pipeline search QUERY --json` in another process, in an empty working directory and
    HOME (`tmp_path`/elsewhere), given only the storage URL and the AWS variables; its hits."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(elsewhere),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MAIL_PIPELINE_STORAGE_URL": s3_storage,
        "MAIL_PIPELINE_DATA_DIR": str(elsewhere / "data"),
        # no search service answers there: the search runs in that process, on the bucket
        "MAIL_PIPELINE_SEARCH_PORT": str(free_port()),
        **seaweedfs.environment(),
    }
    done = subprocess.run(
        [Path(sys.executable).with_name("mail-pipeline"), "search", query, "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    hits: list = json.loads(done.stdout)
    return hits


def test_pipeline_on_s3_end_to_end(
    dovecot, alice, data_dir, instance, seaweedfs, s3_storage, tmp_path, monkeypatch
):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    seed(dovecot)
    instance.add_dynamic_partitions("accounts", ["alice"])
    for day in DAYS:
        result = materialize(
            GRAPH,
            partition_key=partition_key("alice", day),
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert result.success

    # The bucket holds exactly the server's messages.
    server = dovecot.client()
    expected = set()
    for folder in ("INBOX", "Archive"):
        server.select_folder(folder, readonly=True)
        fetched = server.fetch(server.search("ALL"), ["BODY.PEEK[]"])
        expected |= {hashlib.sha256(f[b"BODY[]"]).hexdigest() for f in fetched.values()}
    server.logout()
    lake = Lake(get_settings().lake_dir)
    stored = {
        digest
        for account, day in lake.list_partitions("raw_messages")
        for digest in lake.read_partition("raw_messages", account, day, ["sha256"])[
            "sha256"
        ].to_pylist()
    }
    assert stored == expected and len(expected) == 8
    keys = seaweedfs.keys(prefix_of(s3_storage))
    assert any("/lancedb/" in k for k in keys)
    # Nothing of the lake or the vectors on the local disk (the registry and the locks stay).
    assert not [f for f in local_files(data_dir) if f.startswith(("lake/", "lancedb/"))]
    assert not [f for f in local_files(data_dir) if f.endswith((".parquet", ".lance"))]

    # Another process, given only the variables and an empty working directory, finds the mail.
    hits = search_with_only_the_variables(tmp_path, seaweedfs, s3_storage, "INV-2026-0042")
    assert hits[0]["subject"] == "Invoice INV-2026-0042 overdue"
    assert not list((tmp_path / "elsewhere" / "data").rglob("*.parquet"))


def test_retention_on_s3_leaves_no_object_of_a_dropped_day(
    dovecot, alice, data_dir, instance, seaweedfs, s3_storage, monkeypatch
):
    end = date(2026, 11, 20)
    days = [end - timedelta(days=35), end - timedelta(days=2)]
    dovecot.append(
        [
            (
                "INBOX",
                message(
                    f"r{d:%m%d}",
                    datetime(d.year, d.month, d.day, 10, tzinfo=UTC),
                    subject=f"Report {d}",
                    body=f"Weekly numbers, reference zqxmark{d:%m%d}.\r\n",
                ),
                datetime(d.year, d.month, d.day, 10, tzinfo=UTC),
            )
            for d in days
        ]
    )
    instance.add_dynamic_partitions("accounts", ["alice"])
    for day in days:
        monkeypatch.setenv("MAIL_PIPELINE_TODAY", day.isoformat())
        result = materialize(
            GRAPH,
            partition_key=partition_key("alice", day),
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert result.success
    fs = seaweedfs.filesystem()
    vectors = f"{seaweedfs.bucket}/{prefix_of(s3_storage)}/lancedb"
    old_marker = f"zqxmark{days[0]:%m%d}".encode()

    def holding(needle: bytes) -> list[str]:
        return [key for key in fs.find(vectors) if needle in fs.cat_file(key)]

    assert holding(old_marker)  # the check below means something only if the text is stored plain

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", end.isoformat())
    result = materialize([retention], resources=build_resources(get_settings()), instance=instance)
    assert result.success
    keys = seaweedfs.keys(prefix_of(s3_storage))
    assert not [k for k in keys if f"day={days[0]}" in k]
    assert [k for k in keys if f"emails/account=alice/day={days[1]}/" in k]
    assert holding(old_marker) == []
    assert holding(f"zqxmark{days[1]:%m%d}".encode())
    store = VectorStore(get_settings().lancedb_dir)
    assert store.count() > 0 and store.partition_counts().keys() == {("alice", days[1])}


def test_mirror_on_s3_leaves_no_object_of_an_expunged_message(
    dovecot, data_dir, instance, seaweedfs, s3_storage, monkeypatch
):
    from mail_pipeline_tests.test_flag_sync import register

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    register(dovecot, data_dir, "mirror")
    when = datetime(2026, 11, 19, 9, tzinfo=UTC)
    dovecot.append(
        [
            ("INBOX", message(n, when, subject=f"About {n}", body=f"ref zqxmirror{n}\r\n"), when)
            for n in ("gone", "stay")
        ]
    )
    instance.add_dynamic_partitions("accounts", ["alice"])

    def run() -> None:
        result = materialize(
            GRAPH,
            partition_key=partition_key("alice", when.date()),
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert result.success

    run()
    fs = seaweedfs.filesystem()
    prefix = f"{seaweedfs.bucket}/{prefix_of(s3_storage)}"

    def holding(needle: bytes) -> list[str]:
        return [key for key in fs.find(prefix) if needle in fs.cat_file(key)]

    assert [k for k in holding(b"zqxmirrorgone") if "/lancedb/" in k]
    client = dovecot.client()
    client.select_folder("INBOX")
    client.delete_messages(client.search(["SUBJECT", "About gone"]))
    client.expunge()
    client.logout()
    run()
    # LanceDB keeps chunk text plain; Parquet pages are compressed, so the lake is checked by row.
    assert holding(b"zqxmirrorgone") == []
    assert [k for k in holding(b"zqxmirrorstay") if "/lancedb/" in k]
    lake = Lake(get_settings().lake_dir)
    subjects = lake.read_partition("emails", "alice", when.date(), ["subject"])["subject"]
    assert subjects.to_pylist() == ["About stay"]
