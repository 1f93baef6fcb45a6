"""The search service over HTTP: a JSON API and the search page, from one warm process.

The standard library's threading server is enough for one person's searches on loopback; every
route is a read, and bad input gets a 400 with `{"error": "..."}` naming what is wrong.
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

from mail_pipeline.indexing.remote import PATH as EMBED_PATH
from mail_pipeline.service import people
from mail_pipeline.service.client import SERVICE_NAME
from mail_pipeline.service.embed_endpoint import MAX_BODY_BYTES, EmbedEndpoint
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
CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"
SEARCH_PARAMS = {"q", "mode", "account", "since", "until", "k", "exclude_deleted"}
FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}
_ITEM = re.compile(r"^/api/(emails|threads)/([^/]+)$")
_PERSON = re.compile(r"^/api/people/([^/]+)$")


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

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path in STATIC:
                self._static(*STATIC[url.path])
            elif url.path.startswith("/api/"):
                self._json(HTTPStatus.OK, self._api(url.path, url.query))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})
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

    def do_POST(self) -> None:
        """The one POST: a run's chunks embedded by the warm model (embed_endpoint.py)."""
        length = self.headers.get("Content-Length") or ""
        if urlsplit(self.path).path != EMBED_PATH:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})
        elif not length.isdigit() or not 0 < int(length) <= MAX_BODY_BYTES:
            self._json(
                HTTPStatus.BAD_REQUEST, {"error": "a JSON body of at most 8 MiB is expected"}
            )
        else:
            body = self.rfile.read(int(length))
            try:
                self._json(*self.server.embed.answer(self.client_address[0], body))
            except Exception as error:
                log.exception("request %s failed", EMBED_PATH)
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"error": f"internal error ({type(error).__name__}); see the service's log"},
                )

    def _api(self, path: str, query: str) -> Any:
        reader = self.server.reader
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
            return reader.sync_status()
        if path == "/api/health":
            return {"service": SERVICE_NAME, "data_dir": str(reader.settings.data_dir.resolve())}
        raise NotFoundError(f"no such API: {path}")

    def _people_api(self, path: str, query: str) -> dict[str, Any] | None:
        """/api/people/<address or name>?account= and /api/digest?account=&day=&since="""
        reader = self.server.reader
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

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
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

    def __init__(self, address: tuple[str, int], reader: MailReader):
        self.reader = reader
        self.embed = EmbedEndpoint(reader.settings)
        if ":" in address[0]:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, SearchHandler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that went away before its answer (a closed tab, a new search typed over an
        old one) is no error of the service's: one debug line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s went away: %s", client_address[0], type(error).__name__)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]
