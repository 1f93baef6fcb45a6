"""A small OAuth 2.0 provider on loopback for tests: refresh (RFC 6749 6), authorization code
with PKCE S256 (RFC 7636), device authorization (RFC 8628), token introspection (RFC 7662,
which Dovecot's oauth2 passdb calls), and the two org-wide grants: a service account's JWT
assertion (RFC 7523, as Google's domain-wide delegation checks it) and an application's client
credentials (RFC 6749 4.4, as Microsoft's tenant endpoint issues app tokens). Tokens can be
expired, grants revoked, refresh tokens rotated. Runs in a thread of the test process; also used
by the harness, so no pytest import.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google's own answers (its token endpoint's error_description) to the assertions it refuses.
UNAUTHORIZED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested."
)


class OAuthFailure(Exception):
    def __init__(self, error: str, status: int = 400, description: str = ""):
        super().__init__(error)
        self.error, self.status, self.description = error, status, description


@dataclass
class Delegation:
    """A service account the domain's admin allowed to act as `users` for `scope` (Admin
    console → Security → API controls → Domain-wide delegation), with its key's PUBLIC half."""

    public_key: str  # PEM
    users: set[str]
    scope: str
    grant_id: str = ""


@dataclass
class App:
    """A Microsoft 365 application of the tenant: its client secret, and the domain whose
    mailboxes its tokens open (the harness's Dovecot compares only the domain for them)."""

    secret: str
    domain: str
    scope: str = "https://outlook.office365.com/.default"
    grant_id: str = ""


@dataclass
class Device:
    user_code: str
    scripted: list[str]  # error codes answered, in order, before anything else
    username: str = ""
    denied: bool = False
    polls: int = 0


