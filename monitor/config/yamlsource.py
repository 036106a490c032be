"""Safe YAML that remembers where each value came from, so errors can name file and line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.config.yamlhints import parse_hint

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000  # values after alias expansion: refuses a "billion laughs" before building it
MAX_DEPTH = 64  # far more than any config needs, far less than what overflows a recursive walk
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MAP, _SEQ, _STR, _MERGE = _CORE + "map", _CORE + "seq", _CORE + "str", _CORE + "merge"
_AS_TEXT = {_MERGE, _CORE + "value"}  # a plain `<<` or `=` used as a value is just text
Parser = type[yaml.SafeLoader] | type[yaml.CSafeLoader]
# libyaml parses about 15 times faster; the pure-Python parser emits the same events without it.
PARSERS: tuple[Parser, ...] = (
    (yaml.CSafeLoader, yaml.SafeLoader) if yaml.__with_libyaml__ else (yaml.SafeLoader,)
)
_NO_KEY: Any = object()  # a mapping waiting for its next key
_MERGE_KEY: Any = object()  # a mapping waiting for the value of its `<<` key


class YamlSourceError(Exception):
    """The file cannot be read as safe YAML; the message names file and line."""


def format_key(key: Iterable[Any]) -> str:
    """Render a key path as ``checks[1].expect.status``."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Located:
    """Plain data from a YAML file and the line each key path starts on.

    A value reached through an alias is shared, not copied: treat ``value`` as read-only.
    """

    path: Path
    value: Any
    lines: dict[tuple[Any, ...], int]

    def line_of(self, key: tuple[Any, ...]) -> int:
        """The line of ``key``, or of its nearest enclosing key that the file has."""
        for end in range(len(key), -1, -1):
            if key[:end] in self.lines:
                return self.lines[key[:end]]
        return 1

    def where(self, key: tuple[Any, ...], message: str) -> str:
        """``file:line: key.path: message`` for an error about ``key``."""
        name = format_key(key)
        return f"{self.path}:{self.line_of(key)}: {name + ': ' if name else ''}{message}"


