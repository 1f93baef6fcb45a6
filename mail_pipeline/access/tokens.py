"""Access tokens for the search service: one JSON file in the data directory, mode 0600.

A token is shown once, when made; only its SHA-256 is kept. The tokens are random 256-bit strings
(`secrets.token_urlsafe`), so a fast hash is enough (nothing to guess from a dictionary), and a
lookup compares every stored hash with `hmac.compare_digest`: the time taken says nothing about
how close a wrong token came. The file lives beside the account registry rather than in the
Dagster instance database: `serve` needs no database, and the registry's habits (atomic writes, a
lock, private mode) already hold for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mail_pipeline.storage.locks import file_lock
from mail_pipeline.storage.permissions import write_private

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# `last_used` is written at most this often per token: a search must not rewrite the file.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """Invalid token input, or an unreadable token file; the file is left unchanged."""


@dataclass(frozen=True)
class Token:
    """A token's name and scope; `accounts` is empty when `all_accounts`."""

    name: str
    sha256: str
    accounts: tuple[str, ...] = ()
    all_accounts: bool = False
    admin: bool = False
    created_at: str = ""
    last_used: str = ""

    @property
    def allowed(self) -> frozenset[str] | None:
        """The account slugs this token opens; None for every account."""
        return None if self.all_accounts else frozenset(self.accounts)

    @property
    def scope(self) -> str:
        accounts = "all accounts" if self.all_accounts else ", ".join(self.accounts)
        return accounts + (" (admin)" if self.admin else "")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class TokenStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Token]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_bytes())
            return {
                item["name"]: Token(**{**item, "accounts": tuple(item["accounts"])})
                for item in data["tokens"]
            }
        except (ValueError, TypeError, KeyError) as error:
            raise TokenError(
                f"the token file {self.path} cannot be read ({type(error).__name__}); move it "
                "aside and make the tokens again with `mail-pipeline token add`"
            ) from None

    def any(self) -> bool:
        """Whether any token is defined (`serve` beyond loopback needs one)."""
        return bool(self.load())

    def in_force(self) -> bool:
        """Whether the service needs a token: once a token was made, revoking the last one
        locks the service rather than opening it; removing the file opens it again."""
        return self.path.exists()

    def add(
        self, name: str, accounts: list[str], *, all_accounts: bool, admin: bool
    ) -> tuple[Token, str]:
        """A new token and its secret (the only time the secret exists outside the caller)."""
        if not NAME_PATTERN.fullmatch(name):
            raise TokenError(
                f"token name {name!r}: use 1 to 64 letters, digits, '_', '-', '.' or '@'"
            )
        if all_accounts == bool(accounts):
            raise TokenError("give the token's accounts (--account SLUG, repeated) or --all")
        secret = secrets.token_urlsafe(32)
        token = Token(
            name=name,
            sha256=digest(secret),
            accounts=tuple(sorted(set(accounts))),
            all_accounts=all_accounts,
            admin=admin,
            created_at=_now().isoformat(),
        )
        with self._locked():
            tokens = self.load()
            if name in tokens:
                raise TokenError(f"a token named {name!r} exists; revoke it first or pick another")
            tokens[name] = token
            self._save(tokens)
        return token, secret

    def revoke(self, name: str) -> None:
        with self._locked():
            tokens = self.load()
            if name not in tokens:
                raise TokenError(f"no token named {name!r}; `mail-pipeline token list` shows them")
            del tokens[name]
            self._save(tokens)

    def verify(self, secret: str) -> Token | None:
        """The token whose hash matches `secret`, or None; read from the file on every call, so
        a revoked token is refused at once. Every stored hash is compared, in constant time."""
        offered = digest(secret)
        found = None
        for token in self.load().values():
            if hmac.compare_digest(offered, token.sha256):
                found = token
        if found is not None:
            self._touch(found)
        return found

    def _touch(self, token: Token) -> None:
        now = _now()
        if token.last_used and now - datetime.fromisoformat(token.last_used) < LAST_USED_EVERY:
            return
        with self._locked():
            tokens = self.load()
            if token.name in tokens:  # not revoked meanwhile
                tokens[token.name] = replace(tokens[token.name], last_used=now.isoformat())
                self._save(tokens)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.path.parent / "locks" / "tokens.lock", exclusive=True):
            yield

    def _save(self, tokens: dict[str, Token]) -> None:
        payload: dict[str, Any] = {
            "version": 1,
            "tokens": [asdict(t) for t in sorted(tokens.values(), key=lambda t: t.name)],
        }
        write_private(self.path, json.dumps(payload, indent=2).encode())
