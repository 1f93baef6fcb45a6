"""The account registry: one JSON file in the data directory, mode 0600, written atomically.

Passwords are stored only as Fernet tokens (`password_token`); nothing here ever returns or
logs the plaintext except `AccountRegistry.password`, which the IMAP connection calls.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography.fernet import MultiFernet

from mail_pipeline.storage import crypto

SLUG_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
SECURITY_MODES = ("tls", "starttls", "plain")
# "Every folder except Trash, Junk, Drafts": resolved on the server through SPECIAL-USE flags.
ALL_FOLDERS = "*"


class AccountError(ValueError):
    """Invalid account input; the registry is left unchanged."""


@dataclass(frozen=True)
class Account:
    slug: str
    email: str
    host: str
    port: int
    username: str
    password_token: str = field(repr=False)
    display_name: str = ""
    security: str = "tls"
    ca_file: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    active: bool = True
    created_at: str = ""
    updated_at: str = ""

    @property
    def all_folders(self) -> bool:
        return self.folders == (ALL_FOLDERS,)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate(account: Account) -> None:
    if not SLUG_PATTERN.fullmatch(account.slug):
        raise AccountError(
            f"invalid slug {account.slug!r}: use 1-64 characters of a-z, 0-9, '_' and '-' "
            "(it becomes the partition key, so no addresses)"
        )
    if not 1 <= account.port <= 65535:
        raise AccountError(f"invalid port {account.port}: must be between 1 and 65535")
    if account.security not in SECURITY_MODES:
        raise AccountError(f"invalid security {account.security!r}: one of {', '.join(SECURITY_MODES)}")
    if account.security == "plain" and not is_loopback(account.host):
        raise AccountError(
            f"plain (unencrypted) IMAP is refused for {account.host!r}: it would send the password "
            "in clear; use --security tls or starttls (plain is allowed only on loopback)"
        )
    if account.ca_file and not Path(account.ca_file).is_file():
        raise AccountError(f"CA file {account.ca_file!r} does not exist")
    if not account.folders or any(not f.strip() for f in account.folders):
        raise AccountError("folders must be a non-empty list of folder names")
    if not account.host or not account.username:
        raise AccountError("host and username are required")


class AccountRegistry:
    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {
            item["slug"]: Account(**{**item, "folders": tuple(item["folders"])})
            for item in data.get("accounts", [])
        }

    def list(self, *, active_only: bool = False) -> list[Account]:
        return [a for a in self.load().values() if a.active or not active_only]

    def get(self, slug: str) -> Account:
        accounts = self.load()
        if slug not in accounts:
            raise AccountError(f"no account {slug!r}; `mail-pipeline account list` shows the registered ones")
        return accounts[slug]

    def add(self, account: Account, password: str, cipher: MultiFernet) -> Account:
        accounts = self.load()
        if account.slug in accounts:
            raise AccountError(f"account {account.slug!r} already exists; remove it first or pick another slug")
        now = _now()
        account = replace(account, password_token=crypto.encrypt(cipher, password), created_at=now, updated_at=now)
        validate(account)
        accounts[account.slug] = account
        self._save(accounts)
        return account

    def remove(self, slug: str) -> None:
        accounts = self.load()
        self.get(slug)
        del accounts[slug]
        self._save(accounts)

    def set_active(self, slug: str, active: bool) -> None:
        accounts = self.load()
        accounts[slug] = replace(self.get(slug), active=active, updated_at=_now())
        self._save(accounts)

    def password(self, account: Account, cipher: MultiFernet) -> str:
        return crypto.decrypt(cipher, account.password_token, owner=account.slug)

    def rotate(self, cipher: MultiFernet) -> int:
        """Re-encrypt every password with the first key; all or nothing."""
        accounts = self.load()
        rotated = {
            slug: replace(a, password_token=crypto.rotate(cipher, a.password_token, owner=slug), updated_at=_now())
            for slug, a in accounts.items()
        }
        self._save(rotated)
        return len(rotated)

    def _save(self, accounts: dict[str, Account]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": 1, "accounts": [asdict(a) for a in sorted(accounts.values(), key=lambda a: a.slug)]}
        fd, tmp = tempfile.mkstemp(prefix=".accounts-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
