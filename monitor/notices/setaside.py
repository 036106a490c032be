"""Planning that one bad item cannot block: it is set aside, logged, counted and ops told.

The engine plans every notice of a tick in one go, and commits them in one transaction. A
single window or incident change whose notice cannot be rendered used to fail that whole
commit, tick after tick: no promised update went out, no other window ended (issue 17).
Now a failing plan is retried item by item and only the items that fail are set aside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import TypeVar

import structlog

from monitor.config.notices import OpsChannel
from monitor.core.notice import Notice
from monitor.domain.incidents import IncidentChange
from monitor.domain.maintenance import MaintenanceChange
from monitor.notices.ops import ops_notice
from monitor.notices.planner import NoticePlanner

log = structlog.get_logger("forewarn.setaside")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SetAside:
    """One item left out: what kind (``window``, ``incident``), its id, and why."""

    kind: str
    ident: str
    error: str


def plan_tick(
    planner: NoticePlanner,
    changes: Sequence[IncidentChange],
    steps: Sequence[MaintenanceChange],
    now: float,
    blocked: Set[str],
    ops: Sequence[OpsChannel],
    overrun: Mapping[str, Set[str]],
) -> tuple[list[MaintenanceChange], list[Notice], list[SetAside]]:
    """The window steps to commit, every notice of the tick (ops alerts too), what was set aside.

    Incident changes are always committed (set aside, they only lose their notices); a window
    set aside loses its step. ``overrun``: as ``NoticePlanner.plan_maintenance`` takes it.
    """
    _, notices, aside = plan_apart(
        changes, lambda c: planner.plan(c, now, blocked), lambda c: c.incident.id, "incident"
    )
    kept, more, aside_steps = plan_apart(
        steps,
        lambda s: planner.plan_maintenance(s, now, blocked, overrun),
        lambda s: s.window.id,
        "window",
    )
    aside += aside_steps
    return kept, [*notices, *more, *alerts(ops, aside, now)], aside


def plan_apart(
    items: Sequence[T],
    plan: Callable[[list[T]], list[Notice]],
    ident: Callable[[T], str],
    kind: str,
) -> tuple[list[T], list[Notice], list[SetAside]]:
    """The items that could be planned, their notices, and those set aside."""
    try:
        return list(items), plan(list(items)), []
    except Exception:  # noqa: S110 -- found again below, item by item, and logged there
        pass
    kept: list[T] = []
    notices: list[Notice] = []
    aside: list[SetAside] = []
    for item in items:
        try:
            notices += plan([item])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            aside.append(SetAside(kind, ident(item), error))
            log.error("set_aside", kind=kind, id=ident(item), error=error)
        else:
            kept.append(item)
    return kept, notices, aside


def alerts(ops: Sequence[OpsChannel], aside: Sequence[SetAside], now: float) -> list[Notice]:
    """One ops notice per channel listing what was set aside, so that someone fixes it."""
    if not aside:
        return []
    subject = f"[forewarn] {len(aside)} item(s) set aside: their notices could not be made"
    lines = [f"- {a.kind} {a.ident}: {a.error}" for a in aside]
    text = (
        f"{subject}\n"
        + "\n".join(lines)
        + "\nEverything else carries on. Correct or cancel these; see the daemon's log.\n"
    )
    first = aside[0]
    key = f"set-aside-{first.kind}-{first.ident}-{int(now)}"
    return [
        ops_notice(channel, f"{key}:ops:{channel.name}", "set-aside", subject, text, now)
        for channel in ops
    ]
