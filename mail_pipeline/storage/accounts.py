"""The account registry: one JSON file in the data directory, mode 0600, written atomically,
its previous version kept beside it (`accounts.json.bak`) on every write.

Passwords and OAuth grants are stored only as Fernet tokens (`password_token`, `grant_token`);
nothing here ever returns or logs the plaintext except `AccountRegistry.password` and
`AccountRegistry.grant`, which the sign-in calls.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mail_pipeline.storage import crypto
from mail_pipeline.storage.grants import GRANT_KINDS, JWT_BEARER, Grant, OAuthSettings
from mail_pipeline.storage.locks import file_lock
from mail_pipeline.storage.objects import Location
from mail_pipeline.storage.permissions import write_private

SLUG_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
SECURITY_MODES = ("tls", "starttls", "plain")
AUTH_KINDS = ("password", "oauth2")
# What happens to stored mail that left the server: kept with deleted_at set, or erased everywhere.
ON_SERVER_DELETE = ("keep", "mirror")
# COMPRESS=DEFLATE (RFC 4978) where the server offers it: `auto` for hosts other than this
# machine (on loopback zlib's CPU costs more than the bytes it saves: bench/RESULTS.md).
COMPRESS = ("auto", "on", "off")
# "Every folder except Trash, Junk, Drafts": resolved on the server through SPECIAL-USE flags.
ALL_FOLDERS = "*"


class AccountError(ValueError):
    """Invalid account input; the registry is left unchanged."""


class RegistryCorruptError(AccountError):
    """The registry file cannot be read; the message names it, its backup and how to restore."""


@dataclass(frozen=True)
class DigestDelivery:
    """Where an account's daily digest is sent: an SMTP submission server (its password is the
    account's `smtp_password_token`, encrypted like the IMAP password) and the recipients."""

    host: str
    port: int
    security: str  # "starttls" (587) or "tls" (465)
    username: str
    sender: str
    recipients: tuple[str, ...]
    ca_file: str | None = None


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
    auth: str = "password"  # one of AUTH_KINDS
    oauth: OAuthSettings | None = None
    grant_token: str = field(default="", repr=False)
    on_server_delete: str = "keep"  # one of ON_SERVER_DELETE
    compress: str = "auto"  # one of COMPRESS
    digest: DigestDelivery | None = None
    smtp_password_token: str = field(default="", repr=False)

    @property
    def compresses(self) -> bool:
        """Whether its connections ask for COMPRESS=DEFLATE (where the server offers it)."""
        return self.compress == "on" or (self.compress == "auto" and not is_loopback(self.host))

    @property
    def all_folders(self) -> bool:
        return self.folders == (ALL_FOLDERS,)

    @property
    def is_oauth(self) -> bool:
        return self.auth == "oauth2"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        raise AccountError(
            f"invalid security {account.security!r}: one of {', '.join(SECURITY_MODES)}"
        )
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
    if account.auth not in AUTH_KINDS:
        raise AccountError(f"invalid auth {account.auth!r}: one of {', '.join(AUTH_KINDS)}")
    if account.compress not in COMPRESS:
        raise AccountError(f"invalid compress {account.compress!r}: one of {', '.join(COMPRESS)}")
    if account.on_server_delete not in ON_SERVER_DELETE:
        raise AccountError(
            f"invalid on-server-delete {account.on_server_delete!r}: one of {', '.join(ON_SERVER_DELETE)}"
        )
    if account.is_oauth:
        validate_oauth(account.oauth)
    if account.digest is not None:
        validate_digest(account.digest)


def validate_digest(digest: DigestDelivery) -> None:
    if digest.security not in ("starttls", "tls"):
        raise AccountError(
            f"invalid SMTP security {digest.security!r}: starttls (port 587) or tls (port 465); "
            "a digest is never sent unencrypted"
        )
    if not 1 <= digest.port <= 65535:
        raise AccountError(f"invalid SMTP port {digest.port}: must be between 1 and 65535")
    if not digest.recipients or not all("@" in r for r in digest.recipients):
        raise AccountError("the digest needs at least one recipient address")


