"""End to end: Dovecot -> raw_messages -> emails -> email_chunks -> email_embeddings -> search,
materializing the real asset graph (with its checks) into a temporary data directory."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from dagster import materialize

from mail_pipeline import cli
from mail_pipeline.defs.partitions import partition_key, split_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.graph import CHECKS, email_chunks, email_embeddings, emails, raw_messages
from mail_pipeline_tests.mailgen import message

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UTC = UTC
DAYS = [date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)]
GRAPH = [raw_messages, emails, email_chunks, email_embeddings]


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")


def conversation() -> list[tuple[str, bytes, datetime]]:
    """Six messages over three days and two folders; m4 lost its References (In-Reply-To only)."""
    mail = []
    refs: list[str] = []
    topics = [
        "the quarterly budget review",
        "moving the review to Thursday",
        "room booking for Thursday",
        "agenda for the budget review",
        "catering for the review",
        "final minutes of the review",
    ]
    for i, topic in enumerate(topics):
        when = datetime(2026, 11, 10, 9, tzinfo=UTC) + timedelta(hours=12 * i)
        mid = f"thread{i}@example.test"
        headers = ""
        if refs:
            headers += f"In-Reply-To: <{refs[-1]}>\r\n"
            if i != 4:
                headers += "References: " + " ".join(f"<{r}>" for r in refs) + "\r\n"
        raw = message(
            f"thread{i}",
            when,
            subject=("Re: " if i else "") + "Budget review",
            body=f"Let's talk about {topic}.\r\n\r\n-- \r\nDana\r\n",
            extra_headers=headers,
        )
        mail.append(("Archive" if i % 2 else "INBOX", raw, when))
        refs.append(mid)
    return mail


def seed(dovecot):
    mail = conversation()
    mail.append(
        (
            "INBOX",
            message(
                "invoice",
                datetime(2026, 11, 11, 13, tzinfo=UTC),
                subject="Invoice INV-2026-0042 overdue",
                body="Hello,\r\n\r\nInvoice INV-2026-0042 for the October consulting work is 30 days overdue.\r\n"
                "Please arrange payment of EUR 4,200 this week.\r\n",
            ),
            datetime(2026, 11, 11, 13, tzinfo=UTC),
        )
    )
    # The same message filed in two folders is one email listing both.
    copy = message(
        "copied",
        datetime(2026, 11, 12, 8, tzinfo=UTC),
        subject="Offsite in Lisbon",
        body="The team offsite will be in Lisbon in March; flights are booked.\r\n",
    )
    mail += [
        ("INBOX", copy, datetime(2026, 11, 12, 8, tzinfo=UTC)),
        ("Archive", copy, datetime(2026, 11, 12, 8, tzinfo=UTC)),
    ]
    dovecot.append(mail)


def run_graph(instance, day):
    instance.add_dynamic_partitions("accounts", ["alice"])
    return materialize(
        GRAPH + CHECKS,
        partition_key=partition_key("alice", day),
        resources=build_resources(get_settings()),
        instance=instance,
    )


def test_full_pipeline_views_checks_and_search(dovecot, alice, data_dir, instance, capsys):
    seed(dovecot)
    for day in DAYS:
        result = run_graph(instance, day)
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [
            (c.check_name, c.metadata) for c in checks if not c.passed
        ]

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_messages").fetchone()[0] == 9
    assert con.execute("SELECT count(*) FROM emails").fetchone()[0] == 8
    threads = con.execute(
        "SELECT count(DISTINCT thread_id) FROM emails WHERE subject_normalized = 'budget review'"
    ).fetchone()[0]
    assert threads == 1
    thread = con.execute(
        "SELECT message_count FROM threads WHERE subject = 'Budget review'"
    ).fetchone()
    assert thread == (6,)
    locations = con.execute(
        "SELECT len(locations) FROM emails WHERE message_id = 'copied@example.test'"
    ).fetchone()
    assert locations == (2,)
    volume = dict(con.execute("SELECT day, messages FROM daily_volume").fetchall())
    assert sum(volume.values()) == 8
    chunk_count = con.execute("SELECT count(*) FROM email_chunks").fetchone()[0]
    con.close()

    from mail_pipeline.storage.vectors import VectorStore

    store = VectorStore(data_dir / "lancedb")
    assert store.count() == chunk_count
    run_graph(instance, DAYS[1])  # re-materializing replaces exactly that partition's rows
    assert store.count() == chunk_count

    assert cli.main(["search", "INV-2026-0042", "--json", "-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["subject"] == "Invoice INV-2026-0042 overdue"
    assert (
        cli.main(
            [
                "search",
                "where will the team offsite be held",
                "--mode",
                "vector",
                "--json",
                "-k",
                "2",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)[0]["subject"] == "Offsite in Lisbon"
    assert cli.main(["search", "budget", "--since", "2026-11-12", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and all(h["day"] >= "2026-11-12" for h in hits)
    # Search describes each email from its LanceDB rows: they must say what the catalog says.
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        for hit in hits:
            subject, name, address, sent_at, thread_id = con.execute(
                "SELECT subject, from_name, from_address, coalesce(sent_at, received_at), thread_id "
                "FROM emails WHERE account = ? AND email_id = ?",
                [hit["account"], hit["email_id"]],
            ).fetchone()
            assert hit["subject"] == subject and hit["thread_id"] == thread_id
            assert hit["sender"] == (f"{name} <{address}>" if name else address)
            assert datetime.fromisoformat(hit["sent_at"]) == sent_at


POSTGRES_INSTANCE = """
storage:
  postgres:
    postgres_db:
      username: postgres
      password: ""
      hostname: 127.0.0.1
      db_name: postgres
      port: {port}
      scheme: postgresql+psycopg2
