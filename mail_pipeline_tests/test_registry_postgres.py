"""The account registry and the access tokens in PostgreSQL (MAIL_PIPELINE_DATABASE_URL), against
the harness's real server: the commands, concurrent writers, ciphertext only, and a sync by a
process that has nothing on its disk but the variables."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date
from pathlib import Path

import psycopg2
import pytest

from mail_pipeline.access.tokens import open_tokens
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import AccountError, open_registry
from mail_pipeline.storage.accounts_postgres import TABLE
from mail_pipeline.storage.postgres import DatabaseError
from mail_pipeline_tests.servers import free_port
from mail_pipeline_tests.test_cli_accounts import run_cli

pytestmark = pytest.mark.integration
HIDDEN = "pw-never-shown-42"


def rows(url: str, table: str = TABLE) -> dict[str, dict]:
    with closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT name, record FROM {table}")
        return dict(cursor.fetchall())


def add_args(dovecot, slug: str, user: str = "alice") -> list[str]:
    return [
        "account",
        "add",
        slug,
        "--email",
        f"{user}@example.test",
        "--username",
        user,
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.tls_port),
        "--ca-file",
        dovecot.ca_file,
        "--password-stdin",
    ]


def test_account_commands_keep_the_registry_in_postgres_and_only_ciphertext(
    dovecot, data_dir, database_url, capsys, monkeypatch
):
    password = dovecot.users["alice"]
    code, out = run_cli(capsys, monkeypatch, *add_args(dovecot, "alice"), stdin=password + "\n")
    assert code == 0, out
    code, out = run_cli(capsys, monkeypatch, *add_args(dovecot, "work"), stdin=password + "\n")
    assert code == 0, out

    assert not (data_dir / "accounts.json").exists()
    stored = rows(database_url)
    assert sorted(stored) == ["alice", "work"]
    assert stored["alice"]["username"] == "alice" and stored["alice"]["password_token"]
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT record::text FROM {TABLE}")
        text = " ".join(row[0] for row in cursor.fetchall())
    assert password not in text

    code, out = run_cli(capsys, monkeypatch, "account", "list")
    assert code == 0 and "alice" in out and "work" in out and password not in out
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 0 and "OK: logged in" in out, out

    code, out = run_cli(capsys, monkeypatch, "account", "remove", "work")
    assert code == 0, out
    assert sorted(rows(database_url)) == ["alice"]
    code, out = run_cli(capsys, monkeypatch, "account", "remove", "work")
    assert code == 2 and "no account 'work'" in out


def test_key_rotate_re_encrypts_every_secret_in_the_table(
    dovecot, data_dir, database_url, fernet_key, capsys, monkeypatch
):
    password = dovecot.users["alice"]
    assert run_cli(capsys, monkeypatch, *add_args(dovecot, "alice"), stdin=password + "\n")[0] == 0
    before = rows(database_url)["alice"]["password_token"]
    new_key = crypto.generate_key()
    monkeypatch.setenv(crypto.KEY_VARIABLE, f"{new_key},{fernet_key}")
    code, out = run_cli(capsys, monkeypatch, "key", "rotate")
    assert code == 0 and "1 account(s)" in out, out
    after = rows(database_url)["alice"]["password_token"]
    assert after != before
    # the new key alone now decrypts it: the old one can go
    registry = open_registry(data_dir, database_url)
    assert registry.password(registry.get("alice"), crypto.load_cipher(new_key)) == password
    monkeypatch.setenv(crypto.KEY_VARIABLE, new_key)
    assert run_cli(capsys, monkeypatch, "account", "test", "alice")[0] == 0


def test_account_import_moves_a_registry_file_into_postgres_secrets_still_encrypted(
    data_dir, database_url, fernet_key, capsys, monkeypatch
):
    from mail_pipeline.storage.accounts import AccountRegistry
    from mail_pipeline_tests.test_accounts import account

    old = data_dir / "old" / "accounts.json"
    file_registry = AccountRegistry(old)
    cipher = crypto.load_cipher(fernet_key)
    file_registry.add(account(slug="first"), "pw-first", cipher)
    file_registry.add(account(slug="second"), "pw-second", cipher)

    monkeypatch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())  # a key that opens neither
    code, out = run_cli(capsys, monkeypatch, "account", "import", str(old))
    assert code == 2 and "account 'first'" in out, out
    assert "no accounts" in run_cli(capsys, monkeypatch, "account", "list")[1]  # none stored
    monkeypatch.setenv(crypto.KEY_VARIABLE, fernet_key)

    code, out = run_cli(capsys, monkeypatch, "account", "import", str(old))
    assert code == 0 and "imported 2 account(s) (first, second)" in out, out
    stored = rows(database_url)
    assert {slug: row["password_token"] for slug, row in stored.items()} == {
        a.slug: a.password_token for a in file_registry.list()
    }
    registry = open_registry(data_dir, database_url)
    assert registry.password(registry.get("second"), cipher) == "pw-second"
    code, out = run_cli(capsys, monkeypatch, "account", "import", str(old))
    assert code == 2 and "account 'first' already exists" in out
    code, out = run_cli(capsys, monkeypatch, "account", "import", str(data_dir / "none.json"))
    assert code == 2 and "nothing to import" in out


def test_a_failed_write_leaves_the_table_as_it_was(data_dir, database_url):
    from mail_pipeline_tests.test_accounts import account

    registry = open_registry(data_dir, database_url)
    cipher = crypto.load_cipher(crypto.generate_key())
    registry.add(account(slug="first"), "pw-first", cipher)
    before = rows(database_url)
    with pytest.raises(AccountError, match="already exists"):
        registry.add_many([account(slug="second"), account(slug="first")], "pw", cipher)
    with pytest.raises(AccountError, match="invalid port"):
        registry.update("first", port=0)
    assert rows(database_url) == before


def test_concurrent_adds_from_separate_processes_all_land(data_dir, database_url, fernet_key):
    # Each process reads the registry, adds one account and writes back: without one writer at
    # a time, a later write would drop an earlier one's account.
    script = """
