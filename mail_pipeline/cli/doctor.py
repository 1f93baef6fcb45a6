"""`mail-pipeline doctor`: every dependency of a healthy pipeline, checked, with a hint per failure."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mail_pipeline.settings import Settings
from mail_pipeline.storage.permissions import private_dir


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    hint: str = ""
    warning: bool = False  # not ok, but the pipeline works: reported, and doctor still exits 0


def check_key(settings: Settings) -> Iterator[Finding]:
    from mail_pipeline.storage import crypto

    try:
        cipher = crypto.load_cipher()
    except crypto.KeyConfigError as error:
        yield Finding(
            "key", False, str(error), "run `mail-pipeline key generate` and set FERNET_KEY in .env"
        )
        return
    registry = settings.registry()
    bad = []
    for account in registry.list():
        try:
            registry.check_secret(account, cipher)
        except crypto.DecryptError:
            bad.append(account.slug)
    if bad:
        yield Finding(
            "key",
            False,
            f"cannot decrypt the password or OAuth grant of: {', '.join(bad)}",
            "add the key they were encrypted with to FERNET_KEY (after the first), then `key rotate`",
        )
    else:
        yield Finding(
            "key",
            True,
            f"{cipher.key_count} key(s); every stored password and OAuth grant decrypts",
        )


def check_accounts(settings: Settings) -> Iterator[Finding]:
    from mail_pipeline import imap
    from mail_pipeline.auth import oauth, tokens
    from mail_pipeline.imap import errors as imap_errors
    from mail_pipeline.storage import crypto

    registry = settings.registry()
    accounts = registry.list(active_only=True)
    if not accounts:
        yield Finding("accounts", True, "no active accounts (make run serves the demo mailbox)")
        return
    try:
        cipher = crypto.load_cipher()
    except crypto.KeyConfigError:
        return  # already reported by the key check
    hints = {
        "dns": "check --host",
        "refused": "check --port and that the server is up",
        "tls": "pass the server's CA with --ca-file",
        "timeout": "the server or network is slow or blocked",
        "oauth": "the provider's token endpoint is unreachable from here; check the network or proxy",
    }
    for account in accounts:
        name = f"account {account.slug}"
        try:
            credential = tokens.credential_for(account, registry, cipher)
            with imap.ImapSession(imap.config_for(account, settings), credential) as session:
                folders = imap.sync_folders(session.list_folders(), account.folders)
            yield Finding(
                name,
                True,
                f"logged in to {account.host} ({tokens.describe(credential)}); folders: {', '.join(folders)}",
            )
        except crypto.DecryptError:
            yield Finding(
                name, False, "password or OAuth grant cannot be decrypted", "see the key check"
            )
        except imap_errors.ImapError as error:
            grant = account.oauth.grant if account.oauth else ""
            hint = f"run `{oauth.reauth_command(account.slug, grant)}`" + (
                "" if account.is_oauth else " (check the username too)"
            )
            yield Finding(
                name,
                False,
                f"{account.auth} sign-in, {error.kind}: {error}",
                hint if error.kind == "auth" else hints.get(error.kind, ""),
            )


def check_data_dir(settings: Settings) -> Iterator[Finding]:
    path = settings.data_dir
    try:
        private_dir(path)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
        yield Finding("data directory", True, str(path.resolve()))
    except OSError as error:
        yield Finding(
            "data directory",
            False,
            f"{path}: {error.strerror}",
            "set MAIL_PIPELINE_DATA_DIR to a writable directory",
        )


def check_permissions(settings: Settings) -> Iterator[Finding]:
    from mail_pipeline.storage.permissions import loose_paths

    root = settings.data_dir
    loose = list(loose_paths(root))
    if not loose:
        yield Finding("data permissions", True, f"{root} is readable by its owner only")
        return
    shown = ", ".join(f"{path} ({mode:04o})" for path, mode in loose[:3])
    more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
    yield Finding(
        "data permissions",
        False,
        f"{len(loose)} path(s) under {root} readable by other users: {shown}{more}",
        f"chmod -R go= {root}",
        warning=True,
    )


def check_lake(settings: Settings) -> Iterator[Finding]:
    from mail_pipeline.storage import integrity
    from mail_pipeline.storage.lake import Lake, remedy

    damaged = integrity.scrub(Lake(settings.lake_dir))
    if not damaged:
        yield Finding(
            "lake files", True, f"every file under {settings.lake_dir} reads back as written"
        )
        return
    for item in damaged:
        yield Finding(
            f"lake {item.table}",
            False,
            f"{item.account} {item.day}: {item.path}: {item.error}",
            remedy(item.table),
        )


def check_instance(settings: Settings) -> Iterator[Finding]:
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME") or str((settings.data_dir / "dagster").resolve())
    if not (Path(home) / "dagster.yaml").exists():
        yield Finding(
            "instance storage", True, f"{home} not created yet (`mail-pipeline run` creates it)"
        )
        return
    try:
        with DagsterInstance.from_config(home) as instance:
            instance.get_runs(limit=1)
            kind = type(instance.run_storage).__name__
        yield Finding("instance storage", True, f"{kind} at {home}")
    except Exception as error:  # any storage error: unreachable Postgres, bad yaml, locked SQLite
        yield Finding(
            "instance storage",
            False,
            f"{type(error).__name__}: {str(error)[:200]}",
            "check dagster.yaml in DAGSTER_HOME and, for PostgreSQL, the DAGSTER_PG_* variables",
        )


def check_model(settings: Settings) -> Iterator[Finding]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from mail_pipeline.indexing.embedder import shared_embedder

        embedder = shared_embedder(*settings.embedder_config)
        vector = embedder.encode(["doctor check"])
        yield Finding(
            "embedding model",
            True,
            f"{embedder.model_id} loads offline ({vector.shape[1]} dims, {embedder.precision})",
        )
        choice = embedder.choice
        if choice is None:  # encode() chose one; None would be an embedder bug
            raise RuntimeError("the embedder ran without choosing a backend")
        yield Finding("embedding backend", True, choice.describe())
    except Exception as error:
        yield Finding(
            "embedding model",
            False,
            f"{type(error).__name__}: {str(error)[:200]}",
            "MAIL_PIPELINE_EMBEDDING_MODEL must be the offline default or a local path; "
            "MAIL_PIPELINE_EMBEDDING_BACKEND=openvino needs `pip install 'mail_pipeline[openvino]'`",
        )


CHECKS: list[Callable[[Settings], Iterator[Finding]]] = [
    check_key,
    check_accounts,
    check_data_dir,
    check_permissions,
    check_lake,
    check_instance,
    check_model,
]


def diagnose(
    settings: Settings, checks: Sequence[Callable[[Settings], Iterator[Finding]]] = CHECKS
) -> list[Finding]:
    return [finding for check in checks for finding in check(settings)]


def render(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = []
    for f in findings:
        lines.append(
            f"{'OK  ' if f.ok else 'WARN' if f.warning else 'FAIL'}  {f.check:<{width}}  {f.detail}"
        )
        if not f.ok and f.hint:
            lines.append(f"      {'':<{width}}  hint: {f.hint}")
    return "\n".join(lines)
