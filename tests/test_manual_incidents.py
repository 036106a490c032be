"""Incidents an operator opens by hand, and page-only updates, as tables with an explicit now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.core.words import Words
from monitor.domain.actions import ActionRefused, act, open_by_hand
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentStatus,
    Rules,
    ServiceView,
    Timing,
)
from monitor.domain.lifecycle import apply
from monitor.domain.operations import OperatorAction

PARIS = ZoneInfo("Europe/Paris")
TIMING = Timing(customer_delay=120.0, update_every=1800.0, stable_for=600.0)
REPORTED = Words.of({"fr": "Un client signale des étiquettes vides.", "en": "Blank labels."})
NEWS = Words(every="EDI partner restarted its gateway.")


def at(clock: str) -> float:
    """``"13:05"`` or ``"13:05:30"`` in Paris on 2026-11-22, as a UTC epoch."""
    hour, minute, *second = map(int, clock.split(":"))
    return datetime(2026, 11, 22, hour, minute, *second, tzinfo=PARIS).timestamp()


def opened(clock: str = "13:00", **fields: Any) -> Incident:
    """The manual incident on labels and edi as opened at ``clock`` and told at once."""
    changes = open_by_hand(("labels", "edi"), REPORTED, at(clock), TIMING)
    return replace(changes[-1].incident, **fields)


@pytest.mark.parametrize(
    ("since", "first_failure"),
    [
        pytest.param(None, "13:00", id="dated-from-now"),
        pytest.param("12:40", "12:40", id="dated-from-when-it-began"),
    ],
)
def test_opening_by_hand_tells_customers_at_once(since: str | None, first_failure: str) -> None:
    """OPENED for ops then ANNOUNCED in the operator's words, promising the next update."""
    now = at("13:00")
    began = at(since) if since is not None else None
    changes = open_by_hand(("labels", "edi"), REPORTED, now, TIMING, began)
    assert [c.kind for c in changes] == [ChangeKind.OPENED, ChangeKind.ANNOUNCED]
    assert changes[0].incident.customers_told_at is None
    told = changes[1].incident
    assert told.id == "labels-20261122T120000-000"  # the usual id format, from when opened
    assert told.manual and told.status is IncidentStatus.INVESTIGATING
    assert (told.sequence, told.customers_told_at, told.next_update_at) == (1, now, now + 1800)
    assert told.covered == told.announced == ("labels", "edi")
    assert told.first_failure_at == at(first_failure) and told.opened_at == now
    assert changes[1].said == told.message == REPORTED


@pytest.mark.parametrize(
    ("services", "message", "since", "refusal"),
    [
        pytest.param((), REPORTED, None, "each affected service", id="no-service"),
        pytest.param(("edi", "edi"), REPORTED, None, "once", id="twice-the-same"),
        pytest.param(("edi",), Words(), None, "needs a message", id="no-message"),
        pytest.param(("edi",), REPORTED, "13:01", "future", id="begins-later"),
    ],
)
def test_opening_by_hand_refusals(
    services: tuple[str, ...], message: Words, since: str | None, refusal: str
) -> None:
    """An incident no one could be told about properly is refused."""
    began = at(since) if since is not None else None
    with pytest.raises(ActionRefused, match=refusal):
        open_by_hand(services, message, at("13:00"), TIMING, began)


def views(clock: str, states: Mapping[str, str]) -> dict[str, ServiceView]:
    """Service views at ``clock``: ``up`` or ``down`` (failing since 20 s before)."""
    now = at(clock)
    return {
        service: ServiceView(
            service,
            CheckStatus(state),
            now,
            first_failure_at=now - 20 if state == "down" else None,
            reason="http_status" if state == "down" else "",
            check_id=f"{service}-ws" if state == "down" else "",
        )
        for service, state in states.items()
    }


RULES = Rules(
    timing=lambda _: TIMING,
    depends_on={"portal": frozenset({"edi"})},
    audience={"labels": frozenset({"acme"}), "edi": frozenset({"initech"})},
)


