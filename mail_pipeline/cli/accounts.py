"""`mail-pipeline account`: add, reauth, list, set, remove and test IMAP accounts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mail_pipeline.cli import account_import, add_many, signin
from mail_pipeline.cli.keys import load_cipher
from mail_pipeline.cli.registry import Subcommands, command
from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import (
    COMPRESS,
    ON_SERVER_DELETE,
    Account,
    AccountError,
    AccountRegistry,
    validate,
)
from mail_pipeline.storage.grants import Grant

if TYPE_CHECKING:
    from mail_pipeline.cli.signin import Credential


def register(groups: Subcommands) -> None:
    account = groups.add_parser("account", help="manage IMAP accounts").add_subparsers(
        dest="action", required=True
    )
    add = account.add_parser(
        "add", help="register an IMAP account (password or OAuth grant encrypted at rest)"
    )
    add.add_argument("slug", help="partition key: 1-64 of a-z 0-9 _ -")
    add.add_argument("--email", help="the mailbox's address (google-workspace: --impersonate's)")
    add.add_argument("--host", help="IMAP server (required unless --provider)")
    add.add_argument("--port", type=int, help="default 993")
    add.add_argument("--username", help="defaults to --email")
    add.add_argument("--name", help="display name")
    add.add_argument("--security", choices=["tls", "starttls", "plain"], help="default tls")
    add.add_argument("--ca-file", help="CA certificate for a self-signed server")
    add.add_argument("--folder", action="append", help="folder to sync (repeatable; default INBOX)")
    add.add_argument(
        "--all-folders", action="store_true", help="every folder except Trash, Junk, Drafts"
    )
    _password_arguments(add)
    signin.add_arguments(add)
    add.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not log in to check the account first",
    )
    _policy_argument(add)
    _compress_argument(add)
    change = account.add_parser(
        "set", help="change an account's settings (--on-server-delete, --compress)"
    )
    change.add_argument("slug")
    _policy_argument(change)
    _compress_argument(change)
    reauth = account.add_parser(
        "reauth", help="sign an account in again: a new OAuth grant, or a new password"
    )
    reauth.add_argument("slug")
    _password_arguments(reauth)
    signin.add_grant_arguments(reauth)
    add_many.register(account)
    account_import.register(account)
    account.add_parser("list", help="list accounts (no secrets)")
    account.add_parser("remove", help="remove an account").add_argument("slug")
    account.add_parser("test", help="log in and list folders with message counts").add_argument(
        "slug"
    )


def _compress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compress",
        choices=COMPRESS,
        help="COMPRESS=DEFLATE where the server offers it: auto (default: on unless the host is "
        "this machine), on, off",
    )


def _policy_argument(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--on-server-delete",
        choices=ON_SERVER_DELETE,
        required=required,
        help="mail deleted on the server: keep it with deleted_at set (default), or mirror "
        "(erase it from the lake, emails, chunks and LanceDB in the next run)",
    )


def _password_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    source.add_argument(
        "--password-env", metavar="VAR", help="read the password from this environment variable"
    )


def _registry(settings: Settings) -> AccountRegistry:
    return settings.registry()


@command("account add")
def account_add(args: argparse.Namespace, settings: Settings) -> int:
    cipher = load_cipher()
    account = signin.account_from_args(args, settings)
    validate(account)
    registry = _registry(settings)
    if args.slug in registry.load():
        raise AccountError(
            f"account {args.slug!r} already exists; remove it first or pick another slug"
        )
    secret, credential = _new_secret(args, account, settings)
    if args.verify:
        account, folders = signin.verify(account, settings, credential, args)
        print(
            f"logged in to {account.host} ({signin.describe(credential)}); will sync: {', '.join(folders)}"
        )
    registry.add(account, _latest(secret), cipher)
    print(
        f"added account {account.slug!r} ({account.email}); "
        f"{signin.stored_secret_name(account)} stored encrypted"
    )
    return 0


@command("account reauth")
def account_reauth(args: argparse.Namespace, settings: Settings) -> int:
    """Sign an account in again (a revoked or expired OAuth grant, a changed password)."""
    cipher = load_cipher()
    registry = _registry(settings)
    account = registry.get(args.slug)
    stored = registry.grant(account, cipher).client_secret if account.is_oauth else ""
    secret, credential = _new_secret(args, account, settings, stored)
    signin.verify(account, settings, credential)
    registry.replace_secret(account.slug, _latest(secret), cipher)
    print(
        f"re-authorized account {account.slug!r} ({signin.describe(credential)}); new "
        f"{signin.stored_secret_name(account)} stored encrypted"
    )
    return 0


def _new_secret(
    args: argparse.Namespace, account: Account, settings: Settings, stored_client_secret: str = ""
) -> tuple[str | signin.PendingGrant, Credential]:
    """The password or grant to store, and the credential that signs in with it before it is stored."""
    if not account.is_oauth:
        password = signin.read_password(args)
        return password, password
    grant, first = signin.obtain_grant(args, account, settings, stored_client_secret)
    pending = signin.PendingGrant(account, grant, first)
    return pending, pending.credential


def _latest(secret: str | signin.PendingGrant) -> str | Grant:
    # A verifying refresh may have rotated the refresh token: store the one now valid.
    return secret.grant if isinstance(secret, signin.PendingGrant) else secret


@command("account list")
def account_list(args: argparse.Namespace, settings: Settings) -> int:
    accounts = _registry(settings).list()
    if not accounts:
        print("no accounts; add one with `mail-pipeline account add`")
    for a in accounts:
        state = "active" if a.active else "paused"
        print(
            f"{a.slug:<20} {a.email:<32} {a.security}://{a.host}:{a.port}  {a.auth:<8}  "
            f"folders={','.join(a.folders)}  on-server-delete={a.on_server_delete}  {state}"
        )
    return 0


@command("account set")
def account_set(args: argparse.Namespace, settings: Settings) -> int:
    changes = {
        name: value
        for name, value in (
            ("on_server_delete", args.on_server_delete),
            ("compress", args.compress),
        )
        if value is not None
    }
    if not changes:
        raise AccountError("nothing to change: give --on-server-delete and/or --compress")
    account = _registry(settings).update(args.slug, **changes)
    print(
        f"account {account.slug!r}: on-server-delete={account.on_server_delete} "
        f"compress={account.compress} (applies from its next run)"
    )
    return 0


@command("account remove")
def account_remove(args: argparse.Namespace, settings: Settings) -> int:
    _registry(settings).remove(args.slug)
    print(f"removed account {args.slug!r} (its stored mail stays until retention drops it)")
    return 0


@command("account test")
def account_test(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline import imap
    from mail_pipeline.auth import tokens

    registry = _registry(settings)
    account = registry.get(args.slug)
    credential = tokens.credential_for(account, registry, load_cipher())
    with imap.ImapSession(imap.config_for(account, settings), credential) as session:
        available = session.list_folders()
        synced = set(imap.sync_folders(available, account.folders))
        print(
            f"OK: logged in to {account.host}:{account.port} as {account.username} (auth: {tokens.describe(credential)})"
        )
        for folder in available:
            if "\\Noselect" in folder.flags:
                continue
            status = session.status(folder.name)
            mark = "sync" if folder.name in synced else "    "
            print(f"  [{mark}] {folder.name:<30} {status.messages:>8} messages")
    return 0
