"""Table tests of the tiny JSON path evaluator used by http expectations."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.probes.jsonpath import json_equal, lookup, parse_path, show

DOCUMENT: Any = {
    "status": "OK",
    "a": {"b": [{"c": 1}, {"c": 2}]},
    "dotted.key": True,
    "empty": None,
}


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("$.a", ("a",)),
        ("$.a.b[0].c", ("a", "b", 0, "c")),
        ("$[1]", (1,)),
        ("$['dotted.key']", ("dotted.key",)),
        ('$["a"].b', ("a", "b")),
        ("$.tracking-id", ("tracking-id",)),
    ],
)
def test_valid_paths_parse_into_steps(text: str, steps: tuple[str | int, ...]) -> None:
    """Each supported form parses into keys and integer indexes."""
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    "text",
    ["", "a.b", "$.", "$..a", "$.a[", "$.a[x]", "$.a[-1]", "$.a[]", "$a", "$.a b", "$[1.5]"],
)
def test_bad_syntax_raises_value_error_at_parse_time(text: str) -> None:
    """A malformed path is rejected when parsed, so config loading can report it."""
    with pytest.raises(ValueError, match="JSON path"):
        parse_path(text)


@pytest.mark.parametrize(
    ("document", "text", "expected"),
    [
        (DOCUMENT, "$.status", (True, "OK")),
        (DOCUMENT, "$.a.b[0].c", (True, 1)),
        (DOCUMENT, "$.a.b[1].c", (True, 2)),
        (["x", "y"], "$[1]", (True, "y")),
        (DOCUMENT, "$['dotted.key']", (True, True)),
        (DOCUMENT, "$.empty", (True, None)),
        (DOCUMENT, "$", (True, DOCUMENT)),
        (DOCUMENT, "$.missing", (False, None)),
        (DOCUMENT, "$.a.missing.c", (False, None)),
        (DOCUMENT, "$.a.b[2].c", (False, None)),
        (DOCUMENT, "$.status[0]", (False, None)),
        (DOCUMENT, "$.a[0]", (False, None)),
        (["x"], "$.x", (False, None)),
        ("text", "$[0]", (False, None)),
    ],
)
def test_lookup_finds_values_and_reports_missing_ones(
    document: Any, text: str, expected: tuple[bool, Any]
) -> None:
    """Lookup follows keys and indexes and says "not found" for absent keys or indexes."""
    assert lookup(document, parse_path(text)) == expected


@pytest.mark.parametrize(
    ("seen", "expected", "equal"),
    [
        ("OK", "OK", True),
        (1, 1.0, True),
        (True, 1, False),
        (1, True, False),
        (False, False, True),
        ("1", 1, False),
        ({"a": [1, True]}, {"a": [1, True]}, True),
        ({"a": [1, 1]}, {"a": [1, True]}, False),
        ([1, 2], [1, 2, 3], False),
        (None, None, True),
    ],
)
def test_json_equal_compares_as_json_not_python(seen: Any, expected: Any, equal: bool) -> None:
    """Booleans never equal numbers, unlike in Python."""
    assert json_equal(seen, expected) is equal


def test_show_quotes_strings_and_cuts_long_values() -> None:
    """Details quote strings like Python, write other values as JSON, and stay short."""
    assert show("KO") == "'KO'"
    assert show(True) == "true"
    assert len(show("x" * 500)) == 60
