"""Digest commands: `digest` previews an account's digest without changing anything;
`digest-delivery` sets where the daily digest is sent by SMTP."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import date

from mail_pipeline.cli.registry import Register, Subcommands
from mail_pipeline.settings import Settings


def register(groups: Subcommands, command: Register) -> None:
    preview = groups.add_parser(
        "digest", help="preview an account's digest of a day or of the days since a date"
    )
    preview.add_argument("--account", required=True, help="account slug")
    span = preview.add_mutually_exclusive_group()
    span.add_argument("--day", type=date.fromisoformat, help="one day YYYY-MM-DD (default today)")
    span.add_argument("--since", type=date.fromisoformat, help="every day from YYYY-MM-DD to today")
    preview.add_argument("--html", action="store_true", help="HTML instead of Markdown")
    command("digest")(cmd_digest)

    delivery = groups.add_parser(
        "digest-delivery", help="send an account's daily digest by SMTP (or stop: --off)"
    )
    delivery.add_argument("--account", required=True, help="account slug")
    delivery.add_argument("--off", action="store_true", help="stop sending it")
    delivery.add_argument("--to", action="append", default=[], help="recipient (repeatable)")
    delivery.add_argument("--smtp-host")
    delivery.add_argument("--smtp-port", type=int, help="default 587 (starttls) or 465 (tls)")
    delivery.add_argument("--smtp-security", choices=["starttls", "tls"], default="starttls")
    delivery.add_argument("--smtp-username", default="", help="sign-in name (none: no sign-in)")
    delivery.add_argument("--sender", help="From address (default: the account's address)")
    delivery.add_argument("--ca-file", help="CA bundle for the SMTP server's certificate")
    delivery.add_argument("--password-env", metavar="VAR", help="read the SMTP password from VAR")
    delivery.add_argument(
        "--password-stdin", action="store_true", help="read the SMTP password from standard input"
    )
    command("digest-delivery")(cmd_digest_delivery)


def page_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.search_port}"


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    """Build and print the digest from the lake, read-only: no run, no file written."""
    from mail_pipeline.digest.build import build_digest
    from mail_pipeline.digest.render import html_page, markdown
    from mail_pipeline.storage.accounts import check_accounts, known_accounts
    from mail_pipeline.storage.catalog import reading_connection
    from mail_pipeline.storage.lake import Lake

    check_accounts([args.account], known_accounts(settings.registry(), settings.lake_dir))
    today = settings.window.today()
    first = args.since or args.day or today
    last = args.day or today
    if first > last:
        print(f"error: --since ({first}) is after today ({last})", file=sys.stderr)
        return 2
    registered = settings.registry().load().get(args.account)
    owner = [registered.email] if registered else []
    with reading_connection(Lake(settings.lake_dir)) as con:
        built = build_digest(con, args.account, owner, first, last)
    render = html_page if args.html else markdown
    print(render(built, page_url(settings)))
    return 0


def _smtp_password(args: argparse.Namespace) -> str:
    from mail_pipeline import logs
    from mail_pipeline.cli.registry import CliError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password_env:
        if args.password_env not in os.environ:
            raise CliError(f"environment variable {args.password_env} is not set")
        password = os.environ[args.password_env]
    elif args.smtp_username:
        password = getpass.getpass("SMTP password: ")
    else:
        password = ""
    if args.smtp_username and not password:
        raise CliError("an SMTP sign-in name needs a password")
    logs.register_secret(password)
    return password


def cmd_digest_delivery(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.cli.registry import CliError
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import DigestDelivery

    registry = settings.registry()
    account = registry.get(args.account)
    cipher = crypto.load_cipher()
    if args.off:
        registry.set_digest_delivery(args.account, None, "", cipher)
        print(f"account {args.account}: the daily digest is no longer sent")
        return 0
    if not args.smtp_host or not args.to:
        raise CliError("--smtp-host and at least one --to are needed (or --off)")
    port = args.smtp_port or (465 if args.smtp_security == "tls" else 587)
    delivery = DigestDelivery(
        args.smtp_host,
        port,
        args.smtp_security,
        args.smtp_username,
        args.sender or account.email,
        tuple(args.to),
        args.ca_file,
    )
    registry.set_digest_delivery(args.account, delivery, _smtp_password(args), cipher)
    print(
        f"account {args.account}: the daily digest goes to {', '.join(args.to)} "
        f"through {args.smtp_host}:{port} ({args.smtp_security})"
    )
    return 0
