"""Access tokens for the search service: one JSON file in the data directory, mode 0600, or a
table in PostgreSQL beside the account registry when MAIL_PIPELINE_DATABASE_URL is set (a
service on any host then sees the same tokens).

A token is shown once, when made; only its SHA-256 is kept. The tokens are random 256-bit strings
(`secrets.token_urlsafe`), so a fast hash is enough (nothing to guess from a dictionary), and a
lookup compares every stored hash with `hmac.compare_digest`: the time taken says nothing about
how close a wrong token came. The tokens live wherever the account registry does, rather than
in the Dagster instance database: `serve` needs no Dagster instance, and the registry's habits
(atomic writes, one writer at a time, private mode) already hold for both stores.
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
from mail_pipeline.storage.postgres import RecordTable

TABLE = "mail_pipeline_tokens"
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


def open_tokens(path: Path, database_url: str = "") -> TokenStore:
    """The tokens of this deployment: in PostgreSQL when `database_url` is set, else the file."""
    return TokenStore(path, RecordTable(database_url, TABLE) if database_url else None)


class TokenStore:
    def __init__(self, path: Path, table: RecordTable | None = None):
        self.path, self.table = Path(path), table

    @property
    def where(self) -> str:
        return self.table.where if self.table else f"token file {self.path}"

    def load(self) -> dict[str, Token]:
        if self.table is not None:
            return self._parse(self.table.load())
        if not self.path.exists():
            return {}
        try:
            records = {item["name"]: item for item in json.loads(self.path.read_bytes())["tokens"]}
        except (ValueError, TypeError, KeyError) as error:
            raise self._unreadable(error) from None
        return self._parse(records)

    def _parse(self, records: dict[str, dict[str, Any]]) -> dict[str, Token]:
        try:
            return {
                name: Token(**{**item, "accounts": tuple(item["accounts"])})
                for name, item in records.items()
            }
        except (ValueError, TypeError, KeyError) as error:
            raise self._unreadable(error) from None

    def _unreadable(self, error: Exception) -> TokenError:
        return TokenError(
            f"the {self.where} cannot be read ({type(error).__name__}); move it "
            "aside and make the tokens again with `mail-pipeline token add`"
        )

    def any(self) -> bool:
        """Whether any token is defined (`serve` beyond loopback needs one)."""
        return bool(self.load())

    def in_force(self) -> bool:
        """Whether the service needs a token: once a token was made, revoking the last one
        locks the service rather than opening it; removing the file (dropping the table) opens
        it again."""
        return self.table.exists() if self.table is not None else self.path.exists()

    @property
    def reopen(self) -> str:
        """What opens the service again once tokens were made (see `in_force`)."""
        return f"drop the table {TABLE}" if self.table is not None else f"remove {self.path}"

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
        with self._editing() as tokens:
            if name in tokens:
                raise TokenError(f"a token named {name!r} exists; revoke it first or pick another")
            tokens[name] = token
        return token, secret

    def revoke(self, name: str) -> None:
        with self._editing() as tokens:
            if name not in tokens:
                raise TokenError(f"no token named {name!r}; `mail-pipeline token list` shows them")
            del tokens[name]

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
        with self._editing() as tokens:
            if token.name in tokens:  # not revoked meanwhile
                tokens[token.name] = replace(tokens[token.name], last_used=now.isoformat())

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Token]]:
        """The tokens, to change in place, stored when the block ends without an exception; one
        writer at a time (a file lock, or the table's writers' lock)."""
        if self.table is not None:
            with self.table.editing() as records:
                tokens = self._parse(records)
                yield tokens
                records.clear()
                records.update({name: asdict(token) for name, token in tokens.items()})
            return
        with file_lock(self.path.parent / "locks" / "tokens.lock", exclusive=True):
            tokens = self.load()
            yield tokens
            self._save(tokens)

    def _save(self, tokens: dict[str, Token]) -> None:
        payload: dict[str, Any] = {
            "version": 1,
            "tokens": [asdict(t) for t in sorted(tokens.values(), key=lambda t: t.name)],
        }
        write_private(self.path, json.dumps(payload, indent=2).encode())
