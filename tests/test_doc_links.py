"""Links between the README and docs/ lead somewhere: the file exists, and so does the heading."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "systemd" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks, where brackets are code, not links."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text(encoding="utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def broken(page: Path) -> list[str]:
    """The local links of ``page`` whose file or heading does not exist."""
    bad = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check here
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            bad.append(f"{page.relative_to(ROOT)}: ({target})")
    return bad


def test_the_pages_have_links_to_check() -> None:
    """Guards the test below from passing over pages without links."""
    readme = LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/getting-started.md" in readme and "docs/configuration.md" in readme


def test_every_local_link_leads_to_a_file_and_heading_that_exist() -> None:
    """Moving a section between pages fails here until every link to it follows."""
    bad = [line for page in PAGES for line in broken(page)]
    assert not bad, "broken links:\n" + "\n".join(bad)
