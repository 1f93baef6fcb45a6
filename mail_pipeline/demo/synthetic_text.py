"""Words, people and prose for the synthetic mailbox (assembled into MIME by `synthetic`).

The vocabulary is business English plus five other languages, so that search tests can look
for real words: invoice numbers such as INV-2026-00417, project names, people, meetings.
"""

from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass
from html import escape
from string import Template
from typing import Any


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split("|"))


FIRST = _split(
    "Alice|Ben|Carla|David|Emma|Farid|Grace|Hiro|Isabel|Jonas|Karen|Liam|Maya|Noah|"
    "Olivia|Priya|Quentin|Rosa|Samir|Tara|Umar|Vera|Will|Yusuf|Zoe"
)
LAST = _split(
    "Anderson|Baker|Chen|Dubois|Evans|Fischer|Garcia|Hughes|Ivanova|Jensen|Kowalski|"
    "Lopez|Morgan|Nakamura|Okafor|Patel|Quinn|Rossi|Schmidt|Turner|Walsh|Young"
)
TITLES = _split(
    "Account Manager|Head of Finance|Project Lead|Senior Engineer|Operations Director|"
    "Procurement Specialist|Marketing Coordinator|Chief Financial Officer|"
    "Product Owner|Legal Counsel|Customer Success Manager|Controller"
)
COMPANIES = (
    ("Acme Corp", "acme-corp.example"),
    ("Northwind Traders", "northwind.example"),
    ("Contoso", "contoso.example"),
    ("Globex", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella Logistics", "umbrella-logistics.example"),
    ("Stark Supplies", "stark-supplies.example"),
    ("Wayne Consulting", "wayne.example"),
)
PROJECTS = _split(
    "Atlas|Orion|Helios|Nimbus|Falcon|Quasar|Sequoia|Borealis|Meridian|Keystone|Tidewater|Juniper"
)
NOUNS = _split(
    "budget|contract|invoice|proposal|forecast|roadmap|deliverable|quote|purchase order|"
    "status report|timeline|statement of work|renewal|audit|migration plan|"
    "onboarding checklist|vendor assessment|release notes|board deck|expense report"
)
ADJS = _split(
    "revised|final|draft|updated|quarterly|signed|pending|overdue|approved|preliminary|"
    "annual|detailed"
)
DOCS = _split(
    "spreadsheet|slide deck|PDF|shared folder|wiki page|project plan|contract draft|minutes"
)
MEETINGS = _split(
    "kickoff|weekly sync|steering committee|quarterly review|budget review|"
    "retrospective|design review|vendor call|all-hands|one-on-one"
)
DAYS = _split("Monday|Tuesday|Wednesday|Thursday|Friday")
CITIES = _split("London|Berlin|Paris|Singapore|Toronto|Austin|Madrid|Tokyo|Dublin|Amsterdam")
CURRENCIES = ("EUR ", "USD ", "$", "GBP ")
CLOSINGS = _split("Best regards,|Kind regards,|Thanks,|Cheers,|Many thanks,|Best,")

SENTENCES = _split("""Please find attached invoice {inv} for {amount}, due within 30 days.|
Could we move the {meeting} to {day} at {time}?|
Can we set up a meeting with {company} about the {noun}?|
I have updated the {doc} with the latest numbers for {project}.|
The {adj} {noun} for {project} is ready for your review.|
{first} from {company} confirmed the delivery date for purchase order {po}.|
Let me know if the {noun} needs any further changes before we send it to {company}.|
We are still waiting on the signed {noun} from legal.|
Payment for {inv} was received on {day}, thank you.|
Our {quarter} forecast shows a {pct} increase in spend on {project}.|
Can you share the {doc} before the {meeting}?|
I have booked the large conference room in {city} for {day} from {time}.|
The {project} migration is on track, although the {noun} slipped by two days.|
Ticket {ticket} tracks the remaining issues with the {noun}.|
{person} will join the {meeting} to walk us through the {noun}.|
As discussed, the budget for {project} is capped at {amount} for {quarter}.|
Please approve the {adj} {noun} so that procurement can issue {po}.|
I will circulate the minutes from the {meeting} by end of day.|
The vendor quoted {amount} for the {project} licences, which is {pct} above last year.|
Could you double-check the totals on invoice {inv}? The line items do not match {po}.|
We need a decision on the {noun} by {day} to keep the {project} timeline.|
Attached is the {adj} {doc}; changes are highlighted in yellow.|
I am travelling to {city} next week, so let's do the {meeting} by video call.|
Thanks again for your help with the {noun} last week.|
I missed the {meeting} meeting; could someone send me the notes?|
Finance flagged invoice {inv} as overdue; can you check the payment status?|
The {project} steering group agreed to prioritise the {noun} over new features.|
Reminder: expense reports for {quarter} are due on {day}.|
Our contact at {company}, {person}, asked for a copy of the {adj} {noun}.|
I have added {first} to the thread, who owns the {noun} for {project}.|
The {meeting} is rescheduled to {day} at {time} in {city}.|
Please use cost centre {cc} for everything related to {project}.|
The contract with {company} renews automatically unless we give notice before {day}.|
Shipping of order {po} is delayed because of customs in {city}.|
We reduced the {noun} cost by {pct} by consolidating suppliers.|
Let's aim to sign off the {noun} at the {meeting}.|
The {adj} numbers are in the {doc} under the {project} tab.|
Can you confirm whether {amount} includes VAT?|
I spoke with {person} about the {noun} and they are fine with the proposal.|
The auditors need the {adj} {noun} and all invoices from {quarter}, including {inv}.|
Quick heads-up: the {project} demo moved to {day}.""")
REPLIES = _split("""Thanks, {first}, that works for me.|Sounds good, let's go ahead.|
I have made the changes you suggested to the {noun}.|
Agreed. I will update the {doc} and send it round.|Can we discuss this at the {meeting} on {day}?|
Looping in {person} for visibility.|Good catch, the total on {inv} should be {amount}.|
Approved from my side.|I will check with {company} and get back to you by {day}.|
Not yet, I am still waiting on {first}.|Yes, {time} on {day} works.|
Please hold off until we hear back from legal on the {noun}.""")
SUBJECTS = _split("""{adj} {noun} for {project}|Invoice {inv} from {company}|
{project}: {noun} update|
{meeting} on {day} at {time}|Question about the {noun}|Action required: {adj} {noun} ({ticket})|
Purchase order {po}|{quarter} {noun} review|{project} status for week {week}|
Updated {doc} for {project}|Payment reminder: {inv}|Agenda for the {meeting}|
Travel to {city} next week|{company} {noun}, please review""")
HEADLINES = _split("""How {company} cut {noun} costs by {pct}|
{n} lessons from the {project} rollout|
What the {quarter} numbers mean for your {noun}|Inside the {city} office: a {meeting} that works|
The {adj} guide to your next {noun}|Webinar on {day}: getting the {noun} right|
Why teams in {city} are rethinking the {noun}|Case study: {company} and Project {project}""")
NEWSLETTERS = (
    ("Acme Weekly", "acme-weekly.example"),
    ("Ops Digest", "opsdigest.example"),
    ("The Finance Brief", "financebrief.example"),
    ("SaaS Deals", "saasdeals.example"),
    ("Procurement Today", "procurement.example"),
    ("Cloud Cost Insider", "cloudcost.example"),
)
# Minutes east of UTC; a quarter of English-speaking senders write from UTC.
EN_OFFSETS = (0, 0, -300, -480, -240, 60, 330, 600)


@dataclass(frozen=True)
class Locale:
    code: str
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]
    names: tuple[tuple[str, str], ...]  # (display name, ASCII local part)
    title: str
    company: str
    domain: str
    greeting: str
    closing: str
    joiner: str  # between sentences: a space, or nothing for Chinese and Japanese
    offsets: tuple[int, ...]


