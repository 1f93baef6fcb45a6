"""What an OAuth account signs in with: where and as whom it gets access tokens (`OAuthSettings`,
no secrets) and the secrets of its grant (`Grant`, stored only as one Fernet token)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# How an account gets its access tokens: a user's refresh token (RFC 6749 6), a service
# account's signed assertion (RFC 7523, Google's domain-wide delegation), or an application's
# own client credentials (RFC 6749 4.4, Microsoft 365 application access).
REFRESH_TOKEN = "refresh_token"
JWT_BEARER = "jwt_bearer"
CLIENT_CREDENTIALS = "client_credentials"
GRANT_KINDS = (REFRESH_TOKEN, JWT_BEARER, CLIENT_CREDENTIALS)


@dataclass(frozen=True)
class OAuthSettings:
    """Where and as whom an OAuth account gets its access tokens (no secrets)."""

    token_url: str
    client_id: str  # a service account's client_email for jwt_bearer (the assertion's issuer)
    scope: str = ""
    provider: str = (
        ""  # the preset it came from (`account reauth` reads its client settings again); "" = none
    )
    auth_url: str = ""
    device_url: str = ""
    grant: str = REFRESH_TOKEN  # one of GRANT_KINDS
    subject: str = ""  # the user a jwt_bearer assertion impersonates


@dataclass(frozen=True)
class Grant:
    """An OAuth grant's secrets, stored encrypted as one Fernet token: a refresh token (and the
    client's secret), an application's client secret, or a service account's private key."""

    refresh_token: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)  # PEM, from the service account's key file
    private_key_id: str = ""  # the key's id, named in the assertion's header (`kid`)

    def missing(self, kind: str) -> str:
        """What this grant lacks to mint tokens by `kind` ("" when nothing)."""
        needed = {
            REFRESH_TOKEN: ("an OAuth refresh token", self.refresh_token),
            JWT_BEARER: ("a service account's private key", self.private_key),
            CLIENT_CREDENTIALS: ("an OAuth client secret", self.client_secret),
        }
        what, value = needed.get(kind, (f"a grant of a known kind, not {kind!r}", ""))
        return "" if value else what

    def dumps(self) -> str:
        return json.dumps(
            {
                "refresh_token": self.refresh_token,
                "client_secret": self.client_secret,
                **(
                    {"private_key": self.private_key, "private_key_id": self.private_key_id}
                    if self.private_key
                    else {}
                ),
            }
        )

    @classmethod
    def loads(cls, text: str) -> Grant:
        data = json.loads(text)
        return cls(
            refresh_token=data.get("refresh_token", ""),
            client_secret=data.get("client_secret", ""),
            private_key=data.get("private_key", ""),
            private_key_id=data.get("private_key_id", ""),
        )
