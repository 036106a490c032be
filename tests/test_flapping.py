"""Icinga 2's flapping algorithm as tables of steps: result classes in, percent and state out."""

from __future__ import annotations

import pytest

from monitor.flapping import (
    ANSWERED,
    FAILED,
    HISTORY,
    SLOW,
    flapping_percent,
    push,
    result_class,
    still_flapping,
)

# The Icinga 2 docs' example: changes in the slots weighing 0.84, 0.86, 0.88, 0.9, 0.98, 1.06,
# 1.12 and 1.18 (slot i weighs 0.8 + 0.02·i).
ICINGA_SLOTS = (2, 3, 4, 5, 9, 13, 16, 19)


def icinga_history() -> tuple[int, ...]:
    """21 results whose state changes fall exactly in ICINGA_SLOTS (slot i: result i → i+1)."""
    history = [ANSWERED]
    for slot in range(HISTORY - 1):
        changed = slot in ICINGA_SLOTS
        history.append(
            (FAILED if history[-1] == ANSWERED else ANSWERED) if changed else history[-1]
        )
    return tuple(history)


def test_icinga_example_is_39_1_percent_and_flapping() -> None:
    """The documented example weighs 7.82 of 20, so 39.1 %, above the 30 % start threshold."""
    history = icinga_history()
    assert len(history) == HISTORY
    changed = [i for i in range(HISTORY - 1) if history[i] != history[i + 1]]
    assert changed == list(ICINGA_SLOTS)
    assert flapping_percent(history) == pytest.approx(39.1, abs=1e-9)
    assert still_flapping(False, flapping_percent(history)) is True


def test_icinga_example_stops_flapping_on_the_fifth_stable_result() -> None:
    """Each stable result ages every change by one slot; the fifth brings it under 25 %."""
    history, flapping = icinga_history(), True
    seen = []
    for _ in range(6):
        history = push(history, history[-1])
        percent = flapping_percent(history)
        flapping = still_flapping(flapping, percent)
        seen.append((round(percent, 9), flapping))
    # 28.2 % after four lies between the thresholds: still flapping by hysteresis.
    assert seen == [
        (38.3, True),
        (37.5, True),
        (32.8, True),
        (28.2, True),
        (23.7, False),
        (19.3, False),
    ]


@pytest.mark.parametrize(
    ("history", "percent"),
    [
        ((), 0.0),
        ((ANSWERED,), 0.0),
        ((ANSWERED,) * HISTORY, 0.0),
        ((FAILED,) * HISTORY, 0.0),
        ((ANSWERED, FAILED) * 11, 99.0),  # all 20 slots: 0.80 + … + 1.18 = 19.8 of 20
        ((ANSWERED, SLOW) * 11, 99.0),  # slow is a class of its own
        ((ANSWERED, FAILED), 5.9),  # a lone change is the newest slot, weighing 1.18
        ((FAILED, ANSWERED) + (ANSWERED,) * 19, 4.0),  # the oldest slot weighs 0.8
        ((FAILED, ANSWERED) + (ANSWERED,) * 20, 0.0),  # one result later it has left
    ],
    ids=[
        "no-results",
        "one-result",
        "steady-up",
        "steady-outage",
        "alternating-every-result",
        "alternating-with-slow",
        "single-newest-change",
        "single-oldest-change",
        "change-aged-out",
    ],
)
def test_flapping_percent_table(history: tuple[int, ...], percent: float) -> None:
    """Each history gives its weighted share of state changes among the last 20 slots."""
    assert flapping_percent(history) == pytest.approx(percent, abs=1e-9)


@pytest.mark.parametrize(
    ("flapping", "percent", "expected"),
    [
        (False, 25.0, False),
        (False, 27.5, False),  # between thresholds: stays as it was
        (True, 27.5, True),  # between thresholds: stays as it was
        (False, 30.0, False),  # starts only when it exceeds 30
        (False, 30.1, True),
        (True, 25.0, True),  # stops only when it drops below 25
        (True, 24.9, False),
        (True, 99.0, True),
    ],
)
def test_hysteresis_keeps_the_previous_state_between_thresholds(
    flapping: bool, percent: float, expected: bool
) -> None:
    """Flapping starts above 30 %, stops below 25 %, and in between keeps the previous state."""
    assert still_flapping(flapping, percent) is expected


def test_custom_thresholds_are_honoured() -> None:
    """The thresholds are parameters: a check can be made more or less tolerant."""
    assert still_flapping(False, 15.0, high=10.0, low=5.0) is True
    assert still_flapping(True, 4.0, high=10.0, low=5.0) is False


def test_push_keeps_only_the_newest_results() -> None:
    """push appends and forgets the oldest once HISTORY results are held."""
    history: tuple[int, ...] = ()
    for index in range(HISTORY + 3):
        history = push(history, index)
    assert history == tuple(range(3, HISTORY + 3))
    assert flapping_percent(tuple(range(40))) == pytest.approx(99.0)  # only the last 21 count


@pytest.mark.parametrize(
    ("ok", "degraded", "expected"),
    [(True, False, ANSWERED), (True, True, SLOW), (False, False, FAILED), (False, True, FAILED)],
)
def test_result_class_from_probe_outcome(ok: bool, degraded: bool, expected: int) -> None:
    """A failure is FAILED whatever its latency; an answer is SLOW when degraded."""
    assert result_class(ok, degraded) == expected
