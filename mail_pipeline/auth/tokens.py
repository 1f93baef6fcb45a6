"""Access tokens, kept only in this process's memory and refreshed before they expire, and the
credential an `ImapSession` signs in with: SASL OAUTHBEARER (RFC 7628) where the server
advertises it, else XOAUTH2, retried once with a fresh token when the server refuses one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mail_pipeline import logs
from mail_pipeline.auth import oauth
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.storage.grants import CLIENT_CREDENTIALS, JWT_BEARER, Grant, OAuthSettings

# A token this close to its end is refreshed before use, so a login (or a reconnect mid-run)
# never presents one that dies during the SASL exchange.
REFRESH_MARGIN_S = 300


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float

    def valid(self, now: float, margin: float = REFRESH_MARGIN_S) -> bool:
        return self.expires_at - margin > now


_cache: dict[tuple[str, str, str], AccessToken] = {}
_cache_lock = threading.Lock()


def forget(slug: str) -> None:
    """Drop the cached access tokens of an account (after a reauth or a refused login)."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == slug]:
            del _cache[key]


class TokenSource:
    """One account's access tokens: from the cache while valid, else from its refresh token.

    `load` and `save` read and replace the stored grant; `lock` is held around a refresh so two
    processes never spend the same rotating refresh token."""

    def __init__(
        self,
        slug: str,
        settings: OAuthSettings,
        load: Callable[[], Grant],
        save: Callable[[Grant], object],  # what it returns is not used
        lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
        clock: Callable[[], float] = time.time,
    ):
        self.slug, self.settings = slug, settings
        self._load, self._save, self._lock, self._clock = load, save, lock, clock
        self.key = (slug, settings.token_url, settings.client_id)

    def cached(self) -> AccessToken | None:
        with _cache_lock:
            token = _cache.get(self.key)
        return token if token and token.valid(self._clock()) else None

    def minutes_left(self) -> int | None:
        token = self.cached()
        return int((token.expires_at - self._clock()) // 60) if token else None

    def seed(self, response: oauth.TokenResponse) -> None:
        """Cache the access token a sign-in flow returned along with the grant."""
        with _cache_lock:
            _cache[self.key] = AccessToken(
                response.access_token, self._clock() + response.expires_in
            )

    def get(self) -> tuple[AccessToken, bool]:
        """A valid access token, and whether it was just minted (a refused fresh token is final)."""
        token = self.cached()
        if token:
            return token, False
        with self._lock():
            token = self.cached()  # another thread or process may have refreshed meanwhile
            if token:
                return token, False
            return self._refresh(), True

    def invalidate(self) -> None:
        with _cache_lock:
            _cache.pop(self.key, None)

    def _refresh(self) -> AccessToken:
        grant = self._load()
        for secret in (grant.refresh_token, grant.client_secret, grant.private_key):
            logs.register_secret(secret)
        response = oauth.mint(self.slug, self.settings, grant)
        if response.refresh_token and response.refresh_token != grant.refresh_token:
            # A rotating provider may void the old one at once: store the new one before using it.
            self._save(replace(grant, refresh_token=response.refresh_token))
        self.seed(response)
        return _cache[self.key]


def sasl_response(mechanism: str, username: str, token: str) -> Callable[[bytes], str]:
    """The client side of XOAUTH2 or OAUTHBEARER: the token first, then an empty (XOAUTH2) or
    %x01 (RFC 7628 3.2.3) answer to the server's error challenge, so it can say NO."""
    if mechanism == "OAUTHBEARER":
        authzid = username.replace("=", "=3D").replace(",", "=2C")
        first = f"n,a={authzid},\x01auth=Bearer {token}\x01\x01"
        after = "\x01"
    else:
        first, after = f"user={username}\x01auth=Bearer {token}\x01\x01", ""
    steps = iter([first])
    return lambda _challenge: next(steps, after)


class OAuthCredential:
    """What `ImapSession` signs in with for an oauth2 account (it calls `login`)."""

    def __init__(self, source: TokenSource):
        self.source = source
        self.mechanism = ""
        self.advertised = True
        self.username = ""

    @property
    def slug(self) -> str:
        return self.source.slug

    def login(self, client: IMAPClient, username: str) -> None:
        self.username = username
        advertised = {bytes(c).upper() for c in client.capabilities()}
        self.mechanism = "OAUTHBEARER" if b"AUTH=OAUTHBEARER" in advertised else "XOAUTH2"
        self.advertised = f"AUTH={self.mechanism}".encode() in advertised
        token, fresh = self.source.get()
        try:
            client.sasl_login(self.mechanism, sasl_response(self.mechanism, username, token.value))
            return
        except LoginError:
            if fresh:
                raise self._refused(client) from None
        # The server may have ended a token we still held as valid (revoked, shortened lifetime).
        self.source.invalidate()
        token, _ = self.source.get()
        try:
            client.sasl_login(self.mechanism, sasl_response(self.mechanism, username, token.value))
        except LoginError:
            raise self._refused(client) from None

    def _refused(self, client: IMAPClient) -> oauth.GrantError:
        self.source.invalidate()
        settings = self.source.settings
        if not self.advertised:
            return oauth.GrantError(
                f"account {self.slug!r}: {client.host} refused XOAUTH2 and advertises neither "
                "AUTH=XOAUTH2 nor AUTH=OAUTHBEARER: it may not accept OAuth 2.0 at all"
            )
        if settings.grant == CLIENT_CREDENTIALS:
            return oauth.GrantError(
                f"account {self.slug!r}: {client.host} refused application {settings.client_id}'s "
                f"access token ({self.mechanism}) for {self.username}: the app needs "
                "the IMAP.AccessAsApp permission, an Exchange service principal and full access "
                "to this mailbox (docs/accounts.md, 'Microsoft 365 application access')"
            )
        return oauth.GrantError(
            f"account {self.slug!r}: {client.host} refused a freshly issued OAuth access token ({self.mechanism}): "
            f"the grant may lack the IMAP scope or belong to another user; "
            f"{oauth.reauth_hint(self.slug, settings.grant)}"
        )


def registry_source(
    account: Account, registry: AccountRegistry, cipher: crypto.Keyring
) -> TokenSource:
    """The token source of a registered account, reading and rotating its grant in the registry."""
    slug = account.slug
    if account.oauth is None:  # validate_oauth requires them of every oauth2 account
        raise oauth.GrantError(f"account {slug!r} has no OAuth settings")
    return TokenSource(
        slug,
        account.oauth,
        load=lambda: registry.grant(registry.get(slug), cipher),
        save=lambda grant: registry.replace_secret(slug, grant, cipher),
        lock=lambda: registry.grant_lock(slug),
    )


def credential_for(
    account: Account, registry: AccountRegistry, cipher: crypto.Keyring
) -> str | OAuthCredential:
    """What `ImapSession` needs to sign `account` in: its password, or an OAuth credential."""
    if account.is_oauth:
        return OAuthCredential(registry_source(account, registry, cipher))
    password = registry.password(account, cipher)
    logs.register_secret(password)
    return password


def describe(credential: str | OAuthCredential) -> str:
    """`password`, or the OAuth mechanism used and how long the access token still lives."""
    if isinstance(credential, str):
        return "password"
    minutes = credential.source.minutes_left()
    left = f"; access token valid for {minutes} more min" if minutes is not None else ""
    settings = credential.source.settings
    grant = {
        JWT_BEARER: f"service account {settings.client_id} acting as {settings.subject}",
        CLIENT_CREDENTIALS: f"application {settings.client_id}",
    }.get(settings.grant, "grant")
    return f"oauth2 via {credential.mechanism or 'XOAUTH2'}; {grant} valid{left}"
