"""What an account is: its settings, the Fernet tokens of its secrets, and the rules they obey.

Where accounts are kept is another module's job (accounts_file.py, accounts_postgres.py); every
store keeps an account as `account_to_json`'s object, so they hold the same thing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mail_pipeline.storage.grants import GRANT_KINDS, JWT_BEARER, OAuthSettings

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
    """The stored accounts cannot be read; the message names where, and how to restore them."""


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


def account_from_json(item: dict[str, Any]) -> Account:
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


def account_to_json(account: Account) -> dict[str, Any]:
    return asdict(account)