@pytest.mark.parametrize(
    ("clock", "states", "expected"),
    [
        pytest.param("13:05", {"labels": "up", "edi": "up"}, [], id="green-checks-resolve-nothing"),
        pytest.param("13:05", {"labels": "down", "edi": "up"}, [], id="failing-no-duplicate"),
        pytest.param("13:05", {"edi": "down", "labels": "down"}, [], id="both-fail-no-duplicate"),
        pytest.param(
            "13:05", {"portal": "down"}, [(ChangeKind.JOINED, ("portal",))], id="dependant-joins"
        ),
        pytest.param(
            "13:05", {"tracking": "down"}, [(ChangeKind.OPENED, ("tracking",))], id="others-open"
        ),
        pytest.param("13:29:59", {"labels": "up"}, [], id="update-not-due-yet"),
        pytest.param("13:30", {"labels": "up"}, [(ChangeKind.UPDATE, ("labels", "edi"))], id="due"),
    ],
)
def test_a_manual_incident_moves_only_by_hand_and_by_its_cadence(
    clock: str, states: Mapping[str, str], expected: list[tuple[ChangeKind, tuple[str, ...]]]
) -> None:
    """Checks neither resolve it nor duplicate it; its promised updates still come."""
    manual = opened()
    changes = apply({manual.id: manual}, views(clock, states), at(clock), RULES)
    seen = [(c.kind, c.services or c.incident.covered) for c in changes]
    assert seen == expected
    for change in changes:
        if change.incident.id == manual.id:
            assert change.incident.status is IncidentStatus.INVESTIGATING
            assert change.incident.resolved_at is None


def test_a_manual_incident_stays_open_through_a_failure_and_a_recovery() -> None:
    """Failing then answering for longer than stable_for: no monitoring, no resolution."""
    manual = opened()
    open_ = {manual.id: manual}
    for clock, state in (("13:05", "down"), ("13:06", "up"), ("13:20", "up"), ("13:29", "up")):
        assert apply(open_, views(clock, {"labels": state}), at(clock), RULES) == []


def test_an_operator_resolves_a_manual_incident() -> None:
    """Resolving by hand with green checks: the resolution, recovered when resolved."""
    change = act(opened(), OperatorAction.RESOLVE, NEWS, at("14:00"), TIMING)
    assert change.kind is ChangeKind.RESOLVED
    assert change.incident.resolved_at == change.incident.recovered_at == at("14:00")
    assert change.incident.sequence == 2 and not change.incident.closed_failing


@pytest.mark.parametrize(
    "incident",
    [
        pytest.param(opened(), id="manual"),
        pytest.param(opened(manual=False), id="detected"),
        pytest.param(
            opened(customers_told_at=None, sequence=0, announced=()), id="customers-not-told-yet"
        ),
    ],
)
def test_a_page_only_update_emails_no_one_and_moves_no_promise(incident: Incident) -> None:
    """The words reach the timeline only: sequence, promise and latest message are kept."""
    change = act(incident, OperatorAction.UPDATE, NEWS, at("13:10"), TIMING, page_only=True)
    assert (change.kind, change.said, change.page_only) == (ChangeKind.UPDATE, NEWS, True)
    assert change.incident == incident  # the next promised update repeats emailed words only


@pytest.mark.parametrize(
    ("incident", "action", "refusal"),
    [
        pytest.param(opened(), OperatorAction.IDENTIFY, "only an update", id="identify"),
        pytest.param(opened(), OperatorAction.RESOLVE, "only an update", id="resolve"),
        pytest.param(
            opened(status=IncidentStatus.RESOLVED, resolved_at=at("13:05")),
            OperatorAction.UPDATE,
            "already resolved",
            id="after-resolution",
        ),
    ],
)
def test_page_only_refusals(incident: Incident, action: OperatorAction, refusal: str) -> None:
    """Page-only is for updates on open incidents."""
    with pytest.raises(ActionRefused, match=refusal):
        act(incident, action, NEWS, at("13:10"), TIMING, page_only=True)
