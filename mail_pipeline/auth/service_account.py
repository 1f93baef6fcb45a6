"""Google domain-wide delegation: a service account's JSON key file read, and the JWT it signs to
act as one user of the domain (RFC 7523 2.1, exchanged at the key's token_uri for that user's
access token; Google's "Using OAuth 2.0 for Server to Server Applications")."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from mail_pipeline import logs
from mail_pipeline.auth.oauth import GrantError
from mail_pipeline.storage.accounts import AccountError
from mail_pipeline.storage.grants import Grant, OAuthSettings

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google refuses an assertion whose exp is more than an hour after its iat.
ASSERTION_LIFETIME_S = 3600


class ServiceAccountKeyError(AccountError):
    """A key file that is not a service account's JSON key; the message never holds the key."""


@dataclass(frozen=True)
class ServiceAccountKey:
    client_email: str  # the assertion's issuer
    client_id: str  # the number the Admin console's domain-wide delegation lists
    token_uri: str
    private_key: str = field(repr=False)
    private_key_id: str = ""

    @property
    def grant(self) -> Grant:
        return Grant(private_key=self.private_key, private_key_id=self.private_key_id)


def read_key(path: Path) -> ServiceAccountKey:
    """The service account key file Google's console downloads (Keys → Add key → JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ServiceAccountKeyError(
            f"cannot read the service account key {path}: {error.strerror}"
        ) from None
    except ValueError:
        raise ServiceAccountKeyError(
            f"the service account key {path} is not JSON: download it again from the Google "
            "Cloud console (IAM & Admin → Service accounts → Keys → Add key → JSON)"
        ) from None
    if not isinstance(data, dict):
        data = {}
    key = data.get("private_key")
    logs.register_secret(key if isinstance(key, str) else None)
    fields = ("client_email", "private_key", "token_uri")
    absent = [name for name in fields if not isinstance(data.get(name), str) or not data[name]]
    if data.get("type") != "service_account" or absent:
        raise ServiceAccountKeyError(
            f"{path} is not a service account's JSON key (type service_account with "
            f"{', '.join(fields)}): an OAuth client's file is not one"
        )
    return ServiceAccountKey(
        client_email=data["client_email"],
        client_id=str(data.get("client_id", "")),
        token_uri=data["token_uri"],
        private_key=data["private_key"],
        private_key_id=str(data.get("private_key_id", "")),
    )


def assertion(settings: OAuthSettings, grant: Grant, now: float | None = None) -> str:
    """The signed JWT (RS256) by which the service account asks for `settings.subject`'s token."""
    import jwt

    issued = int(time.time() if now is None else now)
    claims = {
        "iss": settings.client_id,
        "sub": settings.subject,
        "scope": settings.scope,
        "aud": settings.token_url,  # RFC 7523 3: the token endpoint it is presented to
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
    }
    headers = {"kid": grant.private_key_id} if grant.private_key_id else None
    try:
        signed = jwt.encode(claims, grant.private_key, algorithm="RS256", headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError):
        # The parser's message may quote the key: say only which account's key it is.
        raise GrantError(
            f"the stored private key of service account {settings.client_id} is not an RSA "
            "private key in PEM: add the key file again"
        ) from None
    logs.register_secret(signed)
    return signed
