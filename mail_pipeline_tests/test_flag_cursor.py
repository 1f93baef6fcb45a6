"""A run over days already stored asks the server only for the flags changed since those days
were last reconciled (CHANGEDSINCE, where the server offers CONDSTORE), not for every message's
date, size and flags; without CONDSTORE, or with its cursor lost, it asks for everything, and
either way the copy ends up with the server's flags."""

from __future__ import annotations

import json

import pytest

from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync.flag_cursor import FlagCursor
from mail_pipeline_tests.test_flag_sync import (  # noqa: F401 (fixtures)
    DAY,
    commands,
    emails_by_subject,
    register,
    run_day,
    seed,
    server,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def fetches(sent: list[str], item: str) -> list[str]:
    return [line for line in sent if "FETCH" in line.upper() and item in line.upper()]


def flag(dovecot, uid: int, add: bool) -> None:
    client = dovecot.client()
    client.select_folder("INBOX")
    (client.add_flags if add else client.remove_flags)([uid], [b"\\Flagged"])
    client.logout()


def test_stored_days_ask_only_for_changed_flags(server, data_dir, instance, commands, request):
    kind = request.node.callspec.params["server"]
    condstore = kind != "without_condstore"
    register(server, data_dir, "keep")
    uids = seed(server)
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_day(instance)
    cursor_file = FlagCursor(Lake(data_dir / "lake"), "alice").path
    if condstore:
        assert DAY.date().isoformat() in json.loads(cursor_file.read_text())["INBOX"]["days"]

    commands.clear()
    flag(server, uids["flag"], add=True)
    run_day(instance)
    assert emails_by_subject(data_dir)["About flag"]["flagged"]
    if condstore:
        # Every message of the day is stored: the only dates asked for are the changed messages'
        # (with QRESYNC, to tell their days: sync/flag_delta.py).
        assert [f for f in fetches(commands, "INTERNALDATE") if "CHANGEDSINCE" not in f] == []
        assert fetches(commands, "CHANGEDSINCE") != []
        assert any("VANISHED" in f for f in fetches(commands, "CHANGEDSINCE")) == (
            kind == "condstore"
        )
    else:
        assert fetches(commands, "CHANGEDSINCE") == [] and fetches(commands, "INTERNALDATE") != []

    # A damaged cursor is no cursor: everything is asked for again, and the flags still follow.
    cursor_file.parent.mkdir(parents=True, exist_ok=True)
    cursor_file.write_text("{not json")
    commands.clear()
    flag(server, uids["flag"], add=False)
    run_day(instance)
    assert not emails_by_subject(data_dir)["About flag"]["flagged"]
    assert fetches(commands, "INTERNALDATE") != []
    # other UIDVALIDITY
    assert FlagCursor(Lake(data_dir / "lake"), "alice").since("INBOX", 0, [DAY.date()]) is None
