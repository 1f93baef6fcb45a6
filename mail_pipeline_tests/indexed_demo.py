"""A small searchable data directory for the search service's tests: the demo mailbox (pymap,
synthetic mail) plus a hostile message and one with a PDF attachment, ingested by materializing the real asset graph, and a
search service process (`mail-pipeline serve`) over it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path

from mail_pipeline.runtime.processes import stop_process

REPO = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 20, tzinfo=UTC)
TODAY = "2026-11-20"
MESSAGES, DAYS = 48, 3
# Mail content that would run as script if the page ever put it into HTML.
HOSTILE_SUBJECT = (
    '<img src=x onerror="window.pwned=1"> Quarterly <script>window.pwned=2</script> gazebo plans'
)
HOSTILE_DATE = datetime(2026, 11, 19, 15, 30, tzinfo=UTC)


def hostile_message() -> bytes:
    return (
        f"From: Mallory <mallory@example.net>\r\nTo: sam.taylor@example.com\r\n"
        f"Subject: {HOSTILE_SUBJECT}\r\nDate: {format_datetime(HOSTILE_DATE)}\r\n"
        "Message-ID: <hostile-1@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        'The gazebo plans are ready: <b onmouseover="window.pwned=3">bold claims</b> and '
        "<script>window.pwned=4</script> inside.\r\n"
    ).encode()


ATTACHMENT_NAME = "Gazebo warranty.pdf"
ATTACHMENT_TEXT = "The pergola warranty covers twelve years of weather damage to the roof."


def attachment_message() -> bytes:
    """Mail whose only mention of the pergola is inside its PDF attachment."""
    from email.message import EmailMessage
    from email.policy import SMTP

    from mail_pipeline_tests.attachment_files import pdf

    message = EmailMessage()
    message["From"], message["To"] = (
        "Olivia Park <olivia.park@example.org>",
        "sam.taylor@example.com",
    )
    message["Subject"], message["Message-ID"] = "Papers you asked for", "<warranty-1@example.org>"
    message["Date"] = format_datetime(HOSTILE_DATE)
    message.set_content("Hi Sam,\n\nThe papers are attached.\n\nOlivia\n")
    message.add_attachment(
        pdf(ATTACHMENT_TEXT), maintype="application", subtype="pdf", filename=ATTACHMENT_NAME
    )
    return message.as_bytes(policy=SMTP)


def build(data_dir: Path) -> list[date]:
    """Seed the demo server, index every day of it into `data_dir` (the environment must name it
    and a FERNET_KEY); returns the days that hold mail."""
    from dagster import DagsterInstance, materialize
    from imapclient import IMAPClient

    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.demo import server as demo
    from mail_pipeline.demo.synthetic import generate_mailbox
    from mail_pipeline.settings import get_settings
    from mail_pipeline.storage.accounts import AccountRegistry
    from mail_pipeline_tests.graph import CHECKS
    from mail_pipeline_tests.test_pipeline_e2e import GRAPH

    days = sorted(
        {m.internaldate.date() for m in generate_mailbox(MESSAGES, days=DAYS, end=END, seed=2026)}
        | {HOSTILE_DATE.date()}
    )
    mailbox = demo.DemoServer().start()
    try:
        mailbox.seed(MESSAGES, end=END, days=DAYS)
        client = IMAPClient("127.0.0.1", port=mailbox.port, ssl=False)
        client.login(demo.DEMO_USER, demo.DEMO_PASSWORD)
        client.append("INBOX", hostile_message(), msg_time=HOSTILE_DATE)
        client.append("INBOX", attachment_message(), msg_time=HOSTILE_DATE)
        client.logout()
        demo.register_demo_account(AccountRegistry(data_dir / "accounts.json"), mailbox.port)
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("accounts", [demo.DEMO_SLUG])
            for day in days:
                result = materialize(
                    GRAPH + CHECKS,
                    partition_key=partition_key(demo.DEMO_SLUG, day),
                    resources=build_resources(get_settings()),
                    instance=instance,
                )
                assert result.success
    finally:
        mailbox.stop()
    return days


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `mail-pipeline` process over `data_dir`: this checkout first on the
    path, no FERNET_KEY (reading needs none)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "FERNET_KEY" and not k.startswith("MAIL_PIPELINE_")
    }
    return {
        **env,
        "PYTHONPATH": str(REPO),
        "MAIL_PIPELINE_DATA_DIR": str(data_dir),
        "MAIL_PIPELINE_TODAY": TODAY,
        "HF_HUB_OFFLINE": "1",
        "LANCEDB_LOG": "error",
        **extra,
    }


def cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("mail-pipeline")), *args]


@contextmanager
def serving(
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float = 180.0,
    lines: list[str] | None = None,
):
    """`mail-pipeline serve --port 0` started as `argv`; yields its base URL once it serves (for
    the bench: only after the model is loaded and the query encoder traced). What it prints is
    collected into `lines` when given."""
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines = [] if lines is None else lines
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if match := re.search(r"search service: (http://\S+)", line):
                found.append(match.group(1))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not found and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not found:
            raise RuntimeError("the search service did not start:\n" + "".join(lines[-40:]))
        yield found[0]
    finally:
        stop_process(process, timeout=20)
        reader.join(timeout=5)


def search_service(data_dir: Path, cwd: Path, timeout: float = 180.0):
    """`mail-pipeline serve --port 0` over `data_dir`; yields its base URL once it serves."""
    return serving(cli("serve", "--port", "0"), environment(data_dir), cwd, timeout)
