"""Alice's mailbox on the test Dovecot as seen through imap_proxy.py: seeding it, the server's own
digests of it, raw_messages runs and sensor ticks against it, and the lake's view of the result."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import duckdb
from dagster import Definitions, build_sensor_context, materialize

from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.sensors import new_mail_sensor_every
from mail_pipeline.imap.connection import ImapConfig
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline_tests.graph import raw_messages
from mail_pipeline_tests.mailgen import message

UTC = UTC
DAY = date(2026, 11, 10)
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
FOLDERS = ("INBOX", "Archive")


def pin(monkeypatch) -> None:
    """The clock at TODAY, and FETCH batches of 5 so each folder takes several."""
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.date().isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_BATCH_MESSAGES", "5")


def register(dovecot, proxy, data_dir, folders: tuple[str, ...] = FOLDERS) -> Account:
    """Alice's account through the proxy (plain IMAP, allowed on loopback)."""
    return AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="alice",
            email="alice@example.test",
            host="127.0.0.1",
            port=proxy.port,
            username="alice",
            password_token="",
            security="plain",
            folders=folders,
        ),
        dovecot.users["alice"],
        crypto.load_cipher(),
    )


def at(days: int) -> datetime:
    """09:00 UTC, `days` before TODAY."""
    return TODAY - timedelta(days=days) + timedelta(hours=9)


def seed(dovecot, count: int = 12) -> None:
    """`count` messages on DAY, alternating INBOX and Archive; INBOX UIDs 1 and 3 flagged."""
    when = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    dovecot.append(
        [
            (FOLDERS[i % 2], message(f"m{i:03d}", when), when + timedelta(seconds=i))
            for i in range(count)
        ]
    )
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([1, 3], [b"\\Flagged", b"$Label1"])
    client.logout()


def server_digests(dovecot) -> set[str]:
    """sha256 of every message in FOLDERS, read straight from Dovecot (not through the proxy)."""
    client = dovecot.client()
    digests = set()
    for folder in FOLDERS:
        client.select_folder(folder, readonly=True)
        digests |= {
            hashlib.sha256(item[b"BODY[]"]).hexdigest()
            for item in client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]"]).values()
        }
    client.logout()
    return digests


def query(data_dir, sql: str) -> list[tuple]:
    """Rows of `sql` over the warehouse views, read-only."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def stored_digests(data_dir) -> list[str]:
    return [row[0] for row in query(data_dir, "SELECT sha256 FROM raw_messages")]


def run(instance, day: date = DAY):
    """Materialize raw_messages for alice on `day`, failures returned, not raised."""
    instance.add_dynamic_partitions("accounts", ["alice"])
    return materialize(
        [raw_messages],
        partition_key=partition_key("alice", day),
        instance=instance,
        resources=build_resources(get_settings()),
        raise_on_error=False,
    )


def tick(instance, cursor):
    """One evaluation of the new-mail sensor from `cursor`, its new partitions registered."""
    resources = build_resources(get_settings())
    sensor = new_mail_sensor_every(60)
    definitions = Definitions(assets=[raw_messages], sensors=[sensor], resources=resources)
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=definitions.get_repository_def(),
        resources=resources,
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def session(dovecot, proxy, password: str | None = None, retry_s: float = 60.0) -> ImapSession:
    """An ImapSession to alice through the proxy (not yet connected)."""
    config = ImapConfig(
        host="127.0.0.1", port=proxy.port, username="alice", security="plain", retry_s=retry_s
    )
    return ImapSession(config, password or dovecot.users["alice"])
