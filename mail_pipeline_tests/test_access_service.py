"""Access tokens on `mail-pipeline serve`, over two accounts' indexed mail (two_accounts.py):
every route refuses a request without a token, a token opens its accounts only (mail of another
answers exactly as mail that does not exist), a revoked token is refused at once, the token
appears in no log or audit line; and the `mcp` client over Streamable HTTP sees only its accounts."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb
import pytest

from mail_pipeline.access.tokens import TokenStore
from mail_pipeline_tests.indexed_demo import HOSTILE_SUBJECT, cli, environment, serving
from mail_pipeline_tests.two_accounts import ALICE, DEMO

pytestmark = pytest.mark.e2e


def request(base: str, path: str, token: str | None = None, **params) -> tuple[int, dict | str]:
    url = f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=240) as r:
            status, body, kind = r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        with error:
            status, body, kind = error.code, error.read(), error.headers["Content-Type"]
    return status, json.loads(body) if kind.startswith("application/json") else body.decode()


def one(data_dir: Path, sql: str, account: str) -> str:
    """The one value `sql` selects for `account` (each `?` is the account), from the lake itself."""
    emails = f"read_parquet('{data_dir}/lake/emails/*/*/*.parquet', hive_partitioning = true)"
    with duckdb.connect() as con:
        return con.execute(sql.format(emails=emails), [account] * sql.count("?")).fetchone()[0]


@pytest.fixture(scope="module")
def served(two_accounts, tmp_path_factory):
    """The service over a copy of the two accounts, with three tokens; (url, data dir, tokens,
    everything the service printed)."""
    data_dir = tmp_path_factory.mktemp("access") / "data"
    shutil.copytree(two_accounts, data_dir)
    store = TokenStore(data_dir / "tokens.json")
    tokens = {
        name: store.add(name, accounts, all_accounts=not accounts, admin=admin)[1]
        for name, accounts, admin in [
            ("alice-only", [ALICE], False),
            ("demo-only", [DEMO], False),
            ("ops", [], True),
        ]
    }
    lines: list[str] = []
    env = environment(data_dir, MAIL_PIPELINE_LOG_LEVEL="debug")
    with serving(cli("serve", "--port", "0"), env, data_dir.parent, lines=lines) as url:
        yield url, data_dir, tokens, lines


@pytest.fixture(scope="module")
def ids(served) -> dict[str, dict[str, str]]:
    """An email id, a thread id and a correspondent of each account."""
    _, data_dir, _, _ = served
    return {
        account: {
            "email": one(data_dir, "SELECT min(email_id) FROM {emails} WHERE account = ?", account),
            "thread": one(
                data_dir, "SELECT min(thread_id) FROM {emails} WHERE account = ?", account
            ),
            "sender": one(
                data_dir,
                "SELECT min(lower(from_address)) FROM {emails} WHERE account = ? AND lower(from_address) "
                "NOT IN (SELECT lower(from_address) FROM {emails} WHERE account <> ?)",
                account,
            ),
        }
        for account in (ALICE, DEMO)
    }


ROUTES = [
    ("/", {}),
    ("/api/search", {"q": "invoice"}),
    ("/api/emails/x", {}),
    ("/api/threads/x", {}),
    ("/api/people/anna@acme.test", {}),
    ("/api/digest", {"account": ALICE}),
    ("/api/accounts", {}),
    ("/api/status", {}),
    ("/mcp", {}),
]


@pytest.mark.parametrize(("path", "params"), ROUTES)
def test_every_route_refuses_a_request_without_a_valid_token(served, path, params):
    url, _, _, _ = served
    for token in (None, "not-a-token"):
        status, body = request(url, path, token, **params)
        assert status == 401, (path, status, body)
        assert "Sign in" in body if path == "/" else "access token is required" in body["error"]


def test_the_page_script_icon_and_bare_health_need_no_token(served):
    url, _, tokens, _ = served
    assert request(url, "/page.js")[0] == 200 and request(url, "/favicon.svg")[0] == 200
    # A container's health check: the service is up, and nothing else (not even its data dir).
    assert request(url, "/api/health") == (200, {"service": "mail-pipeline search"})
    assert request(url, "/api/health", "not-a-token")[0] == 401
    status, health = request(url, "/api/health", tokens["alice-only"])
    assert status == 200 and health["data_dir"]


def test_search_sees_only_the_tokens_accounts(served):
    url, _, tokens, _ = served
    status, answer = request(
        url, "/api/search", tokens["alice-only"], q="invoice", k=50, mode="text"
    )
    assert status == 200 and answer["results"]
    assert {hit["account"] for hit in answer["results"]} == {ALICE}
    # The demo's hostile subject, found with the demo's token, is not found with alice's.
    status, answer = request(url, "/api/search", tokens["demo-only"], q="gazebo plans", k=5)
    assert status == 200 and answer["results"][0]["subject"] == HOSTILE_SUBJECT
    status, answer = request(url, "/api/search", tokens["alice-only"], q="gazebo plans", k=50)
    assert status == 200 and all(hit["account"] == ALICE for hit in answer["results"])
    status, answer = request(url, "/api/search", tokens["ops"], q="invoice", k=100, mode="text")
    assert {hit["account"] for hit in answer["results"]} == {ALICE, DEMO}


def test_operators_alone_list_only_the_tokens_accounts(served):
    url, _, tokens, _ = served
    status, answer = request(url, "/api/search", tokens["alice-only"], q="after:2026/11/01", k=100)
    assert status == 200 and {hit["account"] for hit in answer["results"]} == {ALICE}


def test_another_accounts_mail_answers_as_mail_that_does_not_exist(served, ids):
    url, _, tokens, _ = served
    token = tokens["alice-only"]
    for kind in ("email", "thread"):
        theirs = request(url, f"/api/{kind}s/{quote(ids[DEMO][kind])}", token)
        missing = request(url, f"/api/{kind}s/{quote(ids[DEMO][kind] + 'x')}", token)
        assert theirs[0] == 404 and theirs[1]["error"] == missing[1]["error"].replace("x'", "'")
        assert request(url, f"/api/{kind}s/{quote(ids[ALICE][kind])}", token)[0] == 200
        assert request(url, f"/api/{kind}s/{quote(ids[DEMO][kind])}", tokens["demo-only"])[0] == 200
    status, person = request(url, f"/api/people/{quote(ids[DEMO]['sender'])}", token)
    assert status == 404 and person["error"] == f"no mail from or to {ids[DEMO]['sender']!r}"
    assert request(url, f"/api/people/{quote(ids[ALICE]['sender'])}", token)[0] == 200


def test_naming_another_account_is_refused_as_an_unknown_one(served):
    url, _, tokens, _ = served
    token = tokens["alice-only"]
    for path, params in [
        ("/api/search", {"q": "invoice"}),
        ("/api/emails/x", {}),
        ("/api/threads/x", {}),
        ("/api/digest", {}),
        ("/api/people/anna@acme.test", {}),
    ]:
        theirs = request(url, path, token, **params, account=DEMO)
        unknown = request(url, path, token, **params, account="nobody")
        assert theirs[0] == unknown[0] == 400, path
        assert theirs[1]["error"] == f"unknown account '{DEMO}'; known accounts: {ALICE}"
    status, accounts = request(url, "/api/accounts", token)
    assert status == 200 and [a["account"] for a in accounts] == [ALICE]


def test_the_sync_status_needs_an_admin_token(served):
    url, _, tokens, _ = served
    status, answer = request(url, "/api/status", tokens["alice-only"])
    assert status == 403 and "admin token" in answer["error"]
    status, rows = request(url, "/api/status", tokens["ops"])
    assert status == 200 and {row["account"] for row in rows} == {ALICE, DEMO}


def test_a_revoked_token_is_refused_at_once(served):
    url, data_dir, _, _ = served
    store = TokenStore(data_dir / "tokens.json")
    _, secret = store.add("short-lived", [ALICE], all_accounts=False, admin=False)
    assert request(url, "/api/accounts", secret)[0] == 200
    store.revoke("short-lived")
    assert request(url, "/api/accounts", secret)[0] == 401


def mcp_session(url: str, token: str | None, calls: list[tuple[str, dict]]) -> tuple[list, list]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=240) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            return tools, [await session.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def payload(result):
    assert not result.is_error, result.content
    data = result.structured_content
    return data["result"] if set(data) == {"result"} else data


def test_mcp_over_http_lists_and_calls_the_tools_within_the_tokens_accounts(served, ids):
    url, _, tokens, _ = served
    tools, (accounts, hits, mine, theirs, status) = mcp_session(
        url,
        tokens["alice-only"],
        [
            ("list_accounts", {}),
            ("search_mail", {"query": "invoice", "k": 50, "mode": "text"}),
            ("get_email", {"email_id": ids[ALICE]["email"]}),
            ("get_email", {"email_id": ids[DEMO]["email"]}),
            ("sync_status", {}),
        ],
    )
    assert {tool.name for tool in tools} == {
        "search_mail",
        "get_email",
        "get_thread",
        "list_accounts",
        "sync_status",
    }
    assert [a["account"] for a in payload(accounts)] == [ALICE]
    assert payload(hits) and {hit["account"] for hit in payload(hits)} == {ALICE}
    assert payload(mine)["account"] == ALICE
    assert theirs.is_error and f"no email with id {ids[DEMO]['email']!r}" in theirs.content[0].text
    assert status.is_error and "admin token" in status.content[0].text


def test_mcp_over_http_without_a_token_is_refused(served):
    url, _, _, _ = served
    from mcp import MCPError

    # The client's task group wraps the server's 401 as an MCPError (the route test checks the 401).
    with pytest.raises(ExceptionGroup) as refused:
        mcp_session(url, None, [])
    assert refused.group_contains(MCPError, match="Server returned an error response")


def test_the_audit_says_who_read_what_and_no_log_or_audit_line_holds_a_token(served):
    url, data_dir, tokens, lines = served
    request(url, "/api/search", tokens["alice-only"], q="secret query words", k=3, mode="text")
    audit = [
        json.loads(line) for line in (data_dir / "logs" / "audit.jsonl").read_text().splitlines()
    ]
    searches = [a for a in audit if a["route"] == "GET /api/search" and a["token"] == "alice-only"]
    assert searches and searches[-1]["accounts"] in ([ALICE], []) and searches[-1]["status"] == 200
    assert any(a["route"] == "mcp search_mail" and a["accounts"] == [ALICE] for a in audit)
    assert any(a["status"] == 401 and a["token"] is None for a in audit)
    text = (data_dir / "logs" / "audit.jsonl").read_text() + "".join(lines)
    assert "secret query words" not in (data_dir / "logs" / "audit.jsonl").read_text()
    assert "GET /api/search" in "".join(lines)  # the service's own request log was captured
    for secret in tokens.values():
        assert secret not in text
