"""sensor: a new_mail_sensor tick with nothing new, on a small and on the bench mailbox."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.mailbox import FOLDERS, USER, Workbench, environment
from bench.sections import Figure, Goal, Section, register

if TYPE_CHECKING:
    from mail_pipeline.storage.accounts import AccountRegistry
    from mail_pipeline_tests.servers import Dovecot

SMALL_USER = "bob"
SMALL_N = 1000
TICKS = 20


def account_dir(bench: Workbench, user: str, slug: str) -> Path:
    """A data directory whose registry holds only `user`'s mailbox, as account `slug`."""
    data_dir = bench.scratch_dir(f"sensor-{slug}")
    register_account(data_dir, bench.dovecot, user, slug)
    return data_dir


def register_account(data_dir: Path, server: Dovecot, user: str, slug: str) -> None:
    """`add_account` to the data directory's registry file."""
    from mail_pipeline.storage.accounts import AccountRegistry

    add_account(AccountRegistry(data_dir / "accounts.json"), server, user, slug)


def add_account(
    registry: AccountRegistry,
    server: Dovecot,
    user: str,
    slug: str,
    folders: tuple[str, ...] = FOLDERS,
) -> None:
    """Add `user`'s mailbox on `server` (TLS, its CA; INBOX and Archive unless `folders` says
    otherwise) to `registry` as account `slug`, its password sealed with the environment's key."""
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import Account

    registry.add(
        Account(
            slug=slug,
            email=f"{user}@example.test",
            host="127.0.0.1",
            port=server.tls_port,
            username=user,
            password_token="",
            ca_file=server.ca_file,
            folders=folders,
        ),
        server.users[user],
        crypto.load_cipher(),
    )


class Ticker:
    """Evaluates the sensor the way test_sensor does (build_sensor_context on an instance), with
    resources bound to one account's data directory; only the sensor call itself is timed."""

    def __init__(self, instance, data_dir: Path):
        from dagster import Definitions

        from mail_pipeline.defs.assets import build_mail_assets
        from mail_pipeline.defs.partitions import mail_partitions_for
        from mail_pipeline.defs.resources import build_resources
        from mail_pipeline.defs.sensors import new_mail_sensor_every
        from mail_pipeline.settings import Settings

        self.instance, self.sensor = instance, new_mail_sensor_every(60)
        settings = Settings(data_dir=data_dir)
        self.resources = build_resources(settings)
        self.repository = Definitions(
            assets=build_mail_assets(mail_partitions_for(settings.window)),
            sensors=[new_mail_sensor_every(60)],
            resources=self.resources,
        ).get_repository_def()
        self.cursor: str | None = None

    def tick(self):
        from dagster import build_sensor_context

        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            repository_def=self.repository,
            resources=self.resources,
        )
        started = time.perf_counter()
        result = self.sensor(context)
        seconds = time.perf_counter() - started
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = result.cursor
        return seconds * 1000, result


# Bare imapclient phases: (key, what it times), in the report's order.
BARE_PHASES = (
    ("login", "connect + TLS + LOGIN"),
    ("status_inbox_first", "STATUS INBOX then Archive, nothing before (as a tick)"),
    ("logout", "LOGOUT"),
    ("list", "LIST (the old tick's first command)"),
    ("status_after_list", "STATUS of both folders after the LIST (the old tick)"),
    ("status_inbox_last", "STATUS Archive then INBOX, no LIST"),
)


