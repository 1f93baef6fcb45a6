"""Fixtures: real Dovecot and PostgreSQL (see servers.py), a temporary data directory, a key.

When CI=true a server that cannot start fails the run; elsewhere the tests that need it skip
with the reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mail_pipeline.storage import crypto
from mail_pipeline_tests.servers import Dovecot, Postgres, Redis, SeaweedFS, ServerUnavailable
from mail_pipeline_tests.token_server import TokenServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _server_root(prefix: str) -> Path:
    # World-traversable: Dovecot's imap processes run as nobody and PostgreSQL as postgres,
    # and pytest's own tmp dirs are 0700 root.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"required server could not start under CI: {reason}")
    pytest.skip(reason)


def _start(server_factory):
    try:
        return server_factory().start()
    except ServerUnavailable as error:
        _unavailable(str(error))


CHECKOUT = Path(__file__).resolve().parents[1]
CHECKOUT_OWN = (".env", "data")  # the developer's key and mail: never the tests' to read or write


def _fingerprint(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


@pytest.fixture(scope="session", autouse=True)
def checkout_left_alone() -> Iterator[None]:
    """Fails the session if any test replaced, changed or created the checkout's .env or data/."""
    before = {name: _fingerprint(CHECKOUT / name) for name in CHECKOUT_OWN}
    yield
    after = {name: _fingerprint(CHECKOUT / name) for name in CHECKOUT_OWN}
    assert after == before, (
        f"the tests changed the checkout's own files: {[n for n in before if before[n] != after[n]]}"
    )


@pytest.fixture(autouse=True)
def working_directory_outside_the_checkout(tmp_path_factory, monkeypatch) -> None:
    """Every test starts in an empty directory: settings read `.env` and the default `data/` from
    the working directory, which must never be the checkout's."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def process_umask():
    """cli.main sets umask 077 for the process (as it should for the CLI); the next test's servers
    write files their own users (nobody, postgres) must read, so each test starts from the umask before."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture(autouse=True)
def root_logger_as_before():
    """cli.main points the root logger at the stderr of the moment, which is a test's capture that
    pytest closes after it; a later test's thread that logs (the MCP endpoint's event loop) would
    then print "--- Logging error ---". Each test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)


@pytest.fixture
def database_url(postgres, monkeypatch) -> str:
    """A database of its own on the session's PostgreSQL, named by MAIL_PIPELINE_DATABASE_URL."""
    name = postgres.create_database("mp_registry")
    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"
    monkeypatch.setenv("MAIL_PIPELINE_DATABASE_URL", url)
    return url


@pytest.fixture(scope="session")
def dovecot_session() -> Iterator[Dovecot]:
    root = _server_root("mp-dovecot-")
    server = _start(lambda: Dovecot(root))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(tmp_path_factory) -> Iterator[Dovecot]:
    """A fresh Dovecot per test: tests mutate mailboxes and restart servers."""
    root = _server_root("mp-dovecot-")
    server = _start(lambda: Dovecot(root))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    root = _server_root("mp-postgres-")
    server = _start(lambda: Postgres(root))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    root = _server_root("mp-seaweedfs-")
    server = _start(lambda: SeaweedFS(root))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A fresh Redis broker per test (it starts in well under a second): no queued task of one
    test reaches another's workers."""
    root = _server_root("mp-redis-")
    server = _start(lambda: Redis(root))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_storage(seaweedfs, monkeypatch) -> str:
    """MAIL_PIPELINE_STORAGE_URL at a fresh prefix of the SeaweedFS bucket, and the AWS variables
    a client needs (the only credentials the pipeline is given)."""
    url = f"s3://{seaweedfs.bucket}/{uuid.uuid4().hex}"
    for name, value in seaweedfs.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAIL_PIPELINE_STORAGE_URL", url)
    return url


@pytest.fixture
def fernet_key(monkeypatch) -> str:
    key = crypto.generate_key()
    monkeypatch.setenv(crypto.KEY_VARIABLE, key)
    return key


@pytest.fixture
def data_dir(tmp_path, monkeypatch, fernet_key) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("MAIL_PIPELINE_DATA_DIR", str(path))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo root
    return path


