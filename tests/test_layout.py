"""The layout stays what the README says: its map names every layer, and functions stay short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
# Declarative tables, long because they list things, not because they do several things.
TABLES = {
    ("monitor/runtime/metrics.py", "__init__"): "the Prometheus collectors, one per metric",
    ("monitor/cli/ops.py", "add_ops_commands"): "the operator's sub-commands and their options",
}


def _map() -> str:
    """The code block under the README's "Project layout" heading."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Project layout", 1)[1]
    return section.split("```", 2)[1]


def _subpackages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "monitor").glob("*/__init__.py"))


def test_the_layout_has_layers_to_show() -> None:
    """Guards the tests below from passing over an empty list."""
    assert {"core", "domain", "probes", "config", "store", "web", "cli"} <= set(_subpackages())


@pytest.mark.parametrize("package", _subpackages())
def test_the_readme_map_names_every_subpackage(package: str) -> None:
    """A new layer is one line in the map, or this fails."""
    assert re.search(rf"^  {package}/ ", _map(), re.MULTILINE), f"monitor/{package}/ not in map"


def test_the_readme_map_names_only_subpackages_that_exist() -> None:
    named = re.findall(r"^  ([a-z_]+)/ ", _map(), re.MULTILINE)
    assert set(named) - {"templates"} == set(_subpackages())


def test_few_modules_are_left_at_the_top_of_monitor() -> None:
    """The top holds the wiring only; everything else lives in its layer."""
    top = sorted(p.name for p in (ROOT / "monitor").glob("*.py"))
    assert len(top) <= 6, top


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Tables excepted: a longer function is several steps, each of which deserves a name."""
    files = [*(ROOT / "monitor").rglob("*.py"), *(ROOT / "notifiers").rglob("*.py")]
    long = [
        f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
        for path in files
        for name, lines in _functions(path)
        if lines > MAX_LINES and (path.relative_to(ROOT).as_posix(), name) not in TABLES
    ]
    assert len(files) > 50 and not long, long


def test_every_table_excepted_is_still_long() -> None:
    """An exception that is no longer needed is removed, so the list stays honest."""
    for (path, name), _why in TABLES.items():
        lengths = dict(_functions(ROOT / path))
        assert lengths.get(name, 0) > MAX_LINES, (path, name)