_DE_SUBJECTS = _split("""Rechnung für März|Besprechung am Donnerstag|Angebot für das Projekt {project}|
Rückfrage zur Lieferung {po}|Überarbeiteter Zeitplan|Grüße aus München""")
_DE_SENTENCES = _split("""Vielen Dank für Ihre schnelle Rückmeldung.|Anbei erhalten Sie die Rechnung {inv} über {amount}.|
Könnten wir die Besprechung zum Projekt {project} auf nächste Woche verschieben?|
Die Lieferung verzögert sich leider um zwei Tage.|
Bitte prüfen Sie die überarbeitete Kalkulation bis Freitag.|
Für Rückfragen stehe ich Ihnen gerne zur Verfügung.|
Das Angebot {po} ist bis Ende des Monats gültig.|Wir haben die Änderungen im Vertrag übernommen.|
Der Termin um {time} Uhr passt mir gut.""")
_FR_SUBJECTS = _split("""Facture du mois de février|Réunion de lancement {project}|Compte rendu de la réunion|
Commande {po} : délai de livraison|Présentation révisée""")
_FR_SENTENCES = _split("""Merci pour votre retour rapide.|
Veuillez trouver ci-joint la facture {inv} d'un montant de {amount}.|
Pourriez-vous confirmer la réunion de {time} concernant le projet {project} ?|
La livraison est prévue pour la semaine prochaine.|
Le bon de commande {po} a été validé par la direction.|
Nous avons intégré vos remarques dans la dernière version du contrat.|
N'hésitez pas à me contacter si vous avez des questions.|
Le règlement sera effectué à réception de la facture.""")
_JA_SUBJECTS = _split(
    """請求書の送付について|会議の日程調整|{project}プロジェクトの進捗報告|見積書のご確認のお願い"""
)
_JA_SENTENCES = _split("""いつもお世話になっております。|請求書{inv}を添付いたしますので、ご確認ください。|{project}プロジェクトの進捗についてご報告いたします。|
来週の打ち合わせは{time}からでよろしいでしょうか。|金額は{amount}となります。|ご不明な点がございましたら、お気軽にお問い合わせください。|納期が二日ほど遅れる見込みです。|
発注書{po}を承認いたしました。|資料を共有フォルダに格納しました。""")
_ZH_SUBJECTS = _split("""关于发票的问题|{project}项目进度报告|会议时间安排|采购订单{po}确认""")
_ZH_SENTENCES = _split("""感谢您的及时回复。|附件是发票{inv}，金额为{amount}，请查收。|关于{project}项目的进度，我们下周{time}开会讨论。|采购订单{po}已经审批通过。|
交货时间可能会推迟两天。|如有任何问题，请随时与我联系。|合同的修改意见已经整理好了。|会议纪要已上传到共享文件夹。""")
_RU_SUBJECTS = _split(
    """Счёт за март|Встреча в четверг|Отчёт по проекту {project}|Заказ {po}: сроки поставки"""
)
_RU_SENTENCES = _split("""Спасибо за быстрый ответ.|Во вложении счёт {inv} на сумму {amount}.|
Предлагаю обсудить проект {project} завтра в {time}.|Поставка задерживается на два дня.|
Заказ {po} согласован с руководством.|Пожалуйста, проверьте обновлённую смету до пятницы.|
Протокол встречи загружен в общую папку.|Договор с правками направлю сегодня вечером.""")
LOCALES = (
    Locale(
        "de",
        _DE_SUBJECTS,
        _DE_SENTENCES,
        (
            ("Jürgen Müller", "juergen.mueller"),
            ("Käthe Schäfer", "kaethe.schaefer"),
            ("Björn Köhler", "bjoern.koehler"),
            ("Sören Weiß", "soeren.weiss"),
        ),
        "Projektleiter",
        "Beispiel GmbH",
        "beispiel-gmbh.example",
        "Sehr geehrte Damen und Herren,",
        "Mit freundlichen Grüßen",
        " ",
        (60, 120),
    ),
    Locale(
        "fr",
        _FR_SUBJECTS,
        _FR_SENTENCES,
        (
            ("Élodie Lefèvre", "elodie.lefevre"),
            ("François Dupré", "francois.dupre"),
            ("Hélène Bérard", "helene.berard"),
            ("Jérôme Géraud", "jerome.geraud"),
        ),
        "Chargée de clientèle",
        "Exemple SA",
        "exemple-sa.example",
        "Bonjour,",
        "Cordialement,",
        " ",
        (60, 120),
    ),
    Locale(
        "ja",
        _JA_SUBJECTS,
        _JA_SENTENCES,
        (("山田 太郎", "taro.yamada"), ("佐藤 花子", "hanako.sato"), ("鈴木 健太", "kenta.suzuki")),
        "営業部 課長",
        "例商事株式会社",
        "rei-shoji.example",
        "ご担当者様",
        "よろしくお願いいたします。",
        "",
        (540,),
    ),
    Locale(
        "zh",
        _ZH_SUBJECTS,
        _ZH_SENTENCES,
        (("王伟", "wei.wang"), ("李娜", "na.li"), ("张敏", "min.zhang"), ("刘洋", "yang.liu")),
        "项目经理",
        "示例科技有限公司",
        "shili-keji.example",
        "您好，",
        "此致敬礼",
        "",
        (480,),
    ),
    Locale(
        "ru",
        _RU_SUBJECTS,
        _RU_SENTENCES,
        (
            ("Дмитрий Иванов", "d.ivanov"),
            ("Ольга Смирнова", "o.smirnova"),
            ("Сергей Кузнецов", "s.kuznetsov"),
        ),
        "Менеджер проектов",
        "ООО «Пример»",
        "primer-ooo.example",
        "Добрый день!",
        "С уважением,",
        " ",
        (180,),
    ),
)


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    title: str
    company: str
    locale: Locale | None
    offset: int  # minutes east of UTC of the sender's Date header


