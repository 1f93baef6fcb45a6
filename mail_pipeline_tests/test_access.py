"""Access tokens without a server: the store keeps only hashes, privately; revocation; the
refusal delay of one address; the token a request offers; the audit file; `token` and `serve`'s
refusal on the command line."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

from mail_pipeline.access.audit import AuditLog, touched
from mail_pipeline.access.gate import COOKIE, Gate, Throttle, Unauthorized, offered
from mail_pipeline.access.tokens import TokenError, TokenStore
from mail_pipeline_tests.indexed_demo import cli, environment


def test_a_token_is_shown_once_and_only_its_hash_is_stored(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token, secret = store.add("anna", ["work", "home"], all_accounts=False, admin=False)
    text = (tmp_path / "tokens.json").read_text()
    assert secret not in text and token.sha256 in text and len(secret) >= 40
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert token.allowed == frozenset({"work", "home"}) and token.scope == "home, work"
    assert store.verify(secret).name == "anna"
    assert store.verify(secret + "x") is None and store.verify("") is None
    assert store.load()["anna"].last_used  # the first use is recorded


def test_two_tokens_each_verify_as_themselves_and_revoke_is_at_once(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    _, anna = store.add("anna", ["work"], all_accounts=False, admin=False)
    admin, root = store.add("ops", [], all_accounts=True, admin=True)
    assert admin.allowed is None and admin.scope == "all accounts (admin)"
    assert store.verify(anna).name == "anna" and store.verify(root).name == "ops"
    store.revoke("anna")
    assert store.verify(anna) is None and store.verify(root).name == "ops"


@pytest.mark.parametrize(
    ("name", "accounts", "all_accounts", "message"),
    [
        ("anna smith", ["work"], False, "use 1 to 64 letters"),
        ("anna", [], False, "give the token's accounts"),
        ("anna", ["work"], True, "give the token's accounts"),
    ],
)
def test_bad_token_input_is_refused_and_nothing_is_written(
    tmp_path, name, accounts, all_accounts, message
):
    store = TokenStore(tmp_path / "tokens.json")
    with pytest.raises(TokenError, match=message):
        store.add(name, accounts, all_accounts=all_accounts, admin=False)
    assert not (tmp_path / "tokens.json").exists()


def test_a_second_token_of_one_name_and_revoking_an_unknown_one_are_refused(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.add("anna", ["work"], all_accounts=False, admin=False)
    with pytest.raises(TokenError, match="a token named 'anna' exists"):
        store.add("anna", ["home"], all_accounts=False, admin=False)
    with pytest.raises(TokenError, match="no token named 'bob'"):
        store.revoke("bob")


def test_an_unreadable_token_file_says_so(tmp_path):
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(TokenError, match="cannot be read"):
        TokenStore(tmp_path / "tokens.json").load()


def test_revoking_the_last_token_locks_the_service_rather_than_opening_it(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    gate = Gate(store, Throttle(sleep=lambda _: None))
    assert not gate.required()
    _, secret = store.add("anna", ["work"], all_accounts=False, admin=False)
    store.revoke("anna")
    assert gate.required()
    with pytest.raises(Unauthorized):
        gate.caller({"Authorization": f"Bearer {secret}"}, "127.0.0.1")
    (tmp_path / "tokens.json").unlink()
    assert gate.caller({}, "127.0.0.1").token is None


def test_failures_from_one_address_wait_longer_each_time_until_a_success():
    waits: list[float] = []
    throttle = Throttle(sleep=waits.append)
    for _ in range(8):
        throttle.failed("10.0.0.9")
    throttle.failed("10.0.0.8")
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 0.1]
    throttle.succeeded("10.0.0.9")
    assert throttle.delay("10.0.0.9") == 0.0 and throttle.delay("10.0.0.8") == 0.1


def test_a_wrong_token_is_slowed_but_a_missing_one_is_only_refused(tmp_path):
    waits: list[float] = []
    store = TokenStore(tmp_path / "tokens.json")
    gate = Gate(store, Throttle(sleep=waits.append))
    assert gate.caller({}, "127.0.0.1").token is None  # no token defined: no token needed
    _, secret = store.add("anna", ["work"], all_accounts=False, admin=False)
    with pytest.raises(Unauthorized):
        gate.caller({}, "127.0.0.1")
    assert waits == []
    with pytest.raises(Unauthorized):
        gate.caller({"Authorization": "Bearer nope"}, "127.0.0.1")
    assert waits == [0.1]
    caller = gate.caller({"Authorization": f"Bearer {secret}"}, "127.0.0.1")
    assert caller.name == "anna" and caller.allowed == {"work"} and not caller.admin


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Authorization": "Bearer abc"}, "abc"),
        ({"Authorization": "bearer  abc "}, "abc"),
        ({"Authorization": "Basic abc"}, None),
        ({"Cookie": f"theme=dark; {COOKIE}=xyz"}, "xyz"),
        ({"Authorization": "Bearer abc", "Cookie": f"{COOKIE}=xyz"}, "abc"),
        ({"Cookie": "broken\x00"}, None),
        ({}, None),
    ],
)
def test_the_token_a_request_offers(headers, token):
    assert offered(headers) == token


def test_the_audit_file_is_private_and_rotates_privately(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    audit = AuditLog(path, max_bytes=300, backups=2)
    for n in range(6):
        audit.record(
            token="anna",
            route="GET /api/search",
            status=200,
            accounts=["work"],
            results=n,
            client="127.0.0.1",
        )
    audit.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    last = json.loads(path.read_text().splitlines()[-1])
    assert set(last) == {"time", "token", "route", "status", "accounts", "results", "client"}
    assert (last["token"], last["results"]) == ("anna", 5)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"results": [{"account": "b"}, {"account": "a"}], "note": None}, (["a", "b"], 2)),
        ({"thread_id": "t", "account": "a", "emails": [{"account": "a"}]}, (["a"], 1)),
        ({"email_id": "e", "account": "a"}, (["a"], 1)),
        ([{"account": "a"}, {"account": "a"}], (["a"], 2)),
        ({"service": "x"}, ([], 0)),
        (None, ([], None)),
    ],
)
def test_what_an_answer_touched(payload, expected):
    assert touched(payload) == expected


def run_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(*args),
        env=environment(tmp_path / "data"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_token_add_list_revoke_on_the_command_line(tmp_path):
    made = run_cli(tmp_path, "token", "add", "ops", "--all", "--admin")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[0]
    assert "shown this once" in made.stdout
    listed = run_cli(tmp_path, "token", "list")
    assert "ops" in listed.stdout and "all accounts (admin)" in listed.stdout
    assert secret not in listed.stdout and "never" in listed.stdout
    unknown = run_cli(tmp_path, "token", "add", "anna", "--account", "nobody")
    assert unknown.returncode == 2 and "unknown account 'nobody'" in unknown.stderr
    assert run_cli(tmp_path, "token", "revoke", "ops").returncode == 0
    assert "no tokens left: the search service refuses every request" in (
        run_cli(tmp_path, "token", "list").stdout
    )
    assert secret not in (tmp_path / "data" / "tokens.json").read_text()


def test_serve_beyond_loopback_without_a_token_refuses_to_start(tmp_path):
    refused = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no access token" in refused.stderr
    assert "mail-pipeline token add NAME --account SLUG" in refused.stderr
