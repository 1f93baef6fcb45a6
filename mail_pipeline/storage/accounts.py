"""The account registry: the operations on accounts (add, change, remove, rotate keys, decrypt a
secret to sign in), over a store that holds them: a JSON file in the data directory by default
(accounts_file.py), or a table in PostgreSQL when MAIL_PIPELINE_DATABASE_URL is set
(accounts_postgres.py), which every worker of a deployment reaches. `open_registry` picks it.

Passwords and OAuth grants are stored only as Fernet tokens (`password_token`, `grant_token`);
nothing here ever returns or logs the plaintext except `AccountRegistry.password` and
`AccountRegistry.grant`, which the sign-in calls. What an account is lives in accounts_model.py;
its names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts_file import AccountFile
from mail_pipeline.storage.accounts_model import (
    ALL_FOLDERS,
    AUTH_KINDS,
    COMPRESS,
    ON_SERVER_DELETE,
    SECURITY_MODES,
    SLUG_PATTERN,
    Account,
    AccountError,
    DigestDelivery,
    RegistryCorruptError,
    is_loopback,
    validate,
    validate_digest,
    validate_oauth,
)
from mail_pipeline.storage.grants import Grant
from mail_pipeline.storage.objects import Location

__all__ = [
    "ALL_FOLDERS",
    "AUTH_KINDS",
    "COMPRESS",
    "ON_SERVER_DELETE",
    "SECURITY_MODES",
    "SLUG_PATTERN",
    "Account",
    "AccountError",
    "AccountRegistry",
    "AccountStore",
    "DigestDelivery",
    "RegistryCorruptError",
    "check_accounts",
    "is_loopback",
    "known_accounts",
    "open_registry",
    "validate",
    "validate_digest",
    "validate_oauth",
]


class AccountStore(Protocol):
    """Where accounts are kept. `editing` yields them all to change in place and stores the
    result in one all-or-nothing write, with every other writer (any process, any host the store
    reaches) kept out meanwhile; an exception in the block stores nothing."""

    @property
    def where(self) -> str: ...

    def load(self) -> dict[str, Account]: ...

    def editing(self) -> AbstractContextManager[dict[str, Account]]: ...

    def grant_lock(self, slug: str) -> AbstractContextManager[None]: ...


def open_registry(data_dir: str | Path, database_url: str = "") -> AccountRegistry:
    """The registry of this deployment: in PostgreSQL when `database_url` is set, else the file
    `accounts.json` in the data directory."""
    if database_url:
        from mail_pipeline.storage.accounts_postgres import AccountTable

        return AccountRegistry(AccountTable(database_url))
    return AccountRegistry(Path(data_dir) / "accounts.json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _absent(accounts: dict[str, Account], slug: str) -> None:
    if slug in accounts:
        raise AccountError(f"account {slug!r} already exists; remove it first or pick another slug")


def _find(accounts: dict[str, Account], slug: str) -> Account:
    if slug not in accounts:
        raise AccountError(
            f"no account {slug!r}; `mail-pipeline account list` shows the registered ones"
        )
    return accounts[slug]


class AccountRegistry:
    """The accounts of one store; a path stands for the JSON file at that path."""

    def __init__(self, store: AccountStore | Path):
        self.store: AccountStore = AccountFile(store) if isinstance(store, Path) else store

    def load(self) -> dict[str, Account]:
        return self.store.load()

    def list(self, *, active_only: bool = False) -> list[Account]:
        return [a for a in self.load().values() if a.active or not active_only]

    def get(self, slug: str) -> Account:
        return _find(self.load(), slug)

    def add(self, account: Account, secret: str | Grant, cipher: crypto.Keyring) -> Account:
        """Store a new account with its password, or its OAuth `Grant` for an oauth2 account."""
        return self.add_many([account], secret, cipher)[0]

    def add_many(
        self, accounts: Sequence[Account], secret: str | Grant, cipher: crypto.Keyring
    ) -> tuple[Account, ...]:
        """Store new accounts that share one secret (an org-wide key) in one write: all or none."""
        with self.store.editing() as stored:
            now = _now()
            added = []
            for account in accounts:
                _absent(stored, account.slug)
                account = replace(
                    _with_secret(account, secret, cipher), created_at=now, updated_at=now
                )
                validate(account)
                stored[account.slug] = account
                added.append(account)
        return tuple(added)

    def import_accounts(self, accounts: Sequence[Account]) -> None:
        """Store accounts as another store held them, secrets already encrypted: all or none."""
        with self.store.editing() as stored:
            for account in accounts:
                _absent(stored, account.slug)
                validate(account)
                stored[account.slug] = account

    def remove(self, slug: str) -> None:
        with self.store.editing() as accounts:
            del accounts[_find(accounts, slug).slug]

    def set_active(self, slug: str, active: bool) -> None:
        with self.store.editing() as accounts:
            accounts[slug] = replace(_find(accounts, slug), active=active, updated_at=_now())

    def update(self, slug: str, **changes: Any) -> Account:  # Account fields, of their types
        """Change an account's settings (not its secret), validated, in one atomic write."""
        with self.store.editing() as accounts:
            account = replace(_find(accounts, slug), **changes, updated_at=_now())
            validate(account)
            accounts[slug] = account
        return account

    def replace_secret(self, slug: str, secret: str | Grant, cipher: crypto.Keyring) -> Account:
        """Swap in a new password or grant (a reauth, a rotated refresh token) in one atomic write."""
        with self.store.editing() as accounts:
            account = replace(
                _with_secret(_find(accounts, slug), secret, cipher), updated_at=_now()
            )
            accounts[slug] = account
        return account

    def set_digest_delivery(
        self, slug: str, delivery: DigestDelivery | None, password: str, cipher: crypto.Keyring
    ) -> Account:
        """Send the account's digest through `delivery` (None: stop sending), the SMTP password
        encrypted like the IMAP one."""
        if delivery is not None:
            validate_digest(delivery)  # only this part: the IMAP settings are not being changed
        token = crypto.encrypt(cipher, password) if delivery and password else ""
        with self.store.editing() as accounts:
            account = replace(
                _find(accounts, slug), digest=delivery, smtp_password_token=token, updated_at=_now()
            )
            accounts[slug] = account
        return account

    def smtp_password(self, account: Account, cipher: crypto.Keyring) -> str:
        if not account.smtp_password_token:
            return ""
        return crypto.decrypt(
            cipher, account.smtp_password_token, owner=account.slug, what="SMTP password"
        )

    def password(self, account: Account, cipher: crypto.Keyring) -> str:
        if account.is_oauth:
            raise AccountError(
                f"account {account.slug!r} signs in with OAuth 2.0 and has no password"
            )
        return crypto.decrypt(cipher, account.password_token, owner=account.slug)

    def grant(self, account: Account, cipher: crypto.Keyring) -> Grant:
        if not account.is_oauth:
            raise AccountError(
                f"account {account.slug!r} signs in with a password and has no OAuth grant"
            )
        return Grant.loads(
            crypto.decrypt(cipher, account.grant_token, owner=account.slug, what="OAuth grant")
        )

    def check_secret(self, account: Account, cipher: crypto.Keyring) -> None:
        """Decrypt the account's stored secret, raising `DecryptError` if no key can."""
        if account.is_oauth:
            self.grant(account, cipher)
        else:
            self.password(account, cipher)

    def grant_lock(self, slug: str) -> AbstractContextManager[None]:
        """Held while refreshing: another process may be about to rotate the same refresh token."""
        return self.store.grant_lock(slug)

    def rotate(self, cipher: crypto.Keyring) -> int:
        """Re-encrypt every password and OAuth grant with the first key; all or nothing."""
        with self.store.editing() as accounts:
            accounts.update({slug: _rotated(a, cipher) for slug, a in accounts.items()})
        return len(accounts)


