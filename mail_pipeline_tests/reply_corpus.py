"""Replies shaped like real mailing-list and office mail, every line labelled.

``+`` the author wrote it (must be in search_text), ``-`` quoted, attribution, old history or
signature (must not be), ``~`` neither (separators, forward markers: not counted). Lines keep
the shape real clients give them: Gmail, Thunderbird, mutt, Outlook, Apple Mail, in several
languages. ``hard`` marks messages that plain text cannot decide; they count in the shares but
have no per-message assertion.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    name: str
    subject: str
    labelled: str
    html: bool = False  # sent as text/html with <blockquote> quotes, as Gmail and Outlook do
    hard: bool = False

    def lines(self) -> list[tuple[str, str]]:
        """(label, line) for every non-blank line."""
        out = []
        for line in textwrap.dedent(self.labelled).strip("\n").split("\n"):
            if line.strip():
                assert line[:2] in ("+ ", "- ", "~ "), line
                out.append((line[0], line[2:]))
        return out

    def body(self) -> str:
        return "\n".join(line[2:] for line in textwrap.dedent(self.labelled).strip("\n").split("\n"))

    def raw(self, index: int) -> bytes:
        if self.html:
            ctype, body = "text/html", _as_html(self.body())
        else:
            ctype, body = "text/plain", self.body()
        head = (f"From: Author {index} <author{index}@lists.example.org>\nTo: dev@lists.example.org\n"
                f"Subject: {self.subject}\nDate: Tue, 03 Mar 2026 14:05:00 +0100\n"
                f"Message-ID: <reply-{index}@lists.example.org>\nMIME-Version: 1.0\n"
                f"Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
        return (head + body + "\n").replace("\n", "\r\n").encode("utf-8")


def _as_html(text: str) -> str:
    """Gmail-style HTML: one <div> per line, each quote level a nested <blockquote>."""
    out, depth = ["<html><body>"], 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        level = stripped.count(">", 0, len(stripped) - len(stripped.lstrip("> ")))
        content = stripped.lstrip("> ") if level else line
        out += ["<blockquote>"] * (level - depth) + ["</blockquote>"] * (depth - level)
        depth = level
        out.append(f"<div>{html.escape(content) or '<br>'}</div>")
    return "".join(out + ["</blockquote>"] * depth + ["</body></html>"])


R = Reply
REPLIES = [
    R("gmail_top_post", "Re: Release 2.4 schedule", """
        + Sounds good to me, let's branch on Friday.
        + I'll prepare the changelog tomorrow.

        - On Mon, Mar 2, 2026 at 9:14 AM Maria Lopez <maria@example.org> wrote:
        - > Hi all,
        - > I propose we cut the 2.4 branch this Friday.
        - > Any objections?
    """),
    R("bottom_post", "Re: [python-dev] PEP draft feedback", """
        - On 02/03/2026 10:22, Victor Stinner wrote:
        - > Would it make sense to deprecate the old API in 3.15 first?

        + Yes, a deprecation period of two releases is what PEP 387 asks for.
        + We can emit a DeprecationWarning starting with 3.15.

        - --
        - Petr
    """),
    R("interleaved_simple", "Re: [dev] flaky test in CI", """
        - On Tue, 3 Mar 2026 08:01:12 +0000, Jonas Berg <jonas@example.com> wrote:
        - > The test_timeout case fails about once in twenty runs.

        + I see it too, mostly on the ARM runners.

        - > I suspect the fixture does not wait for the server to start.

        + Right, it polls the port only once. I'll send a patch that retries with backoff.

        - > Should we mark it xfail meanwhile?

        + I'd rather not; the patch is small.
    """),
    R("lkml_patch_review", "Re: [PATCH v3 2/5] mm: fix off-by-one in page walk", """
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
    """),
    R("nested_levels", "Re: [users] Re: backup strategy", """
        + Thanks both, snapshots it is.

        - Am 03.03.2026 um 11:02 schrieb Klaus Meier:
        - > Daily snapshots plus a weekly offsite copy work well for us.
        - >
        - > On 03/03/2026 10:40, Sam Lee wrote:
        - >> Is rsync to a second disk enough, or do we need snapshots?
        - >>> Original question: what do people use for backups?

        + One more question: do you keep the weekly copies encrypted?
    """),
    R("nested_interleaved", "Re: [infra] DNS migration", """
        + Hi Ana,

        - On Wed, 4 Mar 2026 at 12:00, Ana Silva <ana@example.pt> wrote:
        - > > We will move the zone to the new provider on Saturday.
        - > Will the TTLs be lowered beforehand?

        + Yes, to 300 seconds from Thursday noon.

        - > > Rollback means pointing the NS records back.
        - > How long would a rollback take?

        + At most an hour once the TTLs are low.
    """),
    R("outlook_top_post", "RE: Q1 budget numbers", """
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
    """),
    R("outlook_original_message", "RE: contract renewal", """
        + We accept the new terms; signed copy attached.

        - -----Original Message-----
        - From: Legal Team [mailto:legal@vendor.example]
        - Sent: Friday, February 27, 2026 10:03 AM
        - To: procurement@example.com
        - Subject: contract renewal

        - Please find the renewal terms for 2026 enclosed.
    """),
    R("outlook_german", "AW: Rechnung März", """
        + Hallo Frau Weber,
        + die Rechnung wurde heute überwiesen.
        + Mit freundlichen Grüßen
        + Jens Hoffmann

        - Von: Anna Weber <a.weber@example.de>
        - Gesendet: Montag, 2. März 2026 09:12
        - An: Jens Hoffmann <jens@example.de>
        - Betreff: Rechnung März

        - Sehr geehrter Herr Hoffmann, anbei die Rechnung für März.
    """),
    R("outlook_french", "RE: Réunion de lundi", """
        + Bonjour Claire,
        + Je confirme ma présence lundi à 10 h.

        - De : Claire Martin <claire.martin@example.fr>
        - Envoyé : vendredi 27 février 2026 17:45
        - À : Luc Bernard <luc@example.fr>
        - Objet : Réunion de lundi

        - Pouvez-vous confirmer votre présence ?
    """),
    R("outlook_mac_date", "Re: venue for the offsite", """
        + Lisbon works for me; Porto is fine too if flights are cheaper.

        - From: Helen Park <helen@example.com>
        - Date: Tuesday, 3 March 2026 at 08:15
        - To: Team <team@example.com>
        - Subject: venue for the offsite

        - Please vote for the venue by Friday.
    """),
    R("german_gmail", "Re: [lug] Treffen im April", """
        + Ich bin dabei, bringe auch den Beamer mit.

        - Am Di., 3. März 2026 um 10:15 Uhr schrieb Petra Schulz <petra@example.de>:
        - > Hallo zusammen,
        - > das nächste Treffen ist am 14. April im Café Nord.
    """),
    R("german_interleaved", "Re: [lug] Vortrag über Btrfs", """
        - Markus Lang <markus@example.de> schrieb am 03.03.2026 um 09:41:
        - > Wer hält den Vortrag über Btrfs?

        + Ich kann das übernehmen, etwa 30 Minuten.

        - > Brauchen wir dafür einen Raum mit Projektor?

        + Ja, Raum 2 hat einen.
    """),
    R("french_interleaved", "Re: [debian-l10n-french] relecture", """
        - Le mar. 3 mars 2026 à 09:12, Julie Moreau <julie@example.fr> a écrit :
        - > Qui peut relire la traduction du manuel ?

        + Je m'en occupe cette semaine.

        - > Il reste environ 40 chaînes.

        + Ça devrait aller vite alors.
    """),
    R("french_wrapped", "Re: [dev-fr] compilation sous FreeBSD", """
        + Le correctif est dans la branche main depuis hier.

        - Le lundi 2 mars 2026 à 18:40 +0100, Pierre Dubois
        - <pierre.dubois@example.fr> a écrit :
        - > La compilation échoue sous FreeBSD 14 avec clang 18.
    """),
    R("spanish", "Re: [es-python] duda con asyncio", """
        + Tienes que usar asyncio.run() solo una vez, en el punto de entrada.

        - El mar, 3 mar 2026 a las 11:20, Carlos Ruiz (<carlos@example.es>) escribió:
        - > ¿Por qué me sale "event loop is closed" al segundo llamado?
    """),
    R("spanish_interleaved", "Re: [es-python] empaquetado", """
        - El lun, 2 mar 2026 a las 17:03, Lucía Gómez <lucia@example.es> escribió:
        - > ¿Alguien usa hatch para publicar en PyPI?

        + Sí, desde hace un año, sin problemas.

        - > ¿Y con extensiones en C?

        + Para eso seguimos con setuptools.
    """),
    R("italian", "Re: [pycon-it] call for papers", """
        + Ho inviato la proposta ieri sera, grazie per la proroga.

        - Il giorno mar 3 mar 2026 alle ore 09:30 Giulia Rossi <giulia@example.it> ha scritto:
        - > Ricordiamo che la call for papers chiude venerdì.
    """),
    R("italian_short", "Re: [ml-it] server di prova", """
        - Il 02/03/2026 18:20, Marco Bianchi ha scritto:
        - > Il server di prova è di nuovo giù.

        + Riavviato, ora risponde.
    """),
    R("dutch", "Re: [nlpug] meetup locatie", """
        + De zaal bij de bibliotheek is beschikbaar op 12 maart.

        - Op di 3 mrt 2026 om 10:02 schreef Sanne de Vries <sanne@example.nl>:
        - > Weet iemand een locatie voor de volgende meetup?
    """),
    R("dutch_verb_first", "Re: [nlpug] sprekers", """
        - Pieter Jansen <pieter@example.nl> schreef op 2 maart 2026 om 21:14:
        - > We zoeken nog twee sprekers.

        + Ik wil wel iets vertellen over Polars.
    """),
    R("swedish", "Sv: [python-sv] nästa träff", """
        + Jag kommer, och tar med fika.

        - Den tis 3 mars 2026 kl 09:12 skrev Erik Lind <erik@example.se>:
        - > Nästa träff blir den 19 mars på kontoret.
    """),
    R("danish", "Sv: [dk-linux] printerdriver", """
        + Driveren i Debian 13 virker fint med den model.

        - Den man. 2. mar. 2026 kl. 20.11 skrev Mette Holm <mette@example.dk>:
        - > Har nogen fået en Brother HL-L2350 til at virke?
    """),
    R("russian_thunderbird", "Re: [ru-pg] медленный запрос", """
        + Добавьте индекс по (account_id, created_at), и план станет другим.

        - 03.03.2026 10:15, Иван Петров пишет:
        - > Запрос выполняется 12 секунд на таблице в 40 млн строк.
    """),
    R("russian_gmail", "Re: [ru-pg] репликация", """
        + Да, логическая репликация поддерживает это начиная с 15 версии.

        - пн, 2 мар. 2026 г. в 18:44, Ольга Смирнова <olga@example.ru>:
        - > Можно ли реплицировать только часть столбцов?
    """),
    R("japanese_gmail", "Re: [python-ja] 勉強会の会場", """
        + 会場は渋谷のオフィスで確定しました。

        - 2026年3月3日(火) 10:05 Taro Yamada <taro@example.jp>:
        - > 次回の勉強会の会場はどこになりますか？
    """),
    R("japanese_kakimashita", "Re: [python-ja] 資料", """
        - 佐藤さんは書きました:
        - > 発表資料はどこにありますか？

        + 共有ドライブの「2026-03」フォルダにあります。
    """),
    R("chinese_gmail", "Re: [python-cn] 版本升级", """
        + 我们下周升级到 3.13，测试已经通过了。

        - 李明 <liming@example.cn> 于2026年3月3日周二 09:30写道：
        - > 请问什么时候升级 Python 版本？
    """),
    R("chinese_apple", "回复: [python-cn] 文档翻译", """
        - 在 2026年3月2日，下午6:20，王芳 <wangfang@example.cn> 写道：
        - > 文档翻译还差哪些章节？

        + 还差第七章和第九章。
    """),
    R("mutt_brackets", "Re: [mutt-users] sidebar", """
        - * Ralf Weber <ralf@example.org> [2026-03-03 09:15 +0100]:
        - > How do I hide empty folders in the sidebar?

        + set sidebar_non_empty_mailbox_only = yes
        + does that, since mutt 2.0.
    """),
    R("horde_quoting", "Re: webmail upgrade", """
        - Quoting Admin Team <admin@example.edu>:
        - > The webmail will be upgraded on Saturday night.

        + Will filters be migrated automatically?
    """),
    R("name_only_wrote", "Re: [dev] logo vote", """
        - Tomás wrote:
        - > Option B has better contrast on dark backgrounds.

        + Agreed, B gets my vote.
    """),
    R("wrapped_gmail", "Re: meeting notes", """
        + Notes look complete, thanks for writing them up.

        - On Tue, Mar 3, 2026 at 10:45 AM Katherine Johnson-Williams <
        - katherine.johnson-williams@example.com> wrote:
        - > Attached are the notes from Monday's planning meeting.
    """),
    R("thunderbird_interleaved", "Re: [board] agenda", """
        - On 03.03.26 09:30, Stefan Keller wrote:
        - > Please add items for Thursday's board meeting by Wednesday.

        + Please add the budget for the summer event.

        + And a short update on the membership drive.
    """),
    R("wrapped_two_lines", "Re: [sci] dataset license", """
        + CC-BY 4.0 is fine for us, attribution in the README is enough.

        - On Mon, 02 Mar 2026 17:55:03 +0100
        - Dr. Ingrid Olsen <ingrid.olsen@example.no> wrote:
        - > Which license should we use for the shared dataset?
    """),
    R("signature_dashes", "Re: [fedora-devel] rebuild request", """
        + Rebuilt in rawhide, should land in tomorrow's compose.

        - --
        - Michal Kovac
        - Fedora packager, Brno
    """),
    R("mobile_footer", "Re: lunch", """
        + 12:30 at the usual place works.

        - Sent from my iPhone

        - > On Mar 3, 2026, at 09:58, Ben Carter <ben@example.com> wrote:
        - >
        - > Lunch tomorrow?
    """),
    R("german_mobile_footer", "Re: Abholung", """
        + Passt, ich hole das Paket um 17 Uhr ab.

        - Von meinem iPhone gesendet

        - > Am 03.03.2026 um 12:01 schrieb Lena Vogel <lena@example.de>:
        - >
        - > Kannst du das Paket heute abholen?
    """),
    R("forward_gmail", "Fwd: Invoice 2026-031 from Northwind", """
        + Lars, can you check this invoice? It looks like it was billed twice.

        ~ ---------- Forwarded message ---------
        + From: Northwind Billing <billing@northwind.example>
        + Date: Mon, Mar 2, 2026 at 8:00 AM
        + Subject: Invoice 2026-031 from Northwind
        + To: <accounts@example.com>

        + Dear customer, please find invoice 2026-031 for EUR 1,250 attached.
        + Payment is due within 30 days.
    """),
    R("forward_apple", "Fwd: Boarding pass", """
        + For your records.

        ~ Begin forwarded message:

        + From: Example Air <noreply@air.example>
        + Subject: Boarding pass LIS-AMS
        + Date: 3 March 2026 at 07:02:11 CET
        + To: traveller@example.com

        + Flight EA 1234 departs Lisbon at 11:40, gate 14.
    """),
    R("forward_outlook", "FW: Quarterly security review", """
        + Team, please read the findings below before Thursday.

        ~ ________________________________
        + From: Security Office <security@example.com>
        + Sent: Monday, March 2, 2026 3:00 PM
        + To: All Staff <staff@example.com>
        + Subject: Quarterly security review

        + Three laptops were found without disk encryption.
        + Please enable BitLocker by March 15.
    """),
    R("forward_after_signature", "Fwd: conference badge", """
        + See the badge pickup details below.

        - --
        - Yuki Tanaka

        ~ ---------- Forwarded message ---------
        + From: Conference Desk <desk@conf.example>
        + Date: Tue, Mar 3, 2026 at 9:00 AM
        + Subject: Badge pickup

        + Badges can be picked up at the registration desk from 8:00.
    """),
    R("forward_german", "WG: Lieferung verspätet", """
        + Zur Info, die Lieferung kommt erst nächste Woche.

        ~ ---------- Weitergeleitete Nachricht ---------
        + Von: Versand <versand@shop.example>
        + Date: Di., 3. März 2026 um 08:30 Uhr
        + Subject: Lieferung verspätet

        + Ihre Bestellung 55123 wird voraussichtlich am 10. März geliefert.
    """),
    R("forward_with_quotes_inside", "Fwd: Re: room booking", """
        + Forwarding the thread so you have the booking reference.

        ~ ---------- Forwarded message ---------
        + From: Facilities <facilities@example.com>
        + Date: Mon, Mar 2, 2026 at 4:00 PM
        + Subject: Re: room booking

        + Booked room 4.12 for Thursday, reference RB-7781.

        - On Mon, Mar 2, 2026 at 2:00 PM Omar Haddad <omar@example.com> wrote:
        - > Could you book a room for 12 people on Thursday?
    """),
    R("html_gmail_reply", "Re: design review", """
        + The new layout is much clearer.
        + One nit: the footer links are too small on mobile.

        - On Tue, Mar 3, 2026 at 11:00 AM Nadia Rahman <nadia@example.com> wrote:
        - > Here is the second round of the design for review.
        - > Comments welcome until Friday.
    """, html=True),
    R("html_interleaved", "Re: onboarding checklist", """
        + Hi Sam,

        - > Do new hires get a laptop on day one?

        + Yes, IT prepares it the week before.

        - > Who sets up their accounts?

        + The team lead files the access request.
        - >> Original checklist attached in the first mail.
    """, html=True),
    R("mailman_footer", "Re: [Python-Dev] frozen modules", """
        + Freezing the stdlib encodings module cut startup by 3 ms on my machine.

        - On Tue, 3 Mar 2026 at 10:00, Eric Snow <eric@example.org> wrote:
        - > Has anyone measured startup with the new frozen modules?

        ~ _______________________________________________
        - Python-Dev mailing list -- python-dev@python.org
        - To unsubscribe send an email to python-dev-leave@python.org
        - https://mail.python.org/mailman3/lists/python-dev.python.org/
    """),
    R("attribution_unquoted_history", "Re: parking permits", """
        + Thanks, I'll collect mine on Monday.

        - On 3 Mar 2026, at 09:00, Facilities <facilities@example.com> wrote:

        - Parking permits for 2026 are ready at reception.
        - Please bring your staff card.
    """),
    R("own_line_starting_on", "Re: [dev] release notes", """
        + On Linux the new default is io_uring; on macOS nothing changes.
        + On Windows we keep IOCP.

        - On Tue, Mar 3, 2026 at 1:00 PM Li Wei <li@example.com> wrote:
        - > Which backends change in this release?
    """),
    R("gmail_quoted_name_comma", "Re: travel policy", """
        + Economy for flights under six hours, as before.

        - On Tue, Mar 3, 2026 at 9:00 AM "Smith, John" <john.smith@example.com> wrote:
        - > Does the new policy change the class for short flights?
    """),
    R("outlook_swedish", "SV: Offert", """
        + Hej Anders, offerten ser bra ut. Vi beställer 20 licenser.

        - Från: Anders Berg <anders@example.se>
        - Skickat: den 2 mars 2026 15:10
        - Till: Karin Ek <karin@example.se>
        - Ämne: Offert

        - Här kommer offerten för licenserna.
    """),
    R("yahoo_long_attribution", "Re: garden club", """
        + I'll bring seeds for the swap.

        - On Tuesday, March 3, 2026, 09:12:44 AM GMT+1, Rosa Klein <rosa@example.com> wrote:

        - > Don't forget the seed swap on Saturday.
    """),
    R("gnus_writes", "Re: [emacs-devel] tree-sitter modes", """
        - Theo Park <theo@example.org> writes:

        - > Should python-ts-mode become the default?

        + Not before the grammar is vendored; too many users lack it.
    """),
    R("own_line_with_wrote_and_colon", "Re: [ops] disk alert", """
        + As you wrote in the ticket:

        - > The alert fires when the disk is 90% full.

        + That threshold is too late for the log volume; 80% would give us a day.
    """),
    R("outlook_portuguese", "RES: Relatório mensal", """
        + Olá Ana, o relatório está na pasta compartilhada.

        - De: Ana Souza <ana@example.com.br>
        - Enviada em: segunda-feira, 2 de março de 2026 10:15
        - Para: Paulo Lima <paulo@example.com.br>
        - Assunto: Relatório mensal

        - Paulo, pode enviar o relatório de fevereiro?
    """),
    R("flattened_header_line", "Re: workshop feedback", """
        + The hands-on part was the most useful; more exercises next time, please.

        - Date: Tue, 3 Mar 2026 08:35:10 +0000 From: events@example.org To: Smith, Shelly Subject: Tell us about the workshop

        - Thank you for attending our workshop. We'd love your feedback.
    """),
    R("french_wrap_into_quote", "Re: [gulliver] imprimante réseau", """
        + Il faut activer IPP dans l'interface web de l'imprimante.

        - Le mer. 4 mars 2026 à 12:32, Rémi Caron <remi.caron@example.fr
        - > a écrit :

        - > L'imprimante n'apparaît plus depuis la mise à jour.
    """),
    R("danish_gmail_date_first", "Re: [dk-python] kursus", """
        + Jeg tilmelder mig kurset i april.

        - 15. marts 2026 kl. 11.00 skrev Jens Mikkelsen <jens@example.dk>:

        - > Tilmelding til forårskurset er åben.
    """),
    R("own_paragraphs_starting_on", "Re: [rmate] tunnel stopped working", """
        + On your remote host you can run:

        + telnet 127.0.0.1 52698

        + On Friday it worked for me with the same config.

        - On 9 Mar 2026, at 2:47, George Lin wrote:

        - > Port forwarding suddenly stopped working for me.
    """),
    R("outlook_reply_to_in_block", "RE: course evaluation", """
        + The group work taught me the most about planning.

        - From: courses@example.edu
        - Reply-To: courses@example.edu
        - Sent: Tue, 3 Mar 2026 02:35:10 +0000
        - To: student@example.edu
        - Subject: Tell us what you learned

        - Please reply to this email with your feedback.
    """),
    R("gmail_nested_wrapped", "Re: portal test", """
        + Third try, now with the fix deployed.

        - On Fri, Mar 6, 2026 at 12:32 PM Someone <
        - someone@example.com> wrote:

        - > Second try - let's see what the portal shows
        - >
        - > On Fri, Mar 6, 2026 at 12:31 PM Someone <
        - > someone@example.com> wrote:
        - >
        - >> First try
    """),
    R("forward_without_prefix", "Quarterly numbers", """
        + From: Finance Team <finance@example.com>
        + Sent: Monday, March 2, 2026 9:00 AM
        + To: Managers <managers@example.com>
        + Subject: Quarterly numbers

        + Revenue grew 4% over the quarter; the details are in the attached sheet.
    """),
    R("forward_italian_prefix", "I: Verbale riunione", """
        + Ti inoltro il verbale, vedi il punto 3.

        ~ ________________________________
        + Da: Segreteria <segreteria@example.it>
        + Inviato: lunedì 2 marzo 2026 17:10
        + A: Team <team@example.it>
        + Oggetto: Verbale riunione

        + Punto 3: il budget viene approvato.
    """),
    R("polish_thunderbird", "Re: [pl-python] konferencja", """
        + Zgłosiłem prelekcję o typowaniu, czekam na odpowiedź.

        - W dniu 2.03.2026 o 10:15, Jan Kowalski pisze:
        - > Termin zgłoszeń mija w piątek.
    """),
    R("korean_gmail", "Re: [python-ko] 스터디 장소", """
        + 이번 주 스터디는 강남역 근처 카페에서 합니다.

        - 2026년 3월 2일 (월) 오전 10:15, Kim Minsu <minsu@example.kr>님이 작성:
        - > 이번 주 스터디 장소가 어디인가요?
    """),
    R("portuguese_gmail", "Re: [python-br] meetup", """
        + Posso apresentar sobre Polars, uns 20 minutos.

        - Em seg., 2 de mar. de 2026 às 10:15, Ana Souza <ana@example.com.br> escreveu:
        - > Quem quer palestrar no próximo meetup?
    """),
    R("finnish_verb_first", "Re: [py-fi] kokous", """
        - Jukka Virtanen kirjoitti 2.3.2026 klo 10.15:
        - > Kokous siirtyy torstaille.

        + Torstai sopii minulle.
    """),
    R("lotus_notes_unquoted", "Re: supplier audit", """
        + The audit report is final; please file it with the supplier records.

        - Bob Smith/ACME wrote on 03/02/2026 10:15:20 AM:

        - Attached is the draft audit report for the supplier in Porto.
        - Comments by Friday, please.
    """),
    R("apple_ios_quoted_attribution", "Re: dinner", """
        + Booked a table for four at 8.

        - > On 2 Mar 2026, at 18:02, Sara Ahmed <sara@example.com> wrote:
        - >
        - > Can you book dinner for Friday?
    """),
    R("python_repl_in_reply", "Re: [python-list] sorting dicts by value", """
        - On Tue, 3 Mar 2026 at 09:40, Dev Patel <dev@example.in> wrote:
        - > How do I sort a dict by its values?

        + Use sorted() with a key:

        + >>> scores = {"ann": 3, "bob": 1}
        + >>> sorted(scores.items(), key=lambda kv: kv[1])
        + [('bob', 1), ('ann', 3)]

        - > > I tried sorted(d) but it only gives the keys.
        - >>> Original question from the FAQ thread, for context.

        + From Python 3.7 on, dicts keep insertion order, so dict(...) of that list stays sorted.
    """),
    R("gmail_iso_date_attribution", "Re: [python-brasil] sprint", """
        + Oi,

        - 2026-03-03 10:35 GMT-03:00 Rafael Costa <rafael@example.com.br>:

        - > Vamos marcar o sprint para sábado?

        + Sábado funciona, levo o projetor -- e o café.
    """),
    # No-break spaces as clients really send them: French typography before ":", Gmail before "AM".
    R("french_gmail_no_break_spaces", "Re: [afpy] atelier", """
        + Je serai là samedi, avec deux portables de prêt.

        - Le sam. 7 mars 2026 à 10:02, Claire Petit <claire@example.fr> a\u00a0écrit\u00a0:
        - > Qui vient à l'atelier samedi\u00a0?
    """),
    R("gmail_narrow_space_before_am", "Re: release notes", """
        - On Tue, Mar 3, 2026 at 9:14\u202fAM Maria Lopez <maria@example.org> wrote:
        - > Can you draft the release notes?

        + Drafted; they are in the wiki under 2.4.
    """),
    R("outlook_french_no_break_spaces", "RE: Devis", """
        + Bonjour, le devis est accepté.

        - De\u00a0: Service commercial <ventes@example.fr>
        - Envoyé\u00a0: lundi 2 mars 2026 11:20
        - À\u00a0: Luc Bernard <luc@example.fr>
        - Objet\u00a0: Devis

        - Veuillez trouver notre devis ci-joint.
    """),
    R("greater_than_in_text", "Re: [perf] latency budget", """
        + The budget is fine as long as p99 stays under 40 ms.
        + > 40 ms and the checkout page feels slow.

        - On Tue, Mar 3, 2026 at 2:00 PM Ines Costa <ines@example.pt> wrote:
        - > What p99 latency can we accept?
    """, hard=True),
    R("signature_then_ps", "Re: [dev] meetup", """
        + Count me in.

        - --
        - Oskar

        + PS: I can bring the projector.
    """),
]
