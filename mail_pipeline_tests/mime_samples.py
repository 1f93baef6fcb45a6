"""Byte-literal sample messages for the MIME parser tests, one per awkward case.

Written with LF line ends for readability; `crlf` turns them into the CRLF form IMAP serves.
"""

from __future__ import annotations


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


HEAD = b"""From: Alice Example <alice@Example.COM>
To: Bob <bob@example.org>
Date: Tue, 03 Mar 2026 14:05:00 +0100
Message-ID: <sample-1@Example.COM>
MIME-Version: 1.0
"""


def plain(
    subject: bytes, body: bytes = b"Hello Bob.\n", ctype: bytes = b"text/plain; charset=utf-8"
) -> bytes:
    return crlf(HEAD + b"Subject: " + subject + b"\nContent-Type: " + ctype + b"\n\n" + body)


SUBJECT_UTF8 = plain(b"=?UTF-8?B?UHLDvGZ1bmcg4pyTIOWujOS6hg==?=")
SUBJECT_LATIN1 = plain(b"=?ISO-8859-1?Q?Caf=E9_cr=E8me_br=FBl=E9e?=")
SUBJECT_ISO2022JP = plain(b"=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+JEckORsoQg==?=")
SUBJECT_SHIFT_JIS = plain(b"=?Shift_JIS?B?ie+LY4LMi2OOlphe?=")
SUBJECT_GB2312 = plain(b"=?gb2312?B?1tDOxNPKvP7W98zi?=")
# One UTF-8 character split across two encoded words on two folded lines, then plain text,
# then a word in another charset.
SUBJECT_SPLIT_MIXED = plain(
    b"Re: [team] =?utf-8?b?44Om44OL4w==?=\n =?utf-8?b?grPjg7zjg4k=?= test and\n"
    b" =?iso-8859-1?q?=C0_bient=F4t?="
)

BODY_LATIN1_LABELLED_UTF8 = plain(b"Menu", b"Caf\xe9 cr\xe8me, 5\x80\n")
BODY_NO_CHARSET_UTF8 = crlf(HEAD + b"Subject: no charset\n\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\n")
BODY_NO_CONTENT_TYPE_ASCII = crlf(HEAD + b"Subject: plain ascii\n\nJust ascii text.\n")

RAW_8BIT_HEADERS = crlf(
    b"From: J\xc3\xb6rg M\xc3\xbcller <jm@Beispiel.DE>\n"
    b"To: Ren\xe9 <rene@example.fr>\n"
    b"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\n"
    b"Date: Tue, 03 Mar 2026 14:05:00 +0100\nMessage-ID: <raw8@example.de>\n\nHallo.\n"
)

MISSING_DATE = crlf(
    b"From: a@example.com\nMessage-ID: <nodate@example.com>\nSubject: no date\n\nbody\n"
)
MISSING_MESSAGE_ID = crlf(
    b"From: a@example.com\nDate: Tue, 03 Mar 2026 14:05:00 +0000\nSubject: no id\n\nbody\n"
)
MISSING_FROM = crlf(
    b"Message-ID: <nofrom@example.com>\nDate: Tue, 03 Mar 2026 14:05:00 +0000\nSubject: x\n\nbody\n"
)
MISSING_ALL = crlf(b"Subject: nothing else\n\nbody only\n")
BAD_DATE = crlf(b"From: a@example.com\nMessage-ID: <bad@x.com>\nDate: someday soon\n\nbody\n")

DUPLICATE_HEADERS = crlf(
    b"From: a@example.com\nTo: one@example.com\nTo: two@example.com\nSubject: first\n"
    b"Subject: second\nMessage-ID: <dup@example.com>\nMessage-ID: <dup2@example.com>\n"
    b"Date: Tue, 03 Mar 2026 14:05:00 +0000\n\nbody\n"
)

NESTED_ALTERNATIVE = crlf(
    HEAD
    + b"""Subject: nested
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Plain version with caf=C3=A9 and a soft=
 break.
--alt
Content-Type: text/html; charset=utf-8

<html><body><p>HTML version</p><img src="cid:logo@x"></body></html>
--alt--
--rel
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
--rel--
--mixed
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--mixed--
"""
)