@dataclass
class TokenServer:
    client_id: str = "mail-pipeline-tests"
    client_secret: str = ""  # when set, every token request must carry it
    access_lifetime_s: int = 3600
    rotate_refresh_tokens: bool = False
    device_script: tuple[str, ...] = ("authorization_pending", "slow_down", "authorization_pending")
    device_interval: int = 5
    auto_approve: bool = False  # device codes approved by default_user as soon as issued
    token_delay_s: float = 0.0  # a slow token endpoint, so that concurrent refreshes overlap
    default_user: str = "alice"
    port: int = 0
    issued: list[str] = field(default_factory=list)  # every token handed out, for leak checks
    refreshes: int = 0
    introspections: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._grants: dict[str, bool] = {}  # grant id -> active
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (grant id, username)
        self._access: dict[
            str, tuple[str, str, bool]
        ] = {}  # access token -> (grant id, username, active)
        self._codes: dict[str, dict] = {}
        self._devices: dict[str, Device] = {}
        self._delegations: dict[str, Delegation] = {}  # client_email -> delegation
        self._apps: dict[str, App] = {}  # client id -> app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # quiet: the tests read what matters from the server's state
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self, "GET", parse_qs(urlsplit(self.path).query))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                server._handle(self, "POST", parse_qs(self.rfile.read(length).decode("ascii")))

        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    # --- what a test does as the provider's user or administrator ---

    def issue_grant(self, username: str | None = None) -> str:
        """A refresh token for `username`, as if they had signed in elsewhere."""
        with self._lock:
            return self._new_grant(username or self.default_user)

    def delegate(self, client_email: str, public_key: str, users: set[str], scope: str) -> None:
        """Domain-wide delegation: `client_email`'s assertions, signed by the private half of
        `public_key`, may ask for `users`' tokens with `scope`."""
        with self._lock:
            grant_id = secrets.token_hex(8)
            self._grants[grant_id] = True
            self._delegations[client_email] = Delegation(public_key, users, scope, grant_id)

    def register_app(self, client_id: str, secret: str, domain: str) -> None:
        with self._lock:
            grant_id = secrets.token_hex(8)
            self._grants[grant_id] = True
            self._apps[client_id] = App(secret, domain, grant_id=grant_id)

    def revoke_all(self) -> None:
        with self._lock:
            self._grants = dict.fromkeys(self._grants, False)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops being accepted (as if its lifetime ran out)."""
        with self._lock:
            self._access = {t: (g, u, False) for t, (g, u, _a) in self._access.items()}

    def approve(self, user_code: str, username: str | None = None, *, deny: bool = False) -> None:
        with self._lock:
            device = next(d for d in self._devices.values() if d.user_code == user_code)
            device.username, device.denied = username or self.default_user, deny

    # --- the endpoints ---

    def _handle(
        self, request: BaseHTTPRequestHandler, method: str, query: dict[str, list[str]]
    ) -> None:
        form = {k: v[0] for k, v in query.items()}
        route = (method, urlsplit(request.path).path)
        if route == ("POST", "/token"):
            time.sleep(self.token_delay_s)
        try:
            with self._lock:
                if route == ("GET", "/authorize"):
                    return self._redirect(request, self._authorize(form))
                handler = {
                    ("POST", "/token"): self._token,
                    ("POST", "/device"): self._device,
                    ("POST", "/introspect"): self._introspect,
                }.get(route)
                if handler is None:
                    raise OAuthFailure("not_found", 404)
                body, status = handler(form), 200
        except OAuthFailure as failure:
            body, status = {"error": failure.error}, failure.status
            if failure.description:
                body["error_description"] = failure.description
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _redirect(self, request: BaseHTTPRequestHandler, location: str) -> None:
        request.send_response(302)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def _check_client(self, form: dict) -> None:
        if form.get("client_id") != self.client_id:
            raise OAuthFailure("invalid_client", 401)
        if self.client_secret and form.get("client_secret") != self.client_secret:
            raise OAuthFailure("invalid_client", 401)

    def _token(self, form: dict) -> dict:
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER_GRANT:  # the assertion is the client's authentication
            return self._assertion_grant(form)
        if grant_type == "client_credentials":
            return self._client_credentials_grant(form)
        self._check_client(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        if grant_type == "authorization_code":
            return self._code_grant(form)
        if grant_type == DEVICE_GRANT:
            return self._device_grant(form)
        raise OAuthFailure("unsupported_grant_type")

    def _refresh_grant(self, form: dict) -> dict:
        grant_id, username = self._refresh.get(form.get("refresh_token", ""), ("", ""))
        if not self._grants.get(grant_id):
            raise OAuthFailure("invalid_grant")
        self.refreshes += 1
        answer = self._access_token(grant_id, username)
        if self.rotate_refresh_tokens:
            del self._refresh[form["refresh_token"]]
            answer["refresh_token"] = self._refresh_token(grant_id, username)
        return answer

    def _assertion_grant(self, form: dict) -> dict:
        """RFC 7523 2.1 as Google checks it: the signature by the service account's key, the
        audience (this token endpoint), an hour at most, then the delegation's users and scope."""
        import jwt

        assertion = form.get("assertion", "")
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
        except jwt.PyJWTError:
            raise OAuthFailure("invalid_grant", description="Invalid JWT.") from None
        delegation = self._delegations.get(issuer)
        if delegation is None:
            raise OAuthFailure("invalid_grant", description="Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                delegation.public_key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                options={"require": ["iss", "sub", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidSignatureError:
            raise OAuthFailure("invalid_grant", description="Invalid JWT Signature.") from None
        except jwt.PyJWTError as error:
            raise OAuthFailure("invalid_grant", description=f"Invalid JWT: {error}") from None
        if not 0 < claims["exp"] - claims["iat"] <= 3600:
            raise OAuthFailure(
                "invalid_grant",
                description="Invalid JWT: Token must be a short-lived token (60 minutes)",
            )
        if claims["sub"] not in delegation.users or claims["scope"] != delegation.scope:
            raise OAuthFailure("unauthorized_client", 401, UNAUTHORIZED)
        if not self._grants.get(delegation.grant_id):
            raise OAuthFailure("invalid_grant", description="Invalid grant: account not found")
        return self._access_token(delegation.grant_id, claims["sub"])

    def _client_credentials_grant(self, form: dict) -> dict:
        app = self._apps.get(form.get("client_id", ""))
        if app is None:
            raise OAuthFailure("unauthorized_client", 400, "AADSTS700016: Application not found")
        if not secrets.compare_digest(form.get("client_secret", ""), app.secret):
            raise OAuthFailure(
                "invalid_client", 401, "AADSTS7000215: Invalid client secret provided."
            )
        if form.get("scope") != app.scope:
            raise OAuthFailure("invalid_scope", 400, f"AADSTS70011: scope must be {app.scope}")
        if not self._grants.get(app.grant_id):
            raise OAuthFailure("invalid_client", 401, "AADSTS7000222: the client secret expired")
        return self._access_token(app.grant_id, f"{form['client_id']}@{app.domain}")

    def _code_grant(self, form: dict) -> dict:
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or form.get("redirect_uri") != code["redirect_uri"]:
            raise OAuthFailure("invalid_grant")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or s256(verifier) != code["challenge"]:
            raise OAuthFailure("invalid_grant")
        return self._new_grant_answer(code["username"])

    def _device_grant(self, form: dict) -> dict:
        device = self._devices.get(form.get("device_code", ""))
        if device is None:
            raise OAuthFailure("expired_token")
        device.polls += 1
        if device.scripted:
            raise OAuthFailure(device.scripted.pop(0))
        if device.denied:
            raise OAuthFailure("access_denied")
        if not device.username:
            raise OAuthFailure("authorization_pending")
        del self._devices[form["device_code"]]
        return self._new_grant_answer(device.username)

    def _authorize(self, form: dict) -> str:
        if form.get("client_id") != self.client_id or form.get("response_type") != "code":
            raise OAuthFailure("unauthorized_client")
        if form.get("code_challenge_method") != "S256" or not form.get("code_challenge"):
            raise OAuthFailure("invalid_request")
        code = secrets.token_urlsafe(16)
        self._codes[code] = {
            "challenge": form["code_challenge"],
            "redirect_uri": form["redirect_uri"],
            "username": self.default_user,
        }
        return f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form.get('state', '')})}"

    def _device(self, form: dict) -> dict:
        if form.get("client_id") != self.client_id:
            raise OAuthFailure("invalid_client", 401)
        device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
        self._devices[device_code] = Device(
            user_code,
            list(self.device_script),
            username=self.default_user if self.auto_approve else "",
        )
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/device-login",
            "expires_in": 900,
            "interval": self.device_interval,
        }

    def _introspect(self, form: dict) -> dict:
        self.introspections += 1
        grant_id, username, active = self._access.get(form.get("token", ""), ("", "", False))
        if not (active and self._grants.get(grant_id)):
            return {"active": False}
        return {"active": True, "username": username}

    def _new_grant(self, username: str) -> str:
        grant_id = secrets.token_hex(8)
        self._grants[grant_id] = True
        return self._refresh_token(grant_id, username)

    def _new_grant_answer(self, username: str) -> dict:
        refresh = self._new_grant(username)
        return {**self._access_token(self._refresh[refresh][0], username), "refresh_token": refresh}

    def _refresh_token(self, grant_id: str, username: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self._refresh[token] = (grant_id, username)
        self.issued.append(token)
        return token

    def _access_token(self, grant_id: str, username: str) -> dict:
        token = "at-" + secrets.token_urlsafe(24)
        self._access[token] = (grant_id, username, True)
        self.issued.append(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.access_lifetime_s}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
