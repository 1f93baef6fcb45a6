"""Named JSON records in one table of a PostgreSQL database (MAIL_PIPELINE_DATABASE_URL): the
account registry and the access tokens, when every worker must see them and no local file can
be shared.

Writers are serialised by a transaction-scoped advisory lock, the database's counterpart of the
file lock the local stores take: row locks cannot guard rows not yet inserted (two `account add`s
at once), and SERIALIZABLE would need a retry loop around every write. The lock lives in the
server, so it holds across hosts, and it is released when the transaction ends or its
connection drops (a killed worker holds nothing). Readers take no lock: each write is one
transaction, so a reader sees all of it or none.

The URL may carry a password: it is never logged nor put in a message (`shown` drops it).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mail_pipeline import logs

VARIABLE = "MAIL_PIPELINE_DATABASE_URL"
SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10


class DatabaseError(RuntimeError):
    """The database MAIL_PIPELINE_DATABASE_URL names cannot be used; says why, never its password."""


def dsn(url: str) -> str:
    """The libpq URI of `url`; a SQLAlchemy-style `postgresql+psycopg2://` is accepted as well,
    since Dagster's instance settings are often written that way."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in SCHEMES or (not parts.hostname and not parts.path.strip("/")):
        raise DatabaseError(
            "MAIL_PIPELINE_DATABASE_URL is not a PostgreSQL URL: expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            f" (scheme {parts.scheme!r})"
        )
    return urlunsplit(parts._replace(scheme="postgresql"))


def shown(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _reason(error: Exception) -> str:
    # libpq's first line says what went wrong (refused, no such database, authentication failed);
    # it holds the host and user, never the password.
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# Idle read connections of this process, by URL: a search request's thread borrows one and
# gives it back, so requests (one thread each) and sensor ticks reuse them. Per process: a
# forked child must not share its parent's sessions.
_idle: dict[tuple[int, str], list[Any]] = {}
_idle_lock = threading.Lock()
KEPT_IDLE = 4


def _borrow(dsn: str, connect: Callable[[], Any]) -> Any:
    with _idle_lock:
        idle = _idle.setdefault((os.getpid(), dsn), [])
        connection = idle.pop() if idle else None
    if connection is None or connection.closed:
        connection = connect()
        connection.autocommit = True
    return connection


def _close_idle(dsn: str) -> None:
    with _idle_lock:
        idle = _idle.pop((os.getpid(), dsn), [])
    for connection in idle:
        connection.close()


def _give_back(dsn: str, connection: Any) -> None:
    with _idle_lock:
        idle = _idle.setdefault((os.getpid(), dsn), [])
        if not connection.closed and len(idle) < KEPT_IDLE:
            idle.append(connection)
            return
    connection.close()


def _normal(record: dict[str, Any]) -> Any:
    # What the table gives back for it (tuples come back as lists): compared to skip unchanged rows.
    return json.loads(json.dumps(record))


class RecordTable:
    """Records by name in `table` (created on the first write): `load` reads them all, `editing`
    is a read-modify-write under the writers' lock, `held` a lock on one name across hosts."""

    def __init__(self, url: str, table: str):
        self.url, self.table = url, table
        self._dsn = dsn(url)
        logs.register_secret(urlsplit(url).password)

    @property
    def where(self) -> str:
        return f"table {self.table} of {shown(self.url)}"

    def _connect(self) -> Any:
        import psycopg2

        try:
            return psycopg2.connect(
                self._dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name="mail_pipeline"
            )
        except psycopg2.Error as error:
            raise DatabaseError(
                f"PostgreSQL at {shown(self.url)} cannot be reached ({_reason(error)}); "
                "check MAIL_PIPELINE_DATABASE_URL and that the server is up"
            ) from None

    @contextmanager
    def _connection(self, *, kept: bool = False) -> Iterator[Any]:
        """A connection of its own, closed after; `kept`: an idle one of this process, given back
        for the next read (a new one costs a server process and a sign-in per search request or
        sensor tick)."""
        import psycopg2

        connection = _borrow(self._dsn, self._connect) if kept else self._connect()
        try:
            yield connection
        except psycopg2.Error as error:
            connection.close()  # a session that failed is not lent again
            raise DatabaseError(
                f"PostgreSQL at {shown(self.url)} failed on {self.table} ({_reason(error)})"
            ) from None
        finally:
            if kept:
                _give_back(self._dsn, connection)
            else:
                connection.close()

    def load(self) -> dict[str, dict[str, Any]]:
        from psycopg2 import sql

        query = sql.SQL("SELECT name, record FROM {}").format(sql.Identifier(self.table))
        return dict(self._read(query, ()))

    def exists(self) -> bool:
        """Whether the table was ever written (made by the first write, kept when emptied)."""
        return bool(self._read("SELECT to_regclass(%s) IS NOT NULL", (self.table,))[0][0])

    def _read(self, query: Any, params: tuple[Any, ...]) -> list[Any]:
        """The rows of one read, on a kept connection (autocommit: no transaction stays open);
        none when the table was never made. A kept connection the server dropped while idle
        is replaced once: a read can be asked again."""
        import psycopg2
        import psycopg2.errors

        for attempt in (1, 2):
            with self._connection(kept=True) as connection:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(query, params)
                        return list(cursor.fetchall())
                except psycopg2.errors.UndefinedTable:
                    return []
                except (psycopg2.OperationalError, psycopg2.InterfaceError):
                    # dropped while idle (a server restart drops them all): none is lent again
                    connection.close()
                    _close_idle(self._dsn)
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")  # the loop returns or raises

    @contextmanager
    def editing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The records, to change in place; stored in one transaction when the block ends without
        an exception, left as they were otherwise."""
        from psycopg2 import sql

        table = sql.Identifier(self.table)
        # The connection as a context is a transaction: committed at the end, rolled back on error.
        with self._connection() as connection, connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), 0)", (self.table,))
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, "
                    "record jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
                ).format(table)
            )
            cursor.execute(sql.SQL("SELECT name, record FROM {}").format(table))
            before = dict(cursor.fetchall())
            records = dict(before)
            yield records
            _write_changes(cursor, table, before, records)

    @contextmanager
    def held(self, name: str) -> Iterator[None]:
        """One holder of `name` at a time, on any host (a refresh that rotates a refresh token)."""
        with self._connection() as connection:
            connection.autocommit = True
            key = (f"{self.table}/held", name)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", key)
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", key)


def _write_changes(
    cursor: Any, table: Any, before: dict[str, Any], after: dict[str, dict[str, Any]]
) -> None:
    """Delete the rows `after` lost, upsert the ones it changed; the others stay untouched."""
    from psycopg2 import sql
    from psycopg2.extras import Json

    gone = sorted(set(before) - set(after))
    if gone:
        cursor.execute(sql.SQL("DELETE FROM {} WHERE name = ANY(%s)").format(table), (gone,))
    upsert = sql.SQL(
        "INSERT INTO {} (name, record) VALUES (%s, %s) ON CONFLICT (name) "
        "DO UPDATE SET record = EXCLUDED.record, updated_at = now()"
    ).format(table)
    for name, record in after.items():
        if before.get(name) != _normal(record):
            cursor.execute(upsert, (name, Json(record)))