def load_located(path: Path) -> Located:
    """Read ``path`` as safe YAML: no tags beyond the core schema, no duplicate keys."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # read(), not stat(): pipes and devices lie
    except OSError as exc:
        raise YamlSourceError(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise YamlSourceError(f"{path}:1: file is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlSourceError(f"{path}:{line}: not UTF-8 text") from None
    return parse_located(text, path)


def parse_located(text: str, path: Path, parser: Parser = PARSERS[0]) -> Located:
    """Parse YAML ``text`` as if read from ``path`` (which only names it in errors)."""
    loader = None
    try:
        loader = parser(text)
        return _Builder(path, loader).run()
    except yaml.MarkedYAMLError as exc:
        if parser is not yaml.SafeLoader and _nesting_limit(exc):
            # libyaml (0.2.5+) refuses deep nesting in its own words, reading ahead of the
            # events we count; the pure-Python parser streams them, so the refusal is ours
            # and the same on every loader. It stops at MAX_DEPTH, before libyaml's mark.
            end = exc.problem_mark.index if exc.problem_mark else len(text)
            return parse_located(text[: end + 1], path, yaml.SafeLoader)
        raise YamlSourceError(f"{path}:{_parse_error(exc, text)}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlSourceError(
            f"{path}:{line}: invalid YAML: character #x{exc.character:04x} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"{path}:1: invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    key: tuple[Any, ...]
    value: dict[Any, Any] | list[Any]
    anchor: str | None
    size: int = 1  # values inside it once aliases are expanded, itself included
    name: Any = _NO_KEY  # for a mapping: the key whose value comes next
    merges: list[tuple[Any, int]] = field(default_factory=list)  # `<<` values and their lines
    merge_line: int = 0


class _Builder:
    """Turns parser events into plain data without recursion, recording the line of each key."""

    def __init__(self, path: Path, loader: yaml.SafeLoader | yaml.CSafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[tuple[Any, ...], int] = {}
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name → (value, expanded size)
        self.total = 0
        self.root: Any = None

    def fail(self, line: int, key: tuple[Any, ...], message: str) -> YamlSourceError:
        """An error about ``key`` at ``line``, ready to raise."""
        name = format_key(key)
        return YamlSourceError(f"{self.path}:{line}: {name + ': ' if name else ''}{message}")

    def run(self) -> Located:
        """Consume the whole stream and return its single document."""
        documents = 0
        while True:
            event = self.loader.get_event()
            if isinstance(event, yaml.StreamEndEvent):
                return Located(self.path, self.root, self.lines)
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail(_line(event), (), "only one document allowed")
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                self.close()
            elif isinstance(event, yaml.NodeEvent):
                self.node(event)

    def node(self, event: yaml.NodeEvent) -> None:
        """Place a scalar, an alias or the start of a collection."""
        top = self.stack[-1] if self.stack else None
        line = _line(event)
        if top is not None and isinstance(top.value, dict) and top.name is _NO_KEY:
            self.key(top, event, line)
            return
        key = self.child_key(top)
        self.lines.setdefault(key, line)
        if isinstance(event, yaml.AliasEvent):
            value, size = self.alias(event, key, line)
            self.attach(top, value, size)
        elif isinstance(event, yaml.ScalarEvent):
            value = self.scalar(event, key, line)
            self.count(1, key, line)
            if event.anchor:
                self.anchors[event.anchor] = (value, 1)
            self.attach(top, value, 1)
        else:
            assert isinstance(event, yaml.CollectionStartEvent)
            mapping = isinstance(event, yaml.MappingStartEvent)
            if event.tag not in (None, "!", _MAP if mapping else _SEQ):
                raise self.fail(line, key, f"tag {_short(event.tag)} is not allowed")
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(line, key, f"nested more than {MAX_DEPTH} levels deep")
            self.count(1, key, line)
            self.stack.append(_Open(key, {} if mapping else [], event.anchor))

    def key(self, top: _Open, event: yaml.NodeEvent, line: int) -> None:
        """Read the next key of the open mapping ``top``."""
        assert isinstance(top.value, dict)
        if isinstance(event, yaml.ScalarEvent) and self.resolve(event) == _MERGE:
            if top.merge_line:
                raise self.fail(line, top.key, "more than one << key")
            top.name = _MERGE_KEY
            top.merge_line = line
            return
        if isinstance(event, yaml.ScalarEvent):
            name = self.scalar(event, (*top.key, event.value), line)
            if event.anchor:
                self.anchors[event.anchor] = (name, 1)
        elif isinstance(event, yaml.AliasEvent):
            name, _ = self.alias(event, top.key, line)
        else:
            name = None
        if isinstance(name, dict | list) or isinstance(event, yaml.CollectionStartEvent):
            raise self.fail(line, top.key, "mapping keys must be plain values, not collections")
        if name in top.value:
            first = self.lines.get((*top.key, name), line)
            raise self.fail(line, (*top.key, name), f"duplicate key (first on line {first})")
        self.lines[(*top.key, name)] = line
        top.name = name

    def child_key(self, top: _Open | None) -> tuple[Any, ...]:
        """The key path of the value about to be added to ``top``."""
        if top is None:
            return ()
        if isinstance(top.value, list):
            return (*top.key, len(top.value))
        return (*top.key, "<<" if top.name is _MERGE_KEY else top.name)

    def attach(self, top: _Open | None, value: Any, size: int) -> None:
        """Put a finished value into its parent (or make it the document)."""
        if top is None:
            self.root = value
            return
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.name is _MERGE_KEY:
            top.merges.append((value, top.merge_line))
            top.name = _NO_KEY
        else:
            top.value[top.name] = value
            top.name = _NO_KEY

    def close(self) -> None:
        """Finish the innermost open collection."""
        done = self.stack.pop()
        if done.merges:
            self.merge(done)
        if done.anchor:
            self.anchors[done.anchor] = (done.value, done.size)
        self.attach(self.stack[-1] if self.stack else None, done.value, done.size)

    def merge(self, done: _Open) -> None:
        """Apply ``<<``: keys written in the mapping win, then earlier merged mappings win."""
        assert isinstance(done.value, dict)
        for source, line in done.merges:
            for item in source if isinstance(source, list) else [source]:
                if not isinstance(item, dict):
                    raise self.fail(line, (*done.key, "<<"), "can only merge mappings")
                for name, value in item.items():
                    if name not in done.value:
                        done.value[name] = value
                        self.lines.setdefault((*done.key, name), line)

    def alias(self, event: yaml.AliasEvent, key: tuple[Any, ...], line: int) -> tuple[Any, int]:
        """The value an alias refers to (shared, not copied), counted at its full size."""
        if event.anchor in {frame.anchor for frame in self.stack}:
            raise self.fail(line, key, f"alias *{event.anchor} refers to a value that contains it")
        if event.anchor not in self.anchors:
            raise self.fail(line, key, f"unknown alias *{event.anchor}")
        value, size = self.anchors[event.anchor]
        self.count(size, key, line)
        return value, size

    def count(self, size: int, key: tuple[Any, ...], line: int) -> None:
        """Add ``size`` values to the running total; refuse past ``MAX_NODES``."""
        self.total += size
        if self.total > MAX_NODES:
            raise self.fail(line, key, f"more than {MAX_NODES} values once aliases are expanded")

    def resolve(self, event: yaml.ScalarEvent) -> str:
        """The tag of a scalar: its own, or the one its plain text implies."""
        if event.tag == "!":  # the non-specific tag: a quoted-like string, per the YAML spec
            return _STR
        if event.tag is None:
            resolve: Any = self.loader.resolve  # untyped in types-PyYAML
            return str(resolve(yaml.ScalarNode, event.value, event.implicit))
        return event.tag

    def scalar(self, event: yaml.ScalarEvent, key: tuple[Any, ...], line: int) -> Any:
        """Build a scalar's value; only core-schema types are allowed."""
        tag = self.resolve(event)
        if tag == _STR or tag in _AS_TEXT:
            return event.value
        if tag not in _SCALAR_TAGS:
            raise self.fail(line, key, f"tag {_short(tag)} is not allowed")
        node = yaml.ScalarNode(tag, event.value, style=event.style)  # marks only serve errors
        try:
            return self.loader.yaml_constructors[tag](self.loader, node)
        except Exception:  # PyYAML's constructors raise assorted errors on odd input
            raise self.fail(
                line, key, f"{_clip(event.value)} is not a valid {_short(tag)}"
            ) from None


def _parse_error(exc: yaml.MarkedYAMLError, source: str) -> str:
    """``line: invalid YAML: problem``, naming where the unfinished construct began."""
    mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
    line = mark.line + 1 if mark else 1
    text = f"{line}: invalid YAML: {exc.problem or exc.context or 'unreadable'}"
    if exc.problem and exc.context and context and context.line + 1 != line:
        text += f" ({exc.context} that starts on line {context.line + 1})"
    return text + parse_hint(exc.problem, source, line)


def _nesting_limit(exc: yaml.MarkedYAMLError) -> bool:
    """Whether the parser gave up on nesting depth (libyaml: "exceeded maximum nesting depth")."""
    return "nesting" in f"{exc.problem} {exc.context}"


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark else 1


def _clip(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _short(tag: str | None) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag and tag.startswith(_CORE) else str(tag)
