"""Interactive sign-in that ends with a refresh token: the device authorization grant (RFC 8628,
for headless machines) and the authorization code grant with PKCE S256 (RFC 7636) through a
loopback redirect (RFC 8252 7.3), or a pasted redirect URL where no browser can reach us."""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from mail_pipeline.auth import oauth
from mail_pipeline.storage.grants import OAuthSettings

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class SignInError(Exception):
    """The sign-in did not produce a grant (denied, expired, a forged redirect)."""


def device_flow(
    settings: OAuthSettings,
    *,
    client_secret: str = "",
    announce: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> oauth.TokenResponse:
    """RFC 8628: show the user a code to enter elsewhere, then poll until they approve."""
    fields = {
        **oauth.client_fields(settings, client_secret),
        **({"scope": settings.scope} if settings.scope else {}),
    }
    try:
        start = oauth.post_form(settings.device_url, fields)
    except oauth.TokenRequestError as error:
        raise SignInError(
            f"the device authorization endpoint refused the request: {error}"
        ) from None
    verification = (
        start.get("verification_uri_complete")
        or start.get("verification_uri")
        or start.get("verification_url")
    )
    if (
        not all(isinstance(start.get(k), str) for k in ("device_code", "user_code"))
        or not verification
    ):
        raise SignInError(
            f"{settings.device_url} answered without a device_code, user_code or verification_uri"
        )
    announce(f"To sign in, open {verification} and enter the code {start['user_code']}")
    interval = float(start.get("interval") or 5)  # RFC 8628 3.2: 5 s when the server names none
    deadline = clock() + float(start.get("expires_in") or 900)
    poll = {
        "grant_type": DEVICE_GRANT,
        "device_code": start["device_code"],
        **oauth.client_fields(settings, client_secret),
    }
    while clock() < deadline:
        sleep(interval)
        try:
            return oauth.token_response(
                oauth.post_form(settings.token_url, poll), settings.token_url
            )
        except oauth.TokenRequestError as error:
            if error.error == "authorization_pending":
                continue
            if error.error == "slow_down":  # RFC 8628 3.5: every later poll waits 5 s longer
                interval += 5
                continue
            raise SignInError(_device_failure(error)) from None
    raise SignInError(
        "the device code expired before the sign-in was approved; run the command again"
    )


def _device_failure(error: oauth.TokenRequestError) -> str:
    if error.error == "access_denied":
        return "the sign-in was declined"
    if error.error == "expired_token":
        return "the device code expired before the sign-in was approved; run the command again"
    return f"the token endpoint refused the device code: {error}"


def pkce_pair() -> tuple[str, str]:
    """A code_verifier (43 characters) and its S256 code_challenge (RFC 7636 4.1-4.2)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    settings: OAuthSettings, redirect_uri: str, challenge: str, state: str
) -> str:
    query = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        # Google issues a refresh token only with offline access and, on a repeat sign-in, only when asked again.
        "access_type": "offline",
        "prompt": "consent",
    }
    return f"{settings.auth_url}?{urlencode(query)}"


def code_from_redirect(url: str, state: str) -> str:
    """The authorization code of a redirect URL, after checking its state (RFC 6749 10.12)."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url.strip()).query).items()}
    if "error" in query:
        raise SignInError(
            f"the provider refused the sign-in: {query['error']} {query.get('error_description', '')}".strip()
        )
    if query.get("state") != state:
        raise SignInError(
            "the redirect does not carry this sign-in's state: start again (and paste the whole URL)"
        )
    if not query.get("code"):
        raise SignInError("the redirect carries no authorization code")
    return query["code"]


def exchange_code(
    settings: OAuthSettings, code: str, verifier: str, redirect_uri: str, client_secret: str
) -> oauth.TokenResponse:
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **oauth.client_fields(settings, client_secret),
    }
    try:
        return oauth.token_response(oauth.post_form(settings.token_url, fields), settings.token_url)
    except oauth.TokenRequestError as error:
        raise SignInError(f"the token endpoint refused the authorization code: {error}") from None


class _RedirectCatcher(http.server.HTTPServer):
    """A one-shot HTTP server on 127.0.0.1 that keeps the first request carrying a code or an error."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.done = threading.Event()
        super().__init__(("127.0.0.1", 0), _RedirectHandler)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _RedirectCatcher

    def log_message(self, *args: object) -> None:  # the query holds the code: keep it off stderr
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if "code" not in query and "error" not in query:  # a favicon, a stray probe
            self.send_error(404)
            return
        self.server.received.append(self.path)
        self.server.done.set()
        body = b"Signed in: you can close this tab and return to mail-pipeline.\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def loopback_flow(
    settings: OAuthSettings,
    *,
    client_secret: str = "",
    announce: Callable[[str], None] = print,
    open_browser: Callable[[str], object] | None = None,
    timeout_s: float = 600,
) -> oauth.TokenResponse:
    """Open the provider's consent page; its redirect lands on a one-shot server on 127.0.0.1."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    server = _RedirectCatcher()
    url = authorization_url(settings, server.redirect_uri, challenge, state)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        announce(f"Opening the sign-in page; if no browser appears, open this URL:\n{url}")
        (open_browser or webbrowser.open)(url)
        if not server.done.wait(timeout_s):
            raise SignInError(f"no sign-in came back within {int(timeout_s)} s; try --no-browser")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return exchange_code(
        settings,
        code_from_redirect(server.received[0], state),
        verifier,
        server.redirect_uri,
        client_secret,
    )


def paste_flow(
    settings: OAuthSettings,
    *,
    client_secret: str = "",
    announce: Callable[[str], None] = print,
    read: Callable[[], str] | None = None,
    redirect_port: int = 1,
) -> oauth.TokenResponse:
    """For a machine without a browser: sign in anywhere, then paste the URL the browser could not load."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    # Nothing listens there: the browser shows an error page whose address holds the code.
    redirect_uri = f"http://127.0.0.1:{redirect_port}/"
    announce(
        "Open this URL in any browser and sign in; it then fails to load a 127.0.0.1 page.\n"
        f"Copy that page's whole address and paste it here.\n{authorization_url(settings, redirect_uri, challenge, state)}"
    )
    pasted = (read or (lambda: input("redirected URL: ")))()
    return exchange_code(
        settings, code_from_redirect(pasted, state), verifier, redirect_uri, client_secret
    )
