"""``status_page:``: the company's title, logo and contact on the page, the feed and the JSON."""

from __future__ import annotations

import re
import time
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from monitor.config.load import ConfigError, load_config
from monitor.config.statuspage import MAX_LOGO_BYTES
from tests.status_scene import (
    CONTACT_EMAIL,
    CONTACT_URL,
    LOGO_FOLDER,
    LOGO_SVG,
    TITLE,
    status_scene,
)

S = "services: [{id: t, name: T}]\n"
C = "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>'
ATOM = "{http://www.w3.org/2005/Atom}"


def write(tmp_path: Path, text: str, logo: bytes | None = None) -> Path:
    """checks.yaml with ``text`` after a minimal config, and logo.img beside it when given."""
    if logo is not None:
        (tmp_path / "logo.img").write_bytes(logo)
    path = tmp_path / "checks.yaml"
    path.write_text(S + C + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("logo", "media_type", "extension"),
    [(PNG, "image/png", "png"), (JPEG, "image/jpeg", "jpg"), (SVG, "image/svg+xml", "svg")],
)
def test_the_logo_is_read_at_load_and_typed_by_its_content(
    tmp_path: Path, logo: bytes, media_type: str, extension: str
) -> None:
    """Whatever the file is called, its bytes say PNG, JPEG or SVG; its name is their hash."""
    text = "status_page: {title: ACME, logo_file: logo.img}\n"
    config = load_config(write(tmp_path, text, logo))
    assert config.logo is not None and config.logo.body == logo
    assert config.logo.media_type == media_type
    assert re.fullmatch(rf"logo-[0-9a-f]{{16}}\.{extension}", config.logo.name)
    assert config.status_page.title_in("en") == config.status_page.title_in("fr") == "ACME"


def test_no_status_page_section_keeps_the_page_as_it_was(tmp_path: Path) -> None:
    """Without the section: no title, no logo, no contact."""
    config = load_config(write(tmp_path, ""))
    assert config.logo is None and config.status_page.title_in("fr") == ""


BAD = [
    ("status_page: {titel: ACME}\n", None, "3: status_page.titel: unknown key"),
    ("status_page:\n", None, "3: status_page: "),
    ("status_page: {logo_file: logo.img}\n", b"GIF89a" + b"\x00" * 20,
     "3: status_page.logo_file: must be a PNG, JPEG or SVG image"),
    ("status_page: {logo_file: logo.img}\n", b"<html><body/></html>",
     "3: status_page.logo_file: must be a PNG, JPEG or SVG image"),
    ("status_page: {logo_file: logo.img}\n", PNG + b"\x00" * MAX_LOGO_BYTES,
     "3: status_page.logo_file: is larger than 256 KiB"),
    ("status_page: {logo_file: missing.png}\n", None, "3: status_page.logo_file: cannot read"),
    ("status_page: {contact_url: 'ftp://x.example'}\n", None,
     "3: status_page.contact_url: must be an http:// or https:// URL"),
    ("status_page: {contact_email: 'not an address'}\n", None,
     "3: status_page.contact_email: must be an email address"),
    ("status_page: {title: {fr: \"A\\nB\"}}\n", None,
     "3: status_page.title: must be one line of 1 to 120 characters"),
    ("logo: x\n", None, "3: logo: unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "logo", "expected"), BAD)
def test_a_bad_status_page_is_a_located_error(
    tmp_path: Path, text: str, logo: bytes | None, expected: str
) -> None:
    """Each mistake is one ``file:line: key: message``, never a traceback."""
    path = write(tmp_path, text, logo)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith(f"{path}:{expected}")


async def test_the_running_daemon_shows_the_company_everywhere_public(tmp_path: Path) -> None:
    """Page, logo, feed and JSON carry what status_page: sets, and never the logo's path."""
    async with status_scene(tmp_path, time.time()) as scene, aiohttp.ClientSession() as http:
        async with http.get(f"{scene.base_url}/?lang=en") as response:
            page = await response.text()
        logo = re.search(r'<img class="logo" src="\./(logo-[0-9a-f]{16}\.svg)" alt="([^"]*)"', page)
        assert logo is not None and logo.group(2) == f"{TITLE['en']} logo"
        assert f"<title>{TITLE['en']}</title>" in page
        assert f'<a href="{CONTACT_URL}">Contact page</a>' in page
        assert f'<a href="mailto:{CONTACT_EMAIL}">{CONTACT_EMAIL}</a>' in page
        async with http.get(f"{scene.base_url}/{logo.group(1)}") as response:
            assert await response.read() == LOGO_SVG
            assert response.headers["Content-Type"] == "image/svg+xml"
            assert "script-src 'none'" in response.headers["Content-Security-Policy"]
            assert "immutable" in response.headers["Cache-Control"]
        async with http.get(f"{scene.base_url}/logo-0000000000000000.svg") as response:
            assert response.status == 404
        async with http.get(f"{scene.base_url}/feed.atom?lang=fr") as response:
            feed = etree.fromstring(await response.read())
        author = feed.find(f"{ATOM}author")
        assert [(child.tag[len(ATOM) :], child.text) for child in author] == [
            ("name", TITLE["fr"]),
            ("uri", CONTACT_URL),
            ("email", CONTACT_EMAIL),
        ]
        async with http.get(f"{scene.base_url}/api/v1/status") as response:
            about = (await response.json())["page"]
        assert about["title"] == TITLE
        assert about["logo_url"] == f"https://status.carrier.example/{logo.group(1)}"
        assert (about["contact_url"], about["contact_email"]) == (CONTACT_URL, CONTACT_EMAIL)
        assert LOGO_FOLDER not in page + str(about) + etree.tostring(feed).decode()
