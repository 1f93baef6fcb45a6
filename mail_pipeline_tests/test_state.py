"""State overlays (storage/state.py): flags and deleted_at kept beside a day's content file override
its rows, for the stages and for the DuckDB views alike; a lake without them reads as it did."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest

from mail_pipeline.cli.repair import Repaired, consequences, find_damaged
from mail_pipeline.storage import state
from mail_pipeline.storage.catalog import ensure_catalog
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import EMAILS, RAW_MESSAGES
from mail_pipeline.sync.reconcile import StoredMessage, read_stored
from mail_pipeline_tests.damage import damage_column

DAY = date(2026, 11, 19)
GONE = datetime(2026, 11, 19, 12, tzinfo=UTC)


def raw(uid: int, flags: list[str], deleted_at=None) -> dict:
    return {
        "folder": "INBOX",
        "uidvalidity": 7,
        "uid": uid,
        "internaldate": GONE,
        "flags": flags,
        "size": 10,
        "sha256": hashlib.sha256(b"x" * 10).hexdigest(),
        "message_id": f"m{uid}",
        "raw": b"x" * 10,
        "fetched_at": GONE,
        "deleted_at": deleted_at,
    }


def email(uid: int, flagged: bool, deleted_at=None) -> dict:
    return {
        "email_id": f"e{uid}",
        "subject": f"s{uid}",
        "seen": False,
        "answered": False,
        "flagged": flagged,
        "keywords": [],
        "deleted_at": deleted_at,
        "sha256": f"s{uid}",
    }


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    # uid 2 was a tombstone when the file was written; uid 3 is not overridden at all.
    lake.write_partition(
        "raw_messages",
        "a",
        DAY,
        pa.Table.from_pylist(
            [raw(1, []), raw(2, ["\\Seen"], GONE), raw(3, ["$Old"])], schema=RAW_MESSAGES
        ),
    )
    lake.write_partition(
        "emails",
        "a",
        DAY,
        pa.Table.from_pylist(
            [email(1, False), email(2, False, GONE), email(3, True)], schema=EMAILS
        ),
    )
    return lake


def override(lake: Lake) -> None:
    state.write(
        lake,
        state.RAW,
        "a",
        DAY,
        {
            ("INBOX", 7, 1): {"flags": ["\\Flagged"], "deleted_at": GONE},
            ("INBOX", 7, 2): {"flags": ["\\Seen"], "deleted_at": None},
        },
    )
    state.write(
        lake,
        state.EMAILS,
        "a",
        DAY,
        {
            ("e1",): {
                "seen": False,
                "answered": False,
                "flagged": True,
                "keywords": ["$Work"],
                "deleted_at": GONE,
            },
            ("e2",): {
                "seen": True,
                "answered": False,
                "flagged": False,
                "keywords": [],
                "deleted_at": None,
            },
        },
    )


def test_stages_read_the_overlay_over_the_content_and_a_null_state_wins(lake):
    before = state.read(
        lake, state.RAW, "a", DAY, ["folder", "uidvalidity", "uid", "flags", "deleted_at"]
    )
    override(lake)
    rows = state.read(
        lake, state.RAW, "a", DAY, ["folder", "uidvalidity", "uid", "flags", "deleted_at"]
    )
    assert [r["flags"] for r in before] == [[], ["\\Seen"], ["$Old"]]
    assert [(r["uid"], r["flags"], r["deleted_at"]) for r in rows] == [
        (1, ["\\Flagged"], GONE),
        (2, ["\\Seen"], None),
        (3, ["$Old"], None),
    ]
    emails = state.read(lake, state.EMAILS, "a", DAY, ["email_id", "flagged", "deleted_at"])
    assert [(e["email_id"], e["flagged"], e["deleted_at"]) for e in emails] == [
        ("e1", True, GONE),
        ("e2", False, None),
        ("e3", True, None),
    ]


def test_the_sensor_reads_stored_messages_with_their_current_state(lake):
    before = read_stored(lake, "a", [DAY])
    override(lake)
    assert before == {
        ("INBOX", 7): {
            1: StoredMessage(DAY, frozenset()),
            3: StoredMessage(DAY, frozenset({"$Old"})),
        }
    }
    assert read_stored(lake, "a", [DAY, date(2026, 11, 20)]) == {
        ("INBOX", 7): {  # 1 deleted, 2 back
            2: StoredMessage(DAY, frozenset({"\\Seen"})),
            3: StoredMessage(DAY, frozenset({"$Old"})),
        }
    }


def test_the_views_show_the_current_state_under_the_same_columns(lake, tmp_path):
    override(lake)
    ensure_catalog(tmp_path / "warehouse.duckdb", lake)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        raw_view = con.execute(
            "SELECT uid, flags, deleted_at IS NOT NULL, raw FROM raw_messages ORDER BY uid"
        ).fetchall()
        emails = con.execute(
            "SELECT email_id, flagged, keywords, deleted_at IS NOT NULL, subject FROM emails "
            "ORDER BY email_id"
        ).fetchall()
        columns = [d[0] for d in con.execute("SELECT * FROM emails LIMIT 0").description]
        views = {
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
    assert raw_view == [
        (1, ["\\Flagged"], True, b"x" * 10),
        (2, ["\\Seen"], False, b"x" * 10),
        (3, ["$Old"], False, b"x" * 10),
    ]
    assert emails == [
        ("e1", True, ["$Work"], True, "s1"),
        ("e2", False, [], False, "s2"),
        ("e3", True, [], False, "s3"),
    ]
    assert columns == [*EMAILS.names, "account", "day"]
    assert not views & {"message_state", "email_state"}  # read through the tables they override


def test_clearing_the_overlay_leaves_the_content_file_as_written(lake):
    override(lake)
    state.clear(lake, state.RAW, "a", DAY)
    assert state.stored(lake, state.RAW, "a", DAY) == {}
    assert lake.list_partitions("message_state") == []
    rows = state.read(
        lake, state.RAW, "a", DAY, ["folder", "uidvalidity", "uid", "flags", "deleted_at"]
    )
    assert [(r["flags"], r["deleted_at"]) for r in rows] == [
        ([], None),
        (["\\Seen"], GONE),
        (["$Old"], None),
    ]


def test_a_damaged_state_file_is_found_and_repair_says_what_the_next_run_restores(lake):
    override(lake)
    path = lake.partition_file("message_state", "a", DAY)
    damage_column(path, "folder")
    [damaged] = find_damaged(lake)
    assert (damaged.table, damaged.path) == ("message_state", path)
    [line] = consequences(Repaired(damaged, path, None))
    assert "flags and deleted_at" in line and "from the server again" in line


def test_a_lake_written_before_deleted_reason_reads_and_takes_a_folder_gone_mark(tmp_path):
    import pyarrow.parquet as pq

    from mail_pipeline.stages.day_sync import write_state
    from mail_pipeline.storage.schemas import MESSAGE_STATE
    from mail_pipeline.sync.apply import META_COLUMNS

    lake = Lake(tmp_path / "lake")
    old_raw = pa.schema([f for f in RAW_MESSAGES if f.name != "deleted_reason"])
    old_state = pa.schema([f for f in MESSAGE_STATE if f.name != "deleted_reason"])
    for table, schema, rows in (
        ("raw_messages", old_raw, [raw(1, []), raw(2, []), raw(3, [])]),
        (
            "message_state",
            old_state,
            [{"folder": "INBOX", "uidvalidity": 7, "uid": 1, "flags": [], "deleted_at": GONE}],
        ),
    ):
        path = lake.partition_file(table, "a", DAY)
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)

    rows = state.read(lake, state.RAW, "a", DAY, META_COLUMNS)
    assert [(r["uid"], r["deleted_at"], r["deleted_reason"]) for r in rows] == [
        (1, GONE, None),
        (2, None, None),
        (3, None, None),
    ]
    write_state(
        lake, "a", DAY, rows, [[{}], [{}], [{"deleted_at": GONE, "deleted_reason": "folder_gone"}]]
    )
    ensure_catalog(tmp_path / "warehouse.duckdb", lake)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        view = con.execute(
            "SELECT uid, deleted_at IS NOT NULL, deleted_reason FROM raw_messages ORDER BY uid"
        ).fetchall()
    assert view == [(1, True, None), (2, False, None), (3, True, "folder_gone")]
