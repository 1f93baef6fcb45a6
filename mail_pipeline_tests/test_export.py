"""`mail-pipeline export`: the known mailbox synced from the harness's Dovecot, written out as
.eml files, a Maildir and an mbox; every message has the sha256 of the bytes the server sends,
flags land in Maildir's info and mbox's Status lines, mbsync and notmuch read the Maildir, and an
existing destination is never written over without --force."""

from __future__ import annotations

import hashlib
import mailbox
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from mail_pipeline.export.formats import ExportedMessage, mbox_entry
from mail_pipeline_tests.indexed_demo import cli, environment
from mail_pipeline_tests.known_mailbox import (
    ALL,
    RULES,
    KnownMail,
    on_days,
    where,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
_NUMBER = re.compile(rb"Subject: \w+ m(\d+)")


@pytest.fixture(scope="module")
def known(known_mail: KnownMail) -> KnownMail:
    return known_mail


def export(known: KnownMail, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("export", "--account", "alice", *args),
        env=environment(known.data_dir),
        capture_output=True,
        text=True,
        check=check,
    )


def number(raw: bytes) -> int:
    match = _NUMBER.search(raw)
    assert match, raw[:200]
    return int(match.group(1))


def hashes(files: list[Path]) -> dict[int, str]:
    found: dict[int, str] = {}
    for path in files:
        raw = path.read_bytes()
        assert number(raw) not in found, f"message {number(raw)} written twice"
        found[number(raw)] = hashlib.sha256(raw).hexdigest()
    return found


def test_eml_files_hold_the_servers_bytes(known, tmp_path):
    dest = tmp_path / "eml"
    done = export(known, "--format", "eml", str(dest))
    assert hashes(sorted(dest.glob("*.eml"))) == known.sha256
    assert f"{len(ALL)}/{len(ALL)} messages" in done.stderr  # the progress bar's last line


def test_a_maildir_holds_the_servers_bytes_and_flags(known, tmp_path):
    dest = tmp_path / "Maildir"
    export(known, "--format", "maildir", str(dest))
    files = sorted((dest / "cur").iterdir())
    assert hashes(files) == known.sha256
    assert not list((dest / "tmp").iterdir()) and not list((dest / "new").iterdir())
    for path in files:
        n, info = number(path.read_bytes()), path.name.rpartition(":2,")[2]
        assert ("S" in info, "F" in info, "R" in info) == (
            RULES["seen"](n),
            RULES["flagged"](n),
            RULES["answered"](n),
        ), path.name


def test_mbsync_and_notmuch_read_the_maildir(known, tmp_path):
    assert shutil.which("mbsync") and shutil.which("notmuch"), "run `make services`"
    dest = tmp_path / "Maildir"
    export(known, "--format", "maildir", str(dest))
    copy = tmp_path / "copy"
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"MaildirStore exported\nPath {tmp_path}/\nInbox {dest}/\n\n"
        f"MaildirStore copy\nPath {copy}/\nInbox {copy}/INBOX/\n\n"
        "Channel c\nFar :exported:\nNear :copy:\nPatterns INBOX\nCreate Near\nSyncState *\n"
    )
    copy.mkdir()
    subprocess.run(["mbsync", "-c", str(config), "-a"], check=True, capture_output=True)
    copied = sorted([*(copy / "INBOX" / "cur").iterdir(), *(copy / "INBOX" / "new").iterdir()])
    for path in copied:  # mbsync marks what it copies with an X-TUID line of its own
        path.write_bytes(re.sub(rb"^X-TUID: [^\r\n]*\r?\n", b"", path.read_bytes(), flags=re.M))
    assert hashes(copied) == known.sha256
    notmuch_config = tmp_path / "notmuch-config"
    notmuch_config.write_text(f"[database]\npath={dest}\n[new]\ntags=new\n")
    env = {"NOTMUCH_CONFIG": str(notmuch_config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["notmuch", "new"], env=env, check=True, capture_output=True)
    counted = subprocess.run(
        ["notmuch", "count", "*"], env=env, check=True, capture_output=True, text=True
    )
    assert int(counted.stdout) == len(ALL)
    flagged = subprocess.run(
        ["notmuch", "count", "tag:flagged"], env=env, check=True, capture_output=True, text=True
    )
    assert int(flagged.stdout) == len(where("flagged"))


def test_an_mbox_holds_each_message_with_its_flags(known, tmp_path):
    dest = tmp_path / "alice.mbox"
    export(known, "--format", "mbox", str(dest))
    box = mailbox.mbox(dest)
    seen: set[int] = set()
    for message in box:
        raw = message.as_bytes()
        n = number(raw)
        seen.add(n)
        assert ("R" in (message["Status"] or "")) == RULES["seen"](n)
        assert ("F" in (message["X-Status"] or "")) == RULES["flagged"](n)
    assert seen == ALL


def test_an_mbox_entry_is_the_raw_message_behind_its_flag_lines():
    raw = b"From: a@b.test\r\nSubject: x\r\n\r\nFrom the start\r\n>From quoted\r\n"
    entry = mbox_entry(
        ExportedMessage("e1", datetime(2026, 11, 1), raw, True, False, True, ("$work",))
    )
    lines = entry.split(b"\r\n")
    assert lines[0] == b"From MAILER-DAEMON Sun Nov 01 00:00:00 2026"
    assert lines[1:4] == [b"Status: RO", b"X-Status: F", b"X-Keywords: $work"]
    body = b"\r\n".join(lines[4:])
    assert (
        body
        == raw.replace(b"\r\nFrom the", b"\r\n>From the").replace(b">From quoted", b">>From quoted")
        + b"\r\n"
    )


def test_from_to_and_query_choose_the_messages(known, tmp_path):
    dest = tmp_path / "some"
    export(
        known,
        "--from",
        "2026-11-16",
        "--to",
        "2026-11-17",
        "--query",
        "from:anna -has:attachment zebra",
        "--format",
        "eml",
        str(dest),
    )
    chosen = {number(path.read_bytes()) for path in dest.glob("*.eml")}
    assert chosen == on_days(0, 1) & where("anna") & where("zebra") - where("attachment")
    assert chosen  # the rules leave some


def test_an_existing_destination_needs_force(known, tmp_path):
    dest = tmp_path / "alice.mbox"
    dest.write_bytes(b"precious")
    refused = export(known, "--format", "mbox", str(dest), check=False)
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert dest.read_bytes() == b"precious"
    export(known, "--format", "mbox", "--force", str(dest))
    assert len(mailbox.mbox(dest)) == len(ALL)


def test_a_bad_query_is_refused_before_anything_is_written(known, tmp_path):
    dest = tmp_path / "never"
    refused = export(known, "--query", "label:x", "--format", "maildir", str(dest), check=False)
    assert refused.returncode == 2
    assert "unknown operator label:" in refused.stderr
    assert not dest.exists()