OWNER = Person("Sam Taylor", "sam.taylor@example.com", "Operations Manager", "Example Ltd", None, 0)


@dataclass(frozen=True)
class Letter:
    paragraphs: list[str]
    signature: str  # "-- \nName\nTitle" or "Sent from my iPhone"
    quote: str = ""  # "On <date>, <name> wrote:" and the previous message, "> "-prefixed
    width: int = 72  # characters a line; half that for double-width scripts

    def plain(self) -> str:
        blocks = [wrap(p, self.width) for p in self.paragraphs] + [self.signature]
        return "\n\n".join(blocks + ([self.quote] if self.quote else [])) + "\n"

    def html(self) -> str:
        paras = "".join(f"<p>{escape(p)}</p>\n" for p in self.paragraphs)
        signature = "<br>\n".join(escape(line) for line in self.signature.split("\n"))
        return (
            '<html><head></head><body>\n<div dir="ltr" style="font-family:Arial,sans-serif;'
            f'font-size:14px;color:#222222">\n{paras}<div class="signature">{signature}</div>\n'
            "</div>\n</body></html>\n"
        )


def wrap(text: str, width: int = 72) -> str:
    """Greedy word wrap like textwrap.fill, in one regex (~40x faster, measured); runs
    without spaces, such as Chinese and Japanese, are cut every `width` characters."""
    pattern = _WRAPS.get(width) or _WRAPS.setdefault(
        width, re.compile(rf"\S.{{0,{width - 1}}}(?= |$)|\S{{1,{width}}}")
    )
    return "\n".join(pattern.findall(text))


