"""Quorum as tables: the locations' verdicts on a check in, one verdict and ops' facts out."""

from __future__ import annotations

import pytest

from monitor.cluster.membership import Lease
from monitor.cluster.placement import assign
from monitor.cluster.quorum import (
    CheckVerdict,
    LocationVerdict,
    Seen,
    Unhealthy,
    decide,
    unhealthy,
)
from monitor.domain.detector import CheckStatus
from monitor.probes.base import Reason

UP, DOWN, UNKNOWN = Seen.UP, Seen.DOWN, Seen.UNKNOWN


def said(location: str, seen: Seen, at: float = 0.0) -> LocationVerdict:
    """``location``'s verdict; a DOWN one began failing at ``at`` and was confirmed 10 s later."""
    if seen is not DOWN:
        return LocationVerdict(location, seen, since=at)
    return LocationVerdict(
        location,
        DOWN,
        since=at + 10.0,
        first_failure_at=at,
        reason=Reason.CONNECT_TIMEOUT,
        detail=f"timeout from {location}",
    )


@pytest.mark.parametrize(
    ("verdicts", "canary_failing", "state", "saw_failure", "dissenting", "left_out"),
    [
        ([said("paris", DOWN), said("frankfurt", DOWN)], (), DOWN, ("frankfurt", "paris"), (), ()),
        ([said("paris", DOWN), said("frankfurt", UP)], (), UP, (), ("paris",), ()),
        ([said("paris", DOWN), said("frankfurt", UNKNOWN)], (), UNKNOWN, (), (), ()),
        ([said("paris", UP), said("frankfurt", UNKNOWN)], (), UP, (), (), ()),
        (
            [said("paris", DOWN), said("frankfurt", DOWN), said("oslo", UP)],
            (),
            DOWN,
            ("frankfurt", "paris"),
            (),
            (),
        ),
        (
            [said("paris", DOWN), said("frankfurt", UP), said("oslo", UP)],
            (),
            UP,
            (),
            ("paris",),
            (),
        ),
        (
            [said("paris", DOWN), said("frankfurt", UNKNOWN), said("oslo", DOWN)],
            (),
            DOWN,
            ("oslo", "paris"),
            (),
            (),
        ),
        # A location whose own canary fails is not counted: the other one decides alone.
        ([said("paris", DOWN), said("frankfurt", UP)], ("paris",), UP, (), (), ("paris",)),
        (
            [said("paris", DOWN), said("frankfurt", DOWN)],
            ("paris",),
            DOWN,
            ("frankfurt",),
            (),
            ("paris",),
        ),
        # Nobody can be counted: unknown, never down.
        (
            [said("paris", DOWN), said("frankfurt", DOWN)],
            ("paris", "frankfurt"),
            UNKNOWN,
            (),
            (),
            ("frankfurt", "paris"),
        ),
        ([], (), UNKNOWN, (), (), ()),
    ],
    ids=[
        "outage-seen-everywhere",
        "one-location-alone-sees-it",
        "half-is-not-a-majority",
        "up-while-other-not-yet-probed",
        "two-of-three",
        "one-of-three",
        "two-of-three-with-one-unknown",
        "canary-failing-location-ignored",
        "canary-failing-leaves-one-to-confirm",
        "no-location-counted",
        "no-verdicts",
    ],
)
def test_quorum_table(
    verdicts: list[LocationVerdict],
    canary_failing: tuple[str, ...],
    state: Seen,
    saw_failure: tuple[str, ...],
    dissenting: tuple[str, ...],
    left_out: tuple[str, ...],
) -> None:
    """Down when more than half of the counted locations confirm it; canary failures not counted."""
    verdict = decide("web", verdicts, canary_failing)
    assert (verdict.state, verdict.saw_failure, verdict.dissenting, verdict.left_out) == (
        state,
        saw_failure,
        dissenting,
        left_out,
    )


def test_a_down_verdict_carries_the_earliest_failure_and_when_the_majority_was_reached() -> None:
    """The failure's start and reason are the first location's; the confirmation the second's."""
    verdict = decide("web", [said("paris", DOWN, at=100.0), said("frankfurt", DOWN, at=40.0)])
    assert verdict.first_failure_at == 40.0
    assert (verdict.reason, verdict.detail) == (Reason.CONNECT_TIMEOUT, "timeout from frankfurt")
    assert verdict.confirmed_at == 110.0  # Frankfurt confirmed at 50, Paris at 110


