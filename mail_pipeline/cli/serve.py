"""The service commands of the CLI: `serve` (HTTP: the JSON API and the search page) and `mcp`
(stdio), both over one warm `MailReader`."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import NoReturn

from mail_pipeline.cli.registry import Register, Subcommands
from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import is_loopback


def register(groups: Subcommands, command: Register) -> None:
    serve = groups.add_parser(
        "serve", help="serve the search page and JSON API, keeping the model warm"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    serve.add_argument(
        "--port",
        type=int,
        help="port (default MAIL_PIPELINE_SEARCH_PORT or 8765; 0 picks a free one)",
    )
    command("serve")(cmd_serve)
    groups.add_parser(
        "mcp",
        help="serve search, emails, threads, accounts and sync status to an MCP client (stdio)",
    )
    command("mcp")(cmd_mcp)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.service import client
    from mail_pipeline.service.reader import MailReader
    from mail_pipeline.service.web import SearchServer

    port = settings.search_port if args.port is None else args.port
    if not is_loopback(args.host) and not settings.token_store().any():
        print(
            f"error: refusing to listen on {args.host} with no access token: anyone who can reach it "
            "would read every account's mail. Make one with `mail-pipeline token add NAME --account "
            "SLUG` (or --all), or serve on 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    reader = MailReader(settings)
    try:
        server = SearchServer((args.host, port), reader)
    except OSError as error:
        print(
            f"error: cannot listen on {args.host}:{port} ({error.strerror or error}): another search service "
            "may be running; pass --port or set MAIL_PIPELINE_SEARCH_PORT",
            file=sys.stderr,
        )
        return 2
    print("search service: loading the model...", flush=True)
    reader.warm_up()
    server.embed.warm_up()
    host, port = str(server.server_address[0]), server.server_address[1]
    print(
        f"search service: {client.service_url(port, host)}  (JSON API under /api/; Ctrl-C stops it)",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.service.mcp_server import build_server
    from mail_pipeline.service.reader import MailReader

    # The model loads on the first search_mail, not here: the client is waiting for the handshake.
    build_server(MailReader(settings)).run("stdio")
    return 0
