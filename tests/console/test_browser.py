"""The console in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real switch, acquirer simulator and console (each its own process).

One test, in steps, so one Chromium runs on this 2-core machine. Screenshots go
into the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from forecourt.switch.journal import open_journal
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.console.stack import PASSWORD, TERMINAL, Stack, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A link this switch does not serve: its SAF loop never claims the items the test
# queues there, so what the page shows is what the console did, not a race.
STANDBY_LINK = "standby"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def _flagged_items(stack: Stack, count: int) -> tuple[str, list[int]]:
    """The approved purchase's txn id, and ``count`` flagged SAF items queued under it
    (as the SAF loop leaves them after max_attempts)."""

    async def queue() -> tuple[str, list[int]]:
        async with open_journal(stack.data_dir / "journal.db", saf_key=bytes(32)) as journal:
            (row,) = await journal.list(limit=1, terminal=TERMINAL, state="approved")
            ids = []
            for _ in range(count):
                item = await journal.saf_enqueue(row.txn_id, STANDBY_LINK, "1420", b"reversal")
                await journal.saf_flag(item, "max attempts reached")
                ids.append(item)
            return row.txn_id, ids

    return trio.run(queue)


def _log_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Dashboard')")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    profile = tmp_path / "chromium-profile"  # a fresh user data dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_console_in_chromium(tmp_path: Path, browser: BrowserContext) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with running_stack(tmp_path) as stack:
        stack.add_operator("alice", "operator")
        stack.add_operator("vic", "viewer")
        stack.purchase(4250)
        txn_id, (retried, untouched) = _flagged_items(stack, 2)
        url = stack.console_url

        page = browser.new_page()
        csp_violations: list[str] = []
        page.on(
            "console",
            lambda m: (
                csp_violations.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )

        # log in; the dashboard's charts draw under the strict CSP (no inline script)
        _log_in(page, url, "alice")
        page.wait_for_selector("#dashboard[data-loaded=yes]", timeout=15_000)
        assert page.locator("#chart-tps canvas").count() == 1
        assert int(page.inner_text("#total")) >= 1  # the purchase (at least)
        page.screenshot(path=shots / "dashboard.png", full_page=True)

        # the CSP header is on every page
        response = page.goto(f"{url}/")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp

        # the simulator's purchase is in Transactions, searched by the full PAN, which
        # the page masks before the form is sent: the URL never holds it
        page.goto(f"{url}/transactions")
        page.fill("input[name=pan]", "4761739001010010")
        page.click("#txn-search button[type=submit]")
        page.wait_for_selector("#transactions td.pan")
        assert "4761739001010010" not in page.url
        assert "476173" in page.url
        row = page.locator("#transactions tbody tr", has_text="000000004250".lstrip("0"))
        assert row.count() == 1
        assert "476173******0010" in row.inner_text() and "approved" in row.inner_text()
        assert "4761739001010010" not in page.content()
        page.screenshot(path=shots / "transactions.png", full_page=True)
        row.locator("a").click()
        page.wait_for_selector("#events")
        assert txn_id in page.inner_text("h1")
        assert "approved" in page.inner_text("#events")

        # retry a flagged SAF item: it is pending again, and says who retried it
        page.goto(f"{url}/saf")
        page.click(f"#flagged tr[data-saf-id='{retried}'] button[name=retry]")
        page.wait_for_selector(f"#pending tr[data-saf-id='{retried}']")
        assert "retried by alice" in page.inner_text(f"#pending tr[data-saf-id='{retried}']")
        assert page.locator(f"#flagged tr[data-saf-id='{untouched}']").count() == 1
        page.screenshot(path=shots / "saf.png", full_page=True)

        # a POST without the CSRF token is refused, and nothing changes
        forged = page.request.post(f"{url}/saf/{untouched}/abandon", form={"reason": "forged"})
        assert forged.status == 403
        page.goto(f"{url}/saf")
        assert page.locator(f"#flagged tr[data-saf-id='{untouched}']").count() == 1

        # a viewer sees the flagged item but no button, and a POST with a valid CSRF
        # token is still refused: the role is checked on the server
        page.click("header button[type=submit]")  # log out
        page.wait_for_selector("input[name=password]")
        _log_in(page, url, "vic")
        page.goto(f"{url}/saf")
        flagged_row = page.locator(f"#flagged tr[data-saf-id='{untouched}']")
        assert flagged_row.count() == 1
        assert page.locator("button[name=retry]").count() == 0
        assert page.locator("button[name=abandon]").count() == 0
        csrf = page.locator("header input[name=csrf]").get_attribute("value")
        assert csrf
        refused = page.request.post(f"{url}/saf/{untouched}/retry", form={"csrf": csrf})
        assert refused.status == 403
        page.goto(f"{url}/saf")
        assert page.locator(f"#flagged tr[data-saf-id='{untouched}']").count() == 1
        page.screenshot(path=shots / "saf-viewer.png", full_page=True)

        assert csp_violations == []
    assert sorted(p.name for p in shots.iterdir()) == [
        "dashboard.png",
        "saf-viewer.png",
        "saf.png",
        "transactions.png",
    ]
