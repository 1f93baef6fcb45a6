"""`mail-pipeline key`: generate FERNET_KEY, check that every stored secret decrypts, rotate."""

from __future__ import annotations

import argparse
import os

from mail_pipeline import logs
from mail_pipeline.cli.registry import Subcommands, command
from mail_pipeline.settings import Settings
from mail_pipeline.storage import crypto


def register(groups: Subcommands) -> None:
    key = groups.add_parser("key", help="manage FERNET_KEY").add_subparsers(
        dest="action", required=True
    )
    key.add_parser("generate", help="print a new Fernet key")
    key.add_parser("check", help="validate FERNET_KEY and that every stored password decrypts")
    key.add_parser("rotate", help="re-encrypt every stored password with the first key")


def load_cipher() -> crypto.Keyring:
    """FERNET_KEY's keys, each redacted from every log line from now on."""
    cipher = crypto.load_cipher()
    for key in os.environ.get(crypto.KEY_VARIABLE, "").split(","):
        logs.register_secret(key.strip())
    return cipher


@command("key generate")
def key_generate(args: argparse.Namespace, settings: Settings) -> int:
    print(crypto.generate_key())
    return 0


@command("key check")
def key_check(args: argparse.Namespace, settings: Settings) -> int:
    cipher = load_cipher()
    registry = settings.registry()
    accounts = registry.list()
    for account in accounts:
        registry.check_secret(account, cipher)
    print(
        f"FERNET_KEY OK ({cipher.key_count} key(s)); {len(accounts)} stored password(s) and OAuth grant(s) decrypt"
    )
    return 0


@command("key rotate")
def key_rotate(args: argparse.Namespace, settings: Settings) -> int:
    count = settings.registry().rotate(load_cipher())
    print(
        f"re-encrypted the passwords and OAuth grants of {count} account(s) with the first key of FERNET_KEY; "
        "older keys may now be removed"
    )
    return 0
