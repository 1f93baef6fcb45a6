"""`account add --provider`: presets fill host, port, security, sign-in and folders; flags win."""

from __future__ import annotations

import pytest

from mail_pipeline.auth.providers import PROVIDERS
from mail_pipeline.storage.accounts import AccountRegistry
from mail_pipeline.storage.grants import CLIENT_CREDENTIALS, JWT_BEARER, REFRESH_TOKEN
from mail_pipeline_tests.test_cli_accounts import run_cli


def add(capsys, monkeypatch, *extra, stdin="rt-from-elsewhere\n"):
    return run_cli(
        capsys,
        monkeypatch,
        "account",
        "add",
        "me",
        "--email",
        "me@example.com",
        "--no-verify",
        *extra,
        stdin=stdin,
    )


def stored(data_dir):
    return AccountRegistry(data_dir / "accounts.json").get("me")


def test_gmail_preset_syncs_inbox_and_sent_not_all_mail(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com")
    monkeypatch.setenv("MAIL_PIPELINE_GOOGLE_CLIENT_SECRET", "google-client-secret")
    code, out = add(capsys, monkeypatch, "--provider", "gmail", "--refresh-token-stdin")
    assert code == 0, out
    account = stored(data_dir)
    assert (account.host, account.port, account.security, account.auth) == (
        "imap.gmail.com",
        993,
        "tls",
        "oauth2",
    )
    assert account.folders == ("INBOX", "[Gmail]/Sent Mail")
    assert (
        account.oauth.token_url == "https://oauth2.googleapis.com/token"
        and account.oauth.scope == "https://mail.google.com/"
    )
    assert (
        account.oauth.client_id == "id.apps.googleusercontent.com"
        and account.oauth.provider == "gmail"
    )
    assert "google-client-secret" not in (data_dir / "accounts.json").read_text()


def test_explicit_flags_override_the_preset(data_dir, capsys, monkeypatch):
    code, out = add(
        capsys,
        monkeypatch,
        "--provider",
        "outlook",
        "--client-id",
        "app-id",
        "--host",
        "imap.example.com",
        "--port",
        "1993",
        "--folder",
        "INBOX",
        "--refresh-token-stdin",
    )
    assert code == 0, out
    account = stored(data_dir)
    assert (account.host, account.port, account.folders) == ("imap.example.com", 1993, ("INBOX",))
    assert (
        account.oauth.device_url.endswith("/devicecode") and "offline_access" in account.oauth.scope
    )


@pytest.mark.parametrize(
    ("provider", "host", "folders"),
    [
        ("fastmail", "imap.fastmail.com", ("INBOX", "Sent")),
        ("icloud", "imap.mail.me.com", ("INBOX", "Sent Messages")),
        ("yahoo", "imap.mail.yahoo.com", ("INBOX", "Sent")),
    ],
)
def test_app_password_presets(data_dir, capsys, monkeypatch, provider, host, folders):
    code, out = add(
        capsys, monkeypatch, "--provider", provider, "--password-stdin", stdin="app-password\n"
    )
    assert code == 0 and "password stored encrypted" in out, out
    account = stored(data_dir)
    assert (account.host, account.auth, account.folders) == (host, "password", folders)


def test_a_password_flag_picks_the_app_password_sign_in(data_dir, capsys, monkeypatch):
    code, out = add(
        capsys, monkeypatch, "--provider", "gmail", "--password-stdin", stdin="gmail-app-password\n"
    )
    assert code == 0, out
    account = stored(data_dir)
    assert (account.host, account.auth, account.oauth) == ("imap.gmail.com", "password", None)


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (
            ["--host", "imap.example.com", "--oauth2", "--password-stdin"],
            {},
            "drop --password-stdin",
        ),
        (
            [
                "--host",
                "imap.example.com",
                "--token-url",
                "https://t.example/token",
                "--refresh-token-stdin",
            ],
            {},
            "--token-url, --refresh-token-stdin describe an OAuth sign-in: add --oauth2",
        ),
        (
            ["--provider", "fastmail", "--client-id", "x"],
            {},
            "--client-id describe an OAuth sign-in",
        ),
        (
            ["--provider", "outlook", "--refresh-token-stdin"],
            {},
            "pass --client-id or set MAIL_PIPELINE_MICROSOFT_CLIENT_ID",
        ),
        (
            ["--provider", "gmail", "--refresh-token-stdin"],
            {"MAIL_PIPELINE_GOOGLE_CLIENT_ID": "id"},
            "needs the client secret too: set MAIL_PIPELINE_GOOGLE_CLIENT_SECRET",
        ),
        (["--password-stdin"], {}, "--host is required"),
        (
            ["--host", "imap.example.com", "--oauth2", "--client-id", "x", "--refresh-token-stdin"],
            {},
            "needs a token URL",
        ),
        (
            [
                "--host",
                "imap.example.com",
                "--oauth2",
                "--client-id",
                "x",
                "--token-url",
                "https://t.example/token",
            ],
            {},
            "give --refresh-token-stdin, or --device-url or --auth-url",
        ),
        (
            [
                "--host",
                "imap.example.com",
                "--oauth2",
                "--client-id",
                "x",
                "--token-url",
                "https://t.example/token",
                "--refresh-token-stdin",
            ],
            {"stdin": ""},
            "no refresh token on standard input",
        ),
    ],
)
def test_missing_pieces_are_named(data_dir, capsys, monkeypatch, extra, env, message):
    stdin = env.pop("stdin", "rt-from-elsewhere\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out = add(capsys, monkeypatch, *extra, stdin=stdin)
    assert code == 2 and message in out, out
    assert not (data_dir / "accounts.json").exists()


def test_every_sign_in_preset_names_its_endpoints_and_client_variable():
    for provider in PROVIDERS.values():
        if provider.auth == "oauth2" and provider.grant == REFRESH_TOKEN:
            assert (
                provider.token_url.startswith("https://")
                and provider.scope
                and provider.client_id_setting
            )
            assert bool(provider.device_url) != bool(provider.auth_url)  # exactly one sign-in flow


def test_org_wide_presets_have_no_sign_in_flow_and_a_token_endpoint_to_come_from():
    """An org-wide preset signs in as an application: no person's browser or device code. Google's
    token endpoint is the service-account key file's token_uri; Microsoft's is the tenant's."""
    org_wide = [p for p in PROVIDERS.values() if p.grant in (JWT_BEARER, CLIENT_CREDENTIALS)]
    assert {p.grant for p in org_wide} == {JWT_BEARER, CLIENT_CREDENTIALS}
    for provider in org_wide:
        assert provider.auth == "oauth2" and provider.scope
        assert not provider.auth_url and not provider.device_url and not provider.client_id_setting
        if provider.grant == JWT_BEARER:
            assert not provider.token_url  # taken from the key file, never guessed
        else:
            assert provider.token_url.format(tenant="contoso.onmicrosoft.com").startswith(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
            )


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (
            [("INBOX", ()), ("[Gmail]/Sent Mail", ("\\Sent",)), ("[Gmail]/All Mail", ("\\All",))],
            ("INBOX", "[Gmail]/Sent Mail"),
        ),
        ([("INBOX", ()), ("[Gmail]/Gesendet", ("\\Sent",))], ("INBOX", "[Gmail]/Gesendet")),
        # left for sync_folders to report
        (
            [("INBOX", ()), ("Elsewhere", ())],
            ("INBOX", "[Gmail]/Sent Mail"),
        ),
    ],
)
def test_preset_sent_folder_follows_the_servers_special_use(server, expected):
    from mail_pipeline.auth.providers import preset_folders
    from mail_pipeline.imap import Folder

    gmail = PROVIDERS["gmail"]
    assert (
        preset_folders(gmail, gmail.folders, [Folder(name, flags) for name, flags in server])
        == expected
    )