def validate_oauth(oauth: OAuthSettings | None) -> None:
    if oauth is None or not oauth.token_url or not oauth.client_id:
        raise AccountError(
            "an OAuth account needs a token URL and a client id (--token-url, --client-id)"
        )
    if oauth.grant not in GRANT_KINDS:
        raise AccountError(f"invalid OAuth grant {oauth.grant!r}: one of {', '.join(GRANT_KINDS)}")
    if oauth.grant == JWT_BEARER and "@" not in oauth.subject:
        raise AccountError(
            "a service account acts as one user of the domain: give it with --impersonate ADDRESS"
        )
    for url in (oauth.token_url, oauth.auth_url, oauth.device_url):
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if url and (scheme not in ("https", "http") or not host):
            raise AccountError(f"invalid OAuth endpoint {url!r}: an https:// URL")
        # The refresh token travels in the request body: never in clear beyond this machine.
        if url and scheme == "http" and not is_loopback(host):
            raise AccountError(
                f"OAuth endpoint {url!r} is refused: use https (http is allowed only on loopback)"
            )


def _account_from_json(item: dict[str, Any]) -> Account:
    oauth, digest = item.get("oauth"), item.get("digest")
    return Account(
        **{
            **item,
            "folders": tuple(item["folders"]),
            "oauth": OAuthSettings(**oauth) if oauth else None,
            "digest": DigestDelivery(**{**digest, "recipients": tuple(digest["recipients"])})
            if digest
            else None,
        }
    )


