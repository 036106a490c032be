"""Property-based fuzzing of load_config: a Config or a located ConfigError, nothing else.

``tests/test_config.py`` already throws arbitrary text, bytes and nested values at the loader.
This file aims closer to the schema, where a crash is likelier: valid documents mutated as
YAML text (lines dropped, doubled, swapped, re-indented, values replaced) and as data (values
replaced, keys deleted or added, values wrapped), and checks assembled from every key the probe
kinds know plus unknown ones. The quick variants run ``QUICK_EXAMPLES`` examples each in CI;
``-m soak`` runs the long ones.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from monitor.config.load import Config, ConfigError, load_config
from monitor.probes import PROBES

ROOT = Path(__file__).resolve().parents[2]
VALID_FILES = [
    ROOT / "checks.yaml",
    ROOT / "tests" / "data" / "design_example_full.yaml",
    ROOT / "tests" / "data" / "design_example.yaml",
]
VALID_TEXTS = [path.read_text(encoding="utf-8") for path in VALID_FILES]
VALID_TREES = [yaml.safe_load(text) for text in VALID_TEXTS]
QUICK_EXAMPLES = 200
SOAK_EXAMPLES = 5_000
QUICK = settings(
    max_examples=QUICK_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SOAK = settings(QUICK, max_examples=SOAK_EXAMPLES)
# An error line: "file:line: …", or the count of those left out.
ERROR_LINE = re.compile(r"^.+:\d+: .+$|^.+: \d+ more errors not shown$", re.DOTALL)


def model_keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name of ``model`` and of the models its fields hold, at any depth."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    keys = set(model.model_fields)
    for field in model.model_fields.values():
        for inner in _models_in(field.annotation):
            keys |= model_keys(inner, seen)
    return keys


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models named anywhere in a type annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)


KNOWN_KEYS = sorted(
    model_keys(Config).union(*(model_keys(kind.settings) for kind in PROBES.values()))
)
WORDS = [
    *PROBES,
    "tracking",
    "labels",
    "tracking-ws",
    "acme",
    "fr",
    "en",
    "any",
    "all",
    "smtp",
    "file",
    "GET",
    "A",
    "0s",
    "-1s",
    "30s",
    "500ms",
    "365d",
    "366d",
    "1e999",
    "http://127.0.0.1:9/",
    "https://ws.example.net/x",
    "file:///etc/passwd",
    "ftp://x",
    "${HOME}",
    "${FOREWARN_FUZZ_UNSET}",
    "$${",
    "${",
    "<<",
    "Europe/Paris",
    "Europe/Atlantis",
    "../..",
    "ops@acme.example",
    "[a-",
    "$.status",
    "//x:y",
    "0 9 * * 1-5",
]
# YAML's own machinery, spliced into valid text: anchors, aliases, merges, tags, directives.
YAML_TOKENS = [
    "&x ",
    "*x",
    "<<: *x",
    "<<: [*x, *x]",
    "&x [*x]",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!!python/none ",
    "!local ",
    "? ",
    "--- ",
    "...",
    "%YAML 1.1\n",
    "|\n",
    ">-\n",
    "{",
    "[",
    "- ",
    ": ",
    "\t",
    "'",
    '"',
    "\\u0000",
    "\ufeff",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
)
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=6) | st.integers(-3, 3)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


def write(folder: Path, text: str) -> Path:
    """Write the fuzzed text as checks.yaml (any surrogates kept as bytes would be)."""
    path = folder / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def loads_or_config_error(path: Path) -> None:
    """load_config gives a Config or a ConfigError of located lines: any other raise fails."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert exc.errors, "a ConfigError with no lines"
        bad = [line for line in exc.errors if not ERROR_LINE.match(line)]
        assert not bad, bad
        event("refused")
        return
    assert isinstance(config, Config) and config.checks
    event("loaded")


# Mutations of valid documents as text.


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """A valid file with one to four line-level edits."""
    lines = draw(st.sampled_from(VALID_TEXTS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(
            st.sampled_from(
                ["drop", "double", "swap", "indent", "dedent", "value", "insert", "cut", "chars"]
            )
        )
        line = lines[i]
        if edit == "drop":
            del lines[i]
        elif edit == "double":
            lines.insert(i, line)
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + line
        elif edit == "dedent":
            lines[i] = line.lstrip(" ")
        elif edit == "value" and ": " in line:
            head = line.split(": ", 1)[0]
            token = draw(st.sampled_from(WORDS + YAML_TOKENS) | st.text(max_size=10))
            lines[i] = f"{head}: {token}\n"
        elif edit == "insert":
            other = draw(st.sampled_from(VALID_TEXTS)).splitlines(keepends=True)
            lines.insert(i, draw(st.sampled_from(other)))
        elif edit == "cut":
            lines = lines[:i]
        else:
            at = draw(st.integers(0, len(line)))
            piece = draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=4))
            lines[i] = line[:at] + piece + line[at + draw(st.integers(0, 3)) :]
    return "".join(lines)


