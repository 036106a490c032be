"""The detector as tables of steps: results in, states and transitions out."""

from __future__ import annotations

import pytest

from monitor.domain.detector import CheckState, CheckStatus, observe, rollup
from monitor.probes.base import ProbeResult, Reason

UP, DOWN, DEGRADED, UNKNOWN, FLAPPING = (
    CheckStatus.UP,
    CheckStatus.DOWN,
    CheckStatus.DEGRADED,
    CheckStatus.UNKNOWN,
    CheckStatus.FLAPPING,
)
OK, FAIL, SLOW = "ok", "fail", "slow"


def result(kind: str, at: float) -> ProbeResult:
    """A probe result of the given kind at time ``at``."""
    if kind == FAIL:
        return ProbeResult("c", at, ok=False, reason=Reason.HTTP_STATUS, detail="status 503")
    return ProbeResult("c", at, ok=True, degraded=kind == SLOW)


def run(steps: list[str], failure_threshold: int = 3, success_threshold: int = 2) -> list[tuple]:
    """Feed results one second apart; return (status, transition or None) after each."""
    state = CheckState(failure_threshold, success_threshold)
    seen = []
    for second, kind in enumerate(steps):
        state, transition = observe(state, result(kind, float(second)), float(second))
        seen.append((state.status, transition and (transition.old, transition.new)))
    return seen


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([OK], [(UP, (UNKNOWN, UP))]),
        ([OK, FAIL, FAIL, FAIL], [(UP, (UNKNOWN, UP)), (UP, None), (UP, None), (DOWN, (UP, DOWN))]),
        (
            [OK, FAIL, FAIL, OK, FAIL, FAIL],
            [(UP, (UNKNOWN, UP)), (UP, None), (UP, None), (UP, None), (UP, None), (UP, None)],
        ),
        (
            [FAIL, FAIL, FAIL, OK, OK],
            [
                (UNKNOWN, None),
                (UNKNOWN, None),
                (DOWN, (UNKNOWN, DOWN)),
                (DOWN, None),
                (UP, (DOWN, UP)),
            ],
        ),
        (
            [FAIL, FAIL, FAIL, OK, FAIL, OK, OK],
            [
                (UNKNOWN, None),
                (UNKNOWN, None),
                (DOWN, (UNKNOWN, DOWN)),
                (DOWN, None),
                (DOWN, None),
                (DOWN, None),
                (UP, (DOWN, UP)),
            ],
        ),
        (
            [OK, SLOW, SLOW, SLOW, OK, OK],
            [
                (UP, (UNKNOWN, UP)),
                (UP, None),
                (UP, None),
                (DEGRADED, (UP, DEGRADED)),
                (DEGRADED, None),
                (UP, (DEGRADED, UP)),
            ],
        ),
        (
            [FAIL, FAIL, FAIL, SLOW, SLOW],
            [
                (UNKNOWN, None),
                (UNKNOWN, None),
                (DOWN, (UNKNOWN, DOWN)),
                (DOWN, None),
                (DEGRADED, (DOWN, DEGRADED)),
            ],
        ),
    ],
    ids=[
        "first-success-is-up",
        "three-failures-confirm-down",
        "interrupted-failures-stay-up",
        "two-successes-confirm-recovery",
        "relapse-restarts-recovery-count",
        "slow-answers-degrade-then-recover",
        "slow-recovery-is-degraded",
    ],
)
def test_thresholds_table(steps: list[str], expected: list[tuple]) -> None:
    """Each table row feeds results in order and checks the state after every step."""
    assert run(steps) == expected


def test_down_transition_carries_first_failure_time() -> None:
    """The DOWN transition names when the failing run began, not when it was confirmed."""
    state = CheckState(3, 2)
    state, _ = observe(state, result(OK, 0.0), 0.0)
    transition = None
    for at in (10.0, 15.0, 20.0):
        state, transition = observe(state, result(FAIL, at), at)
    assert transition is not None
    assert (transition.new, transition.at, transition.first_failure_at) == (DOWN, 20.0, 10.0)
    assert transition.reason is Reason.HTTP_STATUS and transition.detail == "status 503"


