"""`mail-pipeline key` and `account` commands against a real Dovecot."""

from __future__ import annotations

import io
import logging
import os

import pytest

from mail_pipeline import cli
from mail_pipeline.storage import crypto
from mail_pipeline_tests.servers import free_port

pytestmark = pytest.mark.integration


def run_cli(capsys, monkeypatch, *argv, stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def add_args(dovecot, slug="alice", **kw):
    args = [
        "account",
        "add",
        slug,
        "--email",
        "alice@example.test",
        "--username",
        kw.get("user", "alice"),
        "--host",
        kw.get("host", "127.0.0.1"),
        "--port",
        str(kw.get("port", dovecot.tls_port)),
        "--password-stdin",
    ]
    if kw.get("ca", True):
        args += ["--ca-file", dovecot.ca_file]
    return args


def test_add_then_test_over_tls(dovecot, data_dir, capsys, monkeypatch):
    code, out = run_cli(
        capsys, monkeypatch, *add_args(dovecot), stdin=dovecot.users["alice"] + "\n"
    )
    assert code == 0, out
    assert "added account 'alice'" in out
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 0, out
    assert "OK: logged in" in out and "INBOX" in out and "Trash" in out
    code, out = run_cli(capsys, monkeypatch, "account", "list")
    assert "alice" in out and dovecot.users["alice"] not in out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_password", "error (auth): login failed"),
        ("closed_port", "error (refused): connection refused"),
        ("untrusted_cert", "error (tls): TLS certificate"),
        ("unknown_folder", "unknown folder(s) 'Nope'"),
    ],
)
def test_each_failure_has_its_own_clear_error(
    dovecot, data_dir, capsys, monkeypatch, case, expected
):
    password = dovecot.users["alice"]
    args = add_args(dovecot)
    if case == "wrong_password":
        password = "definitely-wrong"
    elif case == "closed_port":
        args = add_args(dovecot, port=free_port())
    elif case == "untrusted_cert":
        args = add_args(dovecot, ca=False)
    elif case == "unknown_folder":
        args += ["--folder", "Nope"]
    code, out = run_cli(capsys, monkeypatch, *args, stdin=password + "\n")
    assert code != 0
    assert expected in out
    assert password not in out
    assert not (data_dir / "accounts.json").exists()


def test_no_secret_in_any_output_or_log(dovecot, data_dir, capsys, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    first_key = os.environ[crypto.KEY_VARIABLE]
    password = dovecot.users["alice"]
    outputs = []
    outputs.append(run_cli(capsys, monkeypatch, *add_args(dovecot), stdin=password + "\n")[1])
    outputs.append(run_cli(capsys, monkeypatch, "account", "test", "alice")[1])
    new_key = crypto.generate_key()
    monkeypatch.setenv(crypto.KEY_VARIABLE, f"{new_key},{first_key}")
    outputs.append(run_cli(capsys, monkeypatch, "key", "rotate")[1])
    monkeypatch.setenv(crypto.KEY_VARIABLE, new_key)
    code, out = run_cli(capsys, monkeypatch, "key", "check")
    assert code == 0, out
    outputs.append(out)
    outputs.append(run_cli(capsys, monkeypatch, "account", "test", "alice")[1])
    # The old key alone no longer decrypts the rotated password, and says which account.
    monkeypatch.setenv(crypto.KEY_VARIABLE, first_key)
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 2 and "account 'alice'" in out
    outputs.append(out)
    everything = "\n".join(outputs) + caplog.text + (data_dir / "accounts.json").read_text()
    for secret in (password, first_key, new_key):
        assert secret not in everything


def test_missing_key_error_from_the_cli(data_dir, capsys, monkeypatch):
    monkeypatch.delenv(crypto.KEY_VARIABLE)
    code, out = run_cli(capsys, monkeypatch, "key", "check")
    assert code == 2
    assert "FERNET_KEY is not set" in out and "mail-pipeline key generate" in out


def test_key_generate_prints_a_usable_key(capsys, monkeypatch):
    code, out = run_cli(capsys, monkeypatch, "key", "generate")
    assert code == 0
    crypto.load_cipher(out.strip())


def test_all_folders_password_env_and_remove(dovecot, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("HOME_IMAP_PASSWORD", dovecot.users["alice"])
    client = dovecot.client()
    client.create_folder("Projects/2026")
    client.logout()
    args = [
        "account",
        "add",
        "home",
        "--email",
        "alice@example.test",
        "--username",
        "alice",
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.tls_port),
        "--ca-file",
        dovecot.ca_file,
        "--all-folders",
        "--password-env",
        "HOME_IMAP_PASSWORD",
    ]
    code, out = run_cli(capsys, monkeypatch, *args)
    assert code == 0, out
    synced = out.split("will sync: ")[1].splitlines()[0].split(", ")
    assert sorted(synced) == [
        "INBOX",
        "Projects/2026",
    ]  # Trash, Junk and Drafts left out by SPECIAL-USE
    code, out = run_cli(capsys, monkeypatch, "account", "remove", "home")
    assert code == 0 and "removed account 'home'" in out
    code, out = run_cli(capsys, monkeypatch, "account", "list")
    assert "no accounts" in out
    code, out = run_cli(capsys, monkeypatch, "account", "remove", "home")
    assert code == 2 and "no account 'home'" in out


def test_on_server_delete_is_chosen_at_add_and_changed_later(
    dovecot, data_dir, capsys, monkeypatch
):
    from mail_pipeline.storage.accounts import AccountRegistry

    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(dovecot),
        "--on-server-delete",
        "mirror",
        stdin=dovecot.users["alice"] + "\n",
    )
    assert code == 0, out
    assert AccountRegistry(data_dir / "accounts.json").get("alice").on_server_delete == "mirror"
    code, out = run_cli(
        capsys, monkeypatch, "account", "set", "alice", "--on-server-delete", "keep"
    )
    assert code == 0 and "on-server-delete=keep" in out
    assert AccountRegistry(data_dir / "accounts.json").get("alice").on_server_delete == "keep"
    code, out = run_cli(capsys, monkeypatch, "account", "list")
    assert "on-server-delete=keep" in out
    with pytest.raises(SystemExit):  # argparse: an unknown policy is a usage error
        cli.main(["account", "set", "alice", "--on-server-delete", "purge"])
    code, out = run_cli(
        capsys, monkeypatch, "account", "set", "nobody", "--on-server-delete", "keep"
    )
    assert code == 2 and "no account 'nobody'" in out
