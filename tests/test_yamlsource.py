"""Safe YAML with lines: what is recorded, what is refused, and how fast a bomb is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from monitor.config import yamlsource
from monitor.config.yamlsource import (
    Located,
    YamlSourceError,
    format_key,
    load_located,
    parse_located,
)

NAME = Path("conf.yaml")


def parse(text: str) -> Located:
    """Parse ``text`` as if read from conf.yaml."""
    return parse_located(text, NAME)


def refusal(text: str) -> str:
    """The message that refuses ``text``."""
    with pytest.raises(YamlSourceError) as caught:
        parse(text)
    return str(caught.value)


def test_lines_are_recorded_for_nested_keys_and_list_items() -> None:
    """Every key path, however deep, maps to the line it starts on."""
    doc = parse(
        "daemon:\n"
        "  listen: 127.0.0.1:9470\n"
        "checks:\n"
        "  - id: a\n"
        "    expect:\n"
        "      status: [200,\n"
        "               201]\n"
        "  - {id: b}\n"
    )
    assert doc.value == {
        "daemon": {"listen": "127.0.0.1:9470"},
        "checks": [{"id": "a", "expect": {"status": [200, 201]}}, {"id": "b"}],
    }
    assert doc.lines[("daemon", "listen")] == 2
    assert doc.lines[("checks", 0)] == 4
    assert doc.lines[("checks", 0, "expect", "status")] == 6
    assert doc.lines[("checks", 0, "expect", "status", 1)] == 7
    assert doc.lines[("checks", 1, "id")] == 8


def test_a_missing_key_is_placed_at_its_nearest_enclosing_key() -> None:
    """An error about a key the file lacks names the line of the mapping that lacks it."""
    doc = parse("services:\n  - id: tracking\n")
    assert doc.where(("services", 0, "name"), "is required") == (
        "conf.yaml:2: services[0].name: is required"
    )


def test_format_key_writes_indexes_in_brackets() -> None:
    """Key paths read the way they would be written in Python or JavaScript."""
    assert format_key(("checks", 1, "expect", "status", 0)) == "checks[1].expect.status[0]"


def test_merge_keys_fill_in_keys_the_mapping_does_not_set() -> None:
    """``<<: *anchor`` merges, keys written in the mapping win, earlier merges win."""
    doc = parse(
        "base: &base {interval: 30s, timeout: 5s}\n"
        "slow: &slow {timeout: 20s, retry_interval: 10s}\n"
        "check:\n"
        "  <<: [*base, *slow]\n"
        "  interval: 1m\n"
    )
    assert doc.value["check"] == {"interval": "1m", "timeout": "5s", "retry_interval": "10s"}
    assert doc.lines[("check", "interval")] == 5
    assert doc.lines[("check", "timeout")] == 4  # the line of the `<<` that brought it


def test_merging_a_list_of_values_is_refused_with_its_line() -> None:
    """Only mappings can be merged into a mapping."""
    assert refusal("a: &a [1, 2]\nb:\n  <<: *a\n") == "conf.yaml:3: b.<<: can only merge mappings"


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    """A key written twice is an error rather than a silent override."""
    text = "checks:\n  - id: a\n    interval: 30s\n    interval: 5m\n"
    assert refusal(text) == "conf.yaml:4: checks[0].interval: duplicate key (first on line 3)"


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system"),
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !custom value\n", "!custom"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!set {x, y}\n", "!!set"),
        ("a: !!omap [x: 1]\n", "!!omap"),
    ],
)
def test_tags_beyond_the_core_schema_are_refused(text: str, tag: str) -> None:
    """Only plain YAML values: no Python objects, no custom or extra types."""
    assert refusal(text) == f"conf.yaml:1: a: tag {tag} is not allowed"


def test_core_schema_tags_and_plain_values_are_accepted() -> None:
    """Explicit core tags work; `!` makes text, and `=` or `<<` as values are just text."""
    doc = parse("a: !!str 12\nb: ! 12\nc: !!int '7'\nd: =\ne: <<\nf: ~\ng: 2024-06-01\n")
    assert doc.value["a"] == "12"
    assert doc.value["b"] == "12"
    assert doc.value["c"] == 7
    assert doc.value["d"] == "="
    assert doc.value["e"] == "<<"
    assert doc.value["f"] is None
    assert str(doc.value["g"]) == "2024-06-01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when: 2024-13-45\n", "conf.yaml:1: when: '2024-13-45' is not a valid !!timestamp"),
        ("n: !!int twelve\n", "conf.yaml:1: n: 'twelve' is not a valid !!int"),
        (
            "n: " + "9" * 5000 + "\n",
            "conf.yaml:1: n: '9999999999999999999999999999999999999...' is not a valid !!int",
        ),
    ],
)
def test_values_the_yaml_library_cannot_build_are_refused(text: str, message: str) -> None:
    """A value PyYAML would crash on (a 13th month, a huge int) is an error with its line."""
    assert refusal(text) == message


def test_alias_bomb_is_refused_quickly() -> None:
    """A "billion laughs" file is refused from its alias count, without expanding it."""
    text = Path(__file__).with_name("data").joinpath("alias_bomb.yaml").read_text()
    started = time.perf_counter()
    message = refusal(text)
    assert time.perf_counter() - started < 2.0  # it takes milliseconds; expanding takes minutes
    assert message == "conf.yaml:8: g[2]: more than 2000000 values once aliases are expanded"


def test_aliases_share_lines_with_their_use() -> None:
    """Values reached through an alias are reported at the line using the alias."""
    doc = parse("base: &b {x: {y: 1}}\nuse:\n  - *b\n")
    assert doc.value["use"] == [{"x": {"y": 1}}]
    assert doc.line_of(("use", 0, "x", "y")) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "conf.yaml:1: a[0]: alias *a refers to a value that contains it"),
        ("a: *nowhere\n", "conf.yaml:1: a: unknown alias *nowhere"),
        ("? [a, b]\n: 1\n", "conf.yaml:1: mapping keys must be plain values, not collections"),
        ("a: 1\n---\nb: 2\n", "conf.yaml:2: only one document allowed"),
        ("a: \x07\n", "conf.yaml:1: invalid YAML: character #x0007 is not allowed"),
    ],
)
def test_malformed_structures_are_refused_with_a_line(text: str, message: str) -> None:
    """Recursive or unknown aliases, collection keys and several documents are errors."""
    assert refusal(text) == message


LOADERS = pytest.mark.parametrize(
    "parser", yamlsource.PARSERS, ids=[parser.__name__ for parser in yamlsource.PARSERS]
)
DEEP = yamlsource.MAX_DEPTH


@LOADERS
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000 + "]" * 5000, "conf.yaml:1: " + "[0]" * DEEP),
        ("a: " + "[" * 10_000, "conf.yaml:1: a" + "[0]" * (DEEP - 1)),
        ("a: " + "{k: " * 3000, "conf.yaml:1: a" + ".k" * (DEEP - 1)),
        ("x: 1\n" + "a: " + "[" * 1200 + "]" * 1200, "conf.yaml:2: a" + "[0]" * (DEEP - 1)),
        (
            "".join(f"{' ' * i}k{i}:\n" for i in range(200)),
            "conf.yaml:65: " + ".".join(f"k{i}" for i in range(DEEP)),
        ),
    ],
    ids=["brackets", "flow_sequence", "flow_mapping", "after_a_line", "block"],
)
def test_deep_nesting_is_refused_in_our_words_whichever_loader_parses(
    parser: yamlsource.Parser, text: str, message: str
) -> None:
    """Over-deep documents get forewarn's message and line from libyaml and pure Python alike."""
    with pytest.raises(YamlSourceError) as caught:
        parse_located(text, NAME, parser)
    assert str(caught.value) == f"{message}: nested more than {DEEP} levels deep"