def bare_imap_ms(bench: Workbench, user: str) -> dict[str, float]:
    """What a tick asks the server, with imapclient alone, in milliseconds: connect + TLS + login,
    STATUS of INBOX then Archive (the sensor's items), logout. Then, each on a fresh connection,
    the old tick's LIST before the same STATUS commands, and the STATUS commands with INBOX
    last: on Dovecot STATUS INBOX grows with the mailbox once the session has read the mailbox
    list index, which a LIST or another folder's STATUS does (`changes.inbox_first`)."""
    import ssl

    from imapclient import IMAPClient

    server, spent = bench.dovecot, {}
    items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"HIGHESTMODSEQ"]

    def timed(phase: str, call) -> None:
        started = time.perf_counter()
        call()
        spent[phase] = (time.perf_counter() - started) * 1000

    def connect() -> IMAPClient:
        client = IMAPClient(
            "127.0.0.1",
            port=server.tls_port,
            ssl=True,
            ssl_context=ssl.create_default_context(cafile=server.ca_file),
        )
        client.login(user, server.users[user])
        return client

    def status(client: IMAPClient, folders) -> None:
        for folder in folders:
            client.folder_status(folder, items)

    started = time.perf_counter()
    client = connect()
    spent["login"] = (time.perf_counter() - started) * 1000
    timed("status_inbox_first", lambda: status(client, FOLDERS))
    timed("logout", client.logout)
    client = connect()
    timed("list", client.list_folders)
    timed("status_after_list", lambda: status(client, FOLDERS))
    client.logout()
    client = connect()
    timed("status_inbox_last", lambda: status(client, reversed(FOLDERS)))
    client.logout()
    return spent


def bare_figures(bench: Workbench, sizes: dict[str, tuple[str, int]]) -> dict[str, float]:
    """Medians of bare_imap_ms over TICKS rounds, the mailboxes alternating."""
    samples: dict[str, list[float]] = {}
    for i in range(TICKS):
        for name in tuple(sizes) if i % 2 == 0 else tuple(reversed(sizes)):
            for phase, ms in bare_imap_ms(bench, sizes[name][0]).items():
                samples.setdefault(f"sensor_bare_{phase}_ms_{name}", []).append(ms)
    return {key: statistics.median(values) for key, values in samples.items()}


def measure(bench: Workbench, small_n: int) -> dict[str, float]:
    from dagster import DagsterInstance

    sizes = {"1k": (SMALL_USER, small_n), "20k": (USER, bench.n)}
    for user, n in sizes.values():
        bench.mailbox(user, n)  # loaded before any clock starts
    figures: dict[str, float] = {}
    ticks: dict[str, list[float]] = {name: [] for name in sizes}
    # One instance per account: each data directory's registry knows only its own account, and the
    # sensor removes account partitions its registry does not know.
    with DagsterInstance.ephemeral() as small, DagsterInstance.ephemeral() as large:
        instances = {"1k": small, "20k": large}
        tickers = {
            name: Ticker(instances[name], account_dir(bench, user, f"sensor-{name}"))
            for name, (user, _) in sizes.items()
        }
        for name, ticker in tickers.items():
            # a new account: every day of it
            figures[f"sensor_first_tick_ms_{name}"], first = ticker.tick()
            if not first.run_requests:
                raise RuntimeError(f"the first tick of the {name} mailbox requested no run")
        for i in range(TICKS):
            for name in ("1k", "20k") if i % 2 == 0 else ("20k", "1k"):
                ms, result = tickers[name].tick()
                if result.run_requests or "no new mail" not in (
                    result.skip_reason.skip_message or ""
                ):
                    raise RuntimeError(
                        f"a tick of the up-to-date {name} mailbox did not skip: {result}"
                    )
                ticks[name].append(ms)
    for name, values in ticks.items():
        median = statistics.median(values)
        quartiles = statistics.quantiles(values, n=4)
        figures[f"sensor_noop_tick_ms_{name}"] = median
        figures[f"sensor_noop_tick_iqr_ms_{name}"] = quartiles[2] - quartiles[0]
        print(
            f"  {name:3} ({sizes[name][1]:,} messages): median {median:.1f} ms, "
            f"quartiles {quartiles[0]:.1f}-{quartiles[2]:.1f} ms over {len(values)} ticks",
            flush=True,
        )
    figures["sensor_noop_tick_ratio"] = (
        figures["sensor_noop_tick_ms_20k"] / figures["sensor_noop_tick_ms_1k"]
    )
    # Within noise: the medians differ by less than the larger interquartile range.
    spread = max(figures["sensor_noop_tick_iqr_ms_1k"], figures["sensor_noop_tick_iqr_ms_20k"])
    figures["sensor_noop_tick_difference_vs_iqr"] = abs(
        figures["sensor_noop_tick_ms_20k"] - figures["sensor_noop_tick_ms_1k"]
    ) / max(spread, 1e-9)
    figures["sensor_small_n_messages"], figures["sensor_large_n_messages"] = small_n, bench.n
    figures.update(bare_figures(bench, sizes))
    print(
        "  bare imapclient, medians: "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{phase} {figures[f'sensor_bare_{phase}_ms_{name}']:.1f}"
                for phase, _ in BARE_PHASES
            )
            + " ms"
            for name in sizes
        ),
        flush=True,
    )
    return figures


