"""A run for flag changes and expunges writes only the small state files beside the day's files:
the raw bodies file and the emails file stay as they were (same inode, same bytes), and for flags
alone the chunks file too, while `emails`, `raw_messages` and search show the new flags and
deleted_at; the next run that adds a message folds the state into the rewritten raw file."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from mail_pipeline import search
from mail_pipeline.storage import state
from mail_pipeline.storage.lake import Lake
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.test_flag_sync import (  # noqa: F401 (fixtures)
    DAY,
    MARKERS,
    body_fetches,
    commands,
    emails_by_subject,
    register,
    run_day,
    seed,
    server,
)
from mail_pipeline_tests.test_sensor import tick  # noqa: F401 (a fixture)


def identity(path: Path) -> tuple:
    """What changes when a file is rewritten (the lake renames a new file into place)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def change(dovecot, uids, *, flags: bool = False, expunge: bool = False) -> None:
    client = dovecot.client()
    client.select_folder("INBOX")
    if flags:
        client.add_flags([uids["flag"]], [b"\\Flagged", b"$Work"])
        client.remove_flags([uids["unflag"]], [b"\\Seen"])
    if expunge:
        client.delete_messages([uids["expunge"]])
        client.expunge()
    client.logout()


def test_flags_and_expunges_leave_the_bodies_file_untouched(
    server,
    data_dir,
    instance,
    tick,
    monkeypatch,
    commands,
):
    monkeypatch.setenv("MAIL_PIPELINE_FLAG_RECONCILE_INTERVAL", "0")
    register(server, data_dir, "keep")
    uids = seed(server)
    cursor = tick(None).cursor
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_day(instance)
    lake = Lake(data_dir / "lake")
    files = [
        lake.partition_file(t, "alice", DAY.date())
        for t in ("raw_messages", "emails", "email_chunks")
    ]
    before = [identity(f) for f in files]

    commands.clear()
    for step in ({"flags": True}, {"expunge": True}):
        change(server, uids, **step)
        changed = tick(cursor)
        assert [str(r.partition_key) for r in changed.run_requests] == [f"alice|{DAY.date()}"]
        cursor = changed.cursor
        run_day(instance)
        assert [identity(f) for f in files[:2]] == before[:2]
        if "flags" in step:  # chunks carry deleted_at but no flags
            assert identity(files[2]) == before[2]
    assert body_fetches(commands) == []
    assert len(state.stored(lake, state.RAW, "alice", DAY.date())) == 3  # flag, unflag, expunge
    emails = emails_by_subject(data_dir)
    assert emails["About flag"]["flagged"] and emails["About flag"]["keywords"] == ["$Work"]
    assert not emails["About unflag"]["seen"] and emails["About expunge"]["deleted_at"] is not None
    assert emails["About stay"]["deleted_at"] is None
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        flags = dict(con.execute("SELECT message_id, flags FROM raw_messages").fetchall())
    assert (
        sorted(flags["flag@example.test"]) == ["$Work", "\\Flagged"]
        and flags["unflag@example.test"] == []
    )
    hits = search(MARKERS["expunge"], mode="text")
    assert [h.subject for h in hits] == ["About expunge"] and hits[0].deleted_at is not None
    assert search(MARKERS["expunge"], mode="text", exclude_deleted=True) == []
    assert not tick(cursor).run_requests  # the lake now matches the server

    server.append([("INBOX", message("late", DAY, subject="About late"), DAY)])
    run_day(instance)
    assert identity(files[0]) != before[0]
    # folded into the rewritten file
    assert state.stored(lake, state.RAW, "alice", DAY.date()) == {}
    written = {
        r["message_id"]: r
        for r in lake.read_partition("raw_messages", "alice", DAY.date()).to_pylist()
    }
    assert sorted(written["flag@example.test"]["flags"]) == ["$Work", "\\Flagged"]
    assert written["expunge@example.test"]["deleted_at"] is not None and len(written) == 6
    assert emails_by_subject(data_dir)["About flag"]["flagged"] and not os.path.exists(
        lake.partition_dir("email_state", "alice", DAY.date())
    )
