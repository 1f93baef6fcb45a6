"""The account registry as one JSON file in the data directory (the default: nothing to install),
mode 0600, written atomically, its previous version kept beside it (`accounts.json.bak`) on every
write. Writers take a file lock, which serialises processes of one host only: a deployment whose
workers share no disk keeps the registry in PostgreSQL instead (accounts_postgres.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mail_pipeline.storage.accounts_model import (
    Account,
    RegistryCorruptError,
    account_from_json,
    account_to_json,
)
from mail_pipeline.storage.locks import file_lock
from mail_pipeline.storage.permissions import write_private


class AccountFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    def load(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        try:
            return parse(self.path.read_bytes())
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise RegistryCorruptError(self._corrupt_message(error)) from None

    def _corrupt_message(self, error: Exception) -> str:
        reason = f"{type(error).__name__}: {str(error)[:200]}"
        message = f"the account registry {self.path} cannot be read ({reason})"
        try:
            accounts = parse(self.backup_path.read_bytes())
        except OSError:
            return (
                f"{message}, and there is no backup ({self.backup_path}); move it aside and add the accounts "
                "again with `mail-pipeline account add`"
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return f"{message}, and its backup {self.backup_path} cannot be read either; add the accounts again"
        return (
            f"{message}. Its previous version {self.backup_path} holds {len(accounts)} account(s) "
            f"({', '.join(sorted(accounts)) or 'none'}); restore it with: cp -p {self.backup_path} {self.path}"
        )

    @contextmanager
    def editing(self) -> Iterator[dict[str, Account]]:
        """The accounts, to change in place; written back when the block ends without an exception.
        Read-modify-write of the whole file: a refresh in one process must not undo an add in another."""
        with file_lock(self.path.parent / "locks" / "accounts.lock", exclusive=True):
            accounts = self.load()
            yield accounts
            self._save(accounts)

    @contextmanager
    def grant_lock(self, slug: str) -> Iterator[None]:
        with file_lock(self.path.parent / "locks" / f"{slug}.grant.lock", exclusive=True):
            yield

    def _save(self, accounts: dict[str, Account]) -> None:
        """Keep the current file as the backup, then replace it; both written atomically, 0600."""
        payload = {
            "version": 1,
            "accounts": [account_to_json(accounts[slug]) for slug in sorted(accounts)],
        }
        if self.path.exists():
            write_private(self.backup_path, self.path.read_bytes())
        write_private(self.path, json.dumps(payload, indent=2).encode())


def parse(content: bytes) -> dict[str, Account]:
    """The accounts of a registry file's bytes; raises ValueError/TypeError/KeyError when malformed."""
    data = json.loads(content.decode("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("accounts", []), list):
        raise ValueError("not a registry: expected an object with a list of accounts")
    return {item["slug"]: account_from_json(item) for item in data.get("accounts", [])}