# Mutations of valid documents as data.


def _slots(tree: Any) -> Iterator[tuple[dict[Any, Any] | list[Any], Any]]:
    """Every (container, key or index) in ``tree``, depth first."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield tree, key
            yield from _slots(value)
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield tree, index
            yield from _slots(value)


@st.composite
def mutated_trees(draw: st.DrawFn) -> Any:
    """A valid document's data with one to four edits of values and keys."""
    tree = copy.deepcopy(draw(st.sampled_from(VALID_TREES)))
    for _ in range(draw(st.integers(1, 4))):
        slots = list(_slots(tree))
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        edit = draw(st.sampled_from(["replace", "delete", "add", "wrap", "text", "copy"]))
        if edit == "replace":
            parent[key] = draw(VALUES)
        elif edit == "delete":
            del parent[key]
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        elif edit == "add":
            parent.insert(key, draw(VALUES))
        elif edit == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {draw(KEYS): parent[key]}]))
        elif edit == "text":
            parent[key] = str(parent[key])
        else:  # another part of the same document in this place
            other_parent, other_key = draw(st.sampled_from(slots))
            parent[key] = copy.deepcopy(other_parent[other_key])
    return tree


# Checks built from the keys the probe kinds know.


@st.composite
def assembled_checks(draw: st.DrawFn) -> dict[str, Any]:
    """A document with a valid service and checks of random kinds with known and odd keys."""
    checks = []
    for n in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from([*PROBES, "ftp"]))
        fields = list(PROBES[kind].settings.model_fields) if kind in PROBES else KNOWN_KEYS
        check: dict[Any, Any] = {"id": f"c{n}", "service": "tracking", "type": kind}
        for name in draw(st.lists(st.sampled_from(fields), max_size=6, unique=True)):
            check[name] = draw(VALUES)
        for name in draw(st.lists(KEYS, max_size=2)):
            check[name] = draw(VALUES)
        checks.append(check)
    document: dict[Any, Any] = {
        "services": [{"id": "tracking", "name": {"fr": "Suivi", "en": "Tracking"}}],
        "checks": checks,
    }
    for section in draw(st.lists(st.sampled_from(KNOWN_KEYS), max_size=3)):
        document[section] = draw(VALUES)
    return document


def dump(tree: Any) -> str:
    """YAML text for a fuzzed document, keys in the order they were made."""
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


CASES: list[tuple[str, st.SearchStrategy[str]]] = [
    ("mutated_text", mutated_texts()),
    ("mutated_data", mutated_trees().map(dump)),
    ("assembled_checks", assembled_checks().map(dump)),
]


def fuzz(strategy: st.SearchStrategy[str], budget: settings) -> Callable[[Path], None]:
    """A hypothesis-driven check of ``loads_or_config_error`` over texts from ``strategy``."""

    @budget
    @given(text=strategy)
    def run(folder: Path, text: str) -> None:
        loads_or_config_error(write(folder, text))

    return run


@pytest.fixture(autouse=True)
def no_fuzz_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``${FOREWARN_FUZZ_UNSET}`` is unset; ``${HOME}`` is set, whatever the CI does."""
    monkeypatch.delenv("FOREWARN_FUZZ_UNSET", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")


def test_the_documents_being_mutated_are_valid() -> None:
    """Each starting document loads, so mutations start from the valid side of the schema."""
    for path in VALID_FILES:
        assert load_config(path).checks, path


@pytest.mark.parametrize(("name", "strategy"), CASES, ids=[name for name, _ in CASES])
def test_fuzzed_documents_load_or_raise_a_located_config_error(
    tmp_path: Path, name: str, strategy: st.SearchStrategy[str]
) -> None:
    """Mutated and assembled documents end in a Config or a ConfigError of file:line lines."""
    fuzz(strategy, QUICK)(tmp_path)


@pytest.mark.soak
@pytest.mark.parametrize(("name", "strategy"), CASES, ids=[name for name, _ in CASES])
def test_fuzzed_documents_load_or_raise_a_located_config_error_at_length(
    tmp_path: Path, name: str, strategy: st.SearchStrategy[str]
) -> None:
    """The same property over SOAK_EXAMPLES examples per strategy."""
    fuzz(strategy, SOAK)(tmp_path)
