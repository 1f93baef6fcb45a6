"""`mail-pipeline account add-many`: one org-wide account per address of a file, all sharing the
service account's key or the application's secret; every line checked (and, unless
--no-verify, signed in) before any account is stored, so a bad line adds nothing."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mail_pipeline.auth.providers import PROVIDERS
from mail_pipeline.cli import orgwide, signin
from mail_pipeline.cli.keys import load_cipher
from mail_pipeline.cli.registry import CliError, Subcommands, command
from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import (
    COMPRESS,
    ON_SERVER_DELETE,
    Account,
    AccountError,
    validate,
)
from mail_pipeline.storage.grants import JWT_BEARER, REFRESH_TOKEN, Grant

ORG_PROVIDERS = sorted(name for name, p in PROVIDERS.items() if p.grant != REFRESH_TOKEN)
ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
# The `account add` flags that an org-wide batch does not take (each address is its own user).
NOT_TAKEN = dict.fromkeys(
    ("username", "name", "auth_url", "device_url", "scope", "password_env", "impersonate")
) | {"oauth2": False, "password_stdin": False, "refresh_token_stdin": False, "no_browser": False}


def register(account: Subcommands) -> None:
    many = account.add_parser(
        "add-many",
        help="add one org-wide account per address of a file (google-workspace, microsoft365-app)",
    )
    many.add_argument("file", help="addresses, one per line; # starts a comment")
    many.add_argument("--provider", required=True, choices=ORG_PROVIDERS)
    orgwide.add_key_argument(many)
    orgwide.add_tenant_argument(many)
    many.add_argument("--client-id", help="microsoft365-app: the application (client) id")
    many.add_argument(
        "--client-secret-env", metavar="VAR", help="microsoft365-app: the client secret's variable"
    )
    many.add_argument("--token-url", help="the token endpoint, where it is not the preset's")
    many.add_argument("--host", help="IMAP server (default: the provider's)")
    many.add_argument("--port", type=int)
    many.add_argument("--security", choices=["tls", "starttls", "plain"])
    many.add_argument("--ca-file", help="CA certificate for a self-signed server")
    many.add_argument("--folder", action="append", help="folder to sync (repeatable)")
    many.add_argument("--all-folders", action="store_true")
    many.add_argument("--on-server-delete", choices=ON_SERVER_DELETE)
    many.add_argument("--compress", choices=COMPRESS)
    many.add_argument(
        "--no-verify", dest="verify", action="store_false", help="do not sign each one in first"
    )
    many.set_defaults(**NOT_TAKEN)


def read_addresses(path: Path) -> list[tuple[int, str]]:
    """(line number, address) of each address line; a line that is not one raises, naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read the address file {path}: {error}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        address = line.split("#", 1)[0].strip()
        if not address:
            continue
        if not ADDRESS.fullmatch(address):
            raise CliError(f"{path}:{number}: {address!r} is not an email address; nothing added")
        found.append((number, address))
    if not found:
        raise CliError(f"{path} holds no addresses (one per line, # starts a comment)")
    return found


def slug_for(address: str) -> str:
    """The address's local part as a partition key: lowercased, other characters as '-'."""
    local = address.split("@", 1)[0].lower()
    return re.sub(r"[^a-z0-9_-]", "-", local)[:64]


@command("account add-many")
def account_add_many(args: argparse.Namespace, settings: Settings) -> int:
    cipher = load_cipher()
    registry = settings.registry()
    known = set(registry.load())
    # A service account acts as each address; an application reads each address's mailbox.
    acts_as = PROVIDERS[args.provider].grant == JWT_BEARER
    accounts: list[tuple[int, Account]] = []
    for number, address in read_addresses(Path(args.file)):
        slug = slug_for(address)
        if slug in known:
            raise CliError(
                f"{args.file}:{number}: account {slug!r} (from {address}) already exists or comes "
                "twice; remove it first, or add that address alone with another slug; nothing added"
            )
        known.add(slug)
        one = argparse.Namespace(
            **{
                **vars(args),
                "slug": slug,
                "email": address,
                "impersonate": address if acts_as else None,
            }
        )
        try:
            account = signin.account_from_args(one, settings)
            validate(account)
        except (CliError, AccountError) as error:
            raise CliError(f"{args.file}:{number}: {error}; nothing added") from None
        accounts.append((number, account))
    grant = orgwide.app_grant(args, signin.oauth_of(accounts[0][1]))
    if args.verify:
        accounts = [(n, _verified(args, settings, n, a, grant)) for n, a in accounts]
    registry.add_many([account for _, account in accounts], grant, cipher)
    for _, account in accounts:
        print(f"added account {account.slug!r} ({account.email})")
    print(
        f"added {len(accounts)} account(s); {signin.stored_secret_name(accounts[0][1])} "
        "stored encrypted with each"
    )
    return 0


def _verified(
    args: argparse.Namespace, settings: Settings, number: int, account: Account, grant: Grant
) -> Account:
    """The account after signing it in (its preset folders matched to the server's)."""
    from mail_pipeline.imap.errors import ImapError

    pending = signin.PendingGrant(account, grant, None)
    try:
        account, folders = signin.verify(account, settings, pending.credential, args)
    except ImapError as error:
        raise CliError(
            f"{args.file}:{number}: {account.email} cannot sign in ({error.kind}: {error}); nothing added"
        ) from None
    print(
        f"{account.email}: logged in ({signin.describe(pending.credential)}); will sync: {', '.join(folders)}"
    )
    return account
