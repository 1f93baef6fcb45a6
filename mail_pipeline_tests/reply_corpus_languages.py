"""Labelled replies in other languages: attributions, Outlook headers and forwards as clients localise them."""

from __future__ import annotations

from mail_pipeline_tests.reply_shape import Reply as R

LANGUAGES = [
    R(
        "outlook_german",
        "AW: Rechnung März",
        """
        + Hallo Frau Weber,
        + die Rechnung wurde heute überwiesen.
        + Mit freundlichen Grüßen
        + Jens Hoffmann

        - Von: Anna Weber <a.weber@example.de>
        - Gesendet: Montag, 2. März 2026 09:12
        - An: Jens Hoffmann <jens@example.de>
        - Betreff: Rechnung März

        - Sehr geehrter Herr Hoffmann, anbei die Rechnung für März.
    """,
    ),
    R(
        "outlook_french",
        "RE: Réunion de lundi",
        """
        + Bonjour Claire,
        + Je confirme ma présence lundi à 10 h.

        - De : Claire Martin <claire.martin@example.fr>
        - Envoyé : vendredi 27 février 2026 17:45
        - À : Luc Bernard <luc@example.fr>
        - Objet : Réunion de lundi

        - Pouvez-vous confirmer votre présence ?
    """,
    ),
    R(
        "german_gmail",
        "Re: [lug] Treffen im April",
        """
        + Ich bin dabei, bringe auch den Beamer mit.

        - Am Di., 3. März 2026 um 10:15 Uhr schrieb Petra Schulz <petra@example.de>:
        - > Hallo zusammen,
        - > das nächste Treffen ist am 14. April im Café Nord.
    """,
    ),
    R(
        "german_interleaved",
        "Re: [lug] Vortrag über Btrfs",
        """
        - Markus Lang <markus@example.de> schrieb am 03.03.2026 um 09:41:
        - > Wer hält den Vortrag über Btrfs?

        + Ich kann das übernehmen, etwa 30 Minuten.

        - > Brauchen wir dafür einen Raum mit Projektor?

        + Ja, Raum 2 hat einen.
    """,
    ),
    R(
        "french_interleaved",
        "Re: [debian-l10n-french] relecture",
        """
        - Le mar. 3 mars 2026 à 09:12, Julie Moreau <julie@example.fr> a écrit :
        - > Qui peut relire la traduction du manuel ?

        + Je m'en occupe cette semaine.

        - > Il reste environ 40 chaînes.

        + Ça devrait aller vite alors.
    """,
    ),
    R(
        "french_wrapped",
        "Re: [dev-fr] compilation sous FreeBSD",
        """
        + Le correctif est dans la branche main depuis hier.

        - Le lundi 2 mars 2026 à 18:40 +0100, Pierre Dubois
        - <pierre.dubois@example.fr> a écrit :
        - > La compilation échoue sous FreeBSD 14 avec clang 18.
    """,
    ),
    R(
        "spanish",
        "Re: [es-python] duda con asyncio",
        """
        + Tienes que usar asyncio.run() solo una vez, en el punto de entrada.

        - El mar, 3 mar 2026 a las 11:20, Carlos Ruiz (<carlos@example.es>) escribió:
        - > ¿Por qué me sale "event loop is closed" al segundo llamado?
    """,
    ),
    R(
        "spanish_interleaved",
        "Re: [es-python] empaquetado",
        """
        - El lun, 2 mar 2026 a las 17:03, Lucía Gómez <lucia@example.es> escribió:
        - > ¿Alguien usa hatch para publicar en PyPI?

        + Sí, desde hace un año, sin problemas.

        - > ¿Y con extensiones en C?

        + Para eso seguimos con setuptools.
    """,
    ),
    R(
        "italian",
        "Re: [pycon-it] call for papers",
        """
        + Ho inviato la proposta ieri sera, grazie per la proroga.

        - Il giorno mar 3 mar 2026 alle ore 09:30 Giulia Rossi <giulia@example.it> ha scritto:
        - > Ricordiamo che la call for papers chiude venerdì.
    """,
    ),
    R(
        "italian_short",
        "Re: [ml-it] server di prova",
        """
        - Il 02/03/2026 18:20, Marco Bianchi ha scritto:
        - > Il server di prova è di nuovo giù.

        + Riavviato, ora risponde.
    """,
    ),
    R(
        "dutch",
        "Re: [nlpug] meetup locatie",
        """
        + De zaal bij de bibliotheek is beschikbaar op 12 maart.

        - Op di 3 mrt 2026 om 10:02 schreef Sanne de Vries <sanne@example.nl>:
        - > Weet iemand een locatie voor de volgende meetup?
    """,
    ),
    R(
        "dutch_verb_first",
        "Re: [nlpug] sprekers",
        """
        - Pieter Jansen <pieter@example.nl> schreef op 2 maart 2026 om 21:14:
        - > We zoeken nog twee sprekers.

        + Ik wil wel iets vertellen over Polars.
    """,
    ),
    R(
        "swedish",
        "Sv: [python-sv] nästa träff",
        """
        + Jag kommer, och tar med fika.

        - Den tis 3 mars 2026 kl 09:12 skrev Erik Lind <erik@example.se>:
        - > Nästa träff blir den 19 mars på kontoret.
    """,
    ),
    R(
        "danish",
        "Sv: [dk-linux] printerdriver",
        """
        + Driveren i Debian 13 virker fint med den model.

        - Den man. 2. mar. 2026 kl. 20.11 skrev Mette Holm <mette@example.dk>:
        - > Har nogen fået en Brother HL-L2350 til at virke?
    """,
    ),
    R(
        "russian_thunderbird",
        "Re: [ru-pg] медленный запрос",
        """
        + Добавьте индекс по (account_id, created_at), и план станет другим.

        - 03.03.2026 10:15, Иван Петров пишет:
        - > Запрос выполняется 12 секунд на таблице в 40 млн строк.
    """,
    ),
    R(
        "russian_gmail",
        "Re: [ru-pg] репликация",
        """
        + Да, логическая репликация поддерживает это начиная с 15 версии.

        - пн, 2 мар. 2026 г. в 18:44, Ольга Смирнова <olga@example.ru>:
        - > Можно ли реплицировать только часть столбцов?
    """,
    ),
    R(
        "japanese_gmail",
        "Re: [python-ja] 勉強会の会場",
        """
        + 会場は渋谷のオフィスで確定しました。

        - 2026年3月3日(火) 10:05 Taro Yamada <taro@example.jp>:
        - > 次回の勉強会の会場はどこになりますか？
    """,
    ),
    R(
        "japanese_kakimashita",
        "Re: [python-ja] 資料",
        """
        - 佐藤さんは書きました:
        - > 発表資料はどこにありますか？

        + 共有ドライブの「2026-03」フォルダにあります。
    """,
    ),
    R(
        "chinese_gmail",
        "Re: [python-cn] 版本升级",
        """
        + 我们下周升级到 3.13，测试已经通过了。

        - 李明 <liming@example.cn> 于2026年3月3日周二 09:30写道：
        - > 请问什么时候升级 Python 版本？
    """,
    ),
    R(
        "chinese_apple",
        "回复: [python-cn] 文档翻译",
        """
        - 在 2026年3月2日，下午6:20，王芳 <wangfang@example.cn> 写道：
        - > 文档翻译还差哪些章节？

        + 还差第七章和第九章。
    """,
    ),
    R(
        "german_mobile_footer",
        "Re: Abholung",
        """
        + Passt, ich hole das Paket um 17 Uhr ab.

        - Von meinem iPhone gesendet

        - > Am 03.03.2026 um 12:01 schrieb Lena Vogel <lena@example.de>:
        - >
        - > Kannst du das Paket heute abholen?
    """,
    ),
    R(
        "forward_german",
        "WG: Lieferung verspätet",
        """
        + Zur Info, die Lieferung kommt erst nächste Woche.

        ~ ---------- Weitergeleitete Nachricht ---------
        + Von: Versand <versand@shop.example>
        + Date: Di., 3. März 2026 um 08:30 Uhr
        + Subject: Lieferung verspätet

        + Ihre Bestellung 55123 wird voraussichtlich am 10. März geliefert.
    """,
    ),
    R(
        "outlook_swedish",
        "SV: Offert",
        """
        + Hej Anders, offerten ser bra ut. Vi beställer 20 licenser.

        - Från: Anders Berg <anders@example.se>
        - Skickat: den 2 mars 2026 15:10
        - Till: Karin Ek <karin@example.se>
        - Ämne: Offert

        - Här kommer offerten för licenserna.
    """,
    ),
    R(
        "outlook_portuguese",
        "RES: Relatório mensal",
        """
        + Olá Ana, o relatório está na pasta compartilhada.

        - De: Ana Souza <ana@example.com.br>
        - Enviada em: segunda-feira, 2 de março de 2026 10:15
        - Para: Paulo Lima <paulo@example.com.br>
        - Assunto: Relatório mensal

        - Paulo, pode enviar o relatório de fevereiro?
    """,
    ),
    R(
        "french_wrap_into_quote",
        "Re: [gulliver] imprimante réseau",
        """
        + Il faut activer IPP dans l'interface web de l'imprimante.

        - Le mer. 4 mars 2026 à 12:32, Rémi Caron <remi.caron@example.fr
        - > a écrit :

        - > L'imprimante n'apparaît plus depuis la mise à jour.
    """,
    ),
    R(
        "danish_gmail_date_first",
        "Re: [dk-python] kursus",
        """
        + Jeg tilmelder mig kurset i april.

        - 15. marts 2026 kl. 11.00 skrev Jens Mikkelsen <jens@example.dk>:

        - > Tilmelding til forårskurset er åben.
    """,
    ),
    R(
        "forward_italian_prefix",
        "I: Verbale riunione",
        """
        + Ti inoltro il verbale, vedi il punto 3.

        ~ ________________________________
        + Da: Segreteria <segreteria@example.it>
        + Inviato: lunedì 2 marzo 2026 17:10
        + A: Team <team@example.it>
        + Oggetto: Verbale riunione

        + Punto 3: il budget viene approvato.
    """,
    ),
    R(
        "polish_thunderbird",
        "Re: [pl-python] konferencja",
        """
        + Zgłosiłem prelekcję o typowaniu, czekam na odpowiedź.

        - W dniu 2.03.2026 o 10:15, Jan Kowalski pisze:
        - > Termin zgłoszeń mija w piątek.
    """,
    ),
    R(
        "korean_gmail",
        "Re: [python-ko] 스터디 장소",
        """
        + 이번 주 스터디는 강남역 근처 카페에서 합니다.

        - 2026년 3월 2일 (월) 오전 10:15, Kim Minsu <minsu@example.kr>님이 작성:
        - > 이번 주 스터디 장소가 어디인가요?
    """,
    ),
    R(
        "portuguese_gmail",
        "Re: [python-br] meetup",
        """
        + Posso apresentar sobre Polars, uns 20 minutos.

        - Em seg., 2 de mar. de 2026 às 10:15, Ana Souza <ana@example.com.br> escreveu:
        - > Quem quer palestrar no próximo meetup?
    """,
    ),
    R(
        "finnish_verb_first",
        "Re: [py-fi] kokous",
        """
        - Jukka Virtanen kirjoitti 2.3.2026 klo 10.15:
        - > Kokous siirtyy torstaille.

        + Torstai sopii minulle.
    """,
    ),
    R(
        "gmail_iso_date_attribution",
        "Re: [python-brasil] sprint",
        """
        + Oi,

        - 2026-03-03 10:35 GMT-03:00 Rafael Costa <rafael@example.com.br>:

        - > Vamos marcar o sprint para sábado?

        + Sábado funciona, levo o projetor -- e o café.
    """,
    ),
    # No-break spaces as clients really send them: French typography before ":", Gmail before "AM".
    R(
        "french_gmail_no_break_spaces",
        "Re: [afpy] atelier",
        """
        + Je serai là samedi, avec deux portables de prêt.

        - Le sam. 7 mars 2026 à 10:02, Claire Petit <claire@example.fr> a\u00a0écrit\u00a0:
        - > Qui vient à l'atelier samedi\u00a0?
    """,
    ),
    R(
        "outlook_french_no_break_spaces",
        "RE: Devis",
        """
        + Bonjour, le devis est accepté.

        - De\u00a0: Service commercial <ventes@example.fr>
        - Envoyé\u00a0: lundi 2 mars 2026 11:20
        - À\u00a0: Luc Bernard <luc@example.fr>
        - Objet\u00a0: Devis

        - Veuillez trouver notre devis ci-joint.
    """,
    ),
]