import sys
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, open_registry
slug, url = sys.argv[1], sys.argv[2]
account = Account(slug=slug, email=slug + "@example.test", host="imap.example.test", port=993,
                  username=slug, password_token="")
open_registry("unused", url).add(account, "secret-" + slug, crypto.load_cipher())
"""
    slugs = [f"acct{i}" for i in range(8)]
    processes = [
        subprocess.Popen([sys.executable, "-c", script, slug, database_url]) for slug in slugs
    ]
    assert [p.wait(timeout=120) for p in processes] == [0] * len(slugs)
    registry = open_registry(data_dir, database_url)
    assert sorted(registry.load()) == slugs
    cipher = crypto.load_cipher(fernet_key)
    assert {registry.password(a, cipher) for a in registry.list()} == {f"secret-{s}" for s in slugs}


def test_a_writer_waits_for_the_one_in_flight_and_then_sees_its_account(data_dir, database_url):
    # The same slug from two hosts at once: the second must see the first's account and refuse,
    # not overwrite it (without one writer at a time both would read a registry without it).
    from mail_pipeline_tests.test_accounts import account

    cipher = crypto.load_cipher(crypto.generate_key())
    first, second = open_registry(data_dir, database_url), open_registry(data_dir, database_url)
    first.add(account(slug="existing"), "pw", cipher)  # the table exists before the race
    outcome: list[str] = []
    finished = threading.Event()

    def add_second() -> None:
        try:
            second.add(account(slug="same"), "second-pw", cipher)
            outcome.append("added")
        except AccountError as error:
            outcome.append(str(error))
        finished.set()

    with first.store.editing() as accounts:
        accounts["same"] = replace(
            account(slug="same"), password_token=crypto.encrypt(cipher, "first-pw")
        )
        thread = threading.Thread(target=add_second)
        thread.start()
        assert not finished.wait(1.0)  # blocked while the first write is in flight
    thread.join(timeout=30)
    assert outcome == ["account 'same' already exists; remove it first or pick another slug"]
    assert first.password(first.get("same"), cipher) == "first-pw"


def test_reads_survive_the_server_dropping_their_kept_connections(data_dir, database_url):
    # Reads reuse idle connections (a search request, a sensor tick); a server restart or an
    # idle timeout ends them, and the next read must open a new one rather than fail.
    from mail_pipeline_tests.test_accounts import account

    registry = open_registry(data_dir, database_url)
    registry.add(account(slug="first"), "pw", crypto.load_cipher(crypto.generate_key()))
    assert list(registry.load()) == ["first"]  # leaves an idle connection behind
    with closing(psycopg2.connect(database_url)) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'mail_pipeline' AND datname = current_database()"
        )
        assert cursor.fetchone()[0] >= 1
    assert list(registry.load()) == ["first"]


def test_a_grant_lock_keeps_a_second_holder_out_until_released(data_dir, database_url):
    registry = open_registry(data_dir, database_url)
    other = open_registry(data_dir, database_url)
    entered = threading.Event()
    order: list[str] = []

    def second() -> None:
        with other.grant_lock("alice"):
            order.append("second")
            entered.set()

    with registry.grant_lock("alice"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(1.0)  # blocked while the first holds it
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]
    with registry.grant_lock("bob"), other.grant_lock("carol"):
        pass  # other slugs are not held


def test_tokens_live_in_postgres_and_revoking_the_last_keeps_the_service_locked(
    data_dir, database_url, capsys, monkeypatch
):
    store = open_tokens(data_dir / "tokens.json", database_url)
    assert not store.in_force()
    code, out = run_cli(capsys, monkeypatch, "token", "add", "robot", "--all")
    assert code == 0, out
    secret = out.splitlines()[0].strip()
    assert not (data_dir / "tokens.json").exists()
    stored = rows(database_url, "mail_pipeline_tokens")
    assert list(stored) == ["robot"] and secret not in json.dumps(stored)
    found = store.verify(secret)
    assert found is not None and found.name == "robot"
    assert run_cli(capsys, monkeypatch, "token", "revoke", "robot")[0] == 0
    assert store.verify(secret) is None and store.in_force()
    code, out = run_cli(capsys, monkeypatch, "token", "list")
    assert code == 0 and "drop the table mail_pipeline_tokens" in out, out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter22@db/x", "is not a PostgreSQL URL"),
        ("postgresql://postgres:hunter22@127.0.0.1:{port}/postgres", "cannot be reached"),
    ],
)
def test_a_bad_database_url_is_a_clear_error_without_its_password(
    data_dir, capsys, monkeypatch, url, expected
):
    monkeypatch.setenv("MAIL_PIPELINE_DATABASE_URL", url.format(port=free_port()))
    code, out = run_cli(capsys, monkeypatch, "account", "list")
    assert code == 2 and expected in out, out
    assert "hunter22" not in out
    with pytest.raises(DatabaseError) as caught:
        open_registry(data_dir, url.format(port=free_port())).load()
    assert "hunter22" not in str(caught.value)


def server_digests(dovecot, day: date) -> set[str]:
    """The sha256 of every message the server holds that arrived on `day` (UTC)."""
    server = dovecot.client()
    server.normalise_times = False
    found = set()
    for folder in ("INBOX", "Archive"):
        server.select_folder(folder, readonly=True)
        for item in server.fetch(server.search("ALL"), ["BODY.PEEK[]", "INTERNALDATE"]).values():
            if item[b"INTERNALDATE"].astimezone(UTC).date() == day:
                found.add(hashlib.sha256(item[b"BODY[]"]).hexdigest())
    server.logout()
    assert found
    return found


def test_a_process_with_an_empty_disk_syncs_an_account_read_from_postgres(
    dovecot, database_url, fernet_key, seaweedfs, s3_storage, tmp_path, capsys, monkeypatch
):
    """What a worker on another host has: the variables, and nothing in its working directory,
    HOME or data directory (no accounts.json); the lake goes to S3."""
    from mail_pipeline.storage.lake import Lake
    from mail_pipeline_tests.test_pipeline_e2e import DAYS, seed

    (tmp_path / "admin").mkdir()
    monkeypatch.chdir(tmp_path / "admin")
    monkeypatch.setenv("MAIL_PIPELINE_DATA_DIR", str(tmp_path / "admin" / "data"))
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    seed(dovecot)
    args = [*add_args(dovecot, "alice"), "--folder", "INBOX", "--folder", "Archive"]
    code, out = run_cli(capsys, monkeypatch, *args, stdin=dovecot.users["alice"] + "\n")
    assert code == 0, out

    worker = tmp_path / "worker"
    home, data = worker / "home", worker / "data"
    home.mkdir(parents=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "MAIL_PIPELINE_TODAY": "2026-11-20",
        "MAIL_PIPELINE_DATA_DIR": str(data),
        # the harness's server trusts every local sign-in: this password is only there to be hidden
        "MAIL_PIPELINE_DATABASE_URL": database_url.replace("postgres@", f"postgres:{HIDDEN}@"),
        "MAIL_PIPELINE_STORAGE_URL": s3_storage,
        crypto.KEY_VARIABLE: fernet_key,
        **seaweedfs.environment(),
    }
    script = f"""
