"""The contacts asset over the known mailbox synced from the harness's Dovecot: one row per
correspondent with exactly the counts and dates the mailbox's rules give, the owner left out,
read through the `contacts` DuckDB view; rebuilding replaces the account's rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from mail_pipeline.stages.contacts import organisation
from mail_pipeline_tests.known_mailbox import TODAY, day_of, where

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def thread_of(n: int) -> int:
    """The owner's messages reply to message n - 3; every other message starts its own thread."""
    return n - 3 if n in where("owner") else n


def materialize_contacts(data_dir: Path) -> None:
    from dagster import DagsterInstance, materialize

    from mail_pipeline.defs.assets.contacts import contacts
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.settings import get_settings
    from mail_pipeline.storage import crypto

    with pytest.MonkeyPatch.context() as patch, DagsterInstance.ephemeral() as instance:
        patch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
        patch.setenv("MAIL_PIPELINE_DATA_DIR", str(data_dir))
        patch.setenv("MAIL_PIPELINE_TODAY", TODAY)
        instance.add_dynamic_partitions("accounts", ["alice"])
        result = materialize(
            [contacts],
            partition_key="alice",
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert result.success


@pytest.fixture(scope="module")
def contacts(known_mail) -> dict[str, dict]:
    known = known_mail
    materialize_contacts(known.data_dir)
    materialize_contacts(known.data_dir)  # again: the account's rows are replaced, not added
    with duckdb.connect(str(known.data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * FROM contacts WHERE account = 'alice'")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == len({row["address"] for row in rows}), "an address listed twice"
    return {row["address"]: row for row in rows}


def test_one_row_per_correspondent_and_never_the_owner(contacts):
    assert set(contacts) == {"anna@acme.test", "bob@beta.test", "carl@gamma.test"}


def test_counts_threads_and_dates_follow_the_mailbox(contacts):
    anna_sent, owner_sent = where("anna"), where("owner")
    anna = contacts["anna@acme.test"]
    assert (anna["messages_from"], anna["messages_to"]) == (len(anna_sent), len(owner_sent))
    assert anna["threads"] == len({thread_of(n) for n in anna_sent | owner_sent})
    assert anna["first_seen"] == min(day_of(n) for n in anna_sent | owner_sent)
    assert anna["last_seen"] == max(day_of(n) for n in anna_sent | owner_sent)
    assert anna["last_written_to"] == max(day_of(n) for n in owner_sent)
    assert anna["display_names"] == ["Anna Berg"]
    assert anna["organisation"] == "acme.test"
    carl = contacts["carl@gamma.test"]
    assert (carl["messages_from"], carl["messages_to"]) == (0, len(where("cc_carl")))
    assert carl["last_written_to"] is None
    bob = contacts["bob@beta.test"]
    assert (bob["messages_from"], bob["messages_to"]) == (len(where("bob")), 0)
    assert bob["day"] == date.fromisoformat(TODAY)


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("anna@acme.test", "acme.test"),
        ("a@mail.eu.acme.com", "acme.com"),
        ("b@london.example.co.uk", "example.co.uk"),
        ("c@Example.COM", "example.com"),
        ("d@localhost", "localhost"),
    ],
)
def test_the_organisation_is_the_registered_domain(address, domain):
    assert organisation(address) == domain