def test_an_up_verdict_carries_no_failure() -> None:
    """When the check is up, nothing of the lone failure leaks into the verdict."""
    verdict = decide("web", [said("paris", DOWN, at=5.0), said("frankfurt", UP)])
    assert (verdict.first_failure_at, verdict.reason, verdict.detail, verdict.confirmed_at) == (
        None,
        None,
        "",
        None,
    )


@pytest.mark.parametrize(
    ("status", "seen"),
    [
        (CheckStatus.UP, UP),
        (CheckStatus.DEGRADED, UP),
        (CheckStatus.DOWN, DOWN),
        (CheckStatus.UNKNOWN, UNKNOWN),
        (CheckStatus.FLAPPING, UNKNOWN),
        (CheckStatus.MAINTENANCE, UNKNOWN),
    ],
)
def test_a_detector_status_becomes_a_vote(status: CheckStatus, seen: Seen) -> None:
    """Slow answers are answers; a flapping or masked status abstains."""
    assert Seen.of(status) is seen


def lone(check_id: str, location: str = "paris") -> CheckVerdict:
    """A check ``location`` alone sees down while Frankfurt sees it up."""
    return decide(check_id, [said(location, DOWN), said("frankfurt", UP)])


@pytest.mark.parametrize(
    ("verdicts", "canary_failing", "expected"),
    [
        ([lone("a"), lone("b")], (), ()),  # two targets down from Paris only: their affair
        (
            [lone("a"), lone("b"), lone("c")],
            (),
            (Unhealthy("paris", canary_failing=False, dissents=("a", "b", "c")),),
        ),
        ([lone("a")], ("oslo",), (Unhealthy("oslo", canary_failing=True, dissents=()),)),
        ([lone("a"), lone("b"), lone("c", "oslo")], (), ()),  # spread over places: targets
    ],
    ids=["two-lone-failures", "three-lone-failures", "canary-failing", "spread"],
)
def test_unhealthy_locations_table(
    verdicts: list[CheckVerdict], canary_failing: tuple[str, ...], expected: tuple[Unhealthy, ...]
) -> None:
    """A location is unhealthy when its canary fails or it alone sees 3 checks down at once."""
    assert unhealthy(verdicts, canary_failing) == expected


LOCATIONS = {"i1": "paris", "i2": "frankfurt", "i3": "oslo"}
CLUSTER = [Lease(i, where, renewed_at=0.0, started_at=0.0) for i, where in LOCATIONS.items()]
CHECKS = [f"check-{n}" for n in range(30)]


def scene(down_from: set[str], canary_failing: tuple[str, ...] = ()) -> list[CheckVerdict]:
    """Three instances, two locations per check: each sees DOWN exactly from ``down_from``."""
    placement = assign(CHECKS, CLUSTER, probe_from=2)
    return [
        decide(
            check,
            [said(LOCATIONS[i], DOWN if LOCATIONS[i] in down_from else UP) for i in chosen],
            canary_failing,
        )
        for check, chosen in placement.items()
    ]


def test_scene_an_outage_seen_from_everywhere_is_one_down_verdict_per_check() -> None:
    """Every check is down once, naming the two locations probing it; no location is blamed."""
    verdicts = scene(down_from=set(LOCATIONS.values()))
    assert {v.state for v in verdicts} == {DOWN}
    assert all(len(v.saw_failure) == 2 for v in verdicts)
    assert len({v.check_id for v in verdicts}) == len(CHECKS)  # one verdict, one incident each
    assert unhealthy(verdicts) == ()


@pytest.mark.parametrize("canary_failing", [(), ("oslo",)], ids=["by-dissent", "by-canary"])
def test_scene_one_instances_broken_network_is_no_incident_and_ops_hear_where(
    canary_failing: tuple[str, ...],
) -> None:
    """Oslo's targets are unreachable from Oslo only: every check stays up, Oslo is unhealthy."""
    verdicts = scene(down_from={"oslo"}, canary_failing=canary_failing)
    assert {v.state for v in verdicts} == {UP}
    (sick,) = unhealthy(verdicts, canary_failing)
    assert sick.location == "oslo" and sick.canary_failing is bool(canary_failing)
