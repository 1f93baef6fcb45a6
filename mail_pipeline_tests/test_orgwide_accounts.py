"""Org-wide accounts end to end against a real Dovecot with its oauth2 passdb and the local token
server: a Google Workspace service account acting as each user (its JWT verified with the key's
PUBLIC half, audience, scope and subject), a Microsoft 365 application's client credentials,
`account add-many`, and clear failures (a wrong key, a user outside the delegation, a wrong
secret) with no key or secret in any output or stored file."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mail_pipeline.auth import service_account, tokens
from mail_pipeline.cli.doctor import diagnose
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import AccountRegistry
from mail_pipeline.storage.grants import JWT_BEARER, OAuthSettings
from mail_pipeline_tests.conftest import _server_root, _start
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import Dovecot
from mail_pipeline_tests.test_cli_accounts import run_cli
from mail_pipeline_tests.test_doctor import FAST, by_check
from mail_pipeline_tests.test_oauth_accounts import assert_no_token_in_clear, failure_text, sync

pytestmark = pytest.mark.integration

SERVICE_ACCOUNT = "mail-reader@acme-mail.iam.gserviceaccount.com"
GMAIL_SCOPE = "https://mail.google.com/"
APP_ID = "5f1c2e7a-app"
APP_SECRET = "app-client-secret-value-1234"
USERS = ("alice", "bob", "carol")


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    monkeypatch.setenv("APP_SECRET", APP_SECRET)
    monkeypatch.setenv("WRONG_SECRET", "not-the-app-secret-5678")


def at(hour: int) -> datetime:
    return datetime(2026, 11, 10, hour, tzinfo=UTC)


def key_pair() -> tuple[str, str]:
    """A new RSA key's private half (PKCS#8 PEM, as Google's key files hold it) and public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def key_file(directory: Path, private: str, token_url: str, name: str = "key.json") -> Path:
    """A service account JSON key file, laid out as Google's console downloads it."""
    path = directory / name
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-mail",
                "private_key_id": "4b1d0c0ffee",
                "private_key": private,
                "client_email": SERVICE_ACCOUNT,
                "client_id": "104729000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_url,
            }
        )
    )
    return path


def domain_dovecot(token_server, domain: str, username_format: str = "", others=()):
    users = dict.fromkeys((*(f"{u}@{domain}" for u in USERS), *others), "a-secret-pw")
    root = _server_root("mp-dovecot-")
    server = _start(
        lambda: Dovecot(
            root, users=users, oauth_url=token_server.url, oauth_username_format=username_format
        )
    )
    return server, root


@pytest.fixture
def workspace(token_server):
    """Dovecot for example.test's users, whose oauth2 passdb asks the token server."""
    server, root = domain_dovecot(token_server, "example.test")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tenant(token_server):
    """Dovecot for contoso.test's mailboxes, accepting an app token of the tenant's domain, and
    one mailbox of another organization that the app's token does not open."""
    server, root = domain_dovecot(
        token_server, "contoso.test", username_format="%d", others=["dave@fabrikam.test"]
    )
    token_server.register_app(APP_ID, APP_SECRET, "contoso.test")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def delegated_key(token_server, tmp_path):
    """A service account key file whose public half the domain trusts for alice and bob."""
    private, public = key_pair()
    token_server.delegate(
        SERVICE_ACCOUNT, public, {"alice@example.test", "bob@example.test"}, GMAIL_SCOPE
    )
    return key_file(tmp_path, private, f"{token_server.url}/token"), private


def server_args(dovecot) -> list[str]:
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.tls_port),
        "--ca-file",
        dovecot.ca_file,
        "--folder",
        "INBOX",
    ]


def google_add(dovecot, key: Path, user: str = "alice@example.test") -> list[str]:
    return [
        "account",
        "add",
        user.split("@")[0],
        "--provider",
        "google-workspace",
        "--service-account-key",
        str(key),
        "--impersonate",
        user,
        *server_args(dovecot),
    ]


