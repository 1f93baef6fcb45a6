"""The embedded demo: a pure-Python IMAP server (pymap, in memory, loopback only) seeded with a
realistic synthetic mailbox of the last two weeks, registered as the account `demo`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient

from mail_pipeline.demo.synthetic import generate_mailbox
from mail_pipeline.runtime.processes import stop_process
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry

DEMO_SLUG = "demo"
DEMO_USER, DEMO_PASSWORD = "demouser", "demopass"  # pymap's built-in demo login, loopback only
DEMO_MESSAGES = 400
DEMO_DAYS = 14


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # (host, port) of an AF_INET socket
        return port


class DemoServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> DemoServer:
        pymap = Path(sys.executable).with_name("pymap")
        self.process = subprocess.Popen(
            [
                str(pymap),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-tls",
                "dict",
                "--demo-data",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the demo IMAP server (pymap) did not start on 127.0.0.1:{self.port}")

    def seed(
        self, n: int = DEMO_MESSAGES, end: datetime | None = None, days: int = DEMO_DAYS
    ) -> int:
        # Midnight-aligned end: restarting on the same day serves the same messages.
        end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        messages = generate_mailbox(n, days=days, end=end, seed=2026)
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False)
        try:
            client.login(DEMO_USER, DEMO_PASSWORD)
            for folder in {m.folder for m in messages} - {
                f for _fl, _d, f in client.list_folders()
            }:
                client.create_folder(folder)
            for folder in sorted({m.folder for m in messages}):
                batch = [
                    {"msg": m.raw, "date": m.internaldate} for m in messages if m.folder == folder
                ]
                for start in range(0, len(batch), 100):
                    client.multiappend(folder, batch[start : start + 100])
        finally:
            client.logout()
        return len(messages)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


def register_demo_account(registry: AccountRegistry, port: int) -> Account:
    """(Re-)register `demo` at the server's port; the in-memory server gets a new port each start."""
    if DEMO_SLUG in registry.load():
        registry.remove(DEMO_SLUG)
    return registry.add(
        Account(
            slug=DEMO_SLUG,
            email="sam.taylor@example.com",
            display_name="Demo mailbox",
            host="127.0.0.1",
            port=port,
            username=DEMO_USER,
            password_token="",
            security="plain",
            folders=("INBOX", "Archive"),
        ),
        DEMO_PASSWORD,
        crypto.load_cipher(),
    )
