"""One resource per external system, configured from the settings object. Secrets enter only here, through EnvVar."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext

from mail_pipeline.auth.tokens import credential_for
from mail_pipeline.defs.run_launcher import hold_run_liveness
from mail_pipeline.digest.build import Digest
from mail_pipeline.imap.connection import config_for
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.settings import Settings
from mail_pipeline.stages.ingest import FetchLimits
from mail_pipeline.storage import catalog, crypto, objects
from mail_pipeline.storage.accounts import Account, AccountRegistry, open_registry
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.locks import file_lock, vectors_lock
from mail_pipeline.storage.postgres import VARIABLE as DATABASE_VARIABLE
from mail_pipeline.window import Window

if TYPE_CHECKING:  # imported where used: the model and LanceDB load slowly
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from mail_pipeline.extract.pool import ExtractionPool
    from mail_pipeline.indexing.cache import DocumentEncoder
    from mail_pipeline.indexing.embedder import Embedder
    from mail_pipeline.indexing.remote import ServiceIndexer
    from mail_pipeline.storage.vectors import VectorStore


class LakeResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """The Parquet lake and its DuckDB catalog of views, and the retention window it keeps."""

    data_dir: str
    # s3://bucket/prefix (no secret: credentials come from the AWS_* variables); "": data_dir
    storage_url: str = ""
    retention_days: int = 30
    pinned_today: str | None = None  # YYYY-MM-DD: tests and reproducible demos pin the clock
    # False when steps run on Celery workers: the run's own process holds it (defs/executors.py).
    holds_run_liveness: bool = True

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Every stage uses the lake: its setup marks the run worker alive for run monitoring,
        # until the worker exits (defs/run_launcher.py says why there is no teardown).
        if context.run_id and self.holds_run_liveness:
            hold_run_liveness(Path(self.data_dir), context.run_id)

    @property
    def lake(self) -> Lake:
        return Lake(objects.storage_root(self.storage_url, self.data_dir) / "lake")

    @property
    def window(self) -> Window:
        return Window(
            self.retention_days,
            date.fromisoformat(self.pinned_today) if self.pinned_today else None,
        )

    @property
    def warehouse_path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    def ensure_catalog(self) -> bool:
        return catalog.ensure_catalog(self.warehouse_path, self.lake)

    def account_lock(self, account: str) -> AbstractContextManager[None]:
        """Serializes one account's writes across runs: a sensor run and a backfill run of the same
        account may be in flight together (single-run backfills carry no per-account tag)."""
        if objects.is_remote_url(self.storage_url):
            # Workers on other hosts share the lake but not this lock: what keeps one account's
            # runs apart there is dagster.yaml's tag_concurrency_limits, held in the instance's
            # database, on the account tags of the sensor's, `backfill`'s and single-partition
            # runs (a UI range backfill has none: docs/deployment.md says to use `backfill`).
            return nullcontext()
        return file_lock(Path(self.data_dir) / "locks" / f"{account}.lock", exclusive=True)


class ImapResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """IMAP access to the registry's accounts; passwords and OAuth grants decrypted only to sign in."""

    data_dir: str
    fernet_key: str
    database_url: str = ""  # EnvVar(MAIL_PIPELINE_DATABASE_URL) when set: the registry's PostgreSQL
    imap_connect_timeout_s: float = 15
    imap_read_timeout_s: float = 60
    imap_retry_s: float = 60
    imap_batch_messages: int = 200
    imap_batch_bytes: int = 32 * 1024 * 1024
    imap_connections: int = 4
    imap_pipeline_depth: int = 2
    folder_discovery_interval_s: int = 600
    flag_reconcile_interval_s: int = 3600

    @property
    def registry(self) -> AccountRegistry:
        return open_registry(self.data_dir, self.database_url)

    @property
    def limits(self) -> FetchLimits:
        return FetchLimits(
            self.imap_batch_messages,
            self.imap_batch_bytes,
            self.imap_connections,
            self.imap_pipeline_depth,
        )

    def account(self, slug: str) -> Account:
        return self.registry.get(slug)

    def active_accounts(self) -> list[Account]:
        return self.registry.list(active_only=True)

    @contextmanager
    def session(
        self,
        account: Account,
        on_fetch: Callable[[int], None] | None = None,
        retry_s: float | None = None,
    ) -> Iterator[ImapSession]:
        """A logged-in session; `retry_s` overrides how long transient failures are retried."""
        cipher = crypto.load_cipher(self.fernet_key)
        credential = credential_for(account, self.registry, cipher)
        config = config_for(account, self)
        if retry_s is not None:
            config = dataclasses.replace(config, retry_s=retry_s)
        with ImapSession(config, credential, on_fetch=on_fetch) as session:
            yield session


class VectorsResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """The LanceDB store of chunk vectors (full-text index included)."""

    data_dir: str
    storage_url: str = ""  # as LakeResource's

    @property
    def uri(self) -> str:
        return str(objects.storage_root(self.storage_url, self.data_dir) / "lancedb")

    def store(self) -> VectorStore:
        from mail_pipeline.storage.vectors import VectorStore

        return VectorStore(self.uri)

    @contextmanager
    def writing(self) -> Iterator[VectorStore]:
        with vectors_lock(Path(self.data_dir), self.storage_url, exclusive=False):
            yield self.store()

    @contextmanager
    def maintaining(self) -> Iterator[VectorStore]:
        with vectors_lock(Path(self.data_dir), self.storage_url, exclusive=True):
            yield self.store()


class AttachmentsResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """Attachment text extraction: the limits each file is read under, and the worker processes."""

    max_bytes: int
    max_pages: int
    max_chars: int
    max_email_chars: int
    timeout_s: float
    memory_mb: int
    workers: int

    @contextmanager
    def pool(self) -> Iterator[ExtractionPool]:
        """Worker processes for one run, started when the first readable attachment comes."""
        from mail_pipeline.extract.kinds import ExtractLimits
        from mail_pipeline.extract.pool import ExtractionPool

        limits = ExtractLimits(
            max_bytes=self.max_bytes,
            max_pages=self.max_pages,
            max_chars=self.max_chars,
            max_email_chars=self.max_email_chars,
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
        )
        with ExtractionPool(limits, self.workers) as pool:
            yield pool


class EmbedderResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """The embedding model (torch or OpenVINO runtime); it is chosen and loads on first use, in the run process."""

    model: str
    batch_size: int = 64
    precision: str = "auto"
    backend: str = "auto"
    cache_dir: str | None = None
    # The search service of this data directory, which embeds a run's chunks with its warm model.
    service_url: str | None = None
    data_dir: str | None = None

    def embedder(self) -> Embedder:
        from mail_pipeline.indexing.embedder import shared_embedder

        return shared_embedder(*self._config())

    def _config(self) -> tuple[str, str, int, str, str | None]:
        return self.model, self.precision, self.batch_size, self.backend, self.cache_dir

    def document_encoder(self) -> DocumentEncoder:
        """The service's warm model where it answers, else this process's (`embedder()`)."""
        if not (self.service_url and self.data_dir):
            return self.embedder()
        from mail_pipeline.indexing.remote import ServiceEmbedder

        return ServiceEmbedder(self.service_url, self.data_dir, self._config(), self.embedder)

    def service_indexer(self, vectors: VectorsResource) -> ServiceIndexer | None:
        """The search service, which writes a run's partitions into `vectors` where it answers."""
        if not (self.service_url and self.data_dir):
            return None
        from mail_pipeline.indexing.remote import ServiceIndexer

        return ServiceIndexer(self.service_url, self.data_dir, vectors.uri, self._config())


class DigestResource(ConfigurableResource):  # type: ignore[type-arg]  # documented bare form
    """What digests link to (the search page) and their SMTP delivery, per the account's settings."""

    data_dir: str
    fernet_key: str
    base_url: str
    database_url: str = ""  # as ImapResource's

    def deliver(self, account: Account, built: Digest) -> list[str]:
        """Send the digest to the account's digest recipients, if it names any; who got it."""
        from mail_pipeline.digest import delivery, render

        settings = account.digest
        if settings is None:
            return []
        registry = open_registry(self.data_dir, self.database_url)
        password = registry.smtp_password(account, crypto.load_cipher(self.fernet_key))
        smtp = delivery.SmtpSettings(
            settings.host,
            settings.port,
            settings.security,
            settings.username,
            settings.sender,
            settings.recipients,
            settings.ca_file,
            password,
        )
        message = delivery.digest_message(
            smtp,
            render.title(built),
            render.markdown(built, self.base_url),
            render.html_page(built, self.base_url),
        )
        delivery.send(smtp, message)
        return list(settings.recipients)


def build_resources(settings: Settings) -> dict[str, ConfigurableResource[Any]]:
    data_dir = str(settings.data_dir.resolve())
    # The URL may hold a password: bound by name, so run config and the UI never show it.
    database_url = EnvVar(DATABASE_VARIABLE) if settings.database_url.get_secret_value() else ""
    return {
        "lake": LakeResource(
            data_dir=data_dir,
            storage_url=settings.storage_url,
            retention_days=settings.retention_days,
            pinned_today=settings.today.isoformat() if settings.today else None,
            holds_run_liveness=settings.executor == "in_process",
        ),
        "imap": ImapResource(
            data_dir=data_dir,
            fernet_key=EnvVar(crypto.KEY_VARIABLE),
            database_url=database_url,
            imap_connect_timeout_s=settings.imap_connect_timeout_s,
            imap_read_timeout_s=settings.imap_read_timeout_s,
            imap_retry_s=settings.imap_retry_s,
            imap_batch_messages=settings.imap_batch_messages,
            imap_batch_bytes=settings.imap_batch_bytes,
            imap_connections=settings.imap_connections,
            imap_pipeline_depth=settings.imap_pipeline_depth,
            folder_discovery_interval_s=settings.folder_discovery_interval_s,
            flag_reconcile_interval_s=settings.flag_reconcile_interval_s,
        ),
        "vectors": VectorsResource(data_dir=data_dir, storage_url=settings.storage_url),
        "digest": DigestResource(
            data_dir=data_dir,
            fernet_key=EnvVar(crypto.KEY_VARIABLE),
            base_url=f"http://127.0.0.1:{settings.search_port}",
            database_url=database_url,
        ),
        "attachments": AttachmentsResource(
            max_bytes=settings.attachment_max_bytes,
            max_pages=settings.attachment_max_pages,
            max_chars=settings.attachment_max_chars,
            max_email_chars=settings.attachment_max_chars_per_email,
            timeout_s=settings.attachment_timeout_s,
            memory_mb=settings.attachment_memory_mb,
            workers=settings.attachment_workers,
        ),
        "embedder": EmbedderResource(
            model=settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            precision=settings.embedding_precision,
            backend=settings.embedding_backend,
            cache_dir=settings.embedder_config[4],
            service_url=f"http://127.0.0.1:{settings.search_port}",
            data_dir=data_dir,
        ),
    }