def microsoft_add(
    dovecot, token_server, secret_env: str = "APP_SECRET", user: str = "alice"
) -> list[str]:
    return [
        "account",
        "add",
        user,
        "--provider",
        "microsoft365-app",
        "--email",
        f"{user}@contoso.test",
        "--tenant",
        "contoso.test",
        "--client-id",
        APP_ID,
        "--client-secret-env",
        secret_env,
        "--token-url",
        f"{token_server.url}/token",
        *server_args(dovecot),
    ]


def stored_messages(data_dir: Path, account: str) -> int:
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        query = "SELECT count(*) FROM raw_messages WHERE account = ?"
        return con.execute(query, [account]).fetchone()[0]


def test_the_assertion_is_rfc_7523s_signed_by_the_key():
    private, public = key_pair()
    settings = OAuthSettings(
        token_url="https://oauth2.googleapis.com/token",
        client_id=SERVICE_ACCOUNT,
        scope=GMAIL_SCOPE,
        grant=JWT_BEARER,
        subject="alice@example.test",
    )
    key = service_account.ServiceAccountKey(SERVICE_ACCOUNT, "1", "", private, "kid-1")
    signed = service_account.assertion(settings, key.grant, now=1_800_000_000)
    claims = jwt.decode(
        signed,
        public,
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": SERVICE_ACCOUNT,
        "sub": "alice@example.test",
        "scope": GMAIL_SCOPE,
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1_800_000_000,
        "exp": 1_800_003_600,
    }
    assert jwt.get_unverified_header(signed)["kid"] == "kid-1"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(signed, key_pair()[1], algorithms=["RS256"], audience=settings.token_url)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        (json.dumps({"type": "authorized_user", "client_id": "x"}), "not a service account's"),
        (json.dumps({"type": "service_account", "client_email": "a@b"}), "not a service account's"),
    ],
)
def test_a_file_that_is_not_a_service_account_key_is_refused(
    tmp_path, data_dir, capsys, monkeypatch, content, message
):
    path = tmp_path / "key.json"
    path.write_text(content)
    code, out = run_cli(
        capsys,
        monkeypatch,
        *["account", "add", "alice", "--provider", "google-workspace"],
        *["--service-account-key", str(path), "--impersonate", "alice@example.test"],
    )
    assert code == 2 and message in out, out
    assert not (data_dir / "accounts.json").exists()


def test_a_service_account_acts_as_a_user_signs_in_and_syncs(
    workspace, delegated_key, token_server, data_dir, instance, capsys, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    key, private = delegated_key
    workspace.append([("INBOX", message("m1", at(9)), at(9))], user="alice@example.test")
    outputs = []
    code, out = run_cli(capsys, monkeypatch, *google_add(workspace, key))
    outputs.append(out)
    assert code == 0, out
    assert f"service account {SERVICE_ACCOUNT} acting as alice@example.test valid" in out
    assert "service account key stored encrypted" in out
    account = AccountRegistry(data_dir / "accounts.json").get("alice")
    assert (account.username, account.oauth.subject) == ("alice@example.test",) * 2
    assert account.oauth.token_url == f"{token_server.url}/token"

    tokens.forget("alice")  # the run mints its own token from the stored key
    assert sync(instance).success
    assert stored_messages(data_dir, "alice") == 1
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    outputs.append(out)
    assert code == 0 and "OK: logged in" in out, out

    # The domain's admin removes the service account's delegation: the run fails, naming it.
    token_server.revoke_all()
    token_server.expire_access_tokens()
    result = sync(instance)
    assert not result.success
    outputs.append(failure_text(result))
    assert f"refused service account {SERVICE_ACCOUNT} acting as alice@example.test" in outputs[-1]
    assert "account reauth alice --service-account-key FILE" in outputs[-1]
    run_events = [str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)]
    key_lines = [line for line in private.splitlines() if "PRIVATE KEY" not in line]
    assert_no_token_in_clear(
        data_dir, [*token_server.issued, *key_lines], [*outputs, caplog.text, *run_events]
    )


