"""The daily digest over the known mailbox synced from the harness's Dovecot: each section lists
exactly what the mailbox's rules give; the preview command changes neither the lake nor the
Dagster instance; delivery reaches a real SMTP server (aiosmtpd, STARTTLS and implicit TLS, with
sign-in) and the message received parses."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import duckdb
import pytest

from mail_pipeline_tests.indexed_demo import cli, environment
from mail_pipeline_tests.known_mailbox import (
    ALL,
    DAYS,
    FIRST_DAY,
    TODAY,
    KnownMail,
    day_of,
    where,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SMTP_PASSWORD = "smtp-secret-9f2"


def days(n: int) -> date:
    return day_of(n).date()


def expected(section: str, day: date) -> set[int]:
    """What each section of `day`'s digest lists, from the mailbox's rules."""
    sent_by_day = {n for n in ALL if days(n) <= day}
    owner = where("owner") & sent_by_day
    if section == "awaiting_reply":  # the owner's messages answer message n - 3
        answered = where("answered") | {n - 3 for n in owner}
        return sent_by_day - owner - where("list") - answered
    on_day = {n for n in ALL if days(n) == day}
    if section == "flagged":
        return on_day & where("flagged")
    if section == "attachments":
        return (on_day & where("attachment")) - owner
    if section == "busiest_threads":  # each day one thread has two messages: n - 3 and the reply
        return on_day & owner
    raise AssertionError(section)


def numbers_of(items: list[dict]) -> set[int]:
    return {int(re.search(r"m(\d+)", item["subject"]).group(1)) for item in items}


def tree(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots`: its size and modification time."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def known(known_mail: KnownMail) -> KnownMail:
    return known_mail


def materialize_digest(known: KnownMail, day: date, instance) -> None:
    from dagster import materialize

    from mail_pipeline.defs.assets.digest import build_daily_digest
    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.settings import get_settings
    from mail_pipeline_tests.graph import mail_partitions

    result = materialize(
        [build_daily_digest(mail_partitions)],
        partition_key=partition_key("alice", day),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    assert result.success


@pytest.fixture
def settings_env(known, monkeypatch):
    from mail_pipeline.storage import crypto

    monkeypatch.setenv(crypto.KEY_VARIABLE, known.fernet_key)
    monkeypatch.setenv("MAIL_PIPELINE_DATA_DIR", str(known.data_dir))
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY)


@pytest.mark.parametrize("offset", range(DAYS))
def test_each_section_lists_exactly_the_days_mail(known, settings_env, offset):
    from dagster import DagsterInstance

    day = (FIRST_DAY + timedelta(days=offset)).date()
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("accounts", ["alice"])
        materialize_digest(known, day, instance)
    with duckdb.connect(str(known.data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            "SELECT section, subject, sender, extract FROM daily_digest "
            "WHERE account = 'alice' AND day = ? ORDER BY rank",
            [day],
        )
        names = [column[0] for column in cursor.description]
        items = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for section in ("awaiting_reply", "flagged", "attachments", "busiest_threads"):
        listed = [item for item in items if item["section"] == section]
        assert numbers_of(listed) == expected(section, day), section
        assert len(listed) == len(numbers_of(listed)), f"{section} lists a message twice"
    new = {item["sender"] for item in items if item["section"] == "new_correspondents"}
    assert new == {0: {"Anna Berg"}, 1: {"Bob Stone"}, 2: set()}[offset]
    assert all(item["extract"].startswith("Message number") for item in items)


def test_the_preview_changes_nothing(known, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    before = tree(known.data_dir, home)
    env = {**environment(known.data_dir), "DAGSTER_HOME": str(home)}
    day = (FIRST_DAY + timedelta(days=2)).date()
    shown = subprocess.run(
        cli("digest", "--account", "alice", "--day", day.isoformat()),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    awaiting = shown.stdout.split("## Awaiting your reply", 1)[1].split("\n## ", 1)[0]
    listed = {int(n) for n in re.findall(r"\[\w+ m(\d+)\]", awaiting)}
    assert listed == expected("awaiting_reply", day)
    assert "#email=" in awaiting  # each item links to the page
    html = subprocess.run(
        cli("digest", "--account", "alice", "--since", FIRST_DAY.date().isoformat(), "--html"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert html.stdout.startswith("<!doctype html>")
    assert tree(known.data_dir, home) == before


class Received:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by name
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[tuple[str, Received, str]]:
    """An aiosmtpd server on loopback with a self-signed certificate, for each security mode."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from mail_pipeline_tests.servers import free_port, make_self_signed_cert

    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.login == b"digest" and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    servers = []

    def start(security: str) -> tuple[int, Received]:
        received = Received()
        # aiosmtpd offers AUTH on implicit TLS only without auth_require_tls (it looks for STARTTLS)
        options = (
            {"ssl_context": context, "auth_require_tls": False}
            if security == "tls"
            else {"tls_context": context, "auth_require_tls": True}
        )
        port = free_port()  # aiosmtpd's start() connects to its port: 0 will not do
        controller = Controller(
            received,
            hostname="127.0.0.1",
            port=port,
            authenticator=authenticate,
            **options,
        )
        controller.start()
        servers.append(controller)
        return port, received

    yield start, str(cert)
    for controller in servers:
        controller.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_delivery_reaches_a_real_smtp_server(known, settings_env, smtp_server, security):
    from dagster import DagsterInstance

    start, ca_file = smtp_server
    port, received = start(security)
    env = {**environment(known.data_dir), "FERNET_KEY": known.fernet_key, "SMTP_PW": SMTP_PASSWORD}
    set_up = subprocess.run(
        cli(
            "digest-delivery",
            "--account",
            "alice",
            "--to",
            "team@example.test",
            "--smtp-host",
            "localhost",
            "--smtp-port",
            str(port),
            "--smtp-security",
            security,
            "--smtp-username",
            "digest",
            "--password-env",
            "SMTP_PW",
            "--ca-file",
            ca_file,
        ),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert set_up.returncode == 0, set_up.stderr
    assert SMTP_PASSWORD not in set_up.stdout + set_up.stderr
    registry = (known.data_dir / "accounts.json").read_text()
    assert SMTP_PASSWORD not in registry  # stored only encrypted
    day = (FIRST_DAY + timedelta(days=1)).date()
    try:
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("accounts", ["alice"])
            materialize_digest(known, day, instance)
    finally:
        subprocess.run(cli("digest-delivery", "--account", "alice", "--off"), env=env, check=True)
    assert len(received.messages) == 1
    recipients, raw = received.messages[0]
    assert recipients == ["team@example.test"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == f"Mail digest for alice, {day.isoformat()}"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for n in expected("awaiting_reply", day):
        assert f"m{n:02d}" in text and f"m{n:02d}" in html
    assert os.environ.get("SMTP_PW") is None
