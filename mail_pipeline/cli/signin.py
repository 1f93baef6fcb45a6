"""The CLI's side of signing an account in: provider presets applied under explicit flags,
passwords read, OAuth grants read from stdin or obtained by a sign-in flow, and the credential
that checks them before anything is stored."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mail_pipeline import logs
from mail_pipeline.auth.providers import PROVIDERS, Provider, preset_folders
from mail_pipeline.cli import orgwide
from mail_pipeline.cli.registry import CliError, secret_from_env
from mail_pipeline.settings import Settings, variable
from mail_pipeline.storage.accounts import Account
from mail_pipeline.storage.grants import (
    CLIENT_CREDENTIALS,
    JWT_BEARER,
    REFRESH_TOKEN,
    Grant,
    OAuthSettings,
)

if TYPE_CHECKING:
    from mail_pipeline.auth import oauth
    from mail_pipeline.auth.tokens import OAuthCredential

    Credential = str | OAuthCredential


def oauth_of(account: Account) -> OAuthSettings:
    """The account's OAuth client settings; an account that signs in with a password has none."""
    if account.oauth is None:
        raise CliError(f"account {account.slug!r} signs in with a password, not OAuth")
    return account.oauth


def add_arguments(add: argparse.ArgumentParser) -> None:
    """`account add`'s preset and OAuth options (the password ones stay in cli.py)."""
    add.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        help="preset host, port, security, sign-in and folders (explicit flags override)",
    )
    add.add_argument(
        "--oauth2",
        action="store_true",
        help="sign in with OAuth 2.0 (XOAUTH2/OAUTHBEARER), not a password",
    )
    add.add_argument("--token-url", help="OAuth token endpoint")
    add.add_argument("--auth-url", help="OAuth authorization endpoint (browser sign-in with PKCE)")
    add.add_argument(
        "--device-url", help="OAuth device authorization endpoint (device-code sign-in)"
    )
    add.add_argument("--scope", help="OAuth scopes, space-separated")
    add.add_argument(
        "--client-id", help="OAuth client id (default: the provider's MAIL_PIPELINE_*_CLIENT_ID)"
    )
    add.add_argument(
        "--impersonate",
        metavar="ADDRESS",
        help="google-workspace: the user whose mailbox the service account reads",
    )
    orgwide.add_tenant_argument(add)
    add_grant_arguments(add)


def add_grant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-secret-env", metavar="VAR", help="read the OAuth client secret from this variable"
    )
    orgwide.add_key_argument(parser)
    parser.add_argument(
        "--refresh-token-stdin",
        action="store_true",
        help="read a refresh token obtained elsewhere from standard input instead of signing in",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="browser sign-in: print the URL and read the redirected address back instead",
    )


def preset(args: argparse.Namespace) -> Provider | None:
    return PROVIDERS[args.provider] if getattr(args, "provider", None) else None


def account_from_args(args: argparse.Namespace, settings: Settings) -> Account:
    """The account the flags describe, the provider's preset filling what they leave out."""
    p = preset(args)
    orgwide.check_flags(args, p)
    email = args.email or getattr(args, "impersonate", None)
    if not email:
        raise CliError("--email is required (the mailbox's address)")
    host = args.host or (p.host if p else "")
    if not host:
        raise CliError("--host is required (or --provider gmail|outlook|fastmail|icloud|yahoo)")
    folders = ("*",) if args.all_folders else tuple(args.folder or (p.folders if p else ["INBOX"]))
    password_given = bool(args.password_stdin or args.password_env)
    if args.oauth2 and password_given:
        raise CliError(
            "--oauth2 signs in with a refresh token: drop --password-stdin / --password-env"
        )
    # A password flag picks the provider's app-password sign-in over its OAuth preset (Gmail has both).
    oauth2 = args.oauth2 or bool(p and p.auth == "oauth2" and not password_given)
    oauth_flags = [
        f"--{name.replace('_', '-')}"
        for name in (
            "token_url",
            "auth_url",
            "device_url",
            "scope",
            "client_id",
            "client_secret_env",
            "refresh_token_stdin",
        )
        if getattr(args, name)
    ]
    if oauth_flags and not oauth2:
        raise CliError(
            f"{', '.join(oauth_flags)} describe an OAuth sign-in: add --oauth2 (or an OAuth --provider)"
        )
    return Account(
        slug=args.slug,
        email=email,
        host=host,
        port=args.port or (p.port if p else 993),
        username=args.username or getattr(args, "impersonate", None) or email,
        password_token="",
        display_name=args.name or "",
        security=args.security or (p.security if p else "tls"),
        ca_file=os.path.abspath(args.ca_file) if args.ca_file else None,
        folders=folders,
        auth="oauth2" if oauth2 else "password",
        oauth=oauth_settings(args, p, settings) if oauth2 else None,
        on_server_delete=getattr(args, "on_server_delete", None) or "keep",
        compress=getattr(args, "compress", None) or "auto",
    )


