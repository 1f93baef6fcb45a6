"""The one settings object: every tunable, with its default, validated once from the environment.

`get_settings()` first loads `.env` from the working directory into the environment by the
project's one rule (envfile.py: the environment wins, an empty value counts as unset), so the
processes `mail-pipeline run` starts see the same values; then the fields are read and validated. Entry points (the CLI, the Dagster
definitions) call it once and hand the object, or its fields, down.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mail_pipeline import envfile
from mail_pipeline.storage import objects
from mail_pipeline.storage.objects import Location
from mail_pipeline.window import Window

if TYPE_CHECKING:  # imported where used: settings load before anything else
    from mail_pipeline.access.tokens import TokenStore
    from mail_pipeline.storage.accounts import AccountRegistry

PREFIX = "MAIL_PIPELINE_"


def _env(name: str) -> AliasChoices:
    # The variable's name, and the field's own name so code and tests can build Settings(field=...).
    return AliasChoices(PREFIX + name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    data_dir: Path = Field(Path("data"), validation_alias=_env("DATA_DIR"))
    # Where the lake and the vectors live: unset, under DATA_DIR as always; `s3://bucket/prefix`,
    # in object storage (credentials and endpoint from the standard AWS_* variables only).
    storage_url: str = Field("", validation_alias=_env("STORAGE_URL"))
    # postgresql://USER[:PASSWORD]@HOST[:PORT]/DB: the account registry and the access tokens in
    # this database (every worker reaches it), instead of files in DATA_DIR. Never logged.
    database_url: SecretStr = Field(SecretStr(""), validation_alias=_env("DATABASE_URL"))
    retention_days: int = Field(30, ge=1, validation_alias=_env("RETENTION_DAYS"))
    # Pins the pipeline's clock (YYYY-MM-DD), for tests and reproducible demos; unset: UTC today.
    today: date | None = Field(None, validation_alias=_env("TODAY"))
    imap_connect_timeout_s: float = Field(15, gt=0, validation_alias=_env("IMAP_CONNECT_TIMEOUT"))
    imap_read_timeout_s: float = Field(60, gt=0, validation_alias=_env("IMAP_READ_TIMEOUT"))
    # Transient IMAP failures (a server restart) are retried, reconnecting with backoff, this long.
    imap_retry_s: float = Field(60, ge=0, validation_alias=_env("IMAP_RETRY_SECONDS"))
    # FETCH batches are capped by count and bytes: 200 keeps latency and memory low at the measured
    # loopback rates (bench/RESULTS.md, fetch section).
    imap_batch_messages: int = Field(200, ge=1, validation_alias=_env("IMAP_BATCH_MESSAGES"))
    imap_batch_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, validation_alias=_env("IMAP_BATCH_BYTES")
    )
    # Connections per account per run: one plans, the others fetch bodies in parallel (1: the one
    # does everything). Servers cap it per account: Gmail at 15, many others lower.
    imap_connections: int = Field(4, ge=1, le=15, validation_alias=_env("IMAP_CONNECTIONS"))
    # FETCH commands a connection sends before reading the oldest answer: with a server a round
    # trip away, the link stays busy while the client reads (bench/RESULTS.md, fetch_wan section).
    imap_pipeline_depth: int = Field(2, ge=1, le=16, validation_alias=_env("IMAP_PIPELINE_DEPTH"))
    embedding_model: str = Field("all-MiniLM-L6-v2", validation_alias=_env("EMBEDDING_MODEL"))
    embedding_batch_size: int = Field(64, ge=1, validation_alias=_env("EMBEDDING_BATCH_SIZE"))
    # "auto": bf16 on CPUs with native bf16 (AMX/AVX512-BF16), else fp32 (indexing/embedder.py).
    embedding_precision: str = Field(
        "auto", pattern="^(auto|fp32|bf16)$", validation_alias=_env("EMBEDDING_PRECISION")
    )
    # "auto": the fastest runtime here that keeps torch fp32's vectors, measured once (indexing/backend.py).
    embedding_backend: str = Field(
        "auto", pattern="^(auto|torch|openvino)$", validation_alias=_env("EMBEDDING_BACKEND")
    )
    # Converted models and measured backend choices; unset: $XDG_CACHE_HOME/mail_pipeline.
    model_cache_dir: Path | None = Field(None, validation_alias=_env("MODEL_CACHE_DIR"))
    sensor_interval_s: int = Field(60, ge=1, validation_alias=_env("SENSOR_INTERVAL"))
    # The live-mail watcher (mail_pipeline/watch): IMAP IDLE on the synced folders wakes the sensor,
    # which then ticks every WATCH_SENSOR_INTERVAL seconds but polls an account only when woken or
    # SENSOR_INTERVAL has passed. false: no watcher, the sensor polls every SENSOR_INTERVAL as before.
    watch: bool = Field(True, validation_alias=_env("WATCH"))
    watch_sensor_interval_s: int = Field(2, ge=1, validation_alias=_env("WATCH_SENSOR_INTERVAL"))
    # IDLE connections per account (one per folder, INBOX first; the rest are polled): Gmail allows
    # 15 per account, many servers fewer, and each run needs MAIL_PIPELINE_IMAP_CONNECTIONS more.
    watch_connections: int = Field(8, ge=0, le=15, validation_alias=_env("WATCH_CONNECTIONS"))
    # The Dagster webserver the watcher requests today's run from when IDLE reports new mail
    # (watch/launch.py); `mail-pipeline run` sets it for its watcher. "": the wake-up alone.
    watch_run_url: str = Field("", validation_alias=_env("WATCH_RUN_URL"))
    # All-folders accounts: the sensor LISTs for new folders at most this often (0: every tick).
    folder_discovery_interval_s: int = Field(
        600, ge=0, validation_alias=_env("FOLDER_DISCOVERY_INTERVAL")
    )
    # Servers without CONDSTORE: the sensor compares every in-window message's flags at most this
    # often (one UID SEARCH and FLAGS in ranges per folder); expunges show in STATUS every tick.
    flag_reconcile_interval_s: int = Field(
        3600, ge=0, validation_alias=_env("FLAG_RECONCILE_INTERVAL")
    )
    log_format: str = Field("text", pattern="^(text|json)$", validation_alias=_env("LOG_FORMAT"))
    # debug: also the library noise left out otherwise (logs.py reads it from the environment too:
    # it runs before any settings exist, while the definitions are imported).
    log_level: str = Field("info", pattern="^(info|debug)$", validation_alias=_env("LOG_LEVEL"))
    max_concurrent_runs: int = Field(4, ge=1, validation_alias=_env("MAX_CONCURRENT_RUNS"))
    # How often the daemon checks that started runs still have a live worker: a run killed with
    # SIGKILL or with its host is marked failed within this (defs/run_launcher.py).
    run_monitoring_interval_s: int = Field(
        30, ge=1, validation_alias=_env("RUN_MONITORING_INTERVAL")
    )
    # Where a run's steps execute (defs/executors.py): "in_process", in the run's own process; "celery",
    # on the `mail-pipeline worker` processes listening to BROKER_URL (redis:// or amqp://).
    executor: str = Field(
        "in_process", pattern="^(in_process|celery)$", validation_alias=_env("EXECUTOR")
    )
    broker_url: SecretStr = Field(
        SecretStr(""), validate_default=True, validation_alias=_env("BROKER_URL")
    )
    # A step whose whole worker vanished (host lost) goes back on the queue after this long; it must
    # exceed the longest step, or a step still running would be started a second time elsewhere.
    celery_visibility_timeout_s: int = Field(
        3600, ge=60, validation_alias=_env("CELERY_VISIBILITY_TIMEOUT")
    )
    ui_port: int = Field(3000, ge=1, le=65535, validation_alias=_env("UI_PORT"))
    # The search service (`mail-pipeline serve`); `mail-pipeline search` asks it on this port.
    search_port: int = Field(8765, ge=1, le=65535, validation_alias=_env("SEARCH_PORT"))
    # Attachment text (mail_pipeline/extract): limits per file; a file that passes one is cut or
    # skipped with a defect on its email. About 100,000 characters make 100 chunks to embed.
    attachment_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1, validation_alias=_env("ATTACHMENT_MAX_BYTES")
    )
    attachment_max_pages: int = Field(100, ge=1, validation_alias=_env("ATTACHMENT_MAX_PAGES"))
    attachment_max_chars: int = Field(100_000, ge=1, validation_alias=_env("ATTACHMENT_MAX_CHARS"))
    attachment_max_chars_per_email: int = Field(
        500_000, ge=1, validation_alias=_env("ATTACHMENT_MAX_CHARS_PER_EMAIL")
    )
    attachment_timeout_s: float = Field(20, gt=0, validation_alias=_env("ATTACHMENT_TIMEOUT"))
    attachment_memory_mb: int = Field(1024, ge=256, validation_alias=_env("ATTACHMENT_MEMORY_MB"))
    attachment_workers: int = Field(1, ge=1, validation_alias=_env("ATTACHMENT_WORKERS"))
    # Your own OAuth clients for `account add --provider outlook|gmail` (auth/providers.py); read only
    # when signing an account in, which then stores the client secret encrypted with its grant.
    microsoft_client_id: str = Field("", validation_alias=_env("MICROSOFT_CLIENT_ID"))
    google_client_id: str = Field("", validation_alias=_env("GOOGLE_CLIENT_ID"))
    google_client_secret: SecretStr = Field(
        SecretStr(""), validation_alias=_env("GOOGLE_CLIENT_SECRET")
    )

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, url: str) -> str:
        return objects.check_url(url)

    @field_validator("broker_url")
    @classmethod
    def _broker_for_celery(cls, url: SecretStr, info: ValidationInfo) -> SecretStr:
        # A field validator (executor is validated before it): its error shows only this field's
        # value, which is empty here; a model validator's would show every raw value.
        if info.data.get("executor") == "celery" and not url.get_secret_value():
            raise ValueError(
                "MAIL_PIPELINE_EXECUTOR=celery needs MAIL_PIPELINE_BROKER_URL (redis://host:6379/0 or amqp://host)"
            )
        return url

    @property
    def embedder_config(self) -> tuple[Any, ...]:
        """`shared_embedder`'s arguments: one cached embedder per configuration."""
        cache_dir = str(self.model_cache_dir) if self.model_cache_dir else None
        return (
            self.embedding_model,
            self.embedding_precision,
            self.embedding_batch_size,
            self.embedding_backend,
            cache_dir,
        )

    @property
    def window(self) -> Window:
        return Window(self.retention_days, self.today)

    @property
    def storage_root(self) -> Location:
        """Where the lake and the vectors live, which every worker shares: STORAGE_URL, else DATA_DIR."""
        return objects.storage_root(self.storage_url, self.data_dir)

    @property
    def lake_dir(self) -> Location:
        return self.storage_root / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def lancedb_dir(self) -> Location:
        return self.storage_root / "lancedb"

    @property
    def accounts_path(self) -> Path:
        return self.data_dir / "accounts.json"

    def registry(self) -> AccountRegistry:
        """The account registry: in DATABASE_URL's PostgreSQL when set, else `accounts_path`."""
        from mail_pipeline.storage.accounts import open_registry

        return open_registry(self.data_dir, self.database_url.get_secret_value())

    def token_store(self) -> TokenStore:
        """The search service's access tokens: beside the registry, wherever it is."""
        from mail_pipeline.access.tokens import open_tokens

        return open_tokens(self.tokens_path, self.database_url.get_secret_value())

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"

    @property
    def tokens_path(self) -> Path:
        return self.data_dir / "tokens.json"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "logs" / "audit.jsonl"


def get_settings() -> Settings:
    """Settings from the current environment, `.env` filling in what it leaves unset or empty."""
    envfile.load(Path(".env"))
    return Settings()


def environment_variables() -> list[str]:
    """Every variable the settings read (the .env.example test checks each is documented)."""
    return sorted(variable(field) for field in Settings.model_fields)


def variable(field: str) -> str:
    """The environment variable of a settings field, for messages."""
    alias = Settings.model_fields[field].validation_alias
    # Every field is declared with _env(): its first choice is the documented variable.
    if not isinstance(alias, AliasChoices) or not isinstance(alias.choices[0], str):
        raise TypeError(f"settings field {field!r} is not declared with _env()")
    return alias.choices[0]
