"""Browser sessions: server-side and revocable, login CSRF refused, Secure and HSTS over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from batchline.cli.serve import server_url
from tests.web_server import Server, create_token, login, requires_web, serving

requires_web()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web_sessions') / 'repository.db'}"
    with serving(url, serve_options=("--proxy-headers",)) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return create_token(server.url, "sessions", "operate")


def session_cookie(response: httpx.Response) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if "batchline_session=" in c]
    assert len(cookies) == 1, response.headers
    return cookies[0]


class TestSessions:
    def test_the_cookie_is_a_session_not_the_token(self, server: Server, token: str) -> None:
        """The session cookie holds no API token, and is not Secure over plain HTTP."""
        browser = server.client()
        cookie = session_cookie(login(browser, token))
        assert token not in cookie and "secure" not in cookie.lower()
        assert browser.get("/").status_code == 200
        assert "strict-transport-security" not in browser.get("/").headers

    def test_a_copied_cookie_dies_at_logout(self, server: Server, token: str) -> None:
        """After logout, a copy of the session cookie opens nothing (the session row is gone)."""
        browser = server.client()
        login(browser, token)
        copy = server.client()
        copy.cookies.update(browser.cookies)
        assert copy.get("/api/executions").status_code == 200
        page = browser.get("/").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert copy.get("/api/executions").status_code == 401
        assert copy.get("/").headers["location"] == "/login"

    def test_login_without_the_form_token_is_refused(self, server: Server, token: str) -> None:
        """A cross-site POST to /login (no login cookie, no form token) opens no session."""
        forged = server.client().post("/login", data={"token": token, "login_token": "x"})
        assert forged.status_code == 403
        assert "batchline_session=" not in forged.headers.get("set-cookie", "")

    def test_https_through_a_trusted_proxy_is_secure_with_hsts(
        self, server: Server, token: str
    ) -> None:
        """Behind a trusted TLS proxy: the cookie is Secure and HSTS is sent."""
        proxy = server.client()
        proxy.headers["X-Forwarded-Proto"] = "https"
        form = proxy.get("/login")
        assert form.headers["strict-transport-security"].startswith("max-age=")
        assert "secure" in form.headers["set-cookie"].lower()
        # The proxy speaks HTTP to the server: the Secure cookie goes back by hand.
        nonce = form.text.split('name="login_token" value="')[1].split('"')[0]
        answer = proxy.post(
            "/login",
            data={"token": token, "login_token": nonce},
            headers={"Cookie": f"batchline_login={nonce}"},
        )
        assert "secure" in session_cookie(answer).lower()


def test_ipv6_hosts_are_printed_in_brackets() -> None:
    """serve --host ::1 prints http://[::1]:PORT/."""
    assert server_url("::1", 8080) == "http://[::1]:8080/"
    assert server_url("127.0.0.1", 80) == "http://127.0.0.1:80/"