_WRAPS: dict[int, re.Pattern[str]] = {}


class _Fields(dict[str, Any]):
    """Placeholders of one template, drawn on first use so that unused ones cost nothing."""

    def __init__(self, maker: TextMaker) -> None:
        super().__init__()
        self.maker = maker

    def __missing__(self, key: str) -> str:
        value = self[key] = self.maker.field(key)
        return value


_POOLS = {
    "project": PROJECTS,
    "noun": NOUNS,
    "adj": ADJS,
    "doc": DOCS,
    "meeting": MEETINGS,
    "day": DAYS,
    "first": FIRST,
    "city": CITIES,
    "company": tuple(c[0] for c in COMPANIES),
}


_DRAWS = {
    "inv": lambda m, r: f"INV-{m.year}-{r.randrange(1, 100000):05d}",
    "po": lambda m, r: f"PO-{r.randrange(10000, 100000)}",
    "amount": lambda m, r: (
        f"{r.choice(CURRENCIES)}{r.randrange(90, 250000):,}.{r.randrange(100):02d}"
    ),
    "time": lambda m, r: f"{r.randrange(8, 18)}:{r.choice(('00', '15', '30', '45'))}",
    "ticket": lambda m, r: f"{r.choice(('OPS', 'FIN', 'IT', 'PRJ'))}-{r.randrange(100, 10000)}",
    "person": lambda m, r: f"{r.choice(FIRST)} {r.choice(LAST)}",
    "pct": lambda m, r: f"{r.randrange(3, 60)}%",
    "quarter": lambda m, r: f"Q{r.randrange(1, 5)}",
    "cc": lambda m, r: f"CC-{r.randrange(1000, 10000)}",
    "week": lambda m, r: str(r.randrange(1, 53)),
    "n": lambda m, r: str(r.randrange(3, 12)),
}


