"""Operator actions (identify, update, resolve, postmortem) on incidents, as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.core.words import Words
from monitor.domain.actions import ActionRefused, act
from monitor.domain.incidents import ChangeKind, Incident, IncidentStatus, Timing
from monitor.domain.operations import OperatorAction

PARIS = ZoneInfo("Europe/Paris")


def at(clock: str) -> float:
    """``"13:05"`` or ``"13:05:30"`` in Paris on 2026-11-22, as a UTC epoch."""
    hour, minute, *second = map(int, clock.split(":"))
    return datetime(2026, 11, 22, hour, minute, *second, tzinfo=PARIS).timestamp()


NOW = at("13:10")
TIMING = Timing(customer_delay=120.0, update_every=1800.0, stable_for=600.0)
CAUSE = Words(every="Le certificat de l'API du transporteur a expiré ; renouvellement en cours.")
STORY = Words(every="Certificate renewal is now automated and alerts 30 days ahead.")

IDENTIFY, UPDATE = OperatorAction.IDENTIFY, OperatorAction.UPDATE
RESOLVE, POSTMORTEM = OperatorAction.RESOLVE, OperatorAction.POSTMORTEM
INVESTIGATING, IDENTIFIED = IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED
MONITORING, RESOLVED = IncidentStatus.MONITORING, IncidentStatus.RESOLVED

# Down since 12:59:40, confirmed at 13:00; customer_delay 2 min.
UNTOLD = Incident(
    id="tracking-20261122T115940",
    service_id="tracking",
    status=INVESTIGATING,
    opened_at=at("13:00"),
    first_failure_at=at("12:59:40"),
    services=("tracking", "labels"),
    reason="timeout",
)
TOLD = replace(
    UNTOLD,
    sequence=1,
    customers_told_at=at("13:02"),
    next_update_at=at("13:32"),
    announced=("tracking", "labels"),
)
RECOVERING = replace(TOLD, status=MONITORING, recovered_at=at("13:05"))
CLOSED_TOLD = replace(
    RECOVERING, status=RESOLVED, sequence=2, resolved_at=at("13:08"), next_update_at=None
)
CLOSED_UNTOLD = replace(UNTOLD, status=RESOLVED, recovered_at=at("13:01"), resolved_at=at("13:01"))


@pytest.mark.parametrize(
    ("incident", "action", "message", "kind", "fields"),
    [
        pytest.param(
            UNTOLD,
            IDENTIFY,
            CAUSE,
            ChangeKind.ANNOUNCED,
            {
                "status": IDENTIFIED,
                "sequence": 1,
                "customers_told_at": NOW,
                "next_update_at": NOW + 1800,
                "announced": ("tracking", "labels"),
                "message": CAUSE,
            },
            id="identify-before-customers-were-told-is-their-first-notice",
        ),
        pytest.param(
            UNTOLD,
            UPDATE,
            CAUSE,
            ChangeKind.ANNOUNCED,
            {"status": INVESTIGATING, "sequence": 1, "customers_told_at": NOW, "message": CAUSE},
            id="update-before-customers-were-told-is-their-first-notice",
        ),
        pytest.param(
            TOLD,
            IDENTIFY,
            CAUSE,
            ChangeKind.IDENTIFIED,
            {
                "status": IDENTIFIED,
                "sequence": 2,
                "customers_told_at": at("13:02"),
                "next_update_at": NOW + 1800,
                "message": CAUSE,
            },
            id="identify-when-told-restarts-the-cadence",
        ),
        pytest.param(
            RECOVERING,
            IDENTIFY,
            CAUSE,
            ChangeKind.IDENTIFIED,
            {"status": MONITORING, "sequence": 2, "recovered_at": at("13:05")},
            id="identify-while-recovering-stays-monitoring",
        ),
        pytest.param(
            replace(TOLD, status=IDENTIFIED),
            UPDATE,
            CAUSE,
            ChangeKind.UPDATE,
            {"status": IDENTIFIED, "sequence": 2, "next_update_at": NOW + 1800, "message": CAUSE},
            id="update-keeps-the-status",
        ),
        pytest.param(
            TOLD,
            RESOLVE,
            CAUSE,
            ChangeKind.RESOLVED,
            {
                "status": RESOLVED,
                "sequence": 2,
                "message": CAUSE,
                "recovered_at": NOW,
                "resolved_at": NOW,
                "next_update_at": None,
                "first_failure_at": at("12:59:40"),
            },
            id="resolve-while-down-sets-recovered-at-now",
        ),
        pytest.param(
            RECOVERING,
            RESOLVE,
            CAUSE,
            ChangeKind.RESOLVED,
            {"status": RESOLVED, "sequence": 2, "recovered_at": at("13:05"), "resolved_at": NOW},
            id="resolve-while-recovering-keeps-the-recovery-time",
        ),
        pytest.param(
            UNTOLD,
            RESOLVE,
            CAUSE,
            ChangeKind.RESOLVED,
            {"status": RESOLVED, "sequence": 0, "customers_told_at": None, "resolved_at": NOW},
            id="resolve-untold-sends-nothing",
        ),
        pytest.param(
            CLOSED_TOLD,
            POSTMORTEM,
            STORY,
            ChangeKind.POSTMORTEM,
            {"status": RESOLVED, "sequence": 3, "postmortem": STORY, "resolved_at": at("13:08")},
            id="postmortem-after-resolution-is-one-more-message",
        ),
        pytest.param(
            CLOSED_UNTOLD,
            POSTMORTEM,
            STORY,
            ChangeKind.POSTMORTEM,
            {"sequence": 0, "postmortem": STORY, "customers_told_at": None},
            id="postmortem-of-an-untold-incident-does-not-bump-sequence",
        ),
    ],
)
def test_act(
    incident: Incident,
    action: OperatorAction,
    message: Words,
    kind: ChangeKind,
    fields: dict[str, Any],
) -> None:
    """Each operator action yields one change of the expected kind and incident fields."""
    change = act(incident, action, message, NOW, TIMING)
    assert (change.kind, change.at, change.incident.id) == (kind, NOW, incident.id)
    assert {name: getattr(change.incident, name) for name in fields} == fields


@pytest.mark.parametrize(
    ("incident", "action"),
    [
        pytest.param(CLOSED_TOLD, RESOLVE, id="resolve-a-resolved-incident"),
        pytest.param(CLOSED_TOLD, IDENTIFY, id="identify-a-resolved-incident"),
        pytest.param(CLOSED_UNTOLD, UPDATE, id="update-a-resolved-incident"),
        pytest.param(TOLD, POSTMORTEM, id="postmortem-while-investigating"),
        pytest.param(RECOVERING, POSTMORTEM, id="postmortem-while-monitoring"),
        pytest.param(UNTOLD, POSTMORTEM, id="postmortem-of-an-untold-open-incident"),
    ],
)
def test_refused(incident: Incident, action: OperatorAction) -> None:
    """Actions that make no sense for the incident as it stands are refused."""
    with pytest.raises(ActionRefused):
        act(incident, action, CAUSE, NOW, TIMING)


def test_resolve_twice_is_refused() -> None:
    """Resolving the incident a first resolution produced is refused."""
    first = act(TOLD, RESOLVE, CAUSE, NOW, TIMING)
    assert first.incident.status is RESOLVED
    with pytest.raises(ActionRefused, match="already resolved"):
        act(first.incident, RESOLVE, CAUSE, NOW + 60, TIMING)


def test_postmortem_follows_resolution_in_sequence() -> None:
    """Resolve then postmortem: the postmortem is the next customer message after resolution."""
    closed = act(TOLD, RESOLVE, CAUSE, NOW, TIMING).incident
    published = act(closed, POSTMORTEM, STORY, NOW + 3600, TIMING)
    assert (published.kind, closed.sequence, published.incident.sequence) == (
        ChangeKind.POSTMORTEM,
        2,
        3,
    )
    assert (published.incident.postmortem, published.incident.message) == (STORY, CAUSE)