def run(bench: Workbench) -> dict[str, float]:
    from bench.fetch import settings_environment

    with environment(**settings_environment(bench)):
        return measure(bench, min(SMALL_N, bench.n))


register(
    Section(
        name="sensor",
        title="Sensor: a tick with no new mail, 1,000 vs 20,000 messages",
        run=run,
        figures=(
            Figure("sensor_small_n_messages", "small mailbox (`_1k` figures)", "messages"),
            Figure("sensor_large_n_messages", "the bench mailbox (`_20k` figures)", "messages"),
            Figure(
                "sensor_noop_tick_ms_1k",
                "tick with the cursor up to date, small mailbox, median",
                "ms",
                1,
            ),
            Figure(
                "sensor_noop_tick_ms_20k",
                "tick with the cursor up to date, bench mailbox, median",
                "ms",
                1,
            ),
            Figure(
                "sensor_noop_tick_iqr_ms_1k",
                "interquartile range of those ticks, small mailbox",
                "ms",
                1,
            ),
            Figure(
                "sensor_noop_tick_iqr_ms_20k",
                "interquartile range of those ticks, bench mailbox",
                "ms",
                1,
            ),
            Figure("sensor_noop_tick_ratio", "bench mailbox median / small mailbox median", "×", 2),
            Figure(
                "sensor_noop_tick_difference_vs_iqr",
                "|difference of the medians| / the larger IQR",
                "",
                2,
            ),
            *(
                Figure(
                    f"sensor_bare_{phase}_ms_{name}",
                    f"bare imapclient {what}, {mailbox} mailbox, median",
                    "ms",
                    1,
                )
                for phase, what in BARE_PHASES
                for name, mailbox in (("1k", "small"), ("20k", "bench"))
            ),
            Figure(
                "sensor_first_tick_ms_1k",
                "first tick of the new account (every day requested), small",
                "ms",
            ),
            Figure(
                "sensor_first_tick_ms_20k",
                "first tick of the new account (every day requested), bench",
                "ms",
            ),
        ),
        goals=(
            Goal(
                "sensor_noop_tick_difference_vs_iqr",
                "<=",
                1.0,
                "no-op tick the same within noise: medians differ by ≤ 1 IQR",
            ),
            Goal(
                "sensor_noop_tick_ratio",
                "<=",
                1.2,
                "no-op tick on the bench mailbox ≤ 1.2 × the small one",
            ),
        ),
        method=(
            "Two accounts on the same loopback Dovecot over implicit TLS: the bench mailbox (N messages, "
            "the one the fetch section reads) and a mailbox of 1,000 messages of the same window and "
            "seed, each in its own data directory and its own `new_mail_sensor` evaluation "
            "(`build_sensor_context` on one ephemeral instance with the real repository and resources, "
            "as `mail_pipeline_tests/test_sensor.py` does). Each account's first tick (cursor empty: every "
            "day of the new account is requested) is timed once; then 20 ticks each with the cursor up to "
            "date, alternating the two mailboxes and swapping which goes first, each checked to skip with "
            '"no new mail". A tick is the sensor call alone: registry read, connect + TLS login, STATUS '
            "per folder (INBOX first; the accounts name their folders, so no LIST), logout, the "
            "dynamic-partition lookup; building the context is not timed, nor the daemon's own per-tick "
            "work. To tell the server's share from the sensor's, the same requests are then timed with "
            "imapclient alone, 20 rounds alternating the mailboxes, each round on a fresh connection as "
            "a tick makes one; then, each on another fresh connection, the old tick's LIST before the "
            "STATUS commands, and the STATUS commands with INBOX last (Dovecot answers STATUS INBOX "
            "from the mailbox itself, and once the session has read its mailbox list index, by a LIST "
            "or another folder's STATUS, that costs time in proportion to the mailbox)."
        ),
    )
)
