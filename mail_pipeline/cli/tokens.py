"""`mail-pipeline token`: the access tokens of the search service (page, API, MCP over HTTP)."""

from __future__ import annotations

import argparse

from mail_pipeline.cli.registry import Subcommands, command
from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import check_accounts, known_accounts


def register(groups: Subcommands) -> None:
    token = groups.add_parser(
        "token", help="manage the search service's access tokens"
    ).add_subparsers(dest="action", required=True)
    add = token.add_parser("add", help="make a token (printed once) for some accounts or all")
    add.add_argument("name", help="who or what holds it, e.g. anna or support-agent")
    scope = add.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SLUG",
        help="an account it opens (repeat)",
    )
    scope.add_argument("--all", action="store_true", help="every account, present and future")
    add.add_argument("--admin", action="store_true", help="may also read the sync status")
    token.add_parser("list", help="the tokens: name, scope, created, last used (never the token)")
    revoke = token.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("name")


@command("token add")
def token_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.account:
        check_accounts(args.account, known_accounts(settings.registry(), settings.lake_dir))
    token, secret = settings.token_store().add(
        args.name, args.account, all_accounts=args.all, admin=args.admin
    )
    print(secret)
    print(
        f"token {token.name!r} ({token.scope}): shown this once, only its hash is kept. "
        "Browsers sign in with it; API and MCP clients send `Authorization: Bearer TOKEN`; "
        "the CLI reads MAIL_PIPELINE_TOKEN.",
        flush=True,
    )
    return 0


@command("token list")
def token_list(args: argparse.Namespace, settings: Settings) -> int:
    store = settings.token_store()
    tokens = store.load()
    if not tokens:
        print(
            f"no tokens left: the search service refuses every request ({store.reopen} to "
            "serve without tokens, on loopback only)"
            if store.in_force()
            else "no tokens: the search service answers without one, on loopback only"
        )
        return 0
    print(f"{'NAME':<20} {'CREATED':<26} {'LAST USED':<26} SCOPE")
    for token in tokens.values():
        print(
            f"{token.name:<20} {token.created_at:<26} {token.last_used or 'never':<26} {token.scope}"
        )
    return 0


@command("token revoke")
def token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    settings.token_store().revoke(args.name)
    print(f"token {args.name!r} revoked: the service refuses it from its next request")
    return 0
