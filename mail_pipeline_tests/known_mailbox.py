"""A known mailbox for the tests of search operators, export, contacts and the digest: COUNT
messages whose every property follows a plain rule (RULES), seeded into the harness's Dovecot and
synced by materializing the real asset graph, so each test computes what it expects from the
rules, independently of the code under test."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

import pytest

COUNT = 30
TODAY = "2026-11-20"
FIRST_DAY = datetime(2026, 11, 16, 9, tzinfo=UTC)  # MAIL_PIPELINE_TODAY is 2026-11-20
DAYS = 3
ALL = set(range(COUNT))
BOB = "Bob Stone <bob@beta.test>"

# The mailbox, message n of COUNT: each property a plain rule, so the expected set of every
# operator is computed here, independently of the SQL that selects it.
RULES: dict[str, Callable[[int], bool]] = {
    # sent by the owner (Alice) to Anna, in reply to message n - 3 (the same day, 3 minutes later)
    "owner": lambda n: n % 10 == 9,
    "anna": lambda n: n % 3 == 0 and n % 10 != 9,  # else from Bob, unless the owner's
    "bob": lambda n: n % 3 != 0 and n % 10 != 9,
    "list": lambda n: n % 8 == 7,  # carries a List-Id: not from a person
    "cc_carl": lambda n: n % 2 == 0,
    "invoice": lambda n: n % 4 == 0,  # subject "Invoice mNN", else "Note mNN"
    "attachment": lambda n: n % 5 == 0,
    "zebra": lambda n: n % 2 == 1,  # the word in the body
    "bank_details": lambda n: n % 6 == 0,  # the phrase in the body
    "archive": lambda n: n % 7 == 0,  # else INBOX
    "seen": lambda n: n % 2 == 0,
    "flagged": lambda n: n % 3 == 1,
    "answered": lambda n: n % 4 == 1,
}


def day_of(n: int) -> datetime:
    return FIRST_DAY + timedelta(days=n % DAYS, minutes=n)


def raw(n: int) -> bytes:
    message = EmailMessage()
    anna, owner = "Anna Berg <anna@acme.test>", "Alice <alice@example.test>"
    sender = owner if RULES["owner"](n) else anna if RULES["anna"](n) else BOB
    message["From"], message["To"] = sender, anna if RULES["owner"](n) else owner
    if RULES["owner"](n):
        message["In-Reply-To"] = message["References"] = f"<m{n - 3}@example.test>"
    if RULES["list"](n):
        message["List-Id"] = "Garden club <garden.lists.example.test>"
    if RULES["cc_carl"](n):
        message["Cc"] = "Carl Gray <carl@gamma.test>"
    message["Subject"] = f"{'Invoice' if RULES['invoice'](n) else 'Note'} m{n:02d}"
    message["Date"], message["Message-ID"] = format_datetime(day_of(n)), f"<m{n}@example.test>"
    body = [f"Message number {n} about the quarterly garden plans."]
    body += ["A zebra crossed the road."] if RULES["zebra"](n) else []
    body += ["Please send the bank details today."] if RULES["bank_details"](n) else []
    message.set_content("\n".join(body) + "\n")
    if RULES["attachment"](n):
        message.add_attachment(
            b"col\n1\n", maintype="text", subtype="csv", filename=f"report-{n}.csv"
        )
    return message.as_bytes(policy=SMTP)


def seed(dovecot) -> None:
    folder = {n: "Archive" if RULES["archive"](n) else "INBOX" for n in ALL}
    dovecot.append([(folder[n], raw(n), day_of(n)) for n in sorted(ALL)])
    client = dovecot.client()
    try:
        for name in ("INBOX", "Archive"):
            client.select_folder(name)
            for uid, data in client.fetch(client.search(["ALL"]), ["ENVELOPE"]).items():
                n = int(re.search(rb"m(\d+)", data[b"ENVELOPE"].subject).group(1))
                flags = [b"\\Seen"] if RULES["seen"](n) else []
                flags += [b"\\Flagged"] if RULES["flagged"](n) else []
                flags += [b"\\Answered"] if RULES["answered"](n) else []
                if flags:
                    client.add_flags([uid], flags)
    finally:
        client.logout()


def build(dovecot, data_dir: Path) -> None:
    from dagster import DagsterInstance, materialize

    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.settings import get_settings
    from mail_pipeline_tests.conftest import register_alice
    from mail_pipeline_tests.graph import CHECKS
    from mail_pipeline_tests.test_pipeline_e2e import GRAPH

    register_alice(dovecot, data_dir)
    seed(dovecot)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("accounts", ["alice"])
        for offset in range(DAYS):
            result = materialize(
                GRAPH + CHECKS,
                partition_key=partition_key("alice", (FIRST_DAY + timedelta(days=offset)).date()),
                resources=build_resources(get_settings()),
                instance=instance,
            )
            assert result.success


def server_sha256s(dovecot) -> dict[int, str]:
    """Message number -> the sha256 of the bytes the server sends for it (BODY[])."""
    client = dovecot.client()
    found: dict[int, str] = {}
    try:
        for name in ("INBOX", "Archive"):
            client.select_folder(name, readonly=True)
            for data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values():
                body = data[b"BODY[]"]
                n = int(re.search(rb"Subject: \w+ m(\d+)", body).group(1))
                found[n] = hashlib.sha256(body).hexdigest()
    finally:
        client.logout()
    return found


@dataclass(frozen=True)
class KnownMail:
    data_dir: Path
    sha256: dict[int, str]  # message number -> the server's bytes' sha256
    fernet_key: str  # the key the account's password is stored under


def make_known_mail(root: Path) -> KnownMail:
    """The known mailbox seeded into a private Dovecot and synced into `root`/data."""
    from mail_pipeline.storage import crypto
    from mail_pipeline_tests.conftest import _server_root, _start
    from mail_pipeline_tests.servers import Dovecot

    server_root = _server_root("mp-dovecot-")
    dovecot = _start(lambda: Dovecot(server_root))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            key = crypto.generate_key()
            patch.setenv(crypto.KEY_VARIABLE, key)
            patch.setenv("MAIL_PIPELINE_DATA_DIR", str(root / "data"))
            patch.setenv("MAIL_PIPELINE_TODAY", TODAY)
            build(dovecot, root / "data")
            hashes = server_sha256s(dovecot)
    finally:
        dovecot.stop()
        shutil.rmtree(server_root, ignore_errors=True)
    return KnownMail(root / "data", hashes, key)


def copy_known_mail(known: KnownMail, root: Path) -> KnownMail:
    """A private copy of `known` under `root`/data, for a test module that writes to it (contacts,
    the digest) or serves it: building the mailbox is a Dovecot and three materialized days, copying
    it a second. The catalog's views name the lake by its absolute path, so they are rewritten to
    read the copy's own files."""
    from mail_pipeline.storage.catalog import ensure_catalog
    from mail_pipeline.storage.lake import Lake

    data_dir = root / "data"
    shutil.copytree(known.data_dir, data_dir)
    ensure_catalog(data_dir / "warehouse.duckdb", Lake(data_dir / "lake"))
    return KnownMail(data_dir, known.sha256, known.fernet_key)


def numbers(hits: list[dict]) -> set[int]:
    """The message numbers of search hits (their subjects), each listed once."""
    found = [int(re.search(r"m(\d+)", hit["subject"]).group(1)) for hit in hits]
    assert len(found) == len(set(found)), "an email listed twice"
    return set(found)


def where(rule: str) -> set[int]:
    return {n for n in ALL if RULES[rule](n)}


def on_days(first: int, last: int) -> set[int]:
    return {n for n in ALL if first <= n % DAYS <= last}