def test_recovery_transition_keeps_outage_start_and_clears_it_after() -> None:
    """Recovery reports when the outage began; the next outage starts afresh."""
    state = CheckState(1, 1)
    state, _ = observe(state, result(FAIL, 5.0), 5.0)
    state, _ = observe(state, result(FAIL, 6.0), 6.0)
    state, transition = observe(state, result(OK, 9.0), 9.0)
    assert transition is not None and transition.first_failure_at == 5.0
    assert state.failing_since is None
    state, transition = observe(state, result(FAIL, 30.0), 30.0)
    assert transition is not None and transition.first_failure_at == 30.0


@pytest.mark.parametrize(
    ("steps", "confirming"),
    [
        ([OK], False),
        ([OK, FAIL], True),
        ([OK, FAIL, FAIL, FAIL], True),  # a fresh outage: an early recovery is seen fast
        ([OK] + [FAIL] * 6, False),  # six in a row: an established outage, probed at interval
        ([OK, FAIL, FAIL, FAIL, OK], True),
        ([OK, FAIL, FAIL, FAIL, OK, OK], False),
        ([OK, FAIL, OK, OK], False),  # one isolated failure: noise
        ([OK, FAIL, OK, FAIL, OK], True),  # a second one: sample fast to settle it
        ([OK] + [FAIL] * 10, False),  # an established outage is probed at its interval
        ([OK, FAIL, OK, FAIL, OK] + [OK] * 40, False),  # suspicion aged out
    ],
)
def test_confirming_asks_for_fast_retries_until_decided(steps: list[str], confirming: bool) -> None:
    """An unconfirmed change, or failures that may be a flap, make the check re-probed soon."""
    state = CheckState(3, 2)
    for second, kind in enumerate(steps):
        state, _ = observe(state, result(kind, float(second)), float(second))
    assert state.confirming is confirming


def test_a_check_is_seen_up_from_its_first_answer_and_keeps_it() -> None:
    """``seen_up`` starts False, turns True on the first answer and survives an outage."""
    state = CheckState(3, 2)
    for second in range(5):
        state, _ = observe(state, result(FAIL, float(second)), float(second))
    assert state.status is DOWN and not state.seen_up
    state, _ = observe(state, result(SLOW, 5.0), 5.0)
    assert state.seen_up
    for second in range(6, 12):
        state, _ = observe(state, result(FAIL, float(second)), float(second))
    assert state.status is DOWN and state.seen_up


STORM = [OK] + [FAIL, FAIL, FAIL, OK, OK] * 6  # up, then down 3 results and up 2, six times


def transitions(steps: list[str]) -> list[tuple[int, CheckStatus, CheckStatus]]:
    """Feed results one second apart (thresholds 3 and 2); return (step, old, new) of each."""
    state = CheckState(3, 2)
    seen = []
    for second, kind in enumerate(steps):
        state, transition = observe(state, result(kind, float(second)), float(second))
        if transition is not None:
            seen.append((second, transition.old, transition.new))
    return seen


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            STORM + [OK] * 45,
            [
                (0, UNKNOWN, UP),
                (3, UP, DOWN),
                (5, DOWN, UP),
                (8, UP, DOWN),
                (10, DOWN, UP),
                (13, UP, DOWN),
                (15, DOWN, UP),
                (18, UP, DOWN),
                (20, DOWN, UP),
                # five runs of three failures score 2 each: 9 reached with the 21st result
                (21, UP, FLAPPING),
                # silence while the status swings underneath; settled once the last 40
                # results score 3 or less
                (62, FLAPPING, UP),
            ],
        ),
        (
            STORM + [FAIL] * 45,
            [
                (0, UNKNOWN, UP),
                (3, UP, DOWN),
                (5, DOWN, UP),
                (8, UP, DOWN),
                (10, DOWN, UP),
                (13, UP, DOWN),
                (15, DOWN, UP),
                (18, UP, DOWN),
                (20, DOWN, UP),
                (21, UP, FLAPPING),
                (67, FLAPPING, DOWN),  # 40 failures in a row: an outage, down since step 31
            ],
        ),
        ([FAIL] * 30, [(2, UNKNOWN, DOWN)]),
        ([OK] + [FAIL] * 30, [(0, UNKNOWN, UP), (3, UP, DOWN)]),
        # One noise failure, then a 10-result outage and its recovery: an outage, not a flap.
        (
            [OK, FAIL] + [OK] * 5 + [FAIL] * 10 + [OK] * 10,
            [(0, UNKNOWN, UP), (9, UP, DOWN), (18, DOWN, UP)],
        ),
        # Slow answers are answers: latency jitter is DEGRADED's business, not flapping.
        ([OK, SLOW] * 12, [(0, UNKNOWN, UP)]),
        ([OK, FAIL] * 15 + [OK] * 45, [(0, UNKNOWN, UP), (17, UP, FLAPPING), (63, FLAPPING, UP)]),
    ],
    ids=[
        "flap-storm-then-stable-up",
        "flap-storm-then-outage",
        "steady-outage-never-flaps",
        "outage-after-up-never-flaps",
        "noise-then-outage-never-flaps",
        "latency-jitter-does-not-flap",
        "every-other-request-fails",
    ],
)
def test_flapping_table(
    steps: list[str], expected: list[tuple[int, CheckStatus, CheckStatus]]
) -> None:
    """A flap storm is reported once as FLAPPING, then once as the status it settles on."""
    assert transitions(steps) == expected


