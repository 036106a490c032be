"""The status page in a real headless Chromium, served by a running daemon."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, async_playwright

from monitor.core.fields import LANGUAGES
from monitor.core.notice import NoticeKind
from monitor.core.render import Renderer
from tests.email_samples import context
from tests.status_scene import CONTACT_EMAIL, IDENTIFIED, POSTMORTEM, TITLE, status_scene

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
        logo = page.locator("header img.logo")
        assert await logo.get_attribute("alt") == f"{TITLE['en']} logo"
        assert await logo.evaluate("img => img.complete && img.naturalWidth > 0")
        assert await seen(page, "header h1 a") == [TITLE["en"]]
        assert await seen(page, "footer .contact") == [f"Contact: Contact page · {CONTACT_EMAIL}"]
        await page.screenshot(path=ARTIFACTS / "status-page.png", full_page=True)

        phone = await browser.new_page(viewport={"width": 390, "height": 844}, locale="fr-FR")
        await phone.goto(f"{scene.base_url}/", wait_until="networkidle")
        assert "Interrompu" in await phone.locator(".service").first.inner_text()
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
        await phone.screenshot(path=ARTIFACTS / "status-page-phone.png", full_page=True)
        # The logo opened on its own: its CSP keeps the script inside it from running.
        alone = await browser.new_page()
        source = await logo.get_attribute("src") or ""
        await alone.goto(f"{scene.base_url}/{source.removeprefix('./')}")
        assert await alone.evaluate("document.title") != "pwned"
        assert await alone.locator("svg rect").count() == 1  # it was shown, not refused
        await browser.close()
        assert problems == []


WCAG_21_AA = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


async def violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on ``page``: rule, impact and where."""
    results = await Axe().run(page, options=WCAG_21_AA)
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in results.response["violations"]
    ]


async def test_every_public_page_meets_wcag_21_aa_and_works_by_keyboard(tmp_path: Path) -> None:
    """axe-core finds nothing on the page (fr, en, phone), incident pages and the 404 page."""
    async with status_scene(tmp_path, time.time()) as scene, async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pages = {
            "page fr": ("/", 1100),
            "page en": ("/?lang=en", 1100),
            "phone fr": ("/", 390),
            "phone en": ("/?lang=en", 390),
            "open incident fr": (f"/incidents/{scene.incident_id}", 1100),
            "open incident en": (f"/incidents/{scene.incident_id}?lang=en", 1100),
            "resolved incident fr": (f"/incidents/{scene.resolved_id}", 1100),
            "resolved incident en": (f"/incidents/{scene.resolved_id}?lang=en", 1100),
            "not found fr": ("/incidents/no-such-incident", 1100),
            "not found en": ("/incidents/no-such-incident?lang=en", 1100),
        }
        found = {}
        for name, (path, width) in pages.items():
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(f"{scene.base_url}{path}", wait_until="networkidle")
            assert await page.locator('meta[http-equiv="refresh"]').count() == 0, name
            found[name] = await violations(page)
        assert found == {name: [] for name in pages}, found

        page = await browser.new_page(viewport={"width": 1100, "height": 900})
        await page.goto(f"{scene.base_url}/?lang=en", wait_until="networkidle")
        links = await page.locator("a:visible").count()
        reached = []
        for _ in range(links):
            await page.keyboard.press("Tab")
            reached.append(
                await page.evaluate(
                    "() => [document.activeElement.tagName,"
                    " getComputedStyle(document.activeElement).outlineStyle]"
                )
            )
        assert reached == [["A", "solid"]] * links  # every link in turn, visibly focused
        cell = page.locator(".service").first.locator("li.day").nth(86)
        assert "87.50" in await cell.locator(".sr").inner_text()  # read aloud, not shown
        await browser.close()


async def test_every_html_email_meets_wcag_21_aa_in_both_languages() -> None:
    """Each customer email kind, one incident or a digest, in French and English: no violation."""
    kinds = [k.value for k in NoticeKind if k not in (NoticeKind.OPS, NoticeKind.TEST)]
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        found = {}
        for kind in kinds:
            for language in LANGUAGES:
                for digest in (False, True):
                    _, _, html = Renderer().render(
                        kind, language, context(kind, language, digest=digest)
                    )
                    await page.set_content(html)
                    found[(kind, language, digest)] = await violations(page)
        await browser.close()
    assert found == {key: [] for key in found} and len(found) == 4 * len(kinds), found
