"""`mail-pipeline account import FILE`: move a registry file's accounts into this registry (the
PostgreSQL one, once MAIL_PIPELINE_DATABASE_URL is set) as they are: settings and encrypted
secrets alike, so OAuth accounts need no new sign-in. Every secret must decrypt with this
FERNET_KEY first, and an account already present stops the import: all or none."""

from __future__ import annotations

import argparse
from pathlib import Path

from mail_pipeline.cli.keys import load_cipher
from mail_pipeline.cli.registry import CliError, Subcommands, command
from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import AccountRegistry


def register(account: Subcommands) -> None:
    move = account.add_parser(
        "import",
        help="copy a registry file's accounts (accounts.json) into this registry, secrets still encrypted",
    )
    move.add_argument("file", help="the accounts.json to copy from")


@command("account import")
def account_import(args: argparse.Namespace, settings: Settings) -> int:
    source = Path(args.file)
    accounts = AccountRegistry(source).list()
    if not accounts:
        raise CliError(f"no accounts in {source}: nothing to import")
    target = settings.registry()
    cipher = load_cipher()
    for account in accounts:
        target.check_secret(account, cipher)  # names the account no key of FERNET_KEY opens
    target.import_accounts(accounts)
    print(
        f"imported {len(accounts)} account(s) ({', '.join(a.slug for a in accounts)}) from "
        f"{source} into {target.store.where}; their secrets stay encrypted with the same key"
    )
    return 0
