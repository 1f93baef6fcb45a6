"""Labelled replies as office clients send them: Outlook header blocks, forwards, HTML, mobile footers."""

from __future__ import annotations

from mail_pipeline_tests.reply_shape import Reply as R

OFFICE = [
    R(
        "outlook_top_post",
        "RE: Q1 budget numbers",
        """
        + Hi Tom,
        + The revised numbers are in the shared folder, tab "Q1 final".
        + Regards,
        + Priya

        ~ ________________________________
        - From: Tom Becker <tom.becker@example.com>
        - Sent: Monday, March 2, 2026 4:51 PM
        - To: Priya Nair <priya@example.com>
        - Subject: Q1 budget numbers

        - Priya, could you send the final Q1 numbers before Wednesday?
        - Thanks, Tom
    """,
    ),
    R(
        "outlook_original_message",
        "RE: contract renewal",
        """
        + We accept the new terms; signed copy attached.

        - -----Original Message-----
        - From: Legal Team [mailto:legal@vendor.example]
        - Sent: Friday, February 27, 2026 10:03 AM
        - To: procurement@example.com
        - Subject: contract renewal

        - Please find the renewal terms for 2026 enclosed.
    """,
    ),
    R(
        "outlook_mac_date",
        "Re: venue for the offsite",
        """
        + Lisbon works for me; Porto is fine too if flights are cheaper.

        - From: Helen Park <helen@example.com>
        - Date: Tuesday, 3 March 2026 at 08:15
        - To: Team <team@example.com>
        - Subject: venue for the offsite

        - Please vote for the venue by Friday.
    """,
    ),
    R(
        "mobile_footer",
        "Re: lunch",
        """
        + 12:30 at the usual place works.

        - Sent from my iPhone

        - > On Mar 3, 2026, at 09:58, Ben Carter <ben@example.com> wrote:
        - >
        - > Lunch tomorrow?
    """,
    ),
    R(
        "forward_gmail",
        "Fwd: Invoice 2026-031 from Northwind",
        """
        + Lars, can you check this invoice? It looks like it was billed twice.

        ~ ---------- Forwarded message ---------
        + From: Northwind Billing <billing@northwind.example>
        + Date: Mon, Mar 2, 2026 at 8:00 AM
        + Subject: Invoice 2026-031 from Northwind
        + To: <accounts@example.com>

        + Dear customer, please find invoice 2026-031 for EUR 1,250 attached.
        + Payment is due within 30 days.
    """,
    ),
    R(
        "forward_apple",
        "Fwd: Boarding pass",
        """
        + For your records.

        ~ Begin forwarded message:

        + From: Example Air <noreply@air.example>
        + Subject: Boarding pass LIS-AMS
        + Date: 3 March 2026 at 07:02:11 CET
        + To: traveller@example.com

        + Flight EA 1234 departs Lisbon at 11:40, gate 14.
    """,
    ),
    R(
        "forward_outlook",
        "FW: Quarterly security review",
        """
        + Team, please read the findings below before Thursday.

        ~ ________________________________
        + From: Security Office <security@example.com>
        + Sent: Monday, March 2, 2026 3:00 PM
        + To: All Staff <staff@example.com>
        + Subject: Quarterly security review

        + Three laptops were found without disk encryption.
        + Please enable BitLocker by March 15.
    """,
    ),
    R(
        "forward_after_signature",
        "Fwd: conference badge",
        """
        + See the badge pickup details below.

        - --
        - Yuki Tanaka

        ~ ---------- Forwarded message ---------
        + From: Conference Desk <desk@conf.example>
        + Date: Tue, Mar 3, 2026 at 9:00 AM
        + Subject: Badge pickup

        + Badges can be picked up at the registration desk from 8:00.
    """,
    ),
    R(
        "forward_with_quotes_inside",
        "Fwd: Re: room booking",
        """
        + Forwarding the thread so you have the booking reference.

        ~ ---------- Forwarded message ---------
        + From: Facilities <facilities@example.com>
        + Date: Mon, Mar 2, 2026 at 4:00 PM
        + Subject: Re: room booking

        + Booked room 4.12 for Thursday, reference RB-7781.

        - On Mon, Mar 2, 2026 at 2:00 PM Omar Haddad <omar@example.com> wrote:
        - > Could you book a room for 12 people on Thursday?
    """,
    ),
    R(
        "html_gmail_reply",
        "Re: design review",
        """
        + The new layout is much clearer.
        + One nit: the footer links are too small on mobile.

        - On Tue, Mar 3, 2026 at 11:00 AM Nadia Rahman <nadia@example.com> wrote:
        - > Here is the second round of the design for review.
        - > Comments welcome until Friday.
    """,
        html=True,
    ),
    R(
        "html_interleaved",
        "Re: onboarding checklist",
        """
        + Hi Sam,

        - > Do new hires get a laptop on day one?

        + Yes, IT prepares it the week before.

        - > Who sets up their accounts?

        + The team lead files the access request.
        - >> Original checklist attached in the first mail.
    """,
        html=True,
    ),
    R(
        "flattened_header_line",
        "Re: workshop feedback",
        """
        + The hands-on part was the most useful; more exercises next time, please.

        - Date: Tue, 3 Mar 2026 08:35:10 +0000 From: events@example.org To: Smith, Shelly Subject: Tell us about the workshop

        - Thank you for attending our workshop. We'd love your feedback.
    """,
    ),
    R(
        "outlook_reply_to_in_block",
        "RE: course evaluation",
        """
        + The group work taught me the most about planning.

        - From: courses@example.edu
        - Reply-To: courses@example.edu
        - Sent: Tue, 3 Mar 2026 02:35:10 +0000
        - To: student@example.edu
        - Subject: Tell us what you learned

        - Please reply to this email with your feedback.
    """,
    ),
    R(
        "forward_without_prefix",
        "Quarterly numbers",
        """
        + From: Finance Team <finance@example.com>
        + Sent: Monday, March 2, 2026 9:00 AM
        + To: Managers <managers@example.com>
        + Subject: Quarterly numbers

        + Revenue grew 4% over the quarter; the details are in the attached sheet.
    """,
    ),
    R(
        "lotus_notes_unquoted",
        "Re: supplier audit",
        """
        + The audit report is final; please file it with the supplier records.

        - Bob Smith/ACME wrote on 03/02/2026 10:15:20 AM:

        - Attached is the draft audit report for the supplier in Porto.
        - Comments by Friday, please.
    """,
    ),
    R(
        "apple_ios_quoted_attribution",
        "Re: dinner",
        """
        + Booked a table for four at 8.

        - > On 2 Mar 2026, at 18:02, Sara Ahmed <sara@example.com> wrote:
        - >
        - > Can you book dinner for Friday?
    """,
    ),
    R(
        "gmail_narrow_space_before_am",
        "Re: release notes",
        """
        - On Tue, Mar 3, 2026 at 9:14\u202fAM Maria Lopez <maria@example.org> wrote:
        - > Can you draft the release notes?

        + Drafted; they are in the wiki under 2.4.
    """,
    ),
    R(
        "yahoo_long_attribution",
        "Re: garden club",
        """
        + I'll bring seeds for the swap.

        - On Tuesday, March 3, 2026, 09:12:44 AM GMT+1, Rosa Klein <rosa@example.com> wrote:

        - > Don't forget the seed swap on Saturday.
    """,
    ),
    R(
        "attribution_unquoted_history",
        "Re: parking permits",
        """
        + Thanks, I'll collect mine on Monday.

        - On 3 Mar 2026, at 09:00, Facilities <facilities@example.com> wrote:

        - Parking permits for 2026 are ready at reception.
        - Please bring your staff card.
    """,
    ),
]
