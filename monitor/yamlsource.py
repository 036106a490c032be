"""Safe YAML that remembers where each value came from, so errors can name file and line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000  # bounds alias expansion ("billion laughs") long before memory suffers
_ALLOWED_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge")
}
_MERGE = "tag:yaml.org,2002:merge"


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
    """Plain data from a YAML file and the line each key path starts on."""

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
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlSourceError(f"{path}:1: file is {size} bytes, more than {MAX_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSourceError(f"{path}:1: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise YamlSourceError(f"{path}:1: not UTF-8 text") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(path, loader)
        value = builder.build(root, ()) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSourceError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"{path}:1: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Located(path, value, builder.lines if root is not None else {})


class _Builder:
    """Turns composed nodes into plain data while recording lines and refusing the unsafe."""

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[tuple[Any, ...], int] = {}
        self.visits = 0

    def fail(self, node: yaml.Node, message: str) -> YamlSourceError:
        return YamlSourceError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def build(self, node: yaml.Node, key: tuple[Any, ...]) -> Any:
        self.visits += 1
        if self.visits > MAX_NODES:
            raise self.fail(node, f"more than {MAX_NODES} values (an alias bomb?)")
        self.lines.setdefault(key, node.start_mark.line + 1)
        if node.tag not in _ALLOWED_TAGS:
            raise self.fail(node, f"tag {node.tag} is not allowed")
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*key, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for name, merged in self._merged(value_node, key).items():
                    result.setdefault(name, merged)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "mapping keys must be plain scalars")
            name = self.build(key_node, (*key, "<key>"))
            if name in explicit:
                raise self.fail(key_node, f"{format_key((*key, name))}: duplicate key")
            explicit.add(name)
            self.lines[(*key, name)] = key_node.start_mark.line + 1
            result[name] = self.build(value_node, (*key, name))
        self.lines.pop((*key, "<key>"), None)
        return result

    def _merged(self, node: yaml.Node, key: tuple[Any, ...]) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in sources:
            value = self.build(source, key)
            if not isinstance(value, dict):
                raise self.fail(source, "<< merges only mappings")
            for name, item in value.items():
                merged.setdefault(name, item)
        return merged
