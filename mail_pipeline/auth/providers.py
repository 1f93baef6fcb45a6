"""Presets for the providers where most people's mail is: server, security, how to sign in, and
the folders worth syncing. `account add --provider NAME` starts from one; explicit flags win."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    @property
    def folders(self) -> tuple[str, ...]:
        return ("INBOX", self.sent)


MICROSOFT = "https://login.microsoftonline.com/common/oauth2/v2.0"

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
