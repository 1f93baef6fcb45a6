"""`mail-pipeline doctor` and `status` against a real Dovecot."""

from __future__ import annotations

from datetime import UTC

import pytest

from mail_pipeline import cli
from mail_pipeline.cli.doctor import (
    check_accounts,
    check_data_dir,
    check_instance,
    check_key,
    diagnose,
)
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline_tests.servers import free_port

pytestmark = pytest.mark.integration
FAST = [check_key, check_accounts, check_data_dir, check_instance]


def register(data_dir, dovecot, slug, *, password=None, host="127.0.0.1", port=None):
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug=slug,
            email=f"{slug}@example.test",
            host=host,
            port=port or dovecot.tls_port,
            username="alice",
            password_token="",
            ca_file=dovecot.ca_file,
        ),
        password or dovecot.users["alice"],
        crypto.load_cipher(),
    )


def by_check(findings):
    return {f.check: f for f in findings}


def test_each_problem_is_its_own_fail(dovecot, data_dir, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_CONNECT_TIMEOUT", "3")
    register(data_dir, dovecot, "good")
    register(data_dir, dovecot, "wrongpw", password="not-the-password")
    register(data_dir, dovecot, "unreachable", port=free_port())
    register(data_dir, dovecot, "nodns", host="no-such-host.invalid")
    found = by_check(diagnose(get_settings(), FAST))
    assert found["key"].ok and found["data directory"].ok
    assert found["account good"].ok
    assert not found["account wrongpw"].ok and "auth" in found["account wrongpw"].detail
    assert not found["account unreachable"].ok and "refused" in found["account unreachable"].detail
    assert not found["account nodns"].ok and "dns" in found["account nodns"].detail
    assert "not-the-password" not in str(found)


def test_bad_key_is_a_fail_naming_the_variable(dovecot, data_dir, monkeypatch, capsys):
    register(data_dir, dovecot, "good")
    monkeypatch.setenv(crypto.KEY_VARIABLE, "garbage")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  key" in out and "FERNET_KEY" in out and "hint:" in out
    # valid, but not the one that encrypted
    monkeypatch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
    found = by_check(diagnose(get_settings(), FAST))
    assert not found["key"].ok and "good" in found["key"].detail


def test_doctor_all_ok_including_the_model(dovecot, data_dir, capsys):
    register(data_dir, dovecot, "good")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "OK    embedding model" in out


def test_status_after_a_sync(dovecot, alice, data_dir, instance, monkeypatch, capsys):
    from datetime import datetime

    from dagster import materialize

    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline_tests.graph import raw_messages
    from mail_pipeline_tests.mailgen import message

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    when = datetime(2026, 11, 19, 9, tzinfo=UTC)
    dovecot.append([("INBOX", message("st1", when), when), ("INBOX", message("st2", when), when)])
    instance.add_dynamic_partitions("accounts", ["alice"])
    assert cli.main(["status"]) == 0
    assert "nothing synced yet" in capsys.readouterr().out
    materialize(
        [raw_messages],
        partition_key=partition_key("alice", when.date()),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    assert cli.main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    inbox = next(line for line in lines if " INBOX " in line)
    assert inbox.split()[0] == "alice" and "ok" in inbox and "2 stored" in inbox


def test_doctor_warns_about_data_others_can_read(data_dir, capsys):
    from mail_pipeline.cli.doctor import check_permissions
    from mail_pipeline.storage.lake import Lake

    Lake(data_dir / "lake").ensure_placeholders()
    [finding] = diagnose(get_settings(), [check_permissions])
    assert finding.ok, finding.detail
    loose = next((data_dir / "lake" / "emails").rglob("*.parquet"))
    loose.chmod(0o644)
    (data_dir / "lake").chmod(0o755)
    [finding] = diagnose(get_settings(), [check_permissions])
    assert not finding.ok and finding.warning
    assert (
        "2 path(s)" in finding.detail and str(loose) in finding.detail and "0644" in finding.detail
    )
    assert finding.hint == f"chmod -R go= {data_dir}"
    import subprocess

    subprocess.run(finding.hint.split(), check=True)  # the hint, as written, fixes it
    assert diagnose(get_settings(), [check_permissions])[0].ok


def test_a_pipeline_run_leaves_only_private_files(dovecot, alice, data_dir, instance, monkeypatch):
    """The registry, lake, catalog, LanceDB and locks, written by a real run of every stage."""
    import os
    from datetime import datetime

    from dagster import materialize

    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.storage.permissions import loose_paths, restrict_umask
    from mail_pipeline_tests.graph import email_chunks, email_embeddings, emails, raw_messages
    from mail_pipeline_tests.mailgen import message

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    when = datetime(2026, 11, 19, 9, tzinfo=UTC)
    dovecot.append([("INBOX", message("p1", when), when)])
    instance.add_dynamic_partitions("accounts", ["alice"])
    previous = os.umask(0o022)
    restrict_umask()  # as cli.main and definitions.py do in every pipeline process
    try:
        result = materialize(
            [raw_messages, emails, email_chunks, email_embeddings],
            instance=instance,
            partition_key=partition_key("alice", when.date()),
            resources=build_resources(get_settings()),
        )
    finally:
        os.umask(previous)
    assert result.success
    for part in ("accounts.json", "lake", "warehouse.duckdb", "lancedb", "locks"):
        assert (data_dir / part).exists(), part
    assert list(loose_paths(data_dir)) == []


def test_status_lists_only_registered_accounts(dovecot, alice, data_dir, capsys):
    from datetime import date

    import pyarrow as pa

    from mail_pipeline.storage.accounts import AccountRegistry
    from mail_pipeline.storage.lake import Lake
    from mail_pipeline.storage.schemas import SYNC_LOG
    from mail_pipeline.storage.sync_log import failure_row

    lake = Lake(data_dir / "lake")
    for account in ("alice", "gone"):
        row = {
            **failure_row("run1", date(2026, 11, 19), "raw_messages", OSError("x")),
            "folder": "INBOX",
            "status": "ok",
        }
        lake.append(
            "sync_log", account, date(2026, 11, 19), pa.Table.from_pylist([row], schema=SYNC_LOG)
        )
    assert cli.main(["status"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["alice"]
    AccountRegistry(data_dir / "accounts.json").remove("alice")
    assert cli.main(["status"]) == 0
    assert "alice" not in capsys.readouterr().out