HTML_ONLY = crlf(
    HEAD
    + b"""Subject: newsletter
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><title>Title</title><style>td { color: red; }</style>
<script>var tracking =3D "abc";</script></head><body>
<p>Dear <b>reader</b>, see <a href=3D"https://example.com/very/long/tracking/url?id=3D123456">our =
offer</a> &amp; more.</p>
<table><tr><th>Item</th><th>Price</th></tr><tr><td>Widget</td><td>=E2=82=AC5</td></tr></table>
<img src=3D"https://t.example.com/open.gif" width=3D"1" height=3D"1">
<img src=3D"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=3D=3D">
<!-- a comment that must not show -->
</body></html>
"""
)

BASE64_BODY = plain(
    b"base64 body",
    b"R3LDvMOfZSBhdXMgS8O2bG4sIHNjaMO2bmUgVGFnZSEKClZpZWxlIEdyw7zDn2UKSsO2cmcK\n",
    b"text/plain; charset=utf-8\nContent-Transfer-Encoding: base64",
)
QP_BODY = plain(
    b"qp body",
    b"Sch=C3=B6ne Gr=C3=BC=C3=9Fe, this line is long and gets a soft line brea=\nk here.\n",
    b"text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable",
)
JAPANESE_BODY = plain(
    b"=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+JEckORsoQg==?=",
    b"GyRCRnxLXDhsJE5LXEo4JEckOSEjGyhC\n",
    b"text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: base64",
)

RFC2231_FILENAMES = crlf(
    HEAD
    + b"""Subject: files
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

See attached.
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20%C3%9Cbersicht%202026.pdf

JVBERi0xLjQK
--b
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment;
 filename*0*=utf-8''Sehr%20langer%20Dateiname%20;
 filename*1*=f%C3%BCr%20Notizen.txt

notes
--b
Content-Type: application/octet-stream; name="=?utf-8?q?r=C3=A9sum=C3=A9.docx?="
Content-Disposition: attachment

abc
--b--
"""
)

FORWARDED_RFC822 = crlf(
    HEAD
    + b"""Subject: Fwd: original
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

Forwarding this.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

From: Carol <carol@example.net>
Subject: original
Message-ID: <orig@example.net>
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain

The original text.
--inner
Content-Type: image/jpeg; name="photo.jpg"
Content-Disposition: attachment; filename="photo.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQSkZJRg==
--inner--

--outer--
"""
)

CALENDAR_INVITE = crlf(
    HEAD
    + b"""Subject: Invitation: Planning @ Wed 4 Mar 2026
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: multipart/alternative; boundary="a"

--a
Content-Type: text/plain; charset=utf-8

You have been invited to Planning on Wednesday.
--a
Content-Type: text/calendar; charset=utf-8; method=REQUEST

BEGIN:VCALENDAR
METHOD:REQUEST
BEGIN:VEVENT
SUMMARY:Planning
DTSTART:20260304T090000Z
END:VEVENT
END:VCALENDAR
--a--
--m
Content-Type: application/ics; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"

BEGIN:VCALENDAR
END:VCALENDAR
--m--
"""
)

BOUNCE = crlf(b"""From: Mail Delivery Subsystem <MAILER-DAEMON@mx.Example.COM>
To: alice@example.com
Subject: Undelivered Mail Returned to Sender
Date: Tue, 03 Mar 2026 14:05:00 +0000
Message-ID: <bounce-1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@example.org>: host mx.example.org said: 550 5.1.1 User unknown
--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1

--r
Content-Type: message/rfc822

From: alice@example.com
To: nobody@example.org
Subject: hello
Message-ID: <sent-1@example.com>

The message that bounced.
--r--
""")

