"""docs/configuration.md names every key checks.yaml accepts, and no key that it refuses.

The doc's convention, which these tests read: each table of keys is preceded, on the line just
above it, by ``<!-- keys: SECTION -->``. SECTION is the path of the keys from the top of
checks.yaml: keys joined by dots, list items left implicit, a kind of check or ops channel
written ``[type=KIND]``, the entries of a mapping whose keys the user names written ``*``
(``checks[type=transaction].steps.extract.*``), and ``(top)`` for the top level. Each row of the
table starts with its key in backticks (``| `interval` | …``); one cell may name several keys.
A model met at several places (the ``auth`` of http, soap and transaction checks) is one
section, at the first place the walk below meets it; a check or channel kind's section lists
only the keys it adds to those every kind has (``checks``, ``notices.ops``).
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from monitor.config.load import Config
from monitor.probes import PROBES

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
TOP = "(top)"
MARKER = re.compile(r"^<!-- keys: (\S+) -->$")
# Config fields the loader sets itself and refuses in the file (logo, source), or reads from
# another place (canary, written under daemon:).
NOT_IN_FILE = {"logo", "source", "canary"}
# Keys the loader takes before any model sees the data.
LOADER_KEYS = {"daemon": {"canary"}, "customers": {"file"}}
# A list of checks is validated by each kind's own model, registered in PROBES.
REGISTRIES: dict[tuple[type[BaseModel], str], list[type[BaseModel]]] = {
    (Config, "checks"): [kind.settings for kind in PROBES.values()]
}

Sections = dict[str, set[str]]


def _models(kind: Any, suffix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """The models a field's type holds, each with the path from the field to it."""
    origin = get_origin(kind)
    if origin is Annotated:
        return _models(get_args(kind)[0], suffix)
    if origin in (Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in get_args(kind) if arg is not Ellipsis for m in _models(arg, suffix)]
    if origin is dict:
        return _models(get_args(kind)[1], f"{suffix}.*")
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [(suffix, kind)]
    return []


def _kind_of(model: type[BaseModel]) -> str | None:
    """The ``type:`` value a variant model is chosen by, or None for a plain model."""
    field = model.model_fields.get("type")
    literal = field is not None and get_origin(field.annotation) is Literal
    return str(get_args(field.annotation)[0]) if field is not None and literal else None


@dataclass
class Walk:
    """The sections found so far, and the models already walked (each is one section)."""

    sections: Sections = field(default_factory=dict)
    seen: list[type[BaseModel]] = field(default_factory=list)

    def model(self, path: str, model: type[BaseModel], base: type = BaseModel) -> None:
        """Record ``model``'s keys (less ``base``'s) at ``path``, then the models below them."""
        if model in self.seen:
            return
        self.seen.append(model)
        inherited = getattr(base, "model_fields", {})
        own = {n: f for n, f in model.model_fields.items() if n not in inherited}
        keys = {f.alias or n: f.annotation for n, f in own.items()}
        if path == TOP:
            keys = {k: v for k, v in keys.items() if k not in NOT_IN_FILE}
        self.sections[path] = set(keys) | LOADER_KEYS.get(path, set())
        for key, annotation in keys.items():
            here = key if path == TOP else f"{path}.{key}"
            registered = REGISTRIES.get((model, key))
            inner = [("", m) for m in registered] if registered else _models(annotation)
            self.field(here, inner)

    def field(self, here: str, inner: list[tuple[str, type[BaseModel]]]) -> None:
        """Walk the models one key holds: plain ones, or kinds told apart by ``type:``."""
        variants = [m for _, m in inner if _kind_of(m) is not None]
        if variants:
            common = next(c for c in variants[0].__mro__ if all(issubclass(v, c) for v in variants))
            self.model(here, common)
            for variant in variants:
                self.model(f"{here}[type={_kind_of(variant)}]", variant, common)
        for suffix, plain in inner:
            if plain not in variants:
                self.model(f"{here}{suffix}", plain)


def in_code() -> Sections:
    """Every section of checks.yaml and its keys, walked from the models."""
    walk = Walk()
    walk.model(TOP, Config)
    return walk.sections


def in_doc(text: str) -> Sections:
    """Every section of the reference and the keys its table's first cells name."""
    found: Sections = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        marker = MARKER.match(line.strip())
        if marker is None:
            continue
        assert marker[1] not in found, f"configuration.md:{number + 1}: {marker[1]} twice"
        keys: set[str] = set()
        for row in lines[number + 1 :]:
            if not row.startswith("|"):
                break
            keys.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
        assert keys, f"configuration.md:{number + 1}: no table of keys under the marker"
        found[marker[1]] = keys
    return found


def differences(code: Sections, doc: Sections) -> list[str]:
    """One line per key or section that the code and the reference do not share."""
    lines = []
    for section in sorted(code.keys() | doc.keys()):
        for key in sorted(code.get(section, set()) - doc.get(section, set())):
            lines.append(f"{section}: `{key}` is accepted by checks.yaml but not documented")
        for key in sorted(doc.get(section, set()) - code.get(section, set())):
            lines.append(f"{section}: `{key}` is documented but checks.yaml refuses it")
    return lines


def test_the_walk_reaches_nested_models_kinds_and_mappings() -> None:
    """The model walk finds sections at every depth, so the comparison below is not vacuous."""
    code = in_code()
    assert {"daemon", "notices.smtp", "status_page", "customers"} <= code.keys()
    assert {"retry_interval", "type"} <= code["checks"]
    assert code["checks[type=http].auth.basic"] == {"username", "password_file"}
    assert "regex" in code["checks[type=transaction].steps.extract.*"]
    assert "to" in code["notices.ops[type=email]"] and "name" in code["notices.ops"]
    assert "canary" in code["daemon"] and not NOT_IN_FILE & code[TOP]
    assert sum(map(len, code.values())) > 120


def test_a_key_missing_on_either_side_is_named_with_its_section() -> None:
    """The comparison names a key the code has and the doc lacks, and the reverse."""
    doc = "<!-- keys: daemon -->\n| key | meaning |\n| --- | --- |\n| `state_dir`, `colour` | x |\n"
    found = differences({"daemon": {"state_dir", "listen"}}, in_doc(doc))
    assert found == [
        "daemon: `listen` is accepted by checks.yaml but not documented",
        "daemon: `colour` is documented but checks.yaml refuses it",
    ]


def test_every_key_checks_yaml_accepts_is_in_the_reference_and_no_other() -> None:
    """docs/configuration.md's key tables match the settings models, section by section."""
    problems = differences(in_code(), in_doc(DOC.read_text(encoding="utf-8")))
    assert not problems, "docs/configuration.md and the models differ:\n" + "\n".join(problems)
