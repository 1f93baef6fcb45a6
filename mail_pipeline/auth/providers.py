"""Presets for the providers where most people's mail is: server, security, how to sign in, and
the folders worth syncing. `account add --provider NAME` starts from one; explicit flags win."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mail_pipeline.storage.grants import CLIENT_CREDENTIALS, JWT_BEARER, REFRESH_TOKEN


@dataclass(frozen=True)
class Provider:
    name: str
    host: str
    sent: str  # the Sent folder's English name; see `preset_folders` for other languages
    auth: str = "password"  # password (an app password) | oauth2
    port: int = 993
    security: str = "tls"
    auth_url: str = ""  # oauth2 sign-in in a browser (RFC 8252 loopback redirect with PKCE)
    token_url: str = ""
    device_url: str = ""  # oauth2 sign-in with a device code (RFC 8628), for headless machines
    scope: str = ""
    client_id_setting: str = (
        ""  # the settings field (mail_pipeline/settings.py) holding your client id
    )
    client_secret_setting: str = ""
    grant: str = REFRESH_TOKEN  # how access tokens are minted (storage/grants.py)

    @property
    def folders(self) -> tuple[str, ...]:
        return ("INBOX", self.sent)


MICROSOFT = "https://login.microsoftonline.com/common/oauth2/v2.0"
# An application's token endpoint is its tenant's: `account add --tenant ID` fills it in.
MICROSOFT_TENANT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"

PROVIDERS = {
    # All Mail holds every message of every other folder: syncing it too would fetch each twice.
    "gmail": Provider(
        "gmail",
        "imap.gmail.com",
        "[Gmail]/Sent Mail",
        auth="oauth2",
        auth_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scope="https://mail.google.com/",
        client_id_setting="google_client_id",
        client_secret_setting="google_client_secret",
    ),
    # Microsoft 365 and Outlook.com refuse passwords over IMAP; the device-code flow works headless.
    "outlook": Provider(
        "outlook",
        "outlook.office365.com",
        "Sent Items",
        auth="oauth2",
        token_url=f"{MICROSOFT}/token",
        device_url=f"{MICROSOFT}/devicecode",
        scope="https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        client_id_setting="microsoft_client_id",
    ),
    # Org-wide: an admin adds colleagues' mailboxes with no sign-in of theirs. Google's service
    # account acts as each user (domain-wide delegation; the token endpoint is its key file's
    # token_uri); a Microsoft 365 application reads the mailboxes it was given access to.
    "google-workspace": Provider(
        "google-workspace",
        "imap.gmail.com",
        "[Gmail]/Sent Mail",
        auth="oauth2",
        scope="https://mail.google.com/",
        grant=JWT_BEARER,
    ),
    "microsoft365-app": Provider(
        "microsoft365-app",
        "outlook.office365.com",
        "Sent Items",
        auth="oauth2",
        token_url=MICROSOFT_TENANT_TOKEN_URL,
        scope="https://outlook.office365.com/.default",
        grant=CLIENT_CREDENTIALS,
    ),
    "fastmail": Provider("fastmail", "imap.fastmail.com", "Sent"),
    "icloud": Provider("icloud", "imap.mail.me.com", "Sent Messages"),
    "yahoo": Provider("yahoo", "imap.mail.yahoo.com", "Sent"),
}


def preset_folders(
    provider: Provider, folders: tuple[str, ...], available: list[Any]
) -> tuple[str, ...]:
    """The preset's folders with its Sent folder renamed to the one the server flags \\Sent
    (RFC 6154) when the English name is absent: Gmail translates "[Gmail]/Sent Mail"."""
    names = {f.name for f in available}
    flagged = [f.name for f in available if "\\Sent" in f.flags]
    if provider.sent in names or not flagged:
        return folders
    return tuple(flagged[0] if name == provider.sent else name for name in folders)