def test_status_keeps_moving_underneath_while_flapping_is_shown() -> None:
    """While flapping, ``shown`` stays FLAPPING and ``status`` follows the thresholds silently."""
    state = CheckState(3, 2)
    underneath = []
    for second, kind in enumerate(STORM):
        state, transition = observe(state, result(kind, float(second)), float(second))
        if second > 21:
            assert transition is None and state.shown is FLAPPING and state.flapping
            underneath.append(state.status)
    assert {DOWN, UP} <= set(underneath)
    assert underneath[-1] is UP and state.history[-1] is False  # the last result answered
    assert len(state.history) == len(STORM)


def test_flapping_ending_down_names_when_the_current_failing_run_began() -> None:
    """FLAPPING → DOWN carries the first failure of the run that is down, as DOWN always does."""
    state, seen = CheckState(3, 2), []
    for second, kind in enumerate(STORM + [FAIL] * 45):
        state, transition = observe(state, result(kind, float(second)), float(second))
        if transition is not None:
            seen.append(transition)
    last = seen[-1]
    assert (last.old, last.new, last.at, last.first_failure_at) == (FLAPPING, DOWN, 67.0, 31.0)
    assert last.reason is Reason.HTTP_STATUS and last.detail == "status 503"
    assert state.failing_since == 31.0 and state.shown is DOWN


def test_recovery_after_flapping_ended_down_reports_the_outage_start() -> None:
    """The recovery that follows FLAPPING → DOWN names when that outage began, then forgets it."""
    steps = STORM + [FAIL] * 45 + [OK, OK]
    state, transition = CheckState(3, 2), None
    for second, kind in enumerate(steps):
        state, transition = observe(state, result(kind, float(second)), float(second))
    assert transition is not None
    assert (transition.old, transition.new, transition.first_failure_at) == (DOWN, UP, 31.0)
    assert state.failing_since is None


@pytest.mark.parametrize(
    ("statuses", "down_when", "expected"),
    [
        ([UP, UP], "any", UP),
        ([UP, DOWN], "any", DOWN),
        ([UP, DOWN], "all", DEGRADED),
        ([DOWN, DOWN], "all", DOWN),
        ([DOWN, UP, UP], 2, DEGRADED),
        ([DOWN, DOWN, UP], 2, DOWN),
        ([UNKNOWN, UNKNOWN], "any", UNKNOWN),
        ([UNKNOWN, UP], "any", UP),
        ([], "any", UNKNOWN),
    ],
)
def test_rollup_from_checks_to_service(
    statuses: list[CheckStatus], down_when: str | int, expected: CheckStatus
) -> None:
    """A service is down by its ``down_when`` rule and degraded when only part of it fails."""
    assert rollup(statuses, down_when) is expected
