"""Token endpoint requests (RFC 6749 section 4-6, RFC 7523 2.1, RFC 8628 section 3.4) over
urllib, and the errors an operator reads when they fail. Tokens are registered for redaction as
they arrive."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mail_pipeline import logs
from mail_pipeline.imap.errors import ImapAuthError, ImapError
from mail_pipeline.storage.grants import (
    CLIENT_CREDENTIALS,
    JWT_BEARER,
    Grant,
    OAuthSettings,
)

TIMEOUT_S = 30.0
# RFC 6749 5.1 leaves expires_in optional; a token without one is treated as an hour-long one
# (Google's and Microsoft's lifetime) and refreshed early if the server refuses it sooner.
DEFAULT_LIFETIME_S = 3600


def reauth_command(slug: str, grant: str = "") -> str:
    """The command that gives the account a new grant: a new key file or secret for org-wide ones."""
    flag = {
        JWT_BEARER: " --service-account-key FILE",
        CLIENT_CREDENTIALS: " --client-secret-env VAR",
    }
    return f"mail-pipeline account reauth {slug}{flag.get(grant, '')}"


def reauth_hint(slug: str, grant: str = "") -> str:
    return f"re-authorize it with `{reauth_command(slug, grant)}`"


class GrantError(ImapAuthError):
    """The grant is revoked, expired or refused: only a new sign-in helps."""


class OAuthEndpointError(ImapError):
    """The token endpoint could not be reached or answered nonsense: worth a retry."""

    kind = "oauth"
    transient = True


class TokenRequestError(Exception):
    """An RFC 6749 5.2 error answer: `error` is its code (invalid_grant, authorization_pending...)."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: int = DEFAULT_LIFETIME_S
    refresh_token: str = field(default="", repr=False)
    scope: str = ""


def post_form(url: str, fields: dict[str, str], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """POST a form and return the JSON answer; error answers raise `TokenRequestError`."""
    request = urllib.request.Request(
        url,
        data=urlencode(fields).encode("ascii"),
        method="POST",
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as error:
        body = error.read()
        payload = _json(body)
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            raise TokenRequestError(
                payload["error"], str(payload.get("error_description", ""))[:300]
            ) from None
        raise OAuthEndpointError(f"{url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OAuthEndpointError(f"cannot reach the OAuth endpoint {url}: {reason}") from None
    payload = _json(body)
    if not isinstance(payload, dict):
        raise OAuthEndpointError(f"{url} answered something that is not a JSON object")
    return payload


def _json(body: bytes) -> object:  # a JSON document, or None where the body is not one
    try:
        return json.loads(body)
    except ValueError:
        return None


def token_response(payload: dict[str, Any], url: str) -> TokenResponse:
    """Read RFC 6749 5.1's answer, registering its tokens for redaction before anything else."""
    access = payload.get("access_token")
    refresh = payload.get("refresh_token") or ""
    logs.register_secret(access if isinstance(access, str) else None)
    logs.register_secret(refresh if isinstance(refresh, str) else None)
    if not isinstance(access, str) or not access:
        raise OAuthEndpointError(f"{url} answered without an access_token")
    try:
        expires_in = int(payload.get("expires_in") or DEFAULT_LIFETIME_S)
    except (TypeError, ValueError):
        expires_in = DEFAULT_LIFETIME_S
    return TokenResponse(
        access_token=access,
        expires_in=expires_in,
        refresh_token=str(refresh),
        scope=str(payload.get("scope", "")),
    )


def client_fields(settings: OAuthSettings, client_secret: str) -> dict[str, str]:
    # client_secret_post (RFC 6749 2.3.1): both Google and Microsoft accept it; public clients send none.
    return {
        "client_id": settings.client_id,
        **({"client_secret": client_secret} if client_secret else {}),
    }


def mint(slug: str, settings: OAuthSettings, grant: Grant) -> TokenResponse:
    """A new access token by the account's kind of grant; a refused one raises `GrantError`."""
    if settings.grant == JWT_BEARER:
        return _app_token(slug, settings, _assertion_fields(settings, grant))
    if settings.grant == CLIENT_CREDENTIALS:
        fields = {
            "grant_type": "client_credentials",
            "scope": settings.scope,
            **client_fields(settings, grant.client_secret),
        }
        return _app_token(slug, settings, fields)
    return refresh(slug, settings, grant)


def _assertion_fields(settings: OAuthSettings, grant: Grant) -> dict[str, str]:
    from mail_pipeline.auth import service_account

    return {
        "grant_type": service_account.JWT_BEARER_GRANT,
        "assertion": service_account.assertion(settings, grant),
    }


def _app_token(slug: str, settings: OAuthSettings, fields: dict[str, str]) -> TokenResponse:
    """An access token for a service account's or an application's own credentials: there is
    no user's grant to lose, so a refusal names the credential and the admin setting to check."""
    try:
        return token_response(post_form(settings.token_url, fields), settings.token_url)
    except TokenRequestError as error:
        if error.error not in REFUSALS:
            raise OAuthEndpointError(
                f"account {slug!r}: token request failed at {settings.token_url}: {error}"
            ) from None
        if settings.grant == JWT_BEARER:
            raise GrantError(
                f"account {slug!r}: {settings.token_url} refused service account "
                f"{settings.client_id} acting as {settings.subject} ({error}): a wrong or deleted "
                "key is refused as invalid_grant, a user the domain-wide delegation does not "
                f"cover or a scope it lacks as unauthorized_client; {reauth_hint(slug, settings.grant)}"
            ) from None
        raise GrantError(
            f"account {slug!r}: {settings.token_url} refused the client credentials of "
            f"application {settings.client_id} ({error}): a wrong or expired client secret, or an "
            f"app without the IMAP.AccessAsApp permission; {reauth_hint(slug, settings.grant)}"
        ) from None


# The RFC 6749 5.2 answers that no retry can change: only a new grant or an admin's change helps.
REFUSALS = ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope")


def refresh(slug: str, settings: OAuthSettings, grant: Grant) -> TokenResponse:
    """A new access token from the refresh token (RFC 6749 6); a dead grant raises `GrantError`."""
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": grant.refresh_token,
        **client_fields(settings, grant.client_secret),
    }
    if settings.scope:
        fields["scope"] = settings.scope
    try:
        return token_response(post_form(settings.token_url, fields), settings.token_url)
    except TokenRequestError as error:
        if error.error in REFUSALS:
            raise GrantError(
                f"account {slug!r}: the OAuth grant was refused by {settings.token_url} ({error.error}: revoked, "
                f"expired or for another client); {reauth_hint(slug)}"
            ) from None
        raise OAuthEndpointError(
            f"account {slug!r}: token refresh failed at {settings.token_url}: {error}"
        ) from None
