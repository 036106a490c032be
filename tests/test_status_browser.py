"""The status page in a real headless Chromium, served by a running daemon."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.status_scene import IDENTIFIED, POSTMORTEM, status_scene

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def needs_chromium() -> None:
    """Fail with the fix rather than a Playwright stack trace when Chromium is missing."""
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"


async def seen(page: Page, selector: str) -> list[str]:
    """The visible text of every element matching ``selector``, whitespace collapsed."""
    texts = await page.locator(selector).all_inner_texts()
    return [" ".join(t.split()) for t in texts]


async def test_customer_sees_outage_maintenance_and_history(tmp_path: Path) -> None:
    """An English reader sees every service's state, the latest update, 90 days and the past."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with status_scene(tmp_path, time.time()) as scene, async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1100, "height": 900}, locale="en-GB")
        problems: list[str] = []  # a CSP violation or a broken asset shows up here
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: problems.append(r.url))
        response = await page.goto(f"{scene.base_url}/", wait_until="networkidle")
        assert response is not None and response.status == 200

        assert await seen(page, ".service h3") == [
            "Parcel tracking", "Shipping labels", "EDI exchanges",
        ]  # fmt: skip
        states = await seen(page, ".service .state")
        assert [s.split(" since")[0] for s in states] == [
            "Outage", "Operational", "Under maintenance",
        ]  # fmt: skip
        for bar in await page.locator(".service .bar").all():
            assert await bar.locator("li.day").count() == 90
        bad_day = page.locator(".service").first.locator("li.day").nth(86)
        assert "87.50" in (await bad_day.get_attribute("title") or "")

        open_incident = page.locator(".incident.open").first
        latest = await open_incident.locator(".timeline li").first.inner_text()
        assert IDENTIFIED in " ".join(latest.split())
        assert "Identified" in await open_incident.inner_text()
        maintenance = " ".join((await seen(page, ".window.running"))[0].split())
        assert "Rolling the EDI gateway back to its previous release." in maintenance
        history = " ".join(" ".join(await seen(page, ".incident.closed")).split())
        assert POSTMORTEM.split("\n\n")[1] in history
        await page.screenshot(path=ARTIFACTS / "status-page.png", full_page=True)

        phone = await browser.new_page(viewport={"width": 390, "height": 844}, locale="fr-FR")
        await phone.goto(f"{scene.base_url}/", wait_until="networkidle")
        assert "Interrompu" in await phone.locator(".service").first.inner_text()
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
        await phone.screenshot(path=ARTIFACTS / "status-page-phone.png", full_page=True)
        await browser.close()
        assert problems == []
