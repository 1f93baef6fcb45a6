"""OAuth access tokens and grants against the local token server: refresh before expiry, rotation
stored atomically and encrypted, dead grants, key rotation, and the SASL messages."""

from __future__ import annotations

import pytest

from mail_pipeline import logs
from mail_pipeline.auth import oauth, tokens
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import (
    Account,
    AccountError,
    AccountRegistry,
    validate,
)
from mail_pipeline.storage.grants import Grant, OAuthSettings
from mail_pipeline_tests.servers import free_port

CLIENT_SECRET = "client-secret-for-tests"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def oauth_account(token_server, slug="work", **overrides) -> Account:
    settings = OAuthSettings(
        token_url=f"{token_server.url}/token", client_id=token_server.client_id
    )
    values = {
        "slug": slug,
        "email": "me@example.com",
        "host": "imap.example.com",
        "port": 993,
        "username": "me",
        "password_token": "",
        "auth": "oauth2",
        "oauth": settings,
    }
    return Account(**{**values, **overrides})


@pytest.fixture
def registry(tmp_path):
    return AccountRegistry(tmp_path / "accounts.json")


@pytest.fixture
def cipher():
    return crypto.load_cipher(crypto.generate_key())


@pytest.mark.parametrize(
    ("mechanism", "username", "first", "after"),
    [
        ("XOAUTH2", "alice", "user=alice\x01auth=Bearer TOKEN\x01\x01", ""),
        # RFC 7628 3.1: gs2 header with the authzid (',' and '=' escaped), then %x01 to end a failure.
        ("OAUTHBEARER", "a,b=c", "n,a=a=2Cb=3Dc,\x01auth=Bearer TOKEN\x01\x01", "\x01"),
    ],
)
def test_sasl_messages(mechanism, username, first, after):
    respond = tokens.sasl_response(mechanism, username, "TOKEN")
    assert respond(b"") == first
    assert respond(b'{"status":"invalid_token"}') == after


def test_access_token_is_cached_and_refreshed_before_it_expires(token_server, registry, cipher):
    token_server.access_lifetime_s = 3600
    account = registry.add(oauth_account(token_server), Grant(token_server.issue_grant()), cipher)
    clock = Clock()
    source = tokens.TokenSource(
        account.slug,
        account.oauth,
        load=lambda: registry.grant(registry.get("work"), cipher),
        save=lambda g: registry.replace_secret("work", g, cipher),
        clock=clock,
    )
    first, fresh = source.get()
    assert fresh and token_server.refreshes == 1
    clock.now += 3600 - tokens.REFRESH_MARGIN_S - 1
    assert source.get() == (first, False) and token_server.refreshes == 1
    clock.now += 2  # now inside the margin: refreshed before use, not after a failed login
    second, fresh = source.get()
    assert fresh and second.value != first.value and token_server.refreshes == 2


def test_rotated_refresh_token_replaces_the_stored_one_encrypted(
    token_server, registry, cipher, tmp_path
):
    token_server.rotate_refresh_tokens = True
    original = token_server.issue_grant()
    account = registry.add(oauth_account(token_server), Grant(original, CLIENT_SECRET), cipher)
    source = tokens.registry_source(account, registry, cipher)
    tokens.forget(account.slug)
    source.get()
    stored = registry.grant(registry.get("work"), cipher)
    assert stored.refresh_token != original and stored.refresh_token in token_server.issued
    assert stored.client_secret == CLIENT_SECRET
    raw = (tmp_path / "accounts.json").read_text()
    for secret in [*token_server.issued, CLIENT_SECRET]:
        assert secret not in raw
    # the provider voided the old one: only the stored one works
    with pytest.raises(oauth.GrantError):
        oauth.refresh("work", account.oauth, Grant(original))
    source.invalidate()
    source.get()
    assert token_server.refreshes == 2


def test_a_revoked_grant_names_the_account_and_the_reauth_command(token_server, registry, cipher):
    account = registry.add(oauth_account(token_server), Grant(token_server.issue_grant()), cipher)
    token_server.revoke_all()
    with pytest.raises(oauth.GrantError) as caught:
        tokens.registry_source(account, registry, cipher).get()
    assert caught.value.kind == "auth" and not caught.value.transient
    assert "account 'work'" in str(caught.value) and "mail-pipeline account reauth work" in str(
        caught.value
    )


def test_an_unreachable_token_endpoint_is_transient(registry, cipher, token_server):
    account = oauth_account(
        token_server,
        oauth=OAuthSettings(token_url=f"http://127.0.0.1:{free_port()}/token", client_id="x"),
    )
    account = registry.add(account, Grant("rt-never-sent-anywhere"), cipher)
    with pytest.raises(oauth.OAuthEndpointError) as caught:
        tokens.registry_source(account, registry, cipher).get()
    assert caught.value.transient and "cannot reach the OAuth endpoint" in str(caught.value)


def test_tokens_are_redacted_from_logs_once_seen(token_server, registry, cipher):
    refresh_token = token_server.issue_grant()
    account = registry.add(oauth_account(token_server), Grant(refresh_token), cipher)
    token, _ = tokens.registry_source(account, registry, cipher).get()
    assert (
        logs.redact(f"a={token.value} r={refresh_token}") == f"a={logs.REDACTED} r={logs.REDACTED}"
    )


def test_key_rotate_re_encrypts_grants(token_server, registry, tmp_path):
    old_key, new_key = crypto.generate_key(), crypto.generate_key()
    refresh_token = token_server.issue_grant()
    registry.add(
        oauth_account(token_server),
        Grant(refresh_token, CLIENT_SECRET),
        crypto.load_cipher(old_key),
    )
    assert registry.rotate(crypto.load_cipher(f"{new_key},{old_key}")) == 1
    assert registry.grant(registry.get("work"), crypto.load_cipher(new_key)) == Grant(
        refresh_token, CLIENT_SECRET
    )
    with pytest.raises(crypto.DecryptError, match="stored OAuth grant of account 'work'"):
        registry.grant(registry.get("work"), crypto.load_cipher(old_key))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oauth": None}, "needs a token URL and a client id"),
        (
            {"oauth": OAuthSettings(token_url="http://login.example.com/token", client_id="x")},
            "use https",
        ),
        (
            {"oauth": OAuthSettings(token_url="ftp://login.example.com/token", client_id="x")},
            "invalid OAuth endpoint",
        ),
        (
            {"oauth": OAuthSettings(token_url="https://login.example.com/token", client_id="")},
            "client id",
        ),
        ({"auth": "kerberos"}, "invalid auth"),
    ],
)
def test_invalid_oauth_settings_are_refused(token_server, overrides, message):
    with pytest.raises(AccountError, match=message):
        validate(oauth_account(token_server, **overrides))


def test_secrets_go_only_where_the_kind_of_account_takes_them(token_server, registry, cipher):
    with pytest.raises(AccountError, match="needs an OAuth refresh token"):
        registry.add(oauth_account(token_server), "a-password", cipher)
    password_account = oauth_account(token_server, slug="pw", auth="password", oauth=None)
    registry.add(password_account, "a-password", cipher)
    with pytest.raises(AccountError, match="has no OAuth grant"):
        registry.grant(registry.get("pw"), cipher)
    registry.add(oauth_account(token_server), Grant("rt-x"), cipher)
    with pytest.raises(AccountError, match="has no password"):
        registry.password(registry.get("work"), cipher)
