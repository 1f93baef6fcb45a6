"""Search operators against a known mailbox synced from the harness's Dovecot: each operator and
its negation select exactly the matching messages, past the default k, with and without words;
unknown operators and malformed values fail with the list of operators, in every way of asking."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mail_pipeline.indexing.query import OPERATORS, QueryError, parse_query
from mail_pipeline_tests.indexed_demo import cli, environment
from mail_pipeline_tests.known_mailbox import (
    ALL,
    TODAY,
    day_of,
    numbers,
    on_days,
    where,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def known_dir(known_mail) -> Path:
    return known_mail.data_dir


@pytest.fixture(scope="module")
def reader(known_dir):
    from mail_pipeline.service.reader import MailReader
    from mail_pipeline.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAIL_PIPELINE_DATA_DIR", str(known_dir))
        patch.setenv("MAIL_PIPELINE_TODAY", TODAY)
        settings = get_settings()
    return MailReader(settings)


# operator query -> the messages it selects (its negation selects all the others)
CASES = {
    "from:anna": where("anna"),
    "from:Berg": where("anna"),
    "to:alice@example": ALL - where("owner"),
    "to:anna": where("owner"),
    "from:alice": where("owner"),
    "cc:carl": where("cc_carl"),
    "cc:Gray": where("cc_carl"),
    "subject:invoice": where("invoice"),
    "has:attachment": where("attachment"),
    "filename:report": where("attachment"),
    "filename:report-10.csv": {10},
    "is:unread": ALL - where("seen"),
    "is:read": where("seen"),
    "is:flagged": where("flagged"),
    "is:answered": where("answered"),
    "in:Archive": where("archive"),
    "in:inbox": ALL - where("archive"),
    "account:alice": ALL,
    "after:2026/11/17": on_days(1, 2),
    "before:2026-11-17": on_days(0, 0),
    "newer_than:3d": on_days(1, 2),  # 2026-11-17 on, today being 2026-11-20
    "older_than:3d": on_days(0, 0),
    '"bank details"': where("bank_details"),
    'subject:"Invoice m0"': {0, 4, 8},  # Invoice m00, m04, m08
}


@pytest.mark.parametrize("query", sorted(CASES))
def test_each_operator_and_its_negation_list_exactly_their_mail(reader, query):
    expected = CASES[query]
    assert numbers(reader.search(query, k=100)) == expected
    assert numbers(reader.search("-" + query, k=100)) == ALL - expected


def test_an_operators_only_query_lists_newest_first(reader):
    hits = reader.search("is:read", k=100)
    arrivals = [(hit["day"], hit["sent_at"]) for hit in hits]
    assert arrivals == sorted(arrivals, reverse=True)
    assert numbers(reader.search("is:read", k=5)) == set(sorted(where("seen"), key=day_of)[-5:])


def test_excluded_words_and_operators_combine(reader):
    query = "from:anna -zebra -has:attachment"
    assert numbers(reader.search(query, k=100)) == where("anna") - where("zebra") - where(
        "attachment"
    )


@pytest.mark.parametrize("mode", ["text", "hybrid", "vector"])
def test_words_are_ranked_within_the_operators_selection(reader, mode):
    """k is the size of the selection, past the default k and below the mailbox's size: a filter
    applied to the top k afterwards would return fewer (the best "zebra" mail is unread). Text
    mode finds the word within the selection; the vector side ranks every selected email (in
    hybrid mode, where the word is found in the selection: where it is in none, and nothing
    selected is near it in meaning, the answer is no results and a note, ranking.unrelated)."""
    if mode == "text":
        expected = where("anna") & where("zebra")
        assert numbers(reader.search("from:anna zebra", mode=mode, k=len(expected))) == expected
    elif mode == "hybrid":
        expected = where("seen")
        assert len(ALL) > len(expected) > 10 and expected & where("invoice")
        assert numbers(reader.search("is:read invoice", mode=mode, k=len(expected))) == expected
    else:
        expected = where("seen")
        assert len(ALL) > len(expected) > 10
        assert numbers(reader.search("is:read zebra", mode=mode, k=len(expected))) == expected


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("Reminder: submit the report", "Reminder submit the report"),
        ("Action required: 10:30 review", "Action required 10:30 review"),
        ("Re: budget from:anna", "Re budget"),
    ],
)
def test_a_word_before_a_colon_and_a_space_is_text_as_in_a_subject(query, text):
    parsed = parse_query(query)
    assert parsed.text == text
    assert [t.operator for t in parsed.terms] == (["from"] if "from:" in query else [])


@pytest.mark.parametrize(
    ("query", "culprit"),
    [
        ("colour:red invoice", "unknown operator colour:"),
        ("is:important", "is: takes unread or read or flagged or answered"),
        ("has:pdf", "has: takes attachment"),
        ("after:2026-13-01", "after: needs a date"),
        ("newer_than:3 days", "newer_than: needs an age"),
        ("from:", "from: needs a value"),
        ('subject:"unclosed', "a quote is not closed"),
    ],
)
def test_unknown_operators_and_bad_values_fail_listing_the_operators(query, culprit):
    with pytest.raises(QueryError) as error:
        parse_query(query)
    assert culprit in str(error.value)
    for name in OPERATORS:
        assert f"{name}:" in str(error.value)


def test_the_cli_takes_operators_and_refuses_unknown_ones(known_dir):
    env = environment(known_dir)
    found = subprocess.run(
        cli("search", "cc:carl -is:read", "-k", "50", "--json"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert numbers(json.loads(found.stdout)) == where("cc_carl") - where("seen")
    refused = subprocess.run(
        cli("search", "label:work"), env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert "unknown operator label:" in refused.stderr
    assert "newer_than:" in refused.stderr


def test_the_api_and_the_mcp_reader_share_the_operators(reader):
    from mail_pipeline.service.reader import RequestError

    with pytest.raises(RequestError, match="unknown operator label:"):
        reader.search("label:work")
    assert numbers(reader.search("in:Archive is:flagged", k=100)) == where("archive") & where(
        "flagged"
    )