def test_a_wrong_key_or_a_user_outside_the_delegation_fails_clearly(
    workspace, delegated_key, token_server, tmp_path, data_dir, capsys, monkeypatch
):
    delegated, private = delegated_key
    stranger, _ = key_pair()  # the same service account's name, a key the domain never saw
    wrong = key_file(tmp_path, stranger, f"{token_server.url}/token", name="other.json")
    code, out = run_cli(capsys, monkeypatch, *google_add(workspace, wrong))
    assert code == 3, out
    assert (
        f"refused service account {SERVICE_ACCOUNT} acting as alice@example.test "
        "(invalid_grant: Invalid JWT Signature.)"
    ) in out
    code, out2 = run_cli(
        capsys,
        monkeypatch,
        *google_add(workspace, delegated, "carol@example.test"),
    )
    assert code == 3, out2
    assert "acting as carol@example.test (unauthorized_client: Client is unauthorized" in out2
    assert not (data_dir / "accounts.json").exists()
    for secret_line in [*stranger.splitlines()[1:-1], *private.splitlines()[1:-1]]:
        assert secret_line not in out + out2


def test_reauth_gives_the_account_a_replaced_key_or_a_renewed_secret(
    workspace, tenant, delegated_key, token_server, tmp_path, data_dir, capsys, monkeypatch
):
    key, _ = delegated_key
    assert run_cli(capsys, monkeypatch, *google_add(workspace, key))[0] == 0
    # The admin deletes that key and creates another: the account fails until it gets the new one.
    replacement, public = key_pair()
    token_server.delegate(SERVICE_ACCOUNT, public, {"alice@example.test"}, GMAIL_SCOPE)
    token_server.expire_access_tokens()
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 3 and "Invalid JWT Signature." in out, out
    doctor = by_check(diagnose(get_settings(), FAST))["account alice"]
    assert doctor.hint == "run `mail-pipeline account reauth alice --service-account-key FILE`"
    new_key = key_file(tmp_path, replacement, f"{token_server.url}/token", name="new.json")
    code, out = run_cli(
        capsys, monkeypatch, "account", "reauth", "alice", "--service-account-key", str(new_key)
    )
    assert code == 0 and "new service account key stored encrypted" in out, out
    tokens.forget("alice")
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 0 and "acting as alice@example.test" in out, out

    code, out = run_cli(capsys, monkeypatch, *microsoft_add(tenant, token_server, user="carol"))
    assert code == 0, out
    monkeypatch.setenv("RENEWED_SECRET", "renewed-app-secret-9012")
    token_server.register_app(APP_ID, "renewed-app-secret-9012", "contoso.test")
    token_server.expire_access_tokens()
    tokens.forget("carol")
    code, out = run_cli(capsys, monkeypatch, "account", "test", "carol")
    assert code == 3 and "AADSTS7000215" in out and "--client-secret-env VAR" in out, out
    code, out = run_cli(
        capsys, monkeypatch, "account", "reauth", "carol", "--client-secret-env", "RENEWED_SECRET"
    )
    assert code == 0 and "new client secret stored encrypted" in out, out
    registry = AccountRegistry(data_dir / "accounts.json")
    stored = registry.grant(registry.get("carol"), crypto.load_cipher())
    assert stored.client_secret == "renewed-app-secret-9012"