def _width(locale: Locale | None) -> int:
    return 36 if locale and not locale.joiner else 72


class TextMaker:
    """Draws names, sentences and letters from one `random.Random`, so output follows the seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.year = 2026  # of the message being written: invoice numbers carry it

    def field(self, key: str) -> str:
        pool = _POOLS.get(key)
        return self.rng.choice(pool) if pool else _DRAWS[key](self, self.rng)

    def fill(self, template: str) -> str:
        text = template.format_map(_Fields(self))
        return text[0].upper() + text[1:]

    def paragraph(self, locale: Locale | None, low: int = 3, high: int = 5) -> str:
        pool, joiner = (locale.sentences, locale.joiner) if locale else (SENTENCES, " ")
        picks = self.rng.choices(pool, k=self.rng.randint(low, high))
        return joiner.join(self.fill(t) for t in picks)

    def subject(self, locale: Locale | None) -> str:
        return self.fill(self.rng.choice(locale.subjects if locale else SUBJECTS))

    def headline(self) -> str:
        return self.fill(self.rng.choice(HEADLINES))

    def person(self, locale: Locale | None) -> Person:
        r = self.rng
        if locale:
            name, local = r.choice(locale.names)
            return Person(
                name,
                f"{local}@{locale.domain}",
                locale.title,
                locale.company,
                locale,
                r.choice(locale.offsets),
            )
        first, last = r.choice(FIRST), r.choice(LAST)
        company, domain = r.choice(COMPANIES)
        return Person(
            f"{first} {last}",
            f"{first}.{last}@{domain}".lower(),
            r.choice(TITLES),
            company,
            None,
            r.choice(EN_OFFSETS),
        )

    def letter(self, sender: Person, to: Person, locale: Locale | None) -> Letter:
        hello = self.rng.choice(("Hi", "Hello", "Dear"))
        greeting = locale.greeting if locale else f"{hello} {to.name.split()[0]},"
        body = [self.paragraph(locale) for _ in range(self.rng.randint(4, 7))]
        closing = locale.closing if locale else self.rng.choice(CLOSINGS)
        return Letter([greeting, *body, closing], self.signature(sender), width=_width(locale))

    def reply(self, sender: Person, to: Person, locale: Locale | None, quote: str) -> Letter:
        r = self.rng
        pool, joiner = (locale.sentences, locale.joiner) if locale else (REPLIES, " ")
        if r.random() < 0.25:  # phones send a line or two and a footer instead of a signature
            text = joiner.join(self.fill(t) for t in r.choices(pool, k=r.randint(1, 2)))
            return Letter([text], "Sent from my iPhone", quote, _width(locale))
        opening = joiner.join(self.fill(t) for t in r.choices(pool, k=2))
        body = [opening] + [self.paragraph(locale) for _ in range(r.randint(0, 2))]
        greeting = locale.greeting if locale else f"Hi {to.name.split()[0]},"
        return Letter([greeting, *body], self.signature(sender), quote, _width(locale))

    def signature(self, sender: Person) -> str:
        return f"-- \n{sender.name}\n{sender.title}\n{sender.company}"

    def token(self, nbytes: int) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(nbytes)).decode("ascii").rstrip("=")


_PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$name</title>
<style type="text/css">
body,table,td,a{-webkit-text-size-adjust:100%;-ms-text-size-adjust:100%;}
body{margin:0!important;padding:0!important;width:100%!important;background-color:#f4f4f7;}
img{border:0;height:auto;line-height:100%;outline:none;text-decoration:none;}
table{border-collapse:collapse!important;}
.wrapper{width:100%;max-width:600px;margin:0 auto;}
.article h2{font-family:Georgia,'Times New Roman',serif;}
.button:hover{background-color:#2f4ac0!important;}
@media screen and (max-width:600px){.wrapper{width:100%!important;}
.article{padding:16px!important;}}
</style>
</head>
<body style="margin:0;padding:0;background-color:#f4f4f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td align="center" style="padding:24px 0;">
<table role="presentation" class="wrapper" width="600" cellpadding="0" cellspacing="0" border="0"
 style="background-color:#ffffff;">
<tr><td style="padding:20px 32px;background-color:#1a1a2e;color:#ffffff;
 font-family:Helvetica,Arial,sans-serif;">
<h1 style="margin:0;font-size:24px;">$name</h1>
$nav</td></tr>
$articles<tr><td style="padding:24px 32px;font-family:Helvetica,Arial,sans-serif;font-size:12px;
 color:#8a8a99;">
You are receiving this email because you subscribed to $name.<br>
<a href="$unsubscribe" style="color:#3b5bdb;">Unsubscribe</a> |
<a href="$preferences" style="color:#3b5bdb;">Manage preferences</a> |
<a href="$browser" style="color:#3b5bdb;">View in browser</a><br>
$name, 100 Market Street, Suite 300, $city</td></tr>
</table>
<img src="$pixel" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;">
</td></tr>
</table>
</body></html>
""")
_ARTICLE = Template("""<tr><td class="article"
 style="padding:24px 32px;border-bottom:1px solid #e5e5ea;">
<a href="$link"><img src="$image" width="536" height="240" alt="$headline"
 style="display:block;width:100%;max-width:536px;height:auto;border:0;"></a>
<h2 style="font-size:20px;line-height:26px;color:#1a1a2e;margin:16px 0 8px;">$headline</h2>
<p style="font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:22px;color:#444455;
margin:0 0 12px;">$text</p>
<a href="$more" class="button"
 style="display:inline-block;padding:10px 18px;background-color:#3b5bdb;
color:#ffffff;border-radius:4px;text-decoration:none;font-weight:bold;">Read more &rarr;</a>
</td></tr>
""")


