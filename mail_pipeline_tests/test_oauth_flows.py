"""The sign-in flows against the local token server playing the provider: device authorization
(RFC 8628) with authorization_pending and slow_down, and the authorization code grant with PKCE
S256 through a loopback redirect or a pasted one."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from mail_pipeline.auth import flows, oauth
from mail_pipeline.storage.grants import Grant, OAuthSettings


def settings(token_server, **overrides) -> OAuthSettings:
    values = {
        "token_url": f"{token_server.url}/token",
        "client_id": token_server.client_id,
        "scope": "mail",
        "auth_url": f"{token_server.url}/authorize",
        "device_url": f"{token_server.url}/device",
    }
    return OAuthSettings(**{**values, **overrides})


def user_approves(token_server, **approval):
    """The user reading the announced code and entering it at the provider."""

    def announce(text: str) -> None:
        assert "/device-login" in text
        token_server.approve(text.rsplit(" ", 1)[1], **approval)

    return announce


def works(token_server, response: oauth.TokenResponse) -> None:
    assert response.refresh_token in token_server.issued
    oauth.refresh(
        "x",
        OAuthSettings(token_url=f"{token_server.url}/token", client_id=token_server.client_id),
        Grant(response.refresh_token),
    )


def test_device_flow_waits_while_pending_and_slows_down_when_told(token_server):
    waits: list[float] = []
    response = flows.device_flow(
        settings(token_server), announce=user_approves(token_server), sleep=waits.append
    )
    # interval 5 from the server; slow_down on the second poll adds 5 s to every later wait
    assert waits == [5, 5, 10, 10]
    works(token_server, response)


def test_device_flow_declined_or_expired_is_a_clear_error(token_server):
    with pytest.raises(flows.SignInError, match="declined"):
        flows.device_flow(
            settings(token_server),
            announce=user_approves(token_server, deny=True),
            sleep=lambda s: None,
        )
    token_server.device_script = ()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(flows.SignInError, match="expired before the sign-in was approved"):
        flows.device_flow(
            settings(token_server), announce=lambda text: None, sleep=sleep, clock=lambda: now[0]
        )


def test_device_flow_refused_client_is_a_clear_error(token_server):
    with pytest.raises(flows.SignInError, match="refused the request: invalid_client"):
        flows.device_flow(
            settings(token_server, client_id="someone-else"),
            announce=lambda t: None,
            sleep=lambda s: None,
        )


def browser(url: str) -> None:
    """The user's browser: follows the provider's redirect to the loopback address."""
    urllib.request.urlopen(url, timeout=10).read()


def test_loopback_flow_with_pkce(token_server):
    opened: list[str] = []

    def open_browser(url):
        opened.append(url)
        browser(url)

    works(
        token_server,
        flows.loopback_flow(
            settings(token_server), announce=lambda t: None, open_browser=open_browser
        ),
    )
    query = parse_qs(urlsplit(opened[0]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def redirected_address(url: str) -> str:
    """What a user copies from a browser that could not load the 127.0.0.1 page."""
    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=10)
    except urllib.error.HTTPError as answer:
        return answer.headers["Location"]
    raise AssertionError("the provider did not redirect")


def test_paste_flow(token_server):
    shown: list[str] = []
    response = flows.paste_flow(
        settings(token_server),
        announce=shown.append,
        read=lambda: redirected_address(shown[0].splitlines()[-1]),
    )
    works(token_server, response)


def test_the_server_checks_the_code_verifier(token_server):
    verifier, challenge = flows.pkce_pair()
    other, _ = flows.pkce_pair()
    s = settings(token_server)
    redirect_uri = "http://127.0.0.1:1/"

    def code() -> str:
        return flows.code_from_redirect(
            redirected_address(flows.authorization_url(s, redirect_uri, challenge, "st")), "st"
        )

    with pytest.raises(flows.SignInError, match="invalid_grant"):
        flows.exchange_code(s, code(), other, redirect_uri, "")
    works(token_server, flows.exchange_code(s, code(), verifier, redirect_uri, ""))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1/?code=abc&state=forged", "does not carry this sign-in's state"),
        ("http://127.0.0.1:1/?state=st", "no authorization code"),
        ("http://127.0.0.1:1/?error=access_denied&state=st", "refused the sign-in: access_denied"),
    ],
)
def test_bad_redirects_are_refused(url, message):
    with pytest.raises(flows.SignInError, match=message):
        flows.code_from_redirect(url, "st")
