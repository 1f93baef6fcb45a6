"""The search service over HTTP: a JSON API and the search page, from one warm process.

The standard library's threading server is enough for one person's searches on loopback; every
route is a read, and bad input gets a 400 with `{"error": "..."}` naming what is wrong.

Once an access token exists (access/tokens.py), every route but the page's script and icon
needs one, and reads through a `MailReader` scoped to the token's accounts; each request leaves
one line in the audit log (access/audit.py).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mail_pipeline.access.audit import AuditLog, touched
from mail_pipeline.access.gate import Caller, Forbidden, Gate, Unauthorized, offered
from mail_pipeline.indexing.remote import CHUNK_IDS_PATH, INDEX_PATH, KEY_HEADER
from mail_pipeline.indexing.remote import PATH as EMBED_PATH
from mail_pipeline.service import mcp_http, people, signin
from mail_pipeline.service.client import SERVICE_NAME
from mail_pipeline.service.embed_endpoint import MAX_BODY_BYTES, EmbedEndpoint
from mail_pipeline.service.index_endpoint import IndexEndpoint
from mail_pipeline.service.reader import (
    MailReader,
    NotFoundError,
    NothingIndexedError,
    RequestError,
    parse_day,
    parse_k,
)

log = logging.getLogger(__name__)

# The page and its script; the Content-Security-Policy lets no other script run (mail content
# is only ever put into the page as text, and this is the second fence).
STATIC = {
    "/": ("page.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
PUBLIC = {"/page.js", "/favicon.svg"}  # hold no mail: served without a token
MAX_MCP_BODY_BYTES = 4 * 1024 * 1024
CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"
SEARCH_PARAMS = {"q", "mode", "account", "since", "until", "k", "exclude_deleted"}
FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}
_ITEM = re.compile(r"^/api/(emails|threads)/([^/]+)$")
_PERSON = re.compile(r"^/api/people/([^/]+)$")


def route_name(path: str) -> str:
    """The route a path takes, without the ids or addresses in it (the audit log's "route")."""
    if match := _ITEM.match(path):
        return f"/api/{match.group(1)}/{{id}}"
    if _PERSON.match(path):
        return "/api/people/{who}"
    return path


def parse_flag(value: str | None, name: str) -> bool:
    """A yes/no query parameter: 1/true or 0/false (absent or empty is no)."""
    if (value or "").lower() not in FLAGS:
        raise RequestError(f"{name} must be 1 or 0 (true or false), not {value!r}")
    return FLAGS[(value or "").lower()]


def _params(query: str, allowed: set[str]) -> dict[str, str]:
    """The query string's parameters (the last of repeated ones); an unknown name is refused."""
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise RequestError(
            f"unknown parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}"
        )
    return params


class SearchHandler(BaseHTTPRequestHandler):
    server: SearchServer
    server_version = "mail-pipeline"

    caller: Caller | None = None
    answer: Any = None
    status: int = 0

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def do_DELETE(self) -> None:
        self._answer(self._delete)

    def _get(self, path: str, query: str) -> None:
        if path == mcp_http.PATH:
            self._mcp(query)
            return
        if path in PUBLIC:
            self._static(*STATIC[path])
            return
        if path == "/api/health" and not offered(self.headers) and self.server.gate.required():
            # A container's health check has no token: it learns the service is up, no more.
            self._json(HTTPStatus.OK, {"service": SERVICE_NAME})
            return
        self.caller = self.server.gate.caller(self.headers, self.client_address[0])
        if path == "/" and self.caller.token is not None:
            self._send(HTTPStatus.OK, signin.page_signed_in(), STATIC[path][1])
        elif path in STATIC:
            self._static(*STATIC[path])
        elif path.startswith("/api/"):
            self.answer = self._api(path, query)
            self._json(HTTPStatus.OK, self.answer)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def _post(self, path: str, query: str) -> None:
        if path == EMBED_PATH:
            # No token: it reads no mail, only embeds the texts a run sends, and answers
            # loopback clients only (embed_endpoint.py).
            self._json(
                *self.server.embed.answer(self.client_address[0], self._body(MAX_BODY_BYTES))
            )
        elif path == INDEX_PATH:  # as the embed endpoint, writing the run's rows too
            self._json(
                *self.server.index.answer(
                    self.client_address[0],
                    self.headers.get(KEY_HEADER, ""),
                    self._body(MAX_BODY_BYTES),
                )
            )
        elif path == CHUNK_IDS_PATH:
            self._json(
                *self.server.index.chunk_ids(
                    self.client_address[0],
                    self.headers.get(KEY_HEADER, ""),
                    self._body(MAX_BODY_BYTES),
                )
            )
        elif path == mcp_http.PATH:
            self._mcp(query)
        elif path == "/signin":
            self._send(*signin.sign_in(self._form(), self.server.gate, self.client_address[0]))
        elif path == "/signout":
            self._send(*signin.sign_out())
        else:
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{path} takes GET, not POST"})

    def _delete(self, path: str, query: str) -> None:
        if path == mcp_http.PATH:
            self._mcp(query)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def _mcp(self, query: str) -> None:
        """MCP over Streamable HTTP, as the caller the token names (service/mcp_http.py)."""
        self.caller = self.server.gate.caller(self.headers, self.client_address[0])
        endpoint = self.server.mcp
        if endpoint is None:  # not yet started: __init__ has not returned
            raise RuntimeError("the MCP endpoint did not start")
        status, headers, body = endpoint.handle(
            self.command,
            query,
            list(self.headers.items()),
            self._body(MAX_MCP_BODY_BYTES),
            self.client_address[0],
            self.caller,
        )
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "text/plain")
        extra = {k: v for k, v in headers if k.lower() not in {"content-type", "content-length"}}
        self._send(HTTPStatus(status), body, content_type, extra)

    def _body(self, limit: int) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise RequestError(f"the request body is over {limit} bytes")
        return self.rfile.read(length)

    def _form(self) -> dict[str, str]:
        """A POSTed form's fields (the sign-in form is one short field)."""
        body = self._body(signin.MAX_FORM_BYTES).decode("utf-8", "replace")
        return {name: values[-1] for name, values in parse_qs(body).items()}

    def _answer(self, route: Any) -> None:
        url = urlsplit(self.path)
        self.caller, self.answer, self.status = None, None, 0
        try:
            route(url.path, url.query)
        except Unauthorized as error:
            if url.path == "/":
                self._send(*signin.form(HTTPStatus.UNAUTHORIZED))
            else:
                self._json(HTTPStatus.UNAUTHORIZED, {"error": str(error)})
        except Forbidden as error:
            self._json(HTTPStatus.FORBIDDEN, {"error": str(error)})
        except RequestError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except NotFoundError as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error)})
        except NothingIndexedError as error:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error), "empty": True})
        except ConnectionError:
            raise  # the client went away: nobody to answer (SearchServer.handle_error)
        except Exception as error:
            log.exception("request %s failed", url.path)
            self._json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"internal error ({type(error).__name__}); see the service's log"},
            )
        finally:
            self._audit(url.path)

    def _audit(self, path: str) -> None:
        accounts, results = touched(self.answer) if self.status == HTTPStatus.OK else ([], None)
        self.server.audit.record(
            token=self.caller.name if self.caller else None,
            route=f"{self.command} {route_name(path)}",
            status=self.status,
            accounts=accounts,
            results=results,
            client=self.client_address[0],
        )

    @property
    def reader(self) -> MailReader:
        """The service's reader, limited to the caller's accounts."""
        if self.caller is None:  # every route that reads mail asks the gate first
            raise Unauthorized("a valid access token is required (Authorization: Bearer TOKEN)")
        return self.server.reader.scoped(self.caller.allowed)

    def _api(self, path: str, query: str) -> Any:
        reader = self.reader
        if path == "/api/search":
            p = _params(query, SEARCH_PARAMS)
            if not p.get("q", "").strip():
                raise RequestError("q (the search text) is required")
            return reader.search_answer(
                p["q"],
                mode=p.get("mode") or "hybrid",
                account=p.get("account") or None,
                since=parse_day(p.get("since"), "since"),
                until=parse_day(p.get("until"), "until"),
                k=parse_k(p.get("k")),
                exclude_deleted=parse_flag(p.get("exclude_deleted"), "exclude_deleted"),
            )
        if match := _ITEM.match(path):
            account = _params(query, {"account"}).get("account") or None
            kind, item = match.group(1), unquote(match.group(2))
            return reader.email(item, account) if kind == "emails" else reader.thread(item, account)
        if extra := self._people_api(path, query):
            return extra
        _params(query, set())
        if path == "/api/accounts":
            return reader.accounts()
        if path == "/api/status":
            if self.caller and not self.caller.admin:
                raise Forbidden("the sync status needs an admin token (token add --admin)")
            return reader.sync_status()
        if path == "/api/health":
            return {"service": SERVICE_NAME, "data_dir": str(reader.settings.data_dir.resolve())}
        raise NotFoundError(f"no such API: {path}")

    def _people_api(self, path: str, query: str) -> dict[str, Any] | None:
        """/api/people/<address or name>?account= and /api/digest?account=&day=&since="""
        reader = self.reader
        if match := _PERSON.match(path):
            account = _params(query, {"account"}).get("account") or None
            return people.person(reader, unquote(match.group(1)), account)
        if path == "/api/digest":
            p = _params(query, {"account", "day", "since"})
            if not p.get("account"):
                raise RequestError("account is required")
            today = reader.settings.window.today()
            last = parse_day(p.get("day"), "day") or today
            return people.digest(
                reader, p["account"], parse_day(p.get("since"), "since") or last, last
            )
        return None

    def _static(self, name: str, content_type: str) -> None:
        body = resources.files("mail_pipeline.service").joinpath(name).read_bytes()
        self._send(HTTPStatus.OK, body, content_type)

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(
            status,
            json.dumps(payload, ensure_ascii=False).encode(),
            "application/json; charset=utf-8",
        )

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="mail-pipeline"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class SearchServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        reader: MailReader,
        gate: Gate | None = None,
        audit: AuditLog | None = None,
    ):
        self.reader = reader
        self.gate = gate or Gate(reader.settings.token_store())
        self.audit = audit or AuditLog(reader.settings.audit_path)
        self.mcp: mcp_http.McpEndpoint | None = None  # started once the port is bound
        self.embed = EmbedEndpoint(reader.settings)
        self.index = IndexEndpoint(self.embed)
        if ":" in address[0]:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, SearchHandler)
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.mcp = mcp_http.McpEndpoint(reader, self.audit, (host, port))

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that went away before its answer (a closed tab, a new search typed over an
        old one) is no error of the service's: one debug line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s went away: %s", client_address[0], type(error).__name__)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def server_close(self) -> None:
        super().server_close()  # also called by __init__ when the port cannot be bound
        if self.mcp is not None:
            self.mcp.close()
        self.audit.close()
