"""``forewarn demo`` as a newcomer runs it, and the README excerpt that promises what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMPED = re.compile(r"^\[\s*[\d.]+s\]\s+(?P<line>[▶✉#◉].*)$")
VOLATILE = re.compile(r"\b[a-z]+-\d{8}T\d{6}-\d{3}\b")  # incident ids carry the time


def timeline(text: str) -> list[Counter[str]]:
    """The demo's stamped lines, without timings, as one group per ▶ step.

    Within a step, emails to several customers and ops messages go out together, in no fixed
    order; the steps themselves are sequential (each waits for the emails of the one before).
    """
    groups: list[Counter[str]] = [Counter()]
    for raw in text.splitlines():
        match = STAMPED.match(raw.strip())
        if match is None:
            continue
        line = " ".join(VOLATILE.sub("ID", match["line"]).split())
        if line.startswith("▶"):
            groups.append(Counter([line]))
        else:
            groups[-1][line] += 1
    return groups


def readme_excerpt() -> str:
    """The README's block under "What the demo prints"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("What the demo prints", 1)[1]
    return after.split("```", 2)[1]


def test_the_demo_runs_its_outage_and_the_readme_excerpt_shows_what_it_printed(
    tmp_path: Path,
) -> None:
    """The demo exits 0 and its emails, recipients, steps and count are the README's, in order."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown, promised = timeline(done.stdout), timeline(readme_excerpt())
    assert sum(len(group) for group in promised) >= 8, "the excerpt lost its timeline"
    assert shown == promised, "README.md's demo excerpt no longer matches `forewarn demo`"
    count = re.search(r"^(\d+) emails received", done.stdout, re.MULTILINE)
    assert count is not None and f"\n{count[0]}" in readme_excerpt()
    assert len(list((tmp_path / "received").glob("*.eml"))) == int(count[1])
