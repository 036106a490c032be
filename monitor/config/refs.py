"""Cross-references in a checks.yaml: unique ids, known services, no dependency cycles."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from monitor.config.customers import CustomerRow, unique_customers
from monitor.config.errors import Problems
from monitor.config.yamlsource import Located

_Items = list[tuple[int, dict[str, Any]]]


def check_references(
    raw: dict[str, Any], doc: Located, rows: Sequence[CustomerRow], problems: Problems
) -> None:
    """Ids are unique and every reference names a service that exists.

    Works on the unvalidated data, so these errors come out together with the others.
    """
    services, checks = _mappings(raw.get("services")), _mappings(raw.get("checks"))
    _unique(problems, doc, "services", services)
    _unique(problems, doc, "checks", checks)
    _unique(problems, doc, "maintenance", _mappings(raw.get("maintenance")))
    unique_customers(rows, problems)
    if not isinstance(raw.get("services"), list):
        return  # nothing to check references against, and that is an error already
    known = {s["id"]: i for i, s in reversed(services) if isinstance(s.get("id"), str)}

    def refer(source: Located, key: tuple[Any, ...], name: Any) -> None:
        if isinstance(name, str) and name not in known:
            problems.add(source, key, f"unknown service {name!r}")

    for i, check in checks:
        refer(doc, ("checks", i, "service"), check.get("service"))
    for row in rows:
        listed = row.value.get("services") if isinstance(row.value, dict) else None
        for j, name in _items(listed):
            refer(row.source, (*row.key, "services", j), name)
    for i, window in _mappings(raw.get("maintenance")):
        for j, name in _items(window.get("services")):
            refer(doc, ("maintenance", i, "services", j), name)
    graph: dict[str, list[str]] = {}
    for i, service in services:
        own = service.get("id")
        for j, dep in _items(service.get("depends_on")):
            if isinstance(dep, str) and dep == own:
                message = "a service cannot depend on itself"
                problems.add(doc, ("services", i, "depends_on", j), message)
                continue
            refer(doc, ("services", i, "depends_on", j), dep)
            if isinstance(own, str) and isinstance(dep, str) and dep in known:
                graph.setdefault(own, []).append(dep)
    for cycle in _cycles(graph):
        key = ("services", known[cycle[0]], "depends_on")
        problems.add(doc, key, "dependency cycle: " + " → ".join(cycle))
    _reachable_thresholds(services, checks, doc, problems)


def _unique(problems: Problems, doc: Located, section: str, items: _Items) -> None:
    first: dict[str, int] = {}
    for i, item in items:
        ident = item.get("id")
        if isinstance(ident, str) and ident in first:
            line = doc.line_of((section, first[ident], "id"))
            problems.add(doc, (section, i, "id"), f"duplicate id {ident!r} (first on line {line})")
        elif isinstance(ident, str):
            first[ident] = i


def _reachable_thresholds(
    services: _Items, checks: _Items, doc: Located, problems: Problems
) -> None:
    """``down_when: N`` needs at least N checks, or the service could never be down."""
    counts = Counter(c.get("service") for _, c in checks if isinstance(c.get("service"), str))
    for i, service in services:
        least, own = service.get("down_when"), service.get("id")
        if type(least) is int and isinstance(own, str) and least > counts[own]:
            count = counts[own]
            message = f"is {least} but service {own!r} has only {count} check{'s' * (count != 1)}"
            problems.add(doc, ("services", i, "down_when"), message)


def _mappings(items: Any) -> _Items:
    """``(index, item)`` for the items of a list that are mappings."""
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]


def _items(items: Any) -> list[tuple[int, Any]]:
    """``(index, item)`` for the items of a list; nothing for anything else."""
    return list(enumerate(items)) if isinstance(items, list) else []


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each dependency cycle once, as ``[a, b, a]``; iterative, however long the chains."""
    found: list[list[str]] = []
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path, todo = [start], [iter(graph[start])]
        while todo:
            following = next(todo[-1], None)
            if following is None:
                done.add(path.pop())
                todo.pop()
            elif following in path:
                found.append([*path[path.index(following) :], following])
            elif following not in done:
                path.append(following)
                todo.append(iter(graph.get(following, [])))
    return found