from datetime import date
from dagster import DagsterInstance, materialize
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.graph import raw_messages

with DagsterInstance.ephemeral() as instance:
    instance.add_dynamic_partitions("accounts", ["alice"])
    resources = build_resources(get_settings())
    # what the UI shows of the resources' configuration: the variable's name, not its value
    assert "{HIDDEN}" not in repr(resources), "the database password is in the resources' config"
    result = materialize([raw_messages], partition_key=partition_key("alice", date.fromisoformat("{DAYS[1]}")),
                         resources=resources, instance=instance)
    assert result.success
    seen = repr(result.dagster_run.run_config) + "".join(map(repr, instance.all_logs(result.run_id)))
    assert "{HIDDEN}" not in seen, "the database password reached the run's records"
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=worker,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert HIDDEN not in done.stdout + done.stderr
    stored = Lake(f"{s3_storage}/lake").read_partition("raw_messages", "alice", DAYS[1], ["sha256"])
    assert set(stored["sha256"].to_pylist()) == server_digests(dovecot, DAYS[1])
    # the worker's disk got no registry, and none of the lake
    assert not [p for p in worker.rglob("*") if p.name in ("accounts.json", "tokens.json")]
    assert not list(worker.rglob("*.parquet"))
    # nor the account's file lock: on shared storage Dagster's run limits keep its runs apart
    assert not (data / "locks" / "alice.lock").exists()