def matched_folders(args: argparse.Namespace, account: Account, available: list[Any]) -> Account:
    """The account with a preset's folders matched to the server's names (`--folder` is kept as given)."""
    p = preset(args)
    if p is None or args.folder or args.all_folders:
        return account
    return replace(account, folders=preset_folders(p, account.folders, available))


def oauth_settings(
    args: argparse.Namespace, p: Provider | None, settings: Settings
) -> OAuthSettings:
    if p is not None and p.grant != REFRESH_TOKEN:
        return orgwide.app_settings(args, p)
    client_id = args.client_id or (
        getattr(settings, p.client_id_setting) if p and p.client_id_setting else ""
    )
    if not client_id:
        where = f" or set {variable(p.client_id_setting)}" if p and p.client_id_setting else ""
        raise CliError(
            f"an OAuth account needs a client id: pass --client-id{where} (docs/accounts.md, "
            "'Signing in with OAuth 2.0', says how to create one)"
        )
    return OAuthSettings(
        token_url=args.token_url or (p.token_url if p else ""),
        client_id=client_id,
        scope=args.scope if args.scope is not None else (p.scope if p else ""),
        provider=p.name if p else "",
        auth_url=args.auth_url or (p.auth_url if p else ""),
        device_url=args.device_url or (p.device_url if p else ""),
    )


def stored_secret_name(account: Account) -> str:
    """What `account add` and `reauth` say they stored."""
    kind = account.oauth.grant if account.oauth else ""
    return {
        REFRESH_TOKEN: "OAuth refresh token",
        JWT_BEARER: "service account key",
        CLIENT_CREDENTIALS: "client secret",
    }.get(kind, "password")


def read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "password_env", None):
        password = secret_from_env(args.password_env)
    else:
        password = getpass.getpass("IMAP password: ")
    if not password:
        raise CliError("empty password")
    logs.register_secret(password)
    return password


def client_secret(
    args: argparse.Namespace, account: Account, settings: Settings, stored: str = ""
) -> str:
    """The client secret from --client-secret-env, the provider's setting, or the stored grant."""
    p = PROVIDERS.get(oauth_of(account).provider)
    field = p.client_secret_setting if p else ""
    if args.client_secret_env:
        secret = secret_from_env(args.client_secret_env)
    else:
        secret = (getattr(settings, field).get_secret_value() if field else "") or stored
    if not secret and p is not None and field:
        raise CliError(
            f"{p.name} needs the client secret too: set {variable(field)} or pass --client-secret-env VAR"
        )
    logs.register_secret(secret)
    return secret


def obtain_grant(
    args: argparse.Namespace, account: Account, settings: Settings, stored_secret: str = ""
) -> tuple[Grant, oauth.TokenResponse | None]:
    """A grant from stdin (`--refresh-token-stdin`) or from the provider's sign-in flow, and the
    access token that flow returned (none for a pasted refresh token)."""
    from mail_pipeline.auth import flows

    if oauth_of(account).grant != REFRESH_TOKEN:
        return orgwide.app_grant(args, oauth_of(account)), None
    client, secret = oauth_of(account), client_secret(args, account, settings, stored_secret)
    if args.refresh_token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            raise CliError("no refresh token on standard input")
        logs.register_secret(token)
        return Grant(refresh_token=token, client_secret=secret), None
    if client.device_url:
        response = flows.device_flow(client, client_secret=secret)
    elif client.auth_url and args.no_browser:
        response = flows.paste_flow(client, client_secret=secret)
    elif client.auth_url:
        response = flows.loopback_flow(client, client_secret=secret)
    else:
        raise CliError("give --refresh-token-stdin, or --device-url or --auth-url for a sign-in")
    if not response.refresh_token:
        raise CliError(
            f"{client.token_url} returned no refresh token: the scope must allow offline access "
            "(Microsoft: offline_access)"
        )
    return Grant(refresh_token=response.refresh_token, client_secret=secret), response


class PendingGrant:
    """A grant not yet stored: signs in like a stored one, and keeps any rotated refresh token."""

    def __init__(self, account: Account, grant: Grant, first: oauth.TokenResponse | None):
        from mail_pipeline.auth import tokens

        self.grant = grant
        tokens.forget(account.slug)
        source = tokens.TokenSource(
            account.slug, oauth_of(account), load=lambda: self.grant, save=self._save
        )
        if first is not None:
            source.seed(first)
        self.credential = tokens.OAuthCredential(source)

    def _save(self, grant: Grant) -> None:
        self.grant = grant


def verify(
    account: Account,
    settings: Settings,
    credential: Credential,
    args: argparse.Namespace | None = None,
) -> tuple[Account, list[str]]:
    """Sign in and list folders: the account (its preset folders matched to the server's) and
    the folders it will sync."""
    from mail_pipeline import imap

    with imap.ImapSession(imap.config_for(account, settings), credential) as session:
        available = session.list_folders()
    if args is not None:
        account = matched_folders(args, account, available)
    return account, imap.sync_folders(available, account.folders)


def describe(credential: Credential) -> str:
    from mail_pipeline.auth import tokens

    return tokens.describe(credential)
