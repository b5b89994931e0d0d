"""Log-in, roles, CSRF, cookies, headers and rate-limiting over real HTTP(S)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from forecourt.console.headers import CSP
from forecourt.console.serve import ConsoleListen
from forecourt.console.throttle import LoginThrottle

from tests.console.rig import PASSWORD, audit_lines, console_rig, csrf_of
from tests.switch.tls_pki import Pki


async def test_every_page_needs_a_log_in(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = rig.client()
        for path in ("/", "/terminals", "/links", "/saf", "/shifts", "/keys", "/transactions"):
            answer = await client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login", path
        api = await client.get("/api/dashboard")
        assert api.status_code == 401


async def test_log_in_sets_a_strict_cookie_and_a_new_session(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = rig.client()
        await rig.add_operator("alice", "operator")
        form = await client.get("/login")
        before = client.cookies["forecourt_console"]
        answer = await client.post(
            "/login", data={"csrf": csrf_of(form.text), "name": "alice", "password": PASSWORD}
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
        assert client.cookies["forecourt_console"] != before  # no session fixation
        assert (await client.get("/")).status_code == 200
        assert audit_lines(rig.journal, "login") == [("alice", "login", "", "from 127.0.0.1")]


async def test_log_in_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = rig.client()
        await rig.add_operator("alice", "operator")
        await client.get("/login")
        answer = await client.post("/login", data={"name": "alice", "password": PASSWORD})
        assert answer.status_code == 403
        assert (await client.get("/")).status_code == 303  # still not logged in


async def test_wrong_passwords_are_audited_then_rate_limited(tmp_path: Path) -> None:
    limit = LoginThrottle().max_failures
    async with console_rig(tmp_path) as rig:
        client = rig.client()
        await rig.add_operator("alice", "operator")
        csrf = csrf_of((await client.get("/login")).text)
        for _ in range(limit):
            wrong = await client.post(
                "/login", data={"csrf": csrf, "name": "alice", "password": "not the password"}
            )
            assert wrong.status_code == 401
        # now even the right password waits for the window to pass
        right = await client.post(
            "/login", data={"csrf": csrf, "name": "alice", "password": PASSWORD}
        )
        assert right.status_code == 429
        assert int(right.headers["retry-after"]) > 0
        assert len(audit_lines(rig.journal, "login_failed")) == limit
        assert [a[0] for a in audit_lines(rig.journal, "login_refused")] == ["alice"]


async def test_security_headers_on_every_answer(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = await rig.logged_in("vic", "viewer")
        for path in ("/login", "/", "/saf", "/no-such-page", "/static/console.js"):
            answer = await client.get(path)
            assert answer.headers["content-security-policy"] == CSP, path
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
        assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        page = (await client.get("/")).text
        assert "<script>" not in page and " on" + "click=" not in page  # nothing inline


async def test_roles_see_what_they_may(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        viewer = await rig.logged_in("vic", "viewer")
        officer = await rig.logged_in("sec", "security_officer")
        operator = await rig.logged_in("alice", "operator")
        assert "Key audit trail" in (await officer.get("/keys")).text
        assert "Key audit trail" not in (await operator.get("/keys")).text
        assert (await officer.get("/audit")).status_code == 200
        assert (await operator.get("/audit")).status_code == 403
        assert (await viewer.get("/audit")).status_code == 403
        trail = (await officer.get("/audit")).text
        assert "alice" in trail and "login" in trail


async def test_log_out_ends_the_session_on_the_server(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = await rig.logged_in("alice", "operator")
        stolen = client.cookies["forecourt_console"]
        page = await client.get("/")
        out = await client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        if replay := rig.client():
            replay.cookies.set("forecourt_console", stolen)
            assert (await replay.get("/")).status_code == 303  # the token is dead
        assert [a[1] for a in audit_lines(rig.journal, "logout")] == ["logout"]


async def test_a_forged_cookie_is_refused(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as rig:
        client = await rig.logged_in("alice", "operator")
        token, _, signature = client.cookies["forecourt_console"].rpartition(".")
        if forger := rig.client():
            forger.cookies.set("forecourt_console", f"{token}.{'0' * len(signature)}")
            assert (await forger.get("/")).status_code == 303


async def test_over_https_the_cookie_is_secure_and_host_bound(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    ca = pki.authority("console-ca")
    leaf = pki.issue(ca, "127.0.0.1", ips=["127.0.0.1"])
    listen = ConsoleListen(port=0, certfile=leaf.certificate, keyfile=leaf.key)
    trust = ssl.create_default_context(cafile=str(ca.certificate))
    async with console_rig(tmp_path, listen=listen, verify=trust) as rig:
        assert rig.url.startswith("https://")
        await rig.add_operator("alice", "operator")
        client = rig.client()
        form = await client.get("/login")
        assert "max-age=" in form.headers["strict-transport-security"]
        answer = await client.post(
            "/login", data={"csrf": csrf_of(form.text), "name": "alice", "password": PASSWORD}
        )
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-forecourt_console=")
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        assert (await client.get("/")).status_code == 200
        async with httpx.AsyncClient(base_url=rig.url, verify=True) as untrusting:
            try:
                await untrusting.get("/login")
            except httpx.ConnectError:
                pass  # the system CAs do not know the test's CA: real TLS
            else:
                raise AssertionError("a certificate from an unknown CA was accepted")
