"""Search operators, the way Gmail, notmuch and mu taught people to write them:
`from:anna has:attachment after:2026/11/01 invoice "bank details" -draft -in:Spam`.

A query is parsed once into free text (what gets ranked) and terms (what filters); the terms are
applied before ranking (indexing/filters.py), never by dropping hits from a top-k afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

# operator -> what its value is, for the error that lists them
OPERATORS: dict[str, str] = {
    "from": "address or name part",
    "to": "address or name part",
    "cc": "address or name part",
    "subject": "text in the subject",
    "has": "attachment",
    "filename": "part of an attachment's name",
    "is": "unread, read, flagged or answered",
    "in": "folder",
    "account": "account slug",
    "after": "date YYYY-MM-DD or YYYY/MM/DD (that day or later)",
    "before": "date YYYY-MM-DD or YYYY/MM/DD (days before it)",
    "newer_than": "age such as 3d, 2w, 6m, 1y",
    "older_than": "age such as 3d, 2w, 6m, 1y",
}
IS_VALUES = ("unread", "read", "flagged", "answered")
HAS_VALUES = ("attachment",)
AGE_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
# op:value, op:"quoted value", "a phrase", or a bare word; each may start with '-'
_TOKEN = re.compile(r'(-?)(?:([A-Za-z_]+):(?:"([^"]*)"|(\S*))|"([^"]*)"|(\S+))')
_AGE = re.compile(r"^(\d{1,5})([dwmy])$")
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


class QueryError(ValueError):
    """A query that cannot be read: the message names the culprit and lists the operators."""


@dataclass(frozen=True)
class Term:
    """One filter: `operator` is one of OPERATORS, or "phrase"/"word" for a quoted phrase or an
    excluded word; `value` is normalised (dates ISO, ages in days)."""

    operator: str
    value: str
    negated: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the words to rank by (phrases' words included, excluded words not)
    terms: tuple[Term, ...]

    @property
    def filters_only(self) -> bool:
        return not self.text.strip()


def known_operators() -> str:
    return "; ".join(f"{name}: ({what})" for name, what in OPERATORS.items())


def _fail(message: str) -> QueryError:
    return QueryError(
        f"{message}. Known operators: {known_operators()}; "
        'also "quoted phrases", -word and -operator:value to exclude'
    )


def _date(value: str, operator: str) -> str:
    match = _DATE.match(value)
    try:
        if match is None:
            raise ValueError(value)
        return date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:
        raise _fail(f"{operator}: needs a date YYYY-MM-DD or YYYY/MM/DD, not {value!r}") from None


def _age(value: str, operator: str) -> str:
    match = _AGE.match(value.lower())
    if match is None:
        raise _fail(f"{operator}: needs an age such as 3d, 2w, 6m or 1y, not {value!r}")
    return str(int(match.group(1)) * AGE_DAYS[match.group(2)])


def _choice(value: str, operator: str, allowed: tuple[str, ...]) -> str:
    if value.lower() not in allowed:
        raise _fail(f"{operator}: takes {' or '.join(allowed)}, not {value!r}")
    return value.lower()


def _term(operator: str, value: str, negated: bool) -> Term:
    name = operator.lower()
    if name not in OPERATORS:
        raise _fail(f"unknown operator {operator}:")
    if not value:
        raise _fail(f"{name}: needs a value")
    if name in ("after", "before"):
        value = _date(value, name)
    elif name in ("newer_than", "older_than"):
        value = _age(value, name)
    elif name == "is":
        value = _choice(value, name, IS_VALUES)
    elif name == "has":
        value = _choice(value, name, HAS_VALUES)
    return Term(name, value, negated)


def parse_query(query: str) -> ParsedQuery:
    """Free text and filter terms of `query`; QueryError (listing the operators) when unreadable."""
    words: list[str] = []
    terms: list[Term] = []
    if query.count('"') % 2:
        raise _fail("a quote is not closed")
    for match in _TOKEN.finditer(query):
        minus, operator, quoted_value, value, phrase, word = match.groups()
        negated = minus == "-"
        if operator is not None and (value or "").startswith("//"):
            word = match.group(0)[len(minus) :]  # a URL (https://…), not an operator
            operator = None
        elif (
            operator is not None
            and not (quoted_value or value)
            and operator.lower() not in OPERATORS
        ):
            # "Reminder: …", "Re: …": a word followed by a colon, as in a subject, is text.
            word, operator = operator, None
        if operator is not None:
            terms.append(
                _term(operator, quoted_value if quoted_value is not None else value, negated)
            )
        elif phrase is not None:
            if phrase.strip():
                terms.append(Term("phrase", " ".join(phrase.split()), negated))
                if not negated:
                    words.append(phrase)
        elif negated and word:
            terms.append(Term("word", word, True))
        elif word and word != "-":
            words.append(word)
    return ParsedQuery(" ".join(" ".join(words).split()), tuple(terms))


def age_cutoff(today: date, days: str) -> date:
    """The first day of an age window ending `today`: newer_than:3d on the 10th keeps the 7th on."""
    return today - timedelta(days=int(days))