def newsletter_html(maker: TextMaker, name: str, domain: str) -> str:
    """An HTML-only newsletter of ~12-18 KB: table layout, inline styles, tracked links, a pixel."""
    r = maker.rng
    campaign = f"{domain.split('.')[0]}-{r.getrandbits(24):06x}"

    def track() -> str:
        return _track(maker, domain, campaign)

    nav = " &middot; ".join(
        f'<a href="{track()}" style="color:#ffffff;">{label}</a>'
        for label in ("Latest", "Events", "Podcast", "Jobs", "Archive")
    )
    articles = "".join(
        _ARTICLE.substitute(
            link=track(),
            more=track(),
            headline=escape(maker.headline()),
            image=f"https://cdn.{domain}/img/{r.getrandbits(96):024x}.jpg",
            text=escape(maker.paragraph(None)),
        )
        for _ in range(r.randint(5, 9))
    )
    return _PAGE.substitute(
        name=escape(name),
        nav=nav,
        articles=articles,
        city=r.choice(CITIES),
        unsubscribe=f"https://{domain}/u/{maker.token(24)}",
        preferences=track(),
        browser=track(),
        pixel=f"https://t.{domain}/o/{r.getrandbits(128):032x}.gif",
    )


def _track(maker: TextMaker, domain: str, campaign: str) -> str:
    token = maker.token(maker.rng.randrange(90, 150))
    return (
        f"https://click.{domain}/ls/click?upn={token}&amp;utm_source=newsletter"
        f"&amp;utm_medium=email&amp;utm_campaign={campaign}"
    )
