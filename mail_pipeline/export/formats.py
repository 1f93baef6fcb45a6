"""Writers of the standard mailbox formats: one .eml file per message, a Maildir, an mbox.

Each message is written byte for byte as the server sent it. Flags go where each format keeps
them: the Maildir file name's info (`:2,FRS`, https://cr.yp.to/proto/maildir.html) and, in an
mbox, `Status`/`X-Status`/`X-Keywords` lines put before the message's own headers (the mutt and
Dovecot convention), with `From ` lines of the body quoted the mboxrd way.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FORMATS = ("mbox", "maildir", "eml")
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


@dataclass(frozen=True)
class ExportedMessage:
    email_id: str
    received_at: datetime
    raw: bytes
    seen: bool
    answered: bool
    flagged: bool
    keywords: tuple[str, ...]


class DestinationExistsError(FileExistsError):
    """The destination is there already and --force was not given."""


def _name(message: ExportedMessage) -> str:
    """A unique, sortable file name: arrival time, then the email id."""
    return f"{int(message.received_at.timestamp())}.{message.email_id}"


def maildir_info(message: ExportedMessage) -> str:
    """`:2,` and the flag letters in ASCII order (F flagged, R replied, S seen)."""
    letters = ("F" if message.flagged else "") + ("R" if message.answered else "")
    return ":2," + letters + ("S" if message.seen else "")


def _write_new(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name in the same folder, then rename it into place."""
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(data)
    os.replace(handle.name, path)


class EmlWriter:
    """DEST/<arrival>.<email id>.eml, one file per message."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.mkdir(parents=True, exist_ok=True)

    def write(self, message: ExportedMessage) -> None:
        _write_new(self.dest / f"{_name(message)}.eml", message.raw)

    def close(self) -> None:
        pass


class MaildirWriter:
    """A Maildir: each message written in tmp/, then renamed into cur/ with its flags."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        for sub in ("tmp", "new", "cur"):
            (dest / sub).mkdir(parents=True, exist_ok=True)

    def write(self, message: ExportedMessage) -> None:
        name = _name(message) + ".mail-pipeline"
        temporary = self.dest / "tmp" / name
        temporary.write_bytes(message.raw)
        os.replace(temporary, self.dest / "cur" / (name + maildir_info(message)))

    def close(self) -> None:
        pass


def mbox_entry(message: ExportedMessage) -> bytes:
    """One mboxrd entry: the `From ` separator, the flag lines, the message, a blank line."""
    raw = message.raw
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    when = message.received_at.strftime("%a %b %d %H:%M:%S %Y").encode()
    status = b"RO" if message.seen else b"O"
    x_status = (b"A" if message.answered else b"") + (b"F" if message.flagged else b"")
    lines = [b"From MAILER-DAEMON " + when, b"Status: " + status]
    lines += [b"X-Status: " + x_status] if x_status else []
    keywords = " ".join(message.keywords).encode("utf-8", "replace")
    lines += [b"X-Keywords: " + keywords] if keywords else []
    body = _FROM_LINE.sub(rb">\1", raw)
    if not body.endswith(newline):
        body += newline
    return newline.join(lines) + newline + body + newline


class MboxWriter:
    """One mbox file, written under a temporary name and renamed into place when complete."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        # held open across writes, closed by close() or abandon()
        self._handle: Any = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=dest.parent, delete=False, prefix=f".{dest.name}.", suffix=".tmp"
        )

    def write(self, message: ExportedMessage) -> None:
        self._handle.write(mbox_entry(message))

    def close(self) -> None:
        self._handle.close()
        os.replace(self._handle.name, self.dest)

    def abandon(self) -> None:
        self._handle.close()
        Path(self._handle.name).unlink(missing_ok=True)


Writer = EmlWriter | MaildirWriter | MboxWriter


def open_writer(fmt: str, dest: Path, force: bool) -> Writer:
    """The writer for `fmt` at `dest`; DestinationExistsError when it exists and not `force`
    (forced: an mbox is replaced when complete, files of the same name in a folder replaced)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if dest.exists() and not force:
        raise DestinationExistsError(
            f"{dest} exists already; choose another destination or add --force to write over it"
        )
    if fmt == "mbox" and dest.is_dir():
        raise DestinationExistsError(f"{dest} is a folder; an mbox export needs a file name")
    if fmt != "mbox" and dest.exists() and not dest.is_dir():
        raise DestinationExistsError(f"{dest} is a file; a {fmt} export needs a folder")
    if fmt == "mbox":
        return MboxWriter(dest)
    return MaildirWriter(dest) if fmt == "maildir" else EmlWriter(dest)
