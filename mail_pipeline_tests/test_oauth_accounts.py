"""OAuth 2.0 accounts end to end against a real Dovecot with its oauth2 passdb and the local token
server: add with a refresh token, `account test`, raw_messages syncs, an expired access token is
refreshed, a revoked grant fails clearly everywhere, reauth, and no token is ever in clear."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import materialize

from mail_pipeline.auth import tokens
from mail_pipeline.cli.doctor import diagnose
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import AccountRegistry
from mail_pipeline_tests.conftest import _server_root
from mail_pipeline_tests.graph import raw_messages
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import Dovecot
from mail_pipeline_tests.test_cli_accounts import run_cli
from mail_pipeline_tests.test_doctor import FAST, by_check

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 10)
CLIENT_SECRET = "tests-client-secret-value"


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
    monkeypatch.setenv("TESTS_CLIENT_SECRET", CLIENT_SECRET)


def at(hour: int) -> datetime:
    return datetime(2026, 11, 10, hour, tzinfo=UTC)


def add_args(dovecot, token_server, slug="alice") -> list[str]:
    return [
        "account",
        "add",
        slug,
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
        "--oauth2",
        "--token-url",
        f"{token_server.url}/token",
        "--client-id",
        token_server.client_id,
        "--client-secret-env",
        "TESTS_CLIENT_SECRET",
        "--refresh-token-stdin",
    ]


def sync(instance, account="alice"):
    instance.add_dynamic_partitions("accounts", [account])
    return materialize(
        [raw_messages],
        partition_key=partition_key(account, DAY),
        resources=build_resources(get_settings()),
        instance=instance,
        raise_on_error=False,
    )


def stored_count(data_dir: Path) -> int:
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM raw_messages WHERE account = 'alice'").fetchone()[
            0
        ]


def failure_text(result) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.to_string()


def assert_no_token_in_clear(data_dir: Path, secrets: list[str], outputs: list[str]) -> None:
    for path in (p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"a token in clear in {path}"
    everything = "\n".join(outputs)
    for secret in secrets:
        assert secret not in everything


def test_oauth_account_syncs_refreshes_and_fails_clearly_when_revoked(
    oauth_dovecot, token_server, data_dir, instance, capsys, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    token_server.client_secret = CLIENT_SECRET
    outputs: list[str] = []
    oauth_dovecot.append([("INBOX", message("m1", at(9)), at(9))])

    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(oauth_dovecot, token_server),
        stdin=token_server.issue_grant() + "\n",
    )
    outputs.append(out)
    assert code == 0, out
    assert (
        "oauth2 via OAUTHBEARER; grant valid" in out
        and "OAuth refresh token stored encrypted" in out
    )
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    outputs.append(out)
    assert (
        code == 0 and "OK: logged in" in out and "auth: oauth2 via OAUTHBEARER; grant valid" in out
    )
    code, out = run_cli(capsys, monkeypatch, "account", "list")
    outputs.append(out)
    assert "oauth2" in out

    doctor = by_check(diagnose(get_settings(), FAST))["account alice"]
    assert doctor.ok and "oauth2 via OAUTHBEARER; grant valid" in doctor.detail
    assert sync(instance).success
    assert stored_count(data_dir) == 1

    # The provider ends the access token early (our cache still holds it as valid): the next run
    # is refused once, refreshes, signs in again and syncs.
    token_server.expire_access_tokens()
    refreshes = token_server.refreshes
    oauth_dovecot.append([("INBOX", message("m2", at(10)), at(10))])
    assert sync(instance).success
    assert stored_count(data_dir) == 2 and token_server.refreshes == refreshes + 1

    token_server.revoke_all()
    result = sync(instance)
    assert not result.success
    outputs.append(failure_text(result))
    assert "account 'alice'" in outputs[-1] and "mail-pipeline account reauth alice" in outputs[-1]
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    outputs.append(out)
    assert (
        code == 3
        and "error (auth): account 'alice'" in out
        and "`mail-pipeline account reauth alice`" in out
    )
    doctor = by_check(diagnose(get_settings(), FAST))["account alice"]
    outputs.append(str(doctor))
    assert (
        not doctor.ok
        and "oauth2 sign-in, auth" in doctor.detail
        and doctor.hint == "run `mail-pipeline account reauth alice`"
    )

    code, out = run_cli(
        capsys,
        monkeypatch,
        "account",
        "reauth",
        "alice",
        "--refresh-token-stdin",
        stdin=token_server.issue_grant() + "\n",
    )
    outputs.append(out)
    assert code == 0 and "re-authorized account 'alice'" in out, out
    oauth_dovecot.append([("INBOX", message("m3", at(11)), at(11))])
    assert sync(instance).success
    assert stored_count(data_dir) == 3
    # The client secret came from --client-secret-env and is kept (encrypted) across the reauth.
    registry = AccountRegistry(data_dir / "accounts.json")
    assert (
        registry.grant(registry.get("alice"), crypto.load_cipher()).client_secret == CLIENT_SECRET
    )
    run_events = [
        str(event) for run in instance.get_runs() for event in instance.all_logs(run.run_id)
    ]
    assert len(run_events) > 20
    assert_no_token_in_clear(
        data_dir, [*token_server.issued, CLIENT_SECRET], [*outputs, caplog.text, *run_events]
    )


def test_the_sensor_names_the_account_and_reauth_for_a_dead_grant(
    oauth_dovecot, token_server, data_dir, instance, capsys, monkeypatch
):
    from dagster import Definitions, build_sensor_context

    from mail_pipeline.defs.sensors import new_mail_sensor_every

    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(oauth_dovecot, token_server),
        stdin=token_server.issue_grant() + "\n",
    )
    assert code == 0, out
    token_server.revoke_all()
    token_server.expire_access_tokens()
    instance.add_dynamic_partitions("accounts", ["alice"])  # so that the tick only reports
    resources = build_resources(get_settings())
    sensor = new_mail_sensor_every(60)
    repository = Definitions(
        assets=[raw_messages], sensors=[sensor], resources=resources
    ).get_repository_def()
    result = sensor(
        build_sensor_context(instance=instance, repository_def=repository, resources=resources)
    )
    reason = result.skip_reason.skip_message
    assert (
        "alice: error (auth): account 'alice'" in reason
        and "mail-pipeline account reauth alice" in reason
    )


def test_xoauth2_where_oauthbearer_is_not_advertised_and_rotation(
    token_server, data_dir, capsys, monkeypatch
):
    token_server.rotate_refresh_tokens = True
    root = _server_root("mp-dovecot-")
    dovecot = Dovecot(root, oauth_url=token_server.url, oauth_mechanisms=("xoauth2",)).start()
    try:
        original = token_server.issue_grant()
        code, out = run_cli(
            capsys, monkeypatch, *add_args(dovecot, token_server), stdin=original + "\n"
        )
        assert code == 0 and "oauth2 via XOAUTH2" in out, out
        # The verifying sign-in rotated the refresh token: the stored grant is the new one.
        registry = AccountRegistry(data_dir / "accounts.json")
        stored = registry.grant(registry.get("alice"), crypto.load_cipher()).refresh_token
        assert stored != original and stored in token_server.issued
        tokens.forget("alice")
        code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
        assert code == 0 and "via XOAUTH2" in out, out
        assert registry.grant(registry.get("alice"), crypto.load_cipher()).refresh_token not in (
            original,
            stored,
        )
        # XOAUTH2's failure exchange (an error challenge, our empty answer, NO), then a retry that works.
        token_server.expire_access_tokens()
        code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
        assert code == 0 and "via XOAUTH2" in out, out
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_device_code_sign_in_from_the_cli(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    token_server.device_script, token_server.device_interval, token_server.auto_approve = (
        ("authorization_pending",),
        0,
        True,
    )
    args = [
        *add_args(oauth_dovecot, token_server)[:-3],
        "--device-url",
        f"{token_server.url}/device",
    ]
    code, out = run_cli(capsys, monkeypatch, *args)
    assert code == 0, out
    assert "/device-login and enter the code" in out and "added account 'alice'" in out


def test_browser_sign_in_from_the_cli(oauth_dovecot, token_server, data_dir, capsys, monkeypatch):
    import urllib.request

    monkeypatch.setattr(
        "webbrowser.open", lambda url: urllib.request.urlopen(url, timeout=10).read()
    )
    args = [
        *add_args(oauth_dovecot, token_server)[:-3],
        "--auth-url",
        f"{token_server.url}/authorize",
    ]
    code, out = run_cli(capsys, monkeypatch, *args)
    assert code == 0, out
    assert "oauth2 via OAUTHBEARER" in out and "added account 'alice'" in out
    code, out = run_cli(capsys, monkeypatch, "account", "reauth", "alice")
    assert code == 0 and "re-authorized account 'alice'" in out, out


def test_reauth_gives_a_password_account_its_new_password(
    oauth_dovecot, data_dir, capsys, monkeypatch
):
    dovecot = oauth_dovecot  # passwords work there too, without the penalty on failed logins
    args = [
        "account",
        "add",
        "alice",
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
        "--password-stdin",
        "--no-verify",
    ]
    assert run_cli(capsys, monkeypatch, *args, stdin="an-old-password\n")[0] == 0
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 3 and "error (auth): login failed" in out
    code, out = run_cli(
        capsys, monkeypatch, "account", "reauth", "alice", "--password-stdin", stdin="still-wrong\n"
    )
    assert code == 3 and "error (auth)" in out
    code, out = run_cli(
        capsys,
        monkeypatch,
        "account",
        "reauth",
        "alice",
        "--password-stdin",
        stdin=dovecot.users["alice"] + "\n",
    )
    assert code == 0 and "re-authorized account 'alice' (password)" in out, out
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 0 and "(auth: password)" in out


def test_gmail_preset_finds_a_translated_sent_folder_by_its_special_use(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    client = oauth_dovecot.client()
    client.create_folder("Gesendet")  # the harness flags it \Sent, as Gmail does "[Gmail]/Gesendet"
    client.logout()
    monkeypatch.setenv("MAIL_PIPELINE_GOOGLE_CLIENT_ID", token_server.client_id)
    args = add_args(oauth_dovecot, token_server)
    args.remove("--oauth2")
    args.remove("--client-id")
    args.remove(token_server.client_id)
    code, out = run_cli(
        capsys, monkeypatch, *args, "--provider", "gmail", stdin=token_server.issue_grant() + "\n"
    )
    assert code == 0 and "will sync: INBOX, Gesendet" in out, out
    assert AccountRegistry(data_dir / "accounts.json").get("alice").folders == ("INBOX", "Gesendet")


def test_a_fresh_token_refused_is_final_and_says_why(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    # The grant is bob's, the account alice's: Dovecot refuses the token, and a refresh cannot help.
    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(oauth_dovecot, token_server),
        stdin=token_server.issue_grant("bob") + "\n",
    )
    assert code == 3 and "refused a freshly issued OAuth access token (OAUTHBEARER)" in out, out
    assert "account reauth alice" in out and token_server.refreshes == 1
    assert not (data_dir / "accounts.json").exists()


def test_a_server_without_oauth_says_so(dovecot, token_server, data_dir, capsys, monkeypatch):
    code, out = run_cli(
        capsys,
        monkeypatch,
        *add_args(dovecot, token_server),
        stdin=token_server.issue_grant() + "\n",
    )
    assert code == 3 and "advertises neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER" in out, out


def test_key_rotate_re_encrypts_the_grant(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    old_key, new_key = os.environ[crypto.KEY_VARIABLE], crypto.generate_key()
    assert (
        run_cli(
            capsys,
            monkeypatch,
            *add_args(oauth_dovecot, token_server),
            stdin=token_server.issue_grant() + "\n",
        )[0]
        == 0
    )
    monkeypatch.setenv(crypto.KEY_VARIABLE, f"{new_key},{old_key}")
    code, out = run_cli(capsys, monkeypatch, "key", "rotate")
    assert code == 0 and "OAuth grants of 1 account(s)" in out, out
    monkeypatch.setenv(crypto.KEY_VARIABLE, new_key)
    tokens.forget("alice")  # sign in from the stored grant, not from this process's cached token
    code, out = run_cli(capsys, monkeypatch, "account", "test", "alice")
    assert code == 0 and "grant valid" in out, out
    monkeypatch.setenv(crypto.KEY_VARIABLE, old_key)
    code, out = run_cli(capsys, monkeypatch, "key", "check")
    assert code == 2 and "stored OAuth grant of account 'alice' cannot be decrypted" in out, out


def test_browserless_sign_in_from_the_cli(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    from mail_pipeline_tests.test_oauth_flows import redirected_address

    def user_pastes(prompt=""):
        """The user opens the printed URL elsewhere and pastes the address the browser could not load."""
        shown = capsys.readouterr().out
        url = next(
            line for line in shown.splitlines() if line.startswith(f"{token_server.url}/authorize?")
        )
        return redirected_address(url)

    monkeypatch.setattr("builtins.input", user_pastes)
    args = [
        *add_args(oauth_dovecot, token_server)[:-3],
        "--auth-url",
        f"{token_server.url}/authorize",
        "--no-browser",
    ]
    code, out = run_cli(capsys, monkeypatch, *args)
    assert code == 0 and "added account 'alice'" in out, out


def test_processes_refreshing_at_once_never_spend_a_rotated_refresh_token(
    oauth_dovecot, token_server, data_dir, capsys, monkeypatch
):
    # The provider voids a refresh token once it has rotated it. Without the per-account lock,
    # both processes would send the same one and the slower would find the grant refused.
    token_server.rotate_refresh_tokens, token_server.token_delay_s = True, 0.5
    assert (
        run_cli(
            capsys,
            monkeypatch,
            *add_args(oauth_dovecot, token_server),
            stdin=token_server.issue_grant() + "\n",
        )[0]
        == 0
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "mail_pipeline.cli", "account", "test", "alice"]
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    # One refreshed under the lock; the other found the rotated grant and refreshed with it.
    registry = AccountRegistry(data_dir / "accounts.json")
    latest = [token for token in token_server.issued if token.startswith("rt-")][-1]
    assert registry.grant(registry.get("alice"), crypto.load_cipher()).refresh_token == latest
    assert token_server.refreshes == 3