@LOADERS
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "conf.yaml:1: a[0]: alias *a refers to a value that contains it"),
        ("a: !!python/name:os.system ''\n", "conf.yaml:1: a: tag !!python/name:os.system is not"),
        ("a: 1\na: 2\n", "conf.yaml:2: a: duplicate key (first on line 1)"),
        ("a: [1,\n  2\nb: 3\n", "conf.yaml:3: invalid YAML: "),
        ("a: 1\n---\nb: 2\n", "conf.yaml:2: only one document allowed"),
    ],
    ids=["self_alias", "python_tag", "duplicate", "unclosed", "two_documents"],
)
def test_hostile_documents_read_the_same_on_both_loaders(
    parser: yamlsource.Parser, text: str, message: str
) -> None:
    """The refusals users see do not depend on whether libyaml is installed."""
    with pytest.raises(YamlSourceError) as caught:
        parse_located(text, NAME, parser)
    assert str(caught.value).startswith(message)


INDENT = "(check the indentation of this line: it must line up with the keys above it)"


@LOADERS
@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("checks:\n  - id: c\n    service: t\n      interval: 30s\n", 4, INDENT),
        ("checks:\n  - id: c\n    service: t\n   interval: 30s\n", 4, INDENT),
        ("a:\n    b: 1\n  c: 2\n", 3, INDENT),
        ("services: []\n  checks: []\n", 2, INDENT),
        ("checks:\n  - id: c\n  service: t\n", 3, INDENT),
        ("checks:\n  - id: c\n    service: t\n   - id: d\n", 4, INDENT),
        ("a:\n\tb: 1\n", 2, "(indent with spaces: YAML does not allow tabs there)"),
        ("a: b: c\n", 1, "(a value that contains ': ' must be quoted)"),
        ("x: 1\n# note\na: b: c\n", 3, "(a value that contains ': ' must be quoted)"),
    ],
    ids=["too_far", "not_enough", "between", "top_level", "list_item_key", "list_item",
         "tab", "colon_in_value", "colon_after_comment"],
)  # fmt: skip
def test_indentation_mistakes_are_explained_in_words_on_both_loaders(
    parser: yamlsource.Parser, text: str, line: int, hint: str
) -> None:
    """The parser's own message and line stay; a plain hint is added, the same on each loader."""
    with pytest.raises(YamlSourceError) as caught:
        parse_located(text, NAME, parser)
    message = str(caught.value)
    assert message.startswith(f"conf.yaml:{line}: invalid YAML: ")
    assert message.endswith(f" {hint}")
    assert message.count("(check the indentation") + message.count("(indent with") <= 1


