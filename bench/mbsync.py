"""mbsync (Debian `isync`) pulling the bench folders into a Maildir: the reference IMAP client."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from bench.mailbox import FOLDERS, USER, Workbench

# isync 1.4 checks the certificate's DNS names only, never an IP SAN: connect as "localhost"
# (the test certificate's CN). isync 1.4 syntax: Far/Near, and SSLType (1.5 renames it
# TLSType and still reads SSLType). SyncState * keeps the state inside the Maildir, not $HOME.
MBSYNCRC = """\
IMAPAccount bench
Host localhost
Port {port}
User {user}
Pass "{password}"
SSLType IMAPS
CertificateFile {ca_file}

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns {patterns}
Create Near
Sync Pull
SyncState *
"""


def available() -> bool:
    return shutil.which("mbsync") is not None


def pull(bench: Workbench, *, fsync: bool = True, port: int | None = None) -> tuple[float, int]:
    """Seconds for `mbsync -a` to pull every folder into a fresh Maildir, and messages landed.

    `fsync=False` adds `FSync no`: the lake's Parquet writes do not fsync either, so that is
    the like-for-like durability; the default is what a user of mbsync gets. `port`: a proxy's
    in front of Dovecot's TLS port instead of that port.
    """
    server = bench.dovecot
    home = bench.scratch_dir("mbsync")
    maildir = home / "mail"
    maildir.mkdir()
    rc = home / "mbsyncrc"
    rc.write_text(
        ("" if fsync else "FSync no\n\n")
        + MBSYNCRC.format(
            port=port or server.tls_port,
            user=USER,
            password=bench.password,
            ca_file=server.ca_file,
            maildir=maildir,
            patterns=" ".join(FOLDERS),
        )
    )
    rc.chmod(0o600)
    started = time.perf_counter()
    done = subprocess.run(["mbsync", "-q", "-c", str(rc), "-a"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(
            f"mbsync exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"
        )
    return seconds, count_messages(maildir)


def count_messages(maildir: Path) -> int:
    return sum(
        1
        for folder in FOLDERS
        for sub in ("cur", "new")
        for entry in (maildir / folder / sub).iterdir()
        if entry.is_file()
    )
