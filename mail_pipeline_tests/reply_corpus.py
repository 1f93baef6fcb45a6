"""The labelled reply set: mailing-list replies here, office and other-language ones beside.

See `reply_shape` for the labels. ``REPLIES`` is the whole set the tests measure.
"""

from __future__ import annotations

from mail_pipeline_tests.reply_corpus_languages import LANGUAGES
from mail_pipeline_tests.reply_corpus_office import OFFICE
from mail_pipeline_tests.reply_shape import Reply as R

LISTS = [
    R(
        "gmail_top_post",
        "Re: Release 2.4 schedule",
        """
        + Sounds good to me, let's branch on Friday.
        + I'll prepare the changelog tomorrow.

        - On Mon, Mar 2, 2026 at 9:14 AM Maria Lopez <maria@example.org> wrote:
        - > Hi all,
        - > I propose we cut the 2.4 branch this Friday.
        - > Any objections?
    """,
    ),
    R(
        "bottom_post",
        "Re: [python-dev] PEP draft feedback",
        """
        - On 02/03/2026 10:22, Victor Stinner wrote:
        - > Would it make sense to deprecate the old API in 3.15 first?

        + Yes, a deprecation period of two releases is what PEP 387 asks for.
        + We can emit a DeprecationWarning starting with 3.15.

        - --
        - Petr
    """,
    ),
    R(
        "interleaved_simple",
        "Re: [dev] flaky test in CI",
        """
        - On Tue, 3 Mar 2026 08:01:12 +0000, Jonas Berg <jonas@example.com> wrote:
        - > The test_timeout case fails about once in twenty runs.

        + I see it too, mostly on the ARM runners.

        - > I suspect the fixture does not wait for the server to start.

        + Right, it polls the port only once. I'll send a patch that retries with backoff.

        - > Should we mark it xfail meanwhile?

        + I'd rather not; the patch is small.
    """,
    ),
    R(
        "lkml_patch_review",
        "Re: [PATCH v3 2/5] mm: fix off-by-one in page walk",
        """
        - On Mon, Mar 02, 2026 at 04:12:55PM +0100, Jan Novak wrote:
        - > The loop bound used end instead of end - 1, so the last page was walked twice.
        - >
        - > Signed-off-by: Jan Novak <jan@example.cz>
        - > ---
        - >  mm/pagewalk.c | 2 +-
        - >  1 file changed, 1 insertion(+), 1 deletion(-)
        - >
        - > diff --git a/mm/pagewalk.c b/mm/pagewalk.c
        - > -	for (addr = start; addr <= end; addr = next) {
        - > +	for (addr = start; addr < end; addr = next) {

        + This changes behaviour for callers that pass an inclusive end, e.g. the hugetlb path.
        + Did you audit those?

        - > -	return walk_pgd_range(start, end, walk);

        + Otherwise looks fine. With the audit done:
        + Reviewed-by: Dana Scully <dana@example.net>
    """,
    ),
    R(
        "nested_levels",
        "Re: [users] Re: backup strategy",
        """
        + Thanks both, snapshots it is.

        - Am 03.03.2026 um 11:02 schrieb Klaus Meier:
        - > Daily snapshots plus a weekly offsite copy work well for us.
        - >
        - > On 03/03/2026 10:40, Sam Lee wrote:
        - >> Is rsync to a second disk enough, or do we need snapshots?
        - >>> Original question: what do people use for backups?

        + One more question: do you keep the weekly copies encrypted?
    """,
    ),
    R(
        "nested_interleaved",
        "Re: [infra] DNS migration",
        """
        + Hi Ana,

        - On Wed, 4 Mar 2026 at 12:00, Ana Silva <ana@example.pt> wrote:
        - > > We will move the zone to the new provider on Saturday.
        - > Will the TTLs be lowered beforehand?

        + Yes, to 300 seconds from Thursday noon.

        - > > Rollback means pointing the NS records back.
        - > How long would a rollback take?

        + At most an hour once the TTLs are low.
    """,
    ),
    R(
        "mutt_brackets",
        "Re: [mutt-users] sidebar",
        """
        - * Ralf Weber <ralf@example.org> [2026-03-03 09:15 +0100]:
        - > How do I hide empty folders in the sidebar?

        + set sidebar_non_empty_mailbox_only = yes
        + does that, since mutt 2.0.
    """,
    ),
    R(
        "horde_quoting",
        "Re: webmail upgrade",
        """
        - Quoting Admin Team <admin@example.edu>:
        - > The webmail will be upgraded on Saturday night.

        + Will filters be migrated automatically?
    """,
    ),
    R(
        "name_only_wrote",
        "Re: [dev] logo vote",
        """
        - Tomás wrote:
        - > Option B has better contrast on dark backgrounds.

        + Agreed, B gets my vote.
    """,
    ),
    R(
        "wrapped_gmail",
        "Re: meeting notes",
        """
        + Notes look complete, thanks for writing them up.

        - On Tue, Mar 3, 2026 at 10:45 AM Katherine Johnson-Williams <
        - katherine.johnson-williams@example.com> wrote:
        - > Attached are the notes from Monday's planning meeting.
    """,
    ),
    R(
        "thunderbird_interleaved",
        "Re: [board] agenda",
        """
        - On 03.03.26 09:30, Stefan Keller wrote:
        - > Please add items for Thursday's board meeting by Wednesday.

        + Please add the budget for the summer event.

        + And a short update on the membership drive.
    """,
    ),
    R(
        "wrapped_two_lines",
        "Re: [sci] dataset license",
        """
        + CC-BY 4.0 is fine for us, attribution in the README is enough.

        - On Mon, 02 Mar 2026 17:55:03 +0100
        - Dr. Ingrid Olsen <ingrid.olsen@example.no> wrote:
        - > Which license should we use for the shared dataset?
    """,
    ),
    R(
        "signature_dashes",
        "Re: [fedora-devel] rebuild request",
        """
        + Rebuilt in rawhide, should land in tomorrow's compose.

        - --
        - Michal Kovac
        - Fedora packager, Brno
    """,
    ),
    R(
        "mailman_footer",
        "Re: [Python-Dev] frozen modules",
        """
        + Freezing the stdlib encodings module cut startup by 3 ms on my machine.

        - On Tue, 3 Mar 2026 at 10:00, Eric Snow <eric@example.org> wrote:
        - > Has anyone measured startup with the new frozen modules?

        ~ _______________________________________________
        - Python-Dev mailing list -- python-dev@python.org
        - To unsubscribe send an email to python-dev-leave@python.org
        - https://mail.python.org/mailman3/lists/python-dev.python.org/
    """,
    ),
    R(
        "own_line_starting_on",
        "Re: [dev] release notes",
        """
        + On Linux the new default is io_uring; on macOS nothing changes.
        + On Windows we keep IOCP.

        - On Tue, Mar 3, 2026 at 1:00 PM Li Wei <li@example.com> wrote:
        - > Which backends change in this release?
    """,
    ),
    R(
        "gmail_quoted_name_comma",
        "Re: travel policy",
        """
        + Economy for flights under six hours, as before.

        - On Tue, Mar 3, 2026 at 9:00 AM "Smith, John" <john.smith@example.com> wrote:
        - > Does the new policy change the class for short flights?
    """,
    ),
    R(
        "gnus_writes",
        "Re: [emacs-devel] tree-sitter modes",
        """
        - Theo Park <theo@example.org> writes:

        - > Should python-ts-mode become the default?

        + Not before the grammar is vendored; too many users lack it.
    """,
    ),
    R(
        "own_line_with_wrote_and_colon",
        "Re: [ops] disk alert",
        """
        + As you wrote in the ticket:

        - > The alert fires when the disk is 90% full.

        + That threshold is too late for the log volume; 80% would give us a day.
    """,
    ),
    R(
        "own_paragraphs_starting_on",
        "Re: [rmate] tunnel stopped working",
        """
        + On your remote host you can run:

        + telnet 127.0.0.1 52698

        + On Friday it worked for me with the same config.

        - On 9 Mar 2026, at 2:47, George Lin wrote:

        - > Port forwarding suddenly stopped working for me.
    """,
    ),
    R(
        "gmail_nested_wrapped",
        "Re: portal test",
        """
        + Third try, now with the fix deployed.

        - On Fri, Mar 6, 2026 at 12:32 PM Someone <
        - someone@example.com> wrote:

        - > Second try - let's see what the portal shows
        - >
        - > On Fri, Mar 6, 2026 at 12:31 PM Someone <
        - > someone@example.com> wrote:
        - >
        - >> First try
    """,
    ),
    R(
        "python_repl_in_reply",
        "Re: [python-list] sorting dicts by value",
        """
        - On Tue, 3 Mar 2026 at 09:40, Dev Patel <dev@example.in> wrote:
        - > How do I sort a dict by its values?

        + Use sorted() with a key:

        + >>> scores = {"ann": 3, "bob": 1}
        + >>> sorted(scores.items(), key=lambda kv: kv[1])
        + [('bob', 1), ('ann', 3)]

        - > > I tried sorted(d) but it only gives the keys.
        - >>> Original question from the FAQ thread, for context.

        + From Python 3.7 on, dicts keep insertion order, so dict(...) of that list stays sorted.
    """,
    ),
    R(
        "greater_than_in_text",
        "Re: [perf] latency budget",
        """
        + The budget is fine as long as p99 stays under 40 ms.
        + > 40 ms and the checkout page feels slow.

        - On Tue, Mar 3, 2026 at 2:00 PM Ines Costa <ines@example.pt> wrote:
        - > What p99 latency can we accept?
    """,
        hard=True,
    ),
    R(
        "signature_then_ps",
        "Re: [dev] meetup",
        """
        + Count me in.

        - --
        - Oskar

        + PS: I can bring the projector.
    """,
    ),
]

REPLIES = [*LISTS, *OFFICE, *LANGUAGES]