@LOADERS
def test_syntax_errors_unrelated_to_indentation_get_no_hint(parser: yamlsource.Parser) -> None:
    """An unclosed bracket is not blamed on indentation."""
    with pytest.raises(YamlSourceError) as caught:
        parse_located("a: [1,\n  2\nb: 3\n", NAME, parser)
    assert str(caught.value).endswith("(while parsing a flow sequence that starts on line 1)")


def test_syntax_errors_name_the_line_and_where_the_construct_began() -> None:
    """An unclosed bracket reports where the parser stopped and where the bracket opened."""
    message = refusal("a: 1\nb: [1,\n  2\nc: 3\n")
    assert message.startswith("conf.yaml:4: invalid YAML: ")
    assert message.endswith("(while parsing a flow sequence that starts on line 2)")


def test_empty_and_comment_only_files_hold_nothing() -> None:
    """A file with no document gives None, not an error: the config decides what that means."""
    assert parse("").value is None
    assert parse("# nothing yet\n").value is None


def test_files_that_are_not_utf8_are_refused_with_the_line(tmp_path: Path) -> None:
    """Latin-1 text is named as such, at the line of the first bad byte."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nb: café\n".encode("latin-1"))
    with pytest.raises(YamlSourceError, match=r"latin1\.yaml:2: not UTF-8 text$"):
        load_located(path)


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    """Editors that write a BOM produce a readable file."""
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffa: 1\n".encode())
    assert load_located(path).value == {"a": 1}


def test_oversized_files_are_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size cap bounds memory whatever the file holds."""
    monkeypatch.setattr(yamlsource, "MAX_BYTES", 10)
    path = tmp_path / "big.yaml"
    path.write_text("a: 12345678901234567890\n")
    with pytest.raises(YamlSourceError, match=r"big\.yaml:1: file is larger than 10 bytes"):
        load_located(path)


def test_unreadable_paths_are_refused_with_the_reason(tmp_path: Path) -> None:
    """A missing file is an error naming it, not an OSError."""
    with pytest.raises(YamlSourceError, match=r"nope\.yaml:1: cannot read: No such file"):
        load_located(tmp_path / "nope.yaml")


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="only one parser to compare")
def test_the_python_parser_gives_the_same_data_and_lines() -> None:
    """Without libyaml the pure-Python parser yields identical results."""
    text = Path(__file__).parents[1].joinpath("checks.yaml").read_text(encoding="utf-8")
    fast = parse(text)
    slow = parse_located(text, NAME, yaml.SafeLoader)
    assert (slow.value, slow.lines) == (fast.value, fast.lines)
