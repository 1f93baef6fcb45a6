"""Quote stripping: what the author wrote stays, quotes, attributions, history and signatures go."""

from __future__ import annotations

import pytest

from mail_pipeline.message.quotes import strip_quotes_and_signature
from mail_pipeline.message.text import is_forward_subject


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Thanks!\n\nOn Mon, Mar 2, 2026 at 9:00 AM Bob <bob@x.org> wrote:\n> old\n> older",
            "Thanks!",
        ),
        (
            "Thanks!\n\nOn Mon, Mar 2, 2026 at 9:00 AM Bob <\nbob@x.org> wrote:\n\nold text",
            "Thanks!",
        ),
        ("Danke\n\nAm 02.03.2026 um 09:00 schrieb Bob <bob@x.org>:\n> alt", "Danke"),
        ("Merci\n\nLe lun. 2 mars 2026, Bob a écrit :\nancien", "Merci"),
        (
            "Inline:\n> question one\nanswer one\n> question two\nanswer two",
            "Inline:\nanswer one\nanswer two",
        ),
        ("See below.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\n\nold", "See below."),
        (
            "Yes.\n\n________________________________\nFrom: Bob <bob@x.org>\nSent: Monday, March 2\n"
            "To: Alice\nSubject: Q\n\nold",
            "Yes.",
        ),
        (
            "From: the team, with love.\nNo Sent line follows.",
            "From: the team, with love.\nNo Sent line follows.",
        ),
        ("Body text\n-- \nAlice Example\nACME Corp", "Body text"),
        ("Body text\n--\nAlice", "Body text"),
        (
            "Body text\n-- \nAlice\n\nP.S. The slides are online.",
            "Body text\nP.S. The slides are online.",
        ),
        ("Body text\n-- \nAlice\nPSA Group, Paris", "Body text"),
        ("Quick reply\n\nSent from my iPhone\n\n> quoted", "Quick reply"),
        ("Ok\n\nGet Outlook for iOS", "Ok"),
        (
            "On time delivery is our goal.\nWe wrote the plan.",
            "On time delivery is our goal.\nWe wrote the plan.",
        ),
        # Interleaved: the author's words below the first attribution survive.
        (
            "Hi Bob,\n\nOn Sun, 22 Nov 2009 10:00:00 +0100, Bob <bob@x.org> wrote:\n> first point\n\n"
            "Agreed.\n\n> second point\n\nNo, let's wait.\n\n-- \nAlice",
            "Hi Bob,\n\nAgreed.\n\nNo, let's wait.",
        ),
        # An "On ..." sentence that ends in "wrote:" is the author's when no quote follows it.
        (
            "On reflection, here is what I wrote:\n\nthe plan stands.",
            "On reflection, here is what I wrote:\n\nthe plan stands.",
        ),
        (
            "FYI\n-- \nAlice\n\n---------- Forwarded message ---------\nFrom: Bob <bob@x.org>\n"
            "Date: Mon, Mar 2, 2026\nSubject: Plan\n\nThe plan is ready.",
            "FYI\n\nFrom: Bob <bob@x.org>\nDate: Mon, Mar 2, 2026\nSubject: Plan\n\nThe plan is ready.",
        ),
        # Old history with nothing written above it is a forward: kept, or the mail is unfindable.
        (
            "From: Bob <bob@x.org>\nSent: Monday\nTo: Alice\nSubject: Plan\n\nThe plan.",
            "From: Bob <bob@x.org>\nSent: Monday\nTo: Alice\nSubject: Plan\n\nThe plan.",
        ),
        (
            "On Mon, Mar 2, 2026 at 9:00 AM Bob <bob@x.org> wrote:\n\nThe plan.\n> older",
            "The plan.",
        ),
        (
            "As I wrote on 2 March:\n\nthe budget is fixed.",
            "As I wrote on 2 March:\n\nthe budget is fixed.",
        ),
        ("Final.\n\nBob Smith/ACME wrote on 03/02/2026 10:15:20 AM:\n\nDraft.", "Final."),
        # A pasted Python session is the author's; ">>> " prose is a third quote level.
        (
            "Try:\n>>> import os\n>>> os.getcwd()\n'/home'\n>>> quoted prose here\n> >>> import sys",
            "Try:\n>>> import os\n>>> os.getcwd()\n'/home'",
        ),
        ("", ""),
    ],
)
def test_strip_quotes_and_signature(body, expected):
    assert strip_quotes_and_signature(body) == expected


@pytest.mark.parametrize("block", [
    "Von: Bob\nGesendet: Montag\nAn: Alice\nBetreff: Plan",
    "De : Bob\nEnvoyé : lundi\nÀ : Alice\nObjet : Plan",
    "De: Bob\nEnviado el: lunes\nPara: Alice\nAsunto: Plan",
    "Od: Bob\nOdesláno: pondělí\nKomu: Alice\nPředmět: Plan",
    "Kimden: Bob\nGönderildi: Pazartesi\nKime: Alice\nKonu: Plan",
    "寄件者: Bob\n寄件日期: 星期一\n收件者: Alice\n主旨: Plan",
    "보낸 사람: Bob\n보낸 날짜: 월요일\n받는 사람: Alice\n제목: Plan",
    "Feladó: Bob\nElküldve: hétfő\nCímzett: Alice\nTárgy: Plan",
])  # fmt: skip
def test_outlook_header_blocks_in_other_languages_start_old_history(block):
    assert strip_quotes_and_signature(f"Done.\n\n{block}\n\nThe old message.") == "Done."


@pytest.mark.parametrize("marker", ["-----Original Message-----", "----- Ursprüngliche Nachricht -----",
                                    "-----Message d'origine-----", "-----Původní zpráva-----", "-----原始邮件-----",
                                    "-----元のメッセージ-----", "-----원본 메시지-----"])  # fmt: skip
def test_original_message_lines_start_old_history(marker):
    assert strip_quotes_and_signature(f"Done.\n\n{marker}\nThe old message.") == "Done."


def test_outlook_header_block_is_forwarded_content_when_the_subject_says_so():
    body = "See below.\n\n________________________________\nFrom: Bob <bob@x.org>\nSent: Monday\nTo: Alice\n\nThe plan."
    assert strip_quotes_and_signature(body) == "See below."
    assert strip_quotes_and_signature(body, forwarded=True) == (
        "See below.\n\nFrom: Bob <bob@x.org>\nSent: Monday\nTo: Alice\n\nThe plan."
    )


@pytest.mark.parametrize(
    ("subject", "forwarded"),
    [
        ("Fwd: plan", True),
        ("FW: plan", True),
        ("[dev] WG: plan", True),
        ("TR: plan", True),
        ("Fwd: Re: plan", True),
        ("ENC: plan", True),
        ("Doorst: plan", True),
        ("I: plan", True),
        ("Re: Fwd: plan", False),
        ("Forward planning", False),
        ("plan", False),
    ],
)
def test_is_forward_subject(subject, forwarded):
    assert is_forward_subject(subject) is forwarded
