"""A run over stored days on a server with QRESYNC works from what changed since the flag cursor
(sync/flag_delta.py), and emails from the raw state file alone (stages/emails.overlay_states):
each change below is synced twice from the same copy, once that way and once with every message
planned and every email's rows compared, and the two lakes must agree. Changes the short way
cannot decide (new mail, a copy gone while another stays, `mirror`) take the full plan."""

from __future__ import annotations

import shutil

import pytest

from mail_pipeline.defs.resources import ImapResource
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.stages import emails
from mail_pipeline.stages.ingest import ingest
from mail_pipeline.storage import state
from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync.flag_cursor import FlagCursor
from mail_pipeline_tests.conftest import _server_root, _start
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import Dovecot
from mail_pipeline_tests.test_flag_sync import DAY, register

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
NAMES = ("a", "b", "c", "d", "e", "f")


@pytest.fixture
def server(data_dir):
    root = _server_root("mp-dovecot-")
    dovecot = _start(lambda: Dovecot(root))
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    dovecot.append(
        [
            ("INBOX", message(name, DAY, subject=f"About {name}", body=f"Note {name}.\r\n"), DAY)
            for name in NAMES
        ]
    )
    # One message in both folders: two copies of one email.
    dovecot.append(
        [
            (folder, message("twin", DAY, subject="About twin", body="Twice.\r\n"), DAY)
            for folder in ("INBOX", "Archive")
        ]
    )
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Seen"])
    client.logout()
    yield dovecot
    dovecot.stop()
    shutil.rmtree(root, ignore_errors=True)


def sync(data_dir, fernet_key) -> dict:
    """raw_messages then emails for DAY, as a run does; the day's raw outcome figures."""
    imap = ImapResource(data_dir=str(data_dir), fernet_key=fernet_key)
    account, lake = imap.account("alice"), Lake(data_dir / "lake")
    [outcome] = ingest(
        "alice",
        list(account.folders),
        [DAY.date()],
        open_session=lambda: imap.session(account),
        lake=lake,
        run_id="test",
        limits=imap.limits,
        on_server_delete=account.on_server_delete,
    )
    with ExtractionPool() as pool:
        emails.parse_day(lake, "alice", DAY.date(), pool)
    return outcome.figures


def current(data_dir) -> tuple[list, list]:
    """The day's raw rows and emails as users see them (deleted_at: whether set, not when)."""
    lake, day = Lake(data_dir / "lake"), DAY.date()
    raw = state.read(
        lake, state.RAW, "alice", day, ["folder", "uidvalidity", "uid", "flags", "deleted_at"]
    )
    mail = state.read(
        lake, state.EMAILS, "alice", day, ["email_id", "locations", *state.EMAILS.columns]
    )
    for row in raw + mail:
        row["deleted_at"] = row["deleted_at"] is not None
        row["flags" if "flags" in row else "keywords"] = sorted(
            row.get("flags") or row.get("keywords") or []
        )
    return sorted(raw, key=str), sorted(mail, key=str)


def change(dovecot, step: str) -> None:
    client = dovecot.client()
    client.select_folder("INBOX")
    uids = sorted(client.search(["ALL"]))
    if step in ("flags", "flags_and_new_mail"):
        client.add_flags([uids[0]], [b"\\Flagged", b"$Work"])
        client.remove_flags([uids[1]], [b"\\Seen"])
        client.add_flags([uids[2]], [b"\\Answered"])
    if step in ("expunge", "expunge_twin"):
        # the twin was appended last
        client.delete_messages([uids[3] if step == "expunge" else uids[-1]])
        client.expunge()
    client.logout()
    if step == "flags_and_new_mail":
        dovecot.append(
            [("INBOX", message("late", DAY, subject="About late", body="Late.\r\n"), DAY)]
        )


@pytest.mark.parametrize(
    ("policy", "step", "path"),
    [
        ("keep", "flags", "changes"),
        ("keep", "expunge", "changes"),
        ("keep", "expunge_twin", "plan"),  # its other copy stays: the email's locations change
        ("keep", "flags_and_new_mail", "plan"),
        ("mirror", "expunge", "plan"),  # to be erased: the bodies file is rewritten
        ("mirror", "flags", "changes"),
    ],
)
def test_the_short_way_and_the_full_plan_agree(
    server, data_dir, fernet_key, monkeypatch, tmp_path, policy, step, path
):
    register(server, data_dir, policy)
    sync(data_dir, fernet_key)
    planned = tmp_path / "planned"
    shutil.copytree(data_dir, planned)
    before = current(planned)
    change(server, step)

    shown = []
    overlay_states = emails.overlay_states
    monkeypatch.setattr(
        emails, "overlay_states", lambda *a: shown.append(result := overlay_states(*a)) or result
    )
    short = sync(data_dir, fernet_key)
    assert short["sync_path"] == path
    assert (shown[0] is not None) == (path == "changes")  # emails took the short way too

    FlagCursor(Lake(planned / "lake"), "alice").forget()  # no cursor: every message planned
    monkeypatch.setattr(emails, "overlay_states", lambda *a: None)  # every email's rows compared
    full = sync(planned, fernet_key)
    assert full["sync_path"] == "plan"

    assert current(data_dir) == current(planned)
    figures = (
        "flags_updated",
        "gone_from_server",
        "erased",
        "messages_new",
        "messages_already_stored",
    )
    assert {f: short[f] for f in figures} == {f: full[f] for f in figures}
    assert current(data_dir) != before  # the change reached the copy
    # Both remember the day as current: the next run of each takes the short way.
    assert (
        sync(data_dir, fernet_key)["sync_path"]
        == sync(planned, fernet_key)["sync_path"]
        == "changes"
    )
    assert current(data_dir) == current(planned)
