"""`mail-pipeline serve`: the JSON API through a real HTTP client, and `mail-pipeline search`
through the service and without it, over the indexed demo mailbox."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode, urlsplit

import duckdb
import pytest

from mail_pipeline_tests.indexed_demo import ATTACHMENT_NAME, HOSTILE_SUBJECT, cli, environment

pytestmark = pytest.mark.e2e


def get(base: str, path: str, **params) -> tuple[int, object]:
    url = f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as reply:
            assert reply.headers["Content-Type"].startswith("application/json")
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            assert error.headers["Content-Type"].startswith("application/json")  # noqa: PT017
            return error.code, json.loads(error.read())


def sql(data_dir, query: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query, params or []).fetchall()


# -- the JSON API ----------------------------------------------------------------------------


def test_search_returns_hits_with_ids_dates_and_marked_snippets(search_service):
    status, answer = get(search_service, "/api/search", q="gazebo plans", k=5)
    hits = answer["results"]
    assert status == 200 and hits and answer["note"] is None
    top = hits[0]
    assert top["subject"] == HOSTILE_SUBJECT and top["sender"] == "Mallory <mallory@example.net>"
    assert (
        top["sent_at"] == "2026-11-19T15:30:00+00:00"
        and top["day"] == "2026-11-19"
        and top["account"] == "demo"
    )
    assert {"email_id", "thread_id", "score", "snippet"} <= set(top)
    assert [top["snippet"][a:b] for a, b in top["marks"]] == ["gazebo", "plans"]


def test_a_hit_from_an_attachment_names_it(search_service):
    status, answer = get(search_service, "/api/search", q="pergola warranty weather damage", k=3)
    hits = answer["results"]
    assert status == 200 and hits[0]["subject"] == "Papers you asked for"
    assert hits[0]["attachment"] == ATTACHMENT_NAME and "pergola" in hits[0]["snippet"]
    status, answer = get(search_service, "/api/search", q="gazebo plans", k=1)
    assert answer["results"][0]["attachment"] is None


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
def test_every_mode_keeps_to_the_date_filter(search_service, mode):
    status, answer = get(
        search_service,
        "/api/search",
        q="budget review meeting",
        mode=mode,
        since="2026-11-18",
        until="2026-11-18",
        account="demo",
        k=20,
    )
    hits = answer["results"]
    assert status == 200 and hits
    assert {hit["day"] for hit in hits} == {"2026-11-18"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "budget", "account": "nosuch"}, "unknown account 'nosuch'; known accounts: demo"),
        (
            {"q": "budget", "since": "2026-02-30"},
            "since must be a date YYYY-MM-DD, not '2026-02-30'",
        ),
        (
            {"q": "budget", "since": "2026-11-19", "until": "2026-11-18"},
            "since (2026-11-19) is after until (2026-11-18)",
        ),
        ({"q": "budget", "mode": "fuzzy"}, "mode must be one of hybrid, vector, text, not 'fuzzy'"),
        ({"q": "budget", "k": "0"}, "k must be a whole number from 1 to 100, not '0'"),
        ({"q": "  "}, "q (the search text) is required"),
        ({"q": "budget", "acount": "demo"}, "unknown parameter(s) acount"),
    ],
)
def test_bad_input_gets_a_400_naming_it(search_service, params, message):
    status, body = get(search_service, "/api/search", **params)
    assert status == 400 and message in body["error"]


def test_an_email_comes_whole_from_the_emails_view(search_service, indexed_demo):
    (email_id,) = sql(
        indexed_demo, "SELECT email_id FROM emails WHERE message_id = 'hostile-1@example.net'"
    )[0]
    status, email = get(search_service, f"/api/emails/{quote(email_id)}")
    assert status == 200
    assert email["message_id"] == "hostile-1@example.net" and email["subject"] == HOSTILE_SUBJECT
    assert (
        email["from_address"] == "mallory@example.net"
        and email["sent_at"] == "2026-11-19T15:30:00+00:00"
    )
    assert "<script>window.pwned=4</script>" in email["body_text"]
    assert [location["folder"] for location in email["locations"]] == ["INBOX"]
    assert email["to"] == [{"name": "", "address": "sam.taylor@example.com"}]


def test_attachments_are_named_not_carried(search_service, indexed_demo):
    rows = sql(
        indexed_demo,
        "SELECT email_id, [a.filename FOR a IN attachments] FROM emails WHERE len(attachments) > 0",
    )
    assert rows, "the demo mailbox has mail with attachments"
    email_id, names = rows[0]
    status, email = get(search_service, f"/api/emails/{email_id}", account="demo")
    assert status == 200 and [a["filename"] for a in email["attachments"]] == names
    assert all(
        set(a) == {"filename", "content_type", "size", "inline"} for a in email["attachments"]
    )


def test_a_thread_lists_its_emails_oldest_first(search_service, indexed_demo):
    thread_id, count = sql(
        indexed_demo,
        "SELECT thread_id, message_count FROM threads "
        "ORDER BY message_count DESC, thread_id LIMIT 1",
    )[0]
    assert count >= 2, "the demo mailbox has reply threads"
    status, thread = get(search_service, f"/api/threads/{thread_id}")
    assert status == 200 and thread["thread_id"] == thread_id and len(thread["emails"]) == count
    dates = [email["sent_at"] or email["received_at"] for email in thread["emails"]]
    assert dates == sorted(dates)
    expected = {
        row[0]
        for row in sql(indexed_demo, "SELECT email_id FROM emails WHERE thread_id = ?", [thread_id])
    }
    assert {email["email_id"] for email in thread["emails"]} == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/emails/no-such-email", "no email with id 'no-such-email'"),
        ("/api/threads/no-such-thread", "no thread with id 'no-such-thread'"),
        ("/api/nothing", "no such API: /api/nothing"),
        ("/favicon.ico", "no such page: /favicon.ico"),
    ],
)
def test_what_does_not_exist_is_a_404_saying_so(search_service, path, message):
    status, body = get(search_service, path)
    assert status == 404 and body["error"] == message


def test_accounts_and_status_agree_with_the_catalog(search_service, indexed_demo):
    status, accounts = get(search_service, "/api/accounts")
    ((stored,),) = sql(indexed_demo, "SELECT count(*) FROM emails")
    assert status == 200 and [a["account"] for a in accounts] == ["demo"]
    assert accounts[0]["emails"] == stored and accounts[0]["email"] == "sam.taylor@example.com"
    status, rows = get(search_service, "/api/status")
    assert status == 200 and {(r["account"], r["folder"], r["last_status"]) for r in rows} == {
        ("demo", "INBOX", "ok"),
        ("demo", "Archive", "ok"),
    }


def test_no_answer_carries_a_credential(search_service, indexed_demo):
    from mail_pipeline.storage.accounts import AccountRegistry

    token = AccountRegistry(indexed_demo / "accounts.json").load()["demo"].password_token
    answers = [
        get(search_service, path)[1] for path in ("/api/accounts", "/api/status", "/api/health")
    ]
    answers.append(get(search_service, "/api/search", q="password login demouser", k=20)[1])
    text = json.dumps(answers)
    assert token and token not in text and "demopass" not in text and "password_token" not in text


def test_the_page_and_its_script_are_served_under_a_strict_policy(search_service):
    for path, kind in (("/", "text/html"), ("/page.js", "text/javascript")):
        with urllib.request.urlopen(f"{search_service}{path}", timeout=30) as reply:
            assert reply.headers["Content-Type"].startswith(kind)
            assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
            assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
            assert reply.read()


# -- the CLI through the service, and without it -----------------------------------------------


def run_cli(data_dir, cwd, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(*args),
        env=environment(data_dir, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cli_searches_through_the_running_service(search_service, indexed_demo, tmp_path):
    port = str(urlsplit(search_service).port)
    # A model this process cannot load: only the service (with its own, warm) can answer.
    done = run_cli(
        indexed_demo,
        tmp_path,
        "search",
        "gazebo plans",
        "--json",
        "-k",
        "3",
        MAIL_PIPELINE_SEARCH_PORT=port,
        MAIL_PIPELINE_EMBEDDING_MODEL=str(tmp_path / "no-model"),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["subject"] == HOSTILE_SUBJECT


def test_the_cli_answers_the_same_with_and_without_the_service(
    search_service, indexed_demo, tmp_path
):
    via = str(urlsplit(search_service).port)
    for args in (
        ["search", "budget review", "--mode", "text", "--json", "-k", "5"],
        ["search", "budget review", "--mode", "text", "-k", "5", "--since", "2026-11-18"],
    ):
        served = run_cli(indexed_demo, tmp_path, *args, MAIL_PIPELINE_SEARCH_PORT=via)
        alone = run_cli(indexed_demo, tmp_path, *args, MAIL_PIPELINE_SEARCH_PORT=str(free_port()))
        assert served.returncode == alone.returncode == 0, (served.stderr, alone.stderr)
        assert served.stdout == alone.stdout and "budget" in served.stdout.lower()
    for port in (via, str(free_port())):
        refused = run_cli(
            indexed_demo,
            tmp_path,
            "search",
            "budget",
            "--account",
            "nosuch",
            MAIL_PIPELINE_SEARCH_PORT=port,
        )
        assert (
            refused.returncode == 2
            and "error: unknown account 'nosuch'; known accounts: demo" in refused.stderr
        )


def test_a_service_over_another_data_directory_is_not_used(search_service, tmp_path):
    done = run_cli(
        tmp_path / "empty",
        tmp_path,
        "search",
        "budget",
        "--mode",
        "text",
        MAIL_PIPELINE_SEARCH_PORT=str(urlsplit(search_service).port),
    )
    assert done.returncode == 1 and "nothing indexed yet" in done.stderr


def test_serve_on_a_busy_port_fails_at_once_naming_it(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(tmp_path / "data", tmp_path, "serve", "--port", str(port))
    assert done.returncode == 2
    assert (
        f"cannot listen on 127.0.0.1:{port}" in done.stderr
        and "MAIL_PIPELINE_SEARCH_PORT" in done.stderr
    )


def test_a_service_failing_a_search_leaves_the_cli_to_search_by_itself(
    search_service, indexed_demo, tmp_path
):
    """A loopback proxy passes the real service's health answer on and fails every search."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/api/health"):
                with urllib.request.urlopen(search_service + self.path, timeout=30) as reply:
                    status, body = reply.status, reply.read()
            else:
                status, body = (
                    500,
                    b'{"error": "internal error (KeyError); see the service\'s log"}',
                )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        args = ["search", "budget review", "--mode", "text", "--json", "-k", "5"]
        failed = run_cli(
            indexed_demo, tmp_path, *args, MAIL_PIPELINE_SEARCH_PORT=str(proxy.server_address[1])
        )
        direct = run_cli(
            indexed_demo,
            tmp_path,
            *args,
            MAIL_PIPELINE_SEARCH_PORT=str(urlsplit(search_service).port),
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert (
        failed.returncode == 0
        and "answered 500" in failed.stderr
        and "searching without it" in failed.stderr
    )
    assert failed.stdout == direct.stdout and json.loads(failed.stdout)
