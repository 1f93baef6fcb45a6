"""Account registry and keys: unit tests, no servers."""

from __future__ import annotations

import stat

import pytest

from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountError, AccountRegistry

SECRET = "pa55-w0rd-that-must-not-leak"


def account(**overrides) -> Account:
    values = {
        "slug": "work",
        "email": "me@example.com",
        "host": "imap.example.com",
        "port": 993,
        "username": "me",
        "password_token": "",
    }
    values.update(overrides)
    return Account(**values)


def test_registry_stores_only_a_token_with_mode_0600(tmp_path):
    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(), SECRET, cipher)
    raw = (tmp_path / "accounts.json").read_bytes()
    assert SECRET.encode() not in raw
    assert stat.S_IMODE((tmp_path / "accounts.json").stat().st_mode) == 0o600
    assert registry.password(registry.get("work"), cipher) == SECRET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slug": "Work"}, "invalid slug"),
        ({"slug": "me@example.com"}, "invalid slug"),
        ({"slug": "a" * 65}, "invalid slug"),
        ({"port": 0}, "invalid port"),
        ({"port": 70000}, "invalid port"),
        ({"security": "plain"}, r"plain \(unencrypted\) IMAP is refused"),
        ({"security": "ssl3"}, "invalid security"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ],
)
def test_invalid_input_is_refused_and_registry_unchanged(tmp_path, overrides, message):
    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(slug="first"), SECRET, cipher)
    before = (tmp_path / "accounts.json").read_bytes()
    with pytest.raises(AccountError, match=message):
        registry.add(account(**overrides), SECRET, cipher)
    assert (tmp_path / "accounts.json").read_bytes() == before


def test_plain_is_allowed_on_loopback(tmp_path):
    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(host="127.0.0.1", security="plain"), SECRET, cipher)
    registry.add(account(slug="other", host="localhost", security="plain"), SECRET, cipher)
    assert [a.slug for a in registry.list()] == ["other", "work"]


def test_duplicate_slug_is_refused(tmp_path):
    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(), SECRET, cipher)
    with pytest.raises(AccountError, match="already exists"):
        registry.add(account(email="other@example.com"), SECRET, cipher)


def test_rotation_to_a_new_first_key(tmp_path):
    old, new = crypto.generate_key(), crypto.generate_key()
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(), SECRET, crypto.load_cipher(old))
    assert registry.rotate(crypto.load_cipher(f"{new},{old}")) == 1
    assert registry.password(registry.get("work"), crypto.load_cipher(new)) == SECRET
    # A registry written before rotation is readable only with the old key.
    registry.add(account(slug="late"), SECRET, crypto.load_cipher(old))
    with pytest.raises(crypto.DecryptError, match="'late'"):
        registry.password(registry.get("late"), crypto.load_cipher(new))


@pytest.mark.parametrize("value", ["", " , ", "not-a-key", "abc," + "x" * 44])
def test_missing_or_malformed_key_names_the_variable_and_the_command(value):
    with pytest.raises(crypto.KeyConfigError) as caught:
        crypto.load_cipher(value)
    message = str(caught.value)
    assert "FERNET_KEY" in message and "mail-pipeline key generate" in message
    assert "not-a-key" not in message and "x" * 44 not in message
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_wrong_key_names_the_account(tmp_path):
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(slug="acme"), SECRET, crypto.load_cipher(crypto.generate_key()))
    with pytest.raises(crypto.DecryptError, match="account 'acme'") as caught:
        registry.password(registry.get("acme"), crypto.load_cipher(crypto.generate_key()))
    assert SECRET not in str(caught.value)


def test_every_write_keeps_the_previous_version_as_a_0600_backup(tmp_path):
    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(slug="first"), SECRET, cipher)
    assert not registry.store.backup_path.exists()  # nothing came before the first write
    first = registry.store.path.read_bytes()
    registry.add(account(slug="second"), SECRET, cipher)
    assert registry.store.backup_path.read_bytes() == first
    assert stat.S_IMODE(registry.store.backup_path.stat().st_mode) == 0o600
    second = registry.store.path.read_bytes()
    registry.remove("first")
    assert registry.store.backup_path.read_bytes() == second
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "accounts.json",
        "accounts.json.bak",
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated mid-write by a full disk or a crash
        lambda raw: b"",
        lambda raw: b"\x00" * len(raw),
        lambda raw: b'{"accounts": {"slug": "x"}}',
        lambda raw: b'{"accounts": [{"slug": "x"}]}',
    ],
)
def test_a_corrupt_registry_names_itself_and_the_backup_and_restores(tmp_path, damage):
    import shlex
    import subprocess

    cipher = crypto.load_cipher(crypto.generate_key())
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.add(account(slug="first"), SECRET, cipher)
    registry.add(account(slug="second"), SECRET, cipher)
    registry.store.path.write_bytes(damage(registry.store.path.read_bytes()))
    with pytest.raises(AccountError) as caught:
        registry.list()
    message = str(caught.value)
    assert str(registry.store.path) in message and str(registry.store.backup_path) in message
    assert "JSONDecodeError" not in type(caught.value).__name__ and "first" in message
    command = message.split("restore it with: ")[1]
    # the remedy the message gives works as written
    subprocess.run(shlex.split(command), check=True)
    assert list(registry.load()) == ["first"]
    assert registry.password(registry.get("first"), cipher) == SECRET


def test_a_corrupt_registry_without_backup_says_so(tmp_path):
    registry = AccountRegistry(tmp_path / "accounts.json")
    registry.store.path.write_text('{"version": 1, "accounts": [')
    with pytest.raises(
        AccountError, match=r"accounts\.json cannot be read .*no backup .*accounts\.json\.bak"
    ):
        registry.load()
