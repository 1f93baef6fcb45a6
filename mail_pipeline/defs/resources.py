"""One resource per external system. Secrets enter only here, through EnvVar."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, EnvVar

from mail_pipeline import logs
from mail_pipeline.mail.imap import ImapSession, config_for
from mail_pipeline.settings import Settings, get_settings
from mail_pipeline.storage import catalog, crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.storage.lake import Lake


class LakeResource(ConfigurableResource):
    """The Parquet lake and its DuckDB catalog of views."""

    data_dir: str

    @property
    def lake(self) -> Lake:
        return Lake(Path(self.data_dir) / "lake")

    @property
    def warehouse_path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    def ensure_catalog(self) -> bool:
        return catalog.ensure_catalog(self.warehouse_path, self.lake)


class ImapResource(ConfigurableResource):
    """IMAP access to the registry's accounts; passwords decrypted only to log in."""

    data_dir: str
    fernet_key: str

    def settings(self) -> Settings:
        return get_settings()

    @property
    def registry(self) -> AccountRegistry:
        return AccountRegistry(Path(self.data_dir) / "accounts.json")

    def account(self, slug: str) -> Account:
        return self.registry.get(slug)

    def active_accounts(self) -> list[Account]:
        return self.registry.list(active_only=True)

    @contextmanager
    def session(self, account: Account, on_fetch=None):
        cipher = crypto.load_cipher(self.fernet_key)
        password = self.registry.password(account, cipher)
        logs.register_secret(password)
        with ImapSession(config_for(account, self.settings()), password, on_fetch=on_fetch) as session:
            yield session


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    data_dir = str(settings.data_dir.resolve())
    resources: dict[str, ConfigurableResource] = {
        "lake": LakeResource(data_dir=data_dir),
        "imap": ImapResource(data_dir=data_dir, fernet_key=EnvVar(crypto.KEY_VARIABLE)),
    }
    return resources
