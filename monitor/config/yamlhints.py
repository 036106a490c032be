"""Plain words for the YAML errors a mis-indented line causes, the same from either parser."""

from __future__ import annotations

INDENT_WORDS = "check the indentation of this line"
INDENT_HINT = f"{INDENT_WORDS}: it must line up with the keys above it"
TAB_HINT = "indent with spaces: YAML does not allow tabs there"
QUOTE_HINT = "a value that contains ': ' must be quoted"
# What libyaml and the pure-Python parser say when a line is indented too far or not enough.
_INDENTATION = (
    "mapping values are not allowed",  # a key indented under a line that has a value
    "did not find expected key",  # libyaml: a key indented less than its siblings
    "did not find expected '-' indicator",  # libyaml: the same in a list
    "expected <block end>",  # the pure-Python parser: either of those
)


def parse_hint(problem: str | None, text: str, line: int) -> str:
    """`` (hint)`` for the parser's ``problem`` at ``line`` (1-based) of ``text``, or ``""``."""
    if not problem:
        return ""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if "cannot start any token" in problem and "\t" in here[: len(here) - len(here.lstrip())]:
        return f" ({TAB_HINT})"
    if not any(words in problem for words in _INDENTATION):
        return ""
    above = [text for text in lines[: line - 1] if text.strip() and not _comment(text)]
    if "mapping values" in problem and (not above or _indent(above[-1]) == _indent(here)):
        return f" ({QUOTE_HINT})"  # ``key: a: b`` on a line that lines up: not indentation
    return f" ({INDENT_HINT})"


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
