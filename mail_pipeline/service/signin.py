"""The page's sign-in: a form that trades an access token for an HttpOnly, SameSite=Strict
cookie (the page's script never sees it), and the sign-out that clears it."""

from __future__ import annotations

import html
from http import HTTPStatus
from importlib import resources

from mail_pipeline.access.gate import COOKIE, Gate

MAX_FORM_BYTES = 4096
WRONG_TOKEN = "That token is not valid (mistyped, or revoked)."
# (status, body, content type, extra headers): what SearchHandler._send takes.
Answer = tuple[HTTPStatus, bytes, str, dict[str, str]]


def form(status: HTTPStatus, message: str = "") -> Answer:
    page = resources.files("mail_pipeline.service").joinpath("signin.html").read_text()
    body = page.replace("{message}", html.escape(message)).encode()
    return status, body, "text/html; charset=utf-8", {}


def page_signed_in() -> bytes:
    """The search page with its Sign out button shown (hidden where no token is needed)."""
    page = resources.files("mail_pipeline.service").joinpath("page.html").read_bytes()
    return page.replace(b'<form id="signout" method="post" action="/signout" hidden>', SIGNOUT)


SIGNOUT = b'<form id="signout" method="post" action="/signout">'


def _cookie(value: str, max_age: int | None = None) -> str:
    age = "" if max_age is None else f"; Max-Age={max_age}"
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{age}"


def sign_in(fields: dict[str, str], gate: Gate, address: str) -> Answer:
    """To the page with the cookie set, or the form again saying the token is not valid."""
    secret = fields.get("token", "").strip()
    if not secret or gate.check(secret, address) is None:
        return form(HTTPStatus.UNAUTHORIZED, WRONG_TOKEN)
    return HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": _cookie(secret)}


def sign_out() -> Answer:
    return HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": _cookie("", 0)}
