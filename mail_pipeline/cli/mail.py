"""Commands that take mail out of the pipeline: `export` (mbox, Maildir, .eml)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from mail_pipeline.cli.registry import Register, Subcommands
from mail_pipeline.settings import Settings

BAR_WIDTH = 30


def register(groups: Subcommands, command: Register) -> None:
    export = groups.add_parser(
        "export", help="write an account's mail as mbox, Maildir or .eml files, byte for byte"
    )
    export.add_argument("--account", required=True, help="account slug")
    export.add_argument(
        "--from", dest="since", type=date.fromisoformat, help="first day YYYY-MM-DD"
    )
    export.add_argument("--to", dest="until", type=date.fromisoformat, help="last day (inclusive)")
    export.add_argument(
        "--query", default="", help="search operators and words, e.g. 'from:anna has:attachment'"
    )
    export.add_argument("--format", required=True, choices=["mbox", "maildir", "eml"])
    export.add_argument("--force", action="store_true", help="write over an existing destination")
    export.add_argument("dest", type=Path, help="an mbox file, or a folder for maildir and eml")
    command("export")(cmd_export)


class Progress:
    """A bar on stderr, redrawn when its percentage changes; on a pipe, only the last line."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self._shown = -1
        self._tty = stream.isatty()

    def step(self) -> None:
        self.done += 1
        percent = 100 * self.done // max(self.total, 1)
        if self._tty and percent != self._shown:
            self._shown = percent
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        filled = BAR_WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"[{bar}] {self.done}/{self.total} messages"

    def finish(self) -> None:
        self.stream.write(("\r" if self._tty else "") + self.line() + "\n")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.export import formats, select
    from mail_pipeline.indexing.query import QueryError
    from mail_pipeline.indexing.search import catalog_connection
    from mail_pipeline.storage.accounts import check_accounts, known_accounts

    check_accounts([args.account], known_accounts(settings.registry(), settings.lake_dir))
    if args.since and args.until and args.since > args.until:
        print(f"error: --from ({args.since}) is after --to ({args.until})", file=sys.stderr)
        return 2
    selection = select.Selection(
        args.account, args.since, args.until, args.query, settings.window.today()
    )
    try:
        selection.where()
        writer = formats.open_writer(args.format, args.dest, args.force)
    except (QueryError, formats.DestinationExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    con = catalog_connection(settings)
    progress = Progress(select.count(con, selection))
    try:
        for message in select.messages(con, selection):
            writer.write(message)
            progress.step()
    except BaseException:
        if isinstance(writer, formats.MboxWriter):
            writer.abandon()
        raise
    writer.close()
    progress.finish()
    return 0
