"""The account registry in PostgreSQL (MAIL_PIPELINE_DATABASE_URL): what every worker reads when
steps run on hosts that share no disk. One row per account, holding the same object as the file
(`account_to_json`): secrets only as Fernet tokens, so the table, its backups and the database's
own logs hold no plaintext password or refresh token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from mail_pipeline.storage.accounts_model import (
    Account,
    RegistryCorruptError,
    account_from_json,
    account_to_json,
)
from mail_pipeline.storage.postgres import RecordTable

TABLE = "mail_pipeline_accounts"


class AccountTable:
    def __init__(self, url: str):
        self.records = RecordTable(url, TABLE)

    @property
    def where(self) -> str:
        return self.records.where

    def load(self) -> dict[str, Account]:
        return self._parse(self.records.load())

    def _parse(self, rows: dict[str, dict[str, Any]]) -> dict[str, Account]:
        accounts = {}
        for slug, row in rows.items():
            try:
                accounts[slug] = account_from_json(row)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                raise RegistryCorruptError(
                    f"account {slug!r} in the {self.where} cannot be read "
                    f"({type(error).__name__}: {str(error)[:200]}); remove it with "
                    f"`mail-pipeline account remove {slug}` and add it again"
                ) from None
        return accounts

    @contextmanager
    def editing(self) -> Iterator[dict[str, Account]]:
        """The accounts, to change in place; stored in one transaction when the block ends
        without an exception (postgres.py says how concurrent writers are kept apart)."""
        with self.records.editing() as rows:
            accounts = self._parse(rows)
            yield accounts
            rows.clear()
            rows.update({slug: account_to_json(account) for slug, account in accounts.items()})

    def grant_lock(self, slug: str) -> AbstractContextManager[None]:
        return self.records.held(f"grant/{slug}")
