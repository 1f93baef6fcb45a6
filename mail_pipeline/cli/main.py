"""The `mail-pipeline` command: its parser, and one error line instead of a traceback."""

from __future__ import annotations

import argparse
import sys

from mail_pipeline import logs
from mail_pipeline.access.tokens import TokenError
from mail_pipeline.cli import (
    accounts,
    digest,
    keys,
    mail,
    pipeline,
    serve,
    tokens,
    watch,
    worker,
)
from mail_pipeline.cli.preflight import PreflightError
from mail_pipeline.cli.registry import COMMANDS, CliError, command
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import AccountError
from mail_pipeline.storage.permissions import restrict_umask
from mail_pipeline.storage.postgres import DatabaseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mail-pipeline", description="A searchable, queryable copy of recent email."
    )
    groups = parser.add_subparsers(dest="group", required=True)
    keys.register(groups)
    accounts.register(groups)
    tokens.register(groups)
    pipeline.register(groups, command)
    serve.register(groups, command)
    mail.register(groups, command)
    digest.register(groups, command)
    watch.register(groups, command)
    worker.register(groups, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    restrict_umask()  # what the commands write (registry, lake, `run`'s Dagster home) is private
    settings = get_settings()
    logs.configure(settings.log_format)
    logs.quiet_library_warnings()
    args = build_parser().parse_args(argv)
    name = f"{args.group} {args.action}" if getattr(args, "action", None) else args.group
    try:
        return COMMANDS[name](args, settings)
    except (
        CliError,
        PreflightError,
        AccountError,
        TokenError,
        crypto.KeyConfigError,
        crypto.DecryptError,
        DatabaseError,
    ) as error:
        print(f"error: {logs.redact(str(error))}", file=sys.stderr)
        return 2
    except Exception as error:
        # Imported only on failure: the sign-in flows and imapclient cost every search ~0.1 s.
        from mail_pipeline.auth.flows import SignInError
        from mail_pipeline.imap.errors import ImapError

        if isinstance(error, SignInError):
            print(f"error: {logs.redact(str(error))}", file=sys.stderr)
            return 2
        if isinstance(error, ImapError):
            print(f"error ({error.kind}): {logs.redact(str(error))}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
