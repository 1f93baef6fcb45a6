"""Who is asking: the token a request carries (a bearer header or the page's cookie), checked
against the token store, with failed attempts from one address slowed down."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.cookies import CookieError, SimpleCookie

from mail_pipeline.access.tokens import Token, TokenStore

COOKIE = "mail_pipeline_token"
# The delay before a refusal doubles with each failure in a row from one address, from 0.1 s up
# to 5 s: a person who mistyped waits nothing noticeable, a guesser gets ~12 tries a minute
# (and a 256-bit token is not guessed anyway; this keeps a scan from loading the service).
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0
REMEMBERED = 10_000  # addresses kept; the oldest are forgotten first


class Unauthorized(Exception):
    """No token, or not a valid one: HTTP 401."""


class Forbidden(Exception):
    """A valid token without the right to this route: HTTP 403."""


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: its token (None when the service needs none)."""

    token: Token | None

    @property
    def name(self) -> str | None:
        return self.token.name if self.token else None

    @property
    def allowed(self) -> frozenset[str] | None:
        return self.token.allowed if self.token else None

    @property
    def admin(self) -> bool:
        return self.token is None or self.token.admin


class Throttle:
    """A growing delay for an address's failures in a row, forgotten at its next success."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep):
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._sleep = sleep

    def delay(self, address: str) -> float:
        with self._lock:
            failures = self._failures.get(address, 0)
        return 0.0 if failures == 0 else min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (failures - 1))

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures[address] = self._failures.pop(address, 0) + 1
            while len(self._failures) > REMEMBERED:
                self._failures.popitem(last=False)
        self._sleep(self.delay(address))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


# A request's headers: the stdlib server's `Message`, or a plain mapping.
Headers = Mapping[str, str] | Message


def offered(headers: Headers) -> str | None:
    """The token a request offers: `Authorization: Bearer`, else the page's cookie."""
    authorization = headers.get("Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    try:
        cookie = SimpleCookie(headers.get("Cookie") or "")
    except CookieError:
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel and morsel.value else None


class Gate:
    def __init__(self, store: TokenStore, throttle: Throttle | None = None):
        self.store = store
        self.throttle = throttle or Throttle()

    def required(self) -> bool:
        """Tokens are needed once one was made (read each time: `token add` applies at once)."""
        return self.store.in_force()

    def check(self, secret: str, address: str) -> Token | None:
        """The token `secret` names, or None after slowing this address's next try."""
        token = self.store.verify(secret)
        if token is None:
            self.throttle.failed(address)
        else:
            self.throttle.succeeded(address)
        return token

    def caller(self, headers: Headers, address: str) -> Caller:
        """Who sends a request with these headers; Unauthorized when tokens are needed and it
        carries no valid one."""
        if not self.required():
            return Caller(None)
        secret = offered(headers)
        token = self.check(secret, address) if secret else None
        if token is None:
            raise Unauthorized("a valid access token is required (Authorization: Bearer TOKEN)")
        return Caller(token)