telemetry:
  enabled: false
"""


def test_the_pipeline_runs_green_on_a_postgres_instance(
    dovecot, alice, data_dir, postgres, tmp_path
):
    from dagster import AssetKey, DagsterInstance

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POSTGRES_INSTANCE.format(port=postgres.port))
    seed(dovecot)
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = run_graph(instance, DAYS[1])
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
        assert instance.get_materialized_partitions(AssetKey("email_embeddings")) == {
            f"alice|{DAYS[1]}"
        }


def run_days(instance):
    """One run over DAYS, as a backfill under the single-run policy makes it."""
    instance.add_dynamic_partitions("accounts", ["alice"])
    return materialize(
        GRAPH + CHECKS,
        resources=build_resources(get_settings()),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": str(partition_key("alice", DAYS[0])),
            "dagster/asset_partition_range_end": str(partition_key("alice", DAYS[-1])),
        },
    )


def test_a_multi_day_run_records_each_days_own_figures_and_checks(
    dovecot, alice, data_dir, instance
):
    seed(dovecot)
    result = run_days(instance)
    assert result.success
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        for stage, view in (
            ("raw_messages", "raw_messages"),
            ("emails", "emails"),
            ("email_chunks", "email_chunks"),
        ):
            expected = dict(
                con.execute(f"SELECT day::VARCHAR, count(*) FROM {view} GROUP BY day").fetchall()
            )
            recorded = {
                split_key(m.partition)[1].isoformat(): m.metadata["dagster/row_count"].value
                for m in result.asset_materializations_for_node(stage)
            }
            assert recorded == expected, stage
    assert (
        len(
            {
                m.metadata["summary"].value
                for m in result.asset_materializations_for_node("raw_messages")
            }
        )
        == 3
    )
    for check in CHECKS:
        [key] = check.check_keys
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
        by_partition = {r.partition: r.status.value for r in history if r.partition is not None}
        assert by_partition == {str(partition_key("alice", d)): "SUCCEEDED" for d in DAYS}, key
        # One result per partition, none without one (the UI's overview: "Partition —").
        assert len(history) == len(DAYS), key
        # Each result names the materialization it checked: else the UI shows it as stale (missing).
        infos = instance.event_log_storage.get_asset_check_partition_info([key])
        assert {i.partition_key for i in infos if i.is_current} >= set(by_partition), key


def test_messages_sharing_a_message_id_are_distinct_emails_and_all_findable(
    dovecot, alice, data_dir, instance, capsys
):
    when = datetime(2026, 11, 10, 9, tzinfo=UTC)
    words = ["kumquat", "marzipan", "tamarind"]  # one word only each version holds
    mail = [
        (
            "INBOX" if i < 2 else "Archive",
            message(
                "shared",
                when + timedelta(minutes=i),
                subject="Harbour report",
                body=f"The harbour report mentions {word} shipments this week.\r\n",
            ),
            when + timedelta(minutes=i),
        )
        for i, word in enumerate(words)
    ]
    copy = message("copied", when, subject="Offsite", body="The offsite is in Lisbon.\r\n")
    mail += [("INBOX", copy, when), ("Archive", copy, when)]
    dovecot.append(mail)
    result = run_graph(instance, DAYS[0])
    assert all(c.passed for c in result.get_asset_check_evaluations())

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT email_id, thread_id, search_text FROM emails WHERE message_id = 'shared@example.test'"
        ).fetchall()
        copies = con.execute(
            "SELECT len(locations) FROM emails WHERE message_id = 'copied@example.test'"
        ).fetchall()
        chunked = {
            r[0] for r in con.execute("SELECT DISTINCT email_id FROM email_chunks").fetchall()
        }
        thread = con.execute(
            "SELECT message_count FROM threads WHERE subject = 'Harbour report'"
        ).fetchall()
    assert thread == [(3,)]
    assert len(rows) == 3 and len({r[0] for r in rows}) == 3 and len({r[1] for r in rows}) == 1
    assert copies == [(2,)]
    by_word = {word: email for email, _thread, text in rows for word in words if word in text}
    assert set(by_word) == set(words) and set(by_word.values()) <= chunked
    for word, email in by_word.items():
        assert cli.main(["search", word, "--mode", "text", "--json", "-k", "3"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["email_id"] == email


def test_a_multi_day_run_makes_the_newest_day_searchable_first(
    dovecot, alice, data_dir, instance, monkeypatch
):
    """Each day's vectors are committed as soon as it is embedded, newest first: after the first
    commit, search finds the newest day's mail and none of the older days'."""
    from mail_pipeline.indexing.search import search
    from mail_pipeline.storage.vectors import VectorStore

    seed(dovecot)
    settings = get_settings()
    words = {
        DAYS[0]: "quarterly",
        DAYS[1]: "overdue",
        DAYS[2]: "Lisbon",
    }  # each only in that day's mail
    commits: list[tuple[date, set[date]]] = []  # (day committed, days search finds right after)
    replace = VectorStore.replace_partition

    def searched_after(store, account, day, rows):
        written = replace(store, account, day, rows)
        found = {
            d
            for d, word in words.items()
            if any(hit.day == d for hit in search(word, k=5, mode="text", settings=settings))
        }
        commits.append((day, found))
        return written

    monkeypatch.setattr(VectorStore, "replace_partition", searched_after)
    assert run_days(instance).success
    assert [day for day, _found in commits] == DAYS[::-1]
    assert [found for _day, found in commits] == [{DAYS[2]}, {DAYS[2], DAYS[1]}, set(DAYS)]