def test_a_microsoft_365_app_reads_a_mailbox_and_a_wrong_secret_fails_clearly(
    tenant, token_server, data_dir, instance, capsys, monkeypatch
):
    tenant.append([("INBOX", message("m1", at(9)), at(9))], user="alice@contoso.test")
    code, out = run_cli(capsys, monkeypatch, *microsoft_add(tenant, token_server, "WRONG_SECRET"))
    assert code == 3, out
    assert (
        f"refused the client credentials of application {APP_ID} "
        "(invalid_client: AADSTS7000215: Invalid client secret provided.)"
    ) in out
    assert "not-the-app-secret-5678" not in out
    assert not (data_dir / "accounts.json").exists()
    # A mailbox the app was not given: the token is issued, the IMAP login refuses it.
    args = microsoft_add(tenant, token_server)
    args[args.index("alice@contoso.test")] = "dave@fabrikam.test"
    code, out = run_cli(capsys, monkeypatch, *args)
    assert code == 3, out
    assert (
        f"refused application {APP_ID}'s access token (OAUTHBEARER) for dave@fabrikam.test: "
        "the app needs the IMAP.AccessAsApp permission"
    ) in out
    assert not (data_dir / "accounts.json").exists()

    code, out = run_cli(capsys, monkeypatch, *microsoft_add(tenant, token_server))
    assert code == 0, out
    assert f"application {APP_ID} valid" in out and "client secret stored encrypted" in out
    account = AccountRegistry(data_dir / "accounts.json").get("alice")
    assert account.username == "alice@contoso.test"
    registry = AccountRegistry(data_dir / "accounts.json")
    assert registry.grant(account, crypto.load_cipher()).client_secret == APP_SECRET
    tokens.forget("alice")
    assert sync(instance).success
    assert stored_messages(data_dir, "alice") == 1
    assert_no_token_in_clear(data_dir, [APP_SECRET, *token_server.issued], [out])


def address_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "addresses.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_add_many_adds_one_account_per_address_for_either_provider(
    workspace, tenant, delegated_key, token_server, tmp_path, data_dir, capsys, monkeypatch
):
    key, _ = delegated_key
    people = address_file(
        tmp_path, "# the sales team", "alice@example.test", "", "bob@example.test  # on leave"
    )
    code, out = run_cli(
        capsys,
        monkeypatch,
        *["account", "add-many", str(people), "--provider", "google-workspace"],
        *["--service-account-key", str(key), *server_args(workspace)],
    )
    assert code == 0, out
    assert "added 2 account(s); service account key stored encrypted with each" in out
    registry = AccountRegistry(data_dir / "accounts.json")
    assert {a.slug: a.oauth.subject for a in registry.list()} == {
        "alice": "alice@example.test",
        "bob": "bob@example.test",
    }
    tokens.forget("bob")
    code, out = run_cli(capsys, monkeypatch, "account", "test", "bob")
    assert code == 0 and "acting as bob@example.test" in out, out

    mailboxes = tmp_path / "contoso.txt"
    mailboxes.write_text("carol@contoso.test\nAlice.Smith@contoso.test\n")
    code, out = run_cli(
        capsys,
        monkeypatch,
        *["account", "add-many", str(mailboxes), "--provider", "microsoft365-app"],
        *["--tenant", "contoso.test", "--client-id", APP_ID, "--client-secret-env", "APP_SECRET"],
        *["--token-url", f"{token_server.url}/token", *server_args(tenant)],
    )
    assert code == 0, out
    assert "added 2 account(s); client secret stored encrypted with each" in out
    assert sorted(a.slug for a in registry.list()) == ["alice", "alice-smith", "bob", "carol"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ("alice@example.test", "bob@example.test", "not an address"),
            ":3: 'not an address' is not an email address; nothing added",
        ),
        (
            ("alice@example.test", "alice@example.test"),
            ":2: account 'alice' (from alice@example.test) already exists or comes twice",
        ),
        (
            ("bob@example.test", "carol@example.test"),
            ":2: carol@example.test cannot sign in (auth: account 'carol'",
        ),
    ],
)
def test_add_many_reports_a_bad_line_by_its_number_and_adds_nothing(
    workspace, delegated_key, tmp_path, data_dir, capsys, monkeypatch, lines, expected
):
    key, _ = delegated_key
    path = address_file(tmp_path, *lines)
    code, out = run_cli(
        capsys,
        monkeypatch,
        *["account", "add-many", str(path), "--provider", "google-workspace"],
        *["--service-account-key", str(key), *server_args(workspace)],
    )
    assert code == 2 and f"{path}{expected}" in out, out
    assert AccountRegistry(data_dir / "accounts.json").list() == []