class AccountRegistry:
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    def load(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        try:
            return parse(self.path.read_bytes())
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise RegistryCorruptError(self._corrupt_message(error)) from None

    def _corrupt_message(self, error: Exception) -> str:
        reason = f"{type(error).__name__}: {str(error)[:200]}"
        message = f"the account registry {self.path} cannot be read ({reason})"
        try:
            accounts = parse(self.backup_path.read_bytes())
        except OSError:
            return (
                f"{message}, and there is no backup ({self.backup_path}); move it aside and add the accounts "
                "again with `mail-pipeline account add`"
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return f"{message}, and its backup {self.backup_path} cannot be read either; add the accounts again"
        return (
            f"{message}. Its previous version {self.backup_path} holds {len(accounts)} account(s) "
            f"({', '.join(sorted(accounts)) or 'none'}); restore it with: cp -p {self.backup_path} {self.path}"
        )

    def list(self, *, active_only: bool = False) -> list[Account]:
        return [a for a in self.load().values() if a.active or not active_only]

    def get(self, slug: str) -> Account:
        accounts = self.load()
        if slug not in accounts:
            raise AccountError(
                f"no account {slug!r}; `mail-pipeline account list` shows the registered ones"
            )
        return accounts[slug]

    def add(self, account: Account, secret: str | Grant, cipher: crypto.Keyring) -> Account:
        """Store a new account with its password, or its OAuth `Grant` for an oauth2 account."""
        return self.add_many([account], secret, cipher)[0]

    def add_many(
        self, accounts: Sequence[Account], secret: str | Grant, cipher: crypto.Keyring
    ) -> tuple[Account, ...]:
        """Store new accounts that share one secret (an org-wide key) in one write: all or none."""
        with self._locked():
            stored = self.load()
            now = _now()
            added = []
            for account in accounts:
                if account.slug in stored:
                    raise AccountError(
                        f"account {account.slug!r} already exists; remove it first or pick another slug"
                    )
                account = replace(
                    _with_secret(account, secret, cipher), created_at=now, updated_at=now
                )
                validate(account)
                stored[account.slug] = account
                added.append(account)
            self._save(stored)
        return tuple(added)

    def remove(self, slug: str) -> None:
        with self._locked():
            accounts = self.load()
            self.get(slug)
            del accounts[slug]
            self._save(accounts)

    def set_active(self, slug: str, active: bool) -> None:
        with self._locked():
            accounts = self.load()
            accounts[slug] = replace(self.get(slug), active=active, updated_at=_now())
            self._save(accounts)

    def update(self, slug: str, **changes: Any) -> Account:  # Account fields, of their types
        """Change an account's settings (not its secret), validated, in one atomic write."""
        with self._locked():
            accounts = self.load()
            account = replace(self.get(slug), **changes, updated_at=_now())
            validate(account)
            accounts[slug] = account
            self._save(accounts)
        return account

    def replace_secret(self, slug: str, secret: str | Grant, cipher: crypto.Keyring) -> Account:
        """Swap in a new password or grant (a reauth, a rotated refresh token) in one atomic write."""
        with self._locked():
            accounts = self.load()
            accounts[slug] = replace(
                _with_secret(self.get(slug), secret, cipher), updated_at=_now()
            )
            self._save(accounts)
        return accounts[slug]

    def set_digest_delivery(
        self, slug: str, delivery: DigestDelivery | None, password: str, cipher: crypto.Keyring
    ) -> Account:
        """Send the account's digest through `delivery` (None: stop sending), the SMTP password
        encrypted like the IMAP one."""
        if delivery is not None:
            validate_digest(delivery)  # only this part: the IMAP settings are not being changed
        token = crypto.encrypt(cipher, password) if delivery and password else ""
        with self._locked():
            accounts = self.load()
            accounts[slug] = replace(
                self.get(slug), digest=delivery, smtp_password_token=token, updated_at=_now()
            )
            self._save(accounts)
        return accounts[slug]

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

    @contextmanager
    def grant_lock(self, slug: str) -> Iterator[None]:
        """Held while refreshing: another process may be about to rotate the same refresh token."""
        with file_lock(self.path.parent / "locks" / f"{slug}.grant.lock", exclusive=True):
            yield

    def rotate(self, cipher: crypto.Keyring) -> int:
        """Re-encrypt every password and OAuth grant with the first key; all or nothing."""
        with self._locked():
            accounts = self.load()
            rotated = {slug: _rotated(a, cipher) for slug, a in accounts.items()}
            self._save(rotated)
        return len(rotated)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Read-modify-write of the whole file: a refresh in one process must not undo an add in another.
        with file_lock(self.path.parent / "locks" / "accounts.lock", exclusive=True):
            yield

    def _save(self, accounts: dict[str, Account]) -> None:
        """Keep the current file as the backup, then replace it; both written atomically, 0600."""
        payload = {
            "version": 1,
            "accounts": [asdict(a) for a in sorted(accounts.values(), key=lambda a: a.slug)],
        }
        if self.path.exists():
            write_private(self.backup_path, self.path.read_bytes())
        write_private(self.path, json.dumps(payload, indent=2).encode())


def parse(content: bytes) -> dict[str, Account]:
    """The accounts of a registry file's bytes; raises ValueError/TypeError/KeyError when malformed."""
    data = json.loads(content.decode("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("accounts", []), list):
        raise ValueError("not a registry: expected an object with a list of accounts")
    return {item["slug"]: _account_from_json(item) for item in data.get("accounts", [])}


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


def known_accounts(accounts_path: Path, lake_dir: Location) -> set[str]:
    """Slugs of the registry, and of accounts whose mail is still stored after `account remove`."""
    from mail_pipeline.storage.lake import Lake

    stored = {account for account, _ in Lake(lake_dir).list_partitions("emails")}
    return set(AccountRegistry(accounts_path).load()) | stored


def check_accounts(requested: list[str], known: set[str]) -> None:
    unknown = sorted(set(requested) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none yet (add one with `mail-pipeline account add`)"
        raise AccountError(
            f"unknown account{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(a) for a in unknown)}; known accounts: {listed}"
        )
