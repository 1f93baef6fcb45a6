"""The labelled reply set: what authors wrote is searchable, what they quoted is not.

Run with -s to see the shares for the report: own lines kept (goal >= 98%) and quoted lines
removed (goal >= 95%).
"""

from __future__ import annotations

import pytest

from mail_pipeline.message.parse import parse_message
from mail_pipeline_tests.reply_corpus import REPLIES
from mail_pipeline_tests.reply_shape import Reply


def _norm(line: str) -> str:
    return " ".join(line.split())


def _outcome(index: int, reply: Reply) -> tuple[list[str], list[str], list[str], list[str]]:
    """(own lines kept, own lines lost, quoted lines removed, quoted lines left)."""
    found = {_norm(line) for line in parse_message(reply.raw(index)).search_text.split("\n")}
    kept, lost, removed, left = [], [], [], []
    for label, line in reply.lines():
        if label == "+":
            (kept if _norm(line) in found else lost).append(line)
        elif label == "-" and (content := _norm(line.lstrip("> "))):
            (left if content in found else removed).append(line)
    return kept, lost, removed, left


def test_the_set_is_big_varied_and_unambiguous():
    assert len(REPLIES) >= 40
    assert sum(r.html for r in REPLIES) >= 2
    for reply in REPLIES:
        own = {_norm(line) for label, line in reply.lines() if label == "+"}
        quoted = {_norm(line.lstrip("> ")) for label, line in reply.lines() if label == "-"}
        assert own, reply.name
        assert not own & quoted, reply.name  # a shared line could not tell kept from removed


@pytest.mark.parametrize(("index", "reply"), [(i, r) for i, r in enumerate(REPLIES) if not r.hard],
                         ids=[r.name for r in REPLIES if not r.hard])  # fmt: skip
def test_every_own_line_kept_and_no_quoted_line(index, reply):
    _kept, lost, _removed, left = _outcome(index, reply)
    assert lost == [], "author's lines missing from search_text"
    assert left == [], "quoted lines left in search_text"


def test_shares_over_the_whole_set():
    totals = [0, 0, 0, 0]
    for index, reply in enumerate(REPLIES):
        for slot, lines in enumerate(_outcome(index, reply)):
            totals[slot] += len(lines)
    kept, lost, removed, left = totals
    own_share, quoted_share = kept / (kept + lost), removed / (removed + left)
    print(
        f"\nreply set: {len(REPLIES)} messages; own lines kept {kept}/{kept + lost} = {own_share:.1%}; "
        f"quoted lines removed {removed}/{removed + left} = {quoted_share:.1%}"
    )
    assert own_share >= 0.98
    assert quoted_share >= 0.95