def _with_secret(account: Account, secret: str | Grant, cipher: crypto.Keyring) -> Account:
    if account.is_oauth:
        kind = account.oauth.grant if account.oauth else ""
        missing = (secret if isinstance(secret, Grant) else Grant()).missing(kind)
        if missing or not isinstance(secret, Grant):
            raise AccountError(f"account {account.slug!r} needs {missing}")
        return replace(
            account, grant_token=crypto.encrypt(cipher, secret.dumps()), password_token=""
        )
    if not isinstance(secret, str) or not secret:
        raise AccountError(f"account {account.slug!r} needs a password")
    return replace(account, password_token=crypto.encrypt(cipher, secret), grant_token="")


def _rotated(account: Account, cipher: crypto.Keyring) -> Account:
    def again(token: str, what: str) -> str:
        return crypto.rotate(cipher, token, owner=account.slug, what=what) if token else token

    return replace(
        account,
        password_token=again(account.password_token, "password"),
        grant_token=again(account.grant_token, "OAuth grant"),
        smtp_password_token=again(account.smtp_password_token, "SMTP password"),
        updated_at=_now(),
    )


def known_accounts(registry: AccountRegistry, lake_dir: Location) -> set[str]:
    """Slugs of the registry, and of accounts whose mail is still stored after `account remove`."""
    from mail_pipeline.storage.lake import Lake

    stored = {account for account, _ in Lake(lake_dir).list_partitions("emails")}
    return set(registry.load()) | stored


def check_accounts(requested: list[str], known: set[str]) -> None:
    unknown = sorted(set(requested) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none yet (add one with `mail-pipeline account add`)"
        raise AccountError(
            f"unknown account{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(a) for a in unknown)}; known accounts: {listed}"
        )
