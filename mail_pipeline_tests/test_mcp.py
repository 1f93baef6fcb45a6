"""`mail-pipeline mcp`: the tools through the real `mcp` client, the server spawned over stdio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import duckdb
import pytest

from mail_pipeline_tests.indexed_demo import HOSTILE_SUBJECT, cli, environment

pytestmark = pytest.mark.e2e
TOOLS = {"search_mail", "get_email", "get_thread", "list_accounts", "sync_status"}


def session(
    data_dir: Path, cwd: Path, calls: list[tuple[str, dict]], **env: str
) -> tuple[list, list]:
    """Spawn the server (`env` added to its environment), list its tools, make `calls` in order;
    (tools, results)."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    command, *args = cli("mcp")
    server = StdioServerParameters(
        command=command, args=args, env=environment(data_dir, **env), cwd=str(cwd)
    )

    async def run():
        async with Client(server, read_timeout_seconds=240) as client:
            tools = (await client.list_tools()).tools
            return tools, [await client.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def payload(result):
    """A tool's answer as data: its structured content (lists come wrapped as `result`), else the
    JSON of its text."""
    assert not result.is_error, result.content
    data = result.structured_content
    if data is None:
        return json.loads(result.content[0].text)
    return data["result"] if set(data) == {"result"} else data


def error_text(result) -> str:
    assert result.is_error
    return " ".join(part.text for part in result.content)


@pytest.fixture(scope="module")
def answers(indexed_demo, tmp_path_factory):
    with duckdb.connect(str(indexed_demo / "warehouse.duckdb"), read_only=True) as con:
        thread_id, count = con.execute(
            "SELECT thread_id, message_count FROM threads "
            "ORDER BY message_count DESC, thread_id LIMIT 1"
        ).fetchone()
        (hostile_id,) = con.execute(
            "SELECT email_id FROM emails WHERE message_id = 'hostile-1@example.net'"
        ).fetchone()
    calls = [
        ("search_mail", {"query": "gazebo plans", "k": 3}),
        (
            "search_mail",
            {
                "query": "meeting",
                "mode": "text",
                "since": "2026-11-18",
                "until": "2026-11-18",
                "k": 10,
            },
        ),
        ("get_email", {"email_id": hostile_id}),
        ("get_thread", {"thread_id": thread_id, "account": "demo"}),
        ("list_accounts", {}),
        ("sync_status", {}),
        ("search_mail", {"query": "budget", "account": "nosuch"}),
        ("search_mail", {"query": "budget", "since": "yesterday"}),
        ("get_email", {"email_id": "no-such-email"}),
    ]
    tools, results = session(indexed_demo, tmp_path_factory.mktemp("mcp"), calls)
    return {
        "tools": tools,
        "results": results,
        "thread": (thread_id, count),
        "hostile_id": hostile_id,
    }


def test_the_five_tools_are_offered_read_only(answers):
    tools = {tool.name: tool for tool in answers["tools"]}
    assert set(tools) == TOOLS
    assert all(tool.annotations.read_only_hint and tool.description for tool in tools.values())


def test_search_mail_answers_carry_ids_and_dates_to_cite(answers):
    hits = payload(answers["results"][0])
    top = hits[0]
    assert top["subject"] == HOSTILE_SUBJECT and top["message_id"] == "hostile-1@example.net"
    assert (
        top["email_id"] == answers["hostile_id"] and top["sent_at"] == "2026-11-19T15:30:00+00:00"
    )
    assert top["thread_id"] and top["account"] == "demo" and "gazebo" in top["snippet"]
    filtered = payload(answers["results"][1])
    assert filtered and {hit["day"] for hit in filtered} == {"2026-11-18"}
    assert all(hit["message_id"] for hit in filtered)


def test_get_email_and_get_thread_read_the_catalog(answers):
    email = payload(answers["results"][2])
    assert (
        email["message_id"] == "hostile-1@example.net"
        and "gazebo plans are ready" in email["body_text"]
    )
    thread_id, count = answers["thread"]
    thread = payload(answers["results"][3])
    assert thread["thread_id"] == thread_id and len(thread["emails"]) == count
    dates = [e["sent_at"] or e["received_at"] for e in thread["emails"]]
    assert dates == sorted(dates) and all(e["message_id"] for e in thread["emails"])


def test_accounts_and_sync_status_carry_no_secrets(answers, indexed_demo):
    from mail_pipeline.storage.accounts import AccountRegistry

    accounts, status = payload(answers["results"][4]), payload(answers["results"][5])
    assert [a["account"] for a in accounts] == ["demo"] and accounts[0]["emails"] > 0
    assert {(row["folder"], row["last_status"]) for row in status} == {
        ("INBOX", "ok"),
        ("Archive", "ok"),
    }
    token = AccountRegistry(indexed_demo / "accounts.json").load()["demo"].password_token
    text = json.dumps([accounts, status])
    assert token not in text and "demopass" not in text and "password" not in text


def test_bad_arguments_are_tool_errors_naming_them(answers):
    results = answers["results"]
    assert "unknown account 'nosuch'; known accounts: demo" in error_text(results[6])
    assert "since must be a date YYYY-MM-DD, not 'yesterday'" in error_text(results[7])
    assert "no email with id 'no-such-email'" in error_text(results[8])


def test_the_server_speaks_only_protocol_on_stdout(indexed_demo, tmp_path):
    """Anything else on stdout (a progress bar or a print while the model loads) breaks clients."""
    import subprocess

    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "search_mail", "arguments": {"query": "gazebo"}},
        },
    ]
    process = subprocess.Popen(
        cli("mcp"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment(indexed_demo),
        cwd=tmp_path,
        text=True,
    )
    try:
        lines = []
        for message in messages:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
            if "id" in message:
                lines.append(process.stdout.readline())
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    answers = [json.loads(line) for line in lines]
    assert [answer["id"] for answer in answers] == [1, 2]
    assert answers[0]["result"]["serverInfo"]["name"] == "mail-pipeline"
    assert not answers[1]["result"].get("isError") and "gazebo" in json.dumps(answers[1]["result"])
    assert process.stdout.read().strip() == ""


def test_search_mail_asks_the_running_search_service(indexed_demo, search_service, tmp_path):
    """With a service serving this data directory, search_mail asks it, as the CLI does: given a
    model it cannot load, the MCP server still finds mail, so it loaded none of its own."""
    port = search_service.rsplit(":", 1)[1]
    calls = [("search_mail", {"query": "gazebo plans", "k": 3})]
    env = {"MAIL_PIPELINE_SEARCH_PORT": port, "MAIL_PIPELINE_EMBEDDING_MODEL": "no-such-model"}
    _, [result] = session(indexed_demo, tmp_path, calls, **env)
    assert not result.is_error, error_text(result)
    top = payload(result)[0]
    assert top["subject"] == HOSTILE_SUBJECT and top["message_id"] == "hostile-1@example.net"