LONG_LINES = plain(b"long lines", (b"word " * 2000).rstrip() + b"\n" + b"x-y," * 2_500 + b"\n")
LONG_HTML_LINE = crlf(
    HEAD
    + b"Subject: long html\nContent-Type: text/html; charset=utf-8\n\n<p>"
    + b"lorem ipsum " * 1000
    + b"</p>\n"
)

NUL_BYTES = crlf(
    HEAD
    + b"Subject: nul\x00 bytes\nContent-Type: text/plain; charset=utf-8\n\nbefore\x00after\nline\x00two\n"
)

TRUNCATED = crlf(
    HEAD
    + b"""Subject: truncated
Content-Type: multipart/mixed; boundary="t"

--t
Content-Type: text/plain; charset=utf-8

The start survives.
--t
Content-Type: application/pdf; name="big.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+CnN0cmVh
bQp4nK1XS3PbNhC+81fsKXRm"""
)


def nested_multipart(depth: int) -> bytes:
    """A message with ``depth`` multiparts inside one another, text at the bottom."""
    out = [HEAD, b"Subject: deep\n"]
    out += [
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    ]
    out.append(b"Content-Type: text/plain\n\nhello from the bottom\n")
    out += [b"--b%d--\n" % i for i in reversed(range(depth))]
    return crlf(b"".join(out))


def nested_rfc822(depth: int) -> bytes:
    """``depth`` message/rfc822 parts inside one another, with no multipart boundary at all."""
    out = [HEAD, b"Subject: chain\n"]
    out += [b"Content-Type: message/rfc822\n\nSubject: level %d\n" % i for i in range(depth)]
    out.append(b"\nbottom\n")
    return crlf(b"".join(out))


def many_parts(count: int) -> bytes:
    out = [HEAD, b'Subject: many\nContent-Type: multipart/mixed; boundary="p"\n\n']
    out += [b"--p\nContent-Type: text/plain\n\npart %d\n" % i for i in range(count)]
    out.append(b"--p--\n")
    return crlf(b"".join(out))


def digest(count: int) -> bytes:
    """A wide but shallow message: ``count`` forwarded messages, each multipart/alternative."""
    out = [HEAD, b'Subject: digest\nContent-Type: multipart/mixed; boundary="d"\n\n--d\n']
    out.append(b"Content-Type: text/plain\n\nToday's digest.\n")
    for i in range(count):
        out.append(
            b"--d\nContent-Type: message/rfc822\n\nSubject: item %d\nMessage-ID: <i%d@x.org>\n"
            % (i, i)
        )
        out.append(b'Content-Type: multipart/alternative; boundary="a%d"\n\n--a%d\n' % (i, i))
        out.append(
            b"Content-Type: text/plain\n\nitem %d text\n--a%d\nContent-Type: text/html\n\n" % (i, i)
        )
        out.append(b"<p>item %d html</p>\n--a%d--\n" % (i, i))
    out.append(b"--d--\n")
    return crlf(b"".join(out))


HTML_META_CHARSET = crlf(
    HEAD + b'Subject: meta\nContent-Type: text/html\n\n<html><head><meta charset="windows-1252">'
    b"</head><body><p>Price: 5\x80 &amp; caf\xe9</p></body></html>\n"
)


