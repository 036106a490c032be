"""The install story stays true: the lock covers every dependency, CI runs the README's line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def normal(name: str) -> str:
    """A distribution name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    """``name == version`` lines of constraints.txt."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#", 1)[0].partition("==")
        if sep:
            found[normal(name.strip())] = version.strip()
    return found


def test_the_lock_pins_every_dependency_of_every_extra_to_one_version() -> None:
    """Each requirement in pyproject.toml, runtime or extra, has an exact pin in the lock."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.extend(extra)
    names = {normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) for requirement in wanted}
    locked = pins()
    assert names - locked.keys() == set(), "constraints.txt lacks these dependencies"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in locked.values()), locked


def test_ci_runs_the_readme_test_line_verbatim_without_a_pip_cache() -> None:
    """The line a newcomer copies from the README is the line CI runs, on a fresh install."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Run the tests**", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert block.strip() in ci
    assert "export PIP_NO_CACHE_DIR=1" in ci and "rm -rf .venv" in ci
    assert ci.index("PIP_NO_CACHE_DIR") < ci.index(block.strip())
