"""Org-wide accounts: an administrator adds colleagues' mailboxes without their sign-in, through
Google Workspace domain-wide delegation (a service account's key acting as each user) or a
Microsoft 365 application's client credentials. Their flags, client settings and secrets."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mail_pipeline.auth.providers import Provider
from mail_pipeline.cli.registry import CliError, secret_from_env
from mail_pipeline.storage.grants import CLIENT_CREDENTIALS, JWT_BEARER, Grant, OAuthSettings

if TYPE_CHECKING:
    from mail_pipeline.auth.service_account import ServiceAccountKey

# Each org-wide flag and the provider it belongs to.
FLAGS = {
    "service_account_key": "google-workspace",
    "impersonate": "google-workspace",
    "tenant": "microsoft365-app",
}
# A directory id (a GUID) or a verified domain: it becomes part of the token endpoint's path.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant", metavar="ID", help="microsoft365-app: the directory (tenant) id or domain"
    )


def add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service-account-key",
        metavar="FILE",
        help="google-workspace: the service account's JSON key (stored encrypted)",
    )


def check_flags(args: argparse.Namespace, p: Provider | None) -> None:
    """The org-wide flags belong to their provider, and it needs them."""
    for name, provider in FLAGS.items():
        if getattr(args, name, None) and (p is None or p.name != provider):
            raise CliError(f"--{name.replace('_', '-')} is for --provider {provider}")
    if p is not None and p.grant == JWT_BEARER:
        for name in ("service_account_key", "impersonate"):
            if not getattr(args, name, None):
                raise CliError(f"--provider {p.name} needs --{name.replace('_', '-')}")
    if p is not None and p.grant == CLIENT_CREDENTIALS and not args.client_secret_env:
        raise CliError(
            f"--provider {p.name} needs the application's client secret: --client-secret-env VAR"
        )


def app_settings(args: argparse.Namespace, p: Provider) -> OAuthSettings:
    """An org-wide account's client: a service account from its key file acting as the
    --impersonate user, or a Microsoft 365 application of a tenant (its token endpoint)."""
    if p.grant == JWT_BEARER:
        key = _key(args)
        return OAuthSettings(
            token_url=args.token_url or key.token_uri,
            client_id=key.client_email,
            scope=args.scope or p.scope,
            provider=p.name,
            grant=p.grant,
            subject=args.impersonate,
        )
    tenant = args.tenant or ""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise CliError(
            f"--provider {p.name} needs --tenant ID: the directory (tenant) id or a domain such "
            "as contoso.onmicrosoft.com"
        )
    if not args.client_id:
        raise CliError(f"--provider {p.name} needs --client-id (the application (client) id)")
    return OAuthSettings(
        token_url=args.token_url or p.token_url.format(tenant=tenant),
        client_id=args.client_id,
        scope=args.scope or p.scope,
        provider=p.name,
        grant=p.grant,
    )


def app_grant(args: argparse.Namespace, client: OAuthSettings) -> Grant:
    """The key or secret an org-wide account signs in with, from the flags (a reauth gives them
    again: the stored one is the one that stopped working)."""
    if client.grant == JWT_BEARER:
        key = _key(args)
        if key.client_email != client.client_id:
            raise CliError(
                f"{args.service_account_key} is the key of service account {key.client_email}, "
                f"not of {client.client_id} that this account uses: add the account again"
            )
        return key.grant
    if not args.client_secret_env:
        raise CliError("give the application's client secret: --client-secret-env VAR")
    return Grant(client_secret=secret_from_env(args.client_secret_env))


def _key(args: argparse.Namespace) -> ServiceAccountKey:
    from mail_pipeline.auth import service_account

    if not getattr(args, "service_account_key", None):
        raise CliError("give the service account's key file: --service-account-key FILE")
    return service_account.read_key(Path(args.service_account_key))