# RFC 5322 Appendix A.5 verbatim: comments everywhere, a group, folding whitespace.
RFC5322_COMMENTS = crlf(b"""From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>
To:A Group(Some people)
     :Chris Jones <c@(Chris's host.)public.example>,
         joe@example.org,
  John <jdoe@one.test> (my dear friend); (the end of the group)
Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;
Date: Thu,
      13
        Feb
          1969
      23:32
               -0330 (Newfoundland Time)
Message-ID:              <testabcd.1234@silly.test>

Testing.
""")
# Notification senders put a comment between name and address; RFC 822's "addr (Name)" form.
COMMENT_VIA = crlf(b"""From: "Jane Doe" (via Google Docs) <drive-shares-noreply@google.com>
Reply-To: jane.doe@example.com (Jane Doe)
To: Team (all) <team@example.com>
Subject: Document shared with you
Date: Tue, 03 Mar 2026 14:05:00 +0000
Message-ID: <via@google.com>

Jane Doe shared a document.
""")
# Hand-rolled senders: two bare addresses, and a name without angle brackets.
FROM_TWO_BARE = crlf(b"""From: alerts@monitor.example.com ops@monitor.example.com
To: Support Team support@helpdesk.example
Subject: disk full
Date: Tue, 03 Mar 2026 14:05:00 +0000
Message-ID: <bare@monitor.example.com>

/var is 97% full.
""")
# A filename in raw UTF-8 bytes, without RFC 2231 or RFC 2047 encoding.
RAW_UTF8_FILENAME = crlf(
    HEAD
    + b"""Subject: slides
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Slides attached.
--b1
Content-Type: application/vnd.openxmlformats-officedocument.presentationml.presentation; name="Pr\xc3\xa4sentation M\xc3\xa4rz.pptx"
Content-Disposition: attachment; filename="Pr\xc3\xa4sentation M\xc3\xa4rz.pptx"
Content-Transfer-Encoding: base64

UEsDBA==
--b1--
"""
)
# Outlook-shaped boundary folded inside its quotes; the delimiter lines use it without the fold.
FOLDED_BOUNDARY = crlf(
    HEAD
    + b"""Subject: folded boundary
Content-Type: multipart/mixed;
\tboundary="----=_NextPart_000_0001_01DA1B2C
\t.3D4E5F60"

This is a multi-part message in MIME format.

------=_NextPart_000_0001_01DA1B2C.3D4E5F60
Content-Type: text/plain; charset=utf-8

The quarterly figures are attached.
------=_NextPart_000_0001_01DA1B2C.3D4E5F60
Content-Type: application/pdf; name="q1.pdf"
Content-Disposition: attachment; filename="q1.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
------=_NextPart_000_0001_01DA1B2C.3D4E5F60--
"""
)
# Apple Mail / web mailers: the only text is an inline text/html part with a filename.
NAMED_INLINE_HTML = crlf(
    HEAD
    + b"""Subject: named html
Content-Type: multipart/mixed; boundary="m1"

--m1
Content-Type: text/html; charset=utf-8; name="Message.html"
Content-Disposition: inline; filename="Message.html"

<html><body><p>The board approved the <b>new office</b> lease.</p></body></html>
--m1
Content-Type: image/png; name="plan.png"
Content-Disposition: inline; filename="plan.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--m1--
"""
)
# Outlook desktop's HTML reply: the history sits under a bordered div with bold header names.
OUTLOOK_HTML_REPLY = crlf(
    HEAD
    + b"""Subject: RE: Q1 numbers
Content-Type: text/html; charset=utf-8

<html><body><div class=WordSection1><p class=MsoNormal>Hi Tom, the numbers are in the sheet.<o:p></o:p></p>
<p class=MsoNormal>Priya<o:p></o:p></p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class=MsoNormal>
<b><span lang=EN-US>From:</span></b><span lang=EN-US> Tom Becker &lt;tom@example.com&gt;<br>
<b>Sent:</b> Monday, March 2, 2026 4:51 PM<br><b>To:</b> Priya Nair &lt;priya@example.com&gt;<br>
<b>Subject:</b> Q1 numbers<o:p></o:p></span></p></div>
<p class=MsoNormal>Priya, could you send the Q1 numbers?<o:p></o:p></p></div></body></html>
"""
)
# Gmail's HTML reply: the attribution in a gmail_attr div, the quote in a blockquote.
GMAIL_HTML_REPLY = crlf(
    HEAD
    + b"""Subject: Re: branch date
Content-Type: text/html; charset=utf-8

<div dir="ltr">Sounds good.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon,
 Mar 2, 2026 at 9:14 AM Maria Lopez &lt;<a href="mailto:maria@example.org">maria@example.org</a>&gt; wrote:<br>
</div><blockquote class="gmail_quote" style="margin:0px"><div dir="ltr">Let us branch on Friday.</div>
</blockquote></div><div>I will tag the release on Thursday evening.</div>
"""
)