@pytest.fixture
def alice(dovecot, data_dir):
    """Alice's Dovecot mailbox registered as account 'alice' (TLS with the fixture's CA)."""
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    return register_alice(dovecot, data_dir)


def register_alice(dovecot, data_dir: Path):
    """Alice's INBOX and Archive as account 'alice' in `data_dir`'s registry, over TLS with the
    fixture's CA (the folders must exist on the server before a run, not before this)."""
    return register_user(dovecot, data_dir / "accounts.json", folders=("INBOX", "Archive"))


def register_user(dovecot, accounts_path: Path, user: str = "alice", **fields):
    """The Dovecot user `user` as the account of the same name in the registry at
    `accounts_path`, over TLS with the fixture's CA, signing in with the user's password;
    `fields` override the account's (folders, on_server_delete, ...)."""
    from mail_pipeline.storage.accounts import Account, AccountRegistry

    account = Account(
        slug=user,
        email=f"{user}@example.test",
        host="127.0.0.1",
        port=dovecot.tls_port,
        username=user,
        password_token="",
        ca_file=dovecot.ca_file,
    )
    return AccountRegistry(accounts_path).add(
        replace(account, **fields), dovecot.users[user], crypto.load_cipher()
    )


@pytest.fixture
def instance():
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A local OAuth provider (token_server.py); tests change its settings before use."""
    server = TokenServer().start()
    yield server
    server.stop()


@pytest.fixture
def oauth_dovecot(token_server) -> Iterator[Dovecot]:
    """A fresh Dovecot whose oauth2 passdb introspects tokens at `token_server`."""
    root = _server_root("mp-dovecot-")
    server = _start(lambda: Dovecot(root, oauth_url=token_server.url))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def proxy(dovecot):
    """imap_proxy.ImapProxy in front of the fresh Dovecot's plain-text port, with no rewrites yet."""
    from mail_pipeline_tests.imap_proxy import ImapProxy

    proxy = ImapProxy(dovecot.port).start()
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_alice(dovecot, proxy, data_dir):
    """Alice's INBOX and Archive registered as account 'alice', reached through `proxy`."""
    from mail_pipeline_tests.proxied_mailbox import register

    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    return register(dovecot, proxy, data_dir)


@pytest.fixture(scope="session")
def indexed_demo(tmp_path_factory) -> Path:
    """A data directory holding the demo mailbox (3 days, plus one hostile message), indexed by
    materializing the real asset graph; built once, then only read."""
    from mail_pipeline_tests import indexed_demo as demo

    root = tmp_path_factory.mktemp("indexed-demo")
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # no stray .env from the repo root
        patch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
        patch.setenv("MAIL_PIPELINE_DATA_DIR", str(data_dir))
        patch.setenv("MAIL_PIPELINE_TODAY", demo.TODAY)
        demo.build(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def known_mail_built(tmp_path_factory):
    """The known mailbox (known_mailbox.py), built once; modules use a copy (`known_mail`)."""
    from mail_pipeline_tests.known_mailbox import make_known_mail

    return make_known_mail(tmp_path_factory.mktemp("known-mail"))


@pytest.fixture(scope="module")
def known_mail(known_mail_built, tmp_path_factory):
    """This module's own copy of the known mailbox: it may write to it or serve it."""
    from mail_pipeline_tests.known_mailbox import copy_known_mail

    return copy_known_mail(known_mail_built, tmp_path_factory.mktemp("known-mail-copy"))


@pytest.fixture(scope="session")
def two_accounts(indexed_demo, known_mail_built, tmp_path_factory) -> Path:
    """The indexed demo (account `demo`) and the known mailbox (account `alice`) in one data
    directory (two_accounts.py); built once, then only copied."""
    from mail_pipeline_tests.two_accounts import merge

    target = tmp_path_factory.mktemp("two-accounts") / "data"
    return merge(indexed_demo, known_mail_built.data_dir, target)


@pytest.fixture(scope="session")
def search_service(indexed_demo, tmp_path_factory) -> Iterator[str]:
    """`mail-pipeline serve` over the indexed demo; its base URL."""
    from mail_pipeline_tests.indexed_demo import search_service as serve

    with serve(indexed_demo, cwd=tmp_path_factory.mktemp("serve")) as url:
        yield url
