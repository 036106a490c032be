"""The flapping rule as tables: result windows in, score and state out, and its noise bound."""

from __future__ import annotations

import random

import pytest

from monitor.domain.flapping import (
    FLAPPING_AT,
    SETTLED_AT,
    WINDOW,
    noise_tail,
    push,
    score,
    still_flapping,
    suspect,
)

F, A = True, False  # a failed result, an answered one


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ((), 0),
        ((A,) * WINDOW, 0),
        ((F, A, F, A, F), 3),
        ((F, F), 2),
        ((F,) * WINDOW, 2),  # an outage is one event, however long
        ((F, F, F, A, F, F, F, A, F), 5),
        ((A, F) * 10, 10),
    ],
    ids=["empty", "all-answered", "isolated", "short-run", "outage", "runs-capped", "alternate"],
)
def test_score_counts_failures_with_each_run_capped(
    window: tuple[bool, ...], expected: int
) -> None:
    """Each isolated failure scores one; an unbroken run scores at most two."""
    assert score(window) == expected


@pytest.mark.parametrize(
    ("flapping", "window", "expected"),
    [
        (False, (F, A) * 8, False),  # 8: not yet
        (False, (F, A) * 9, True),  # 9 starts it
        (False, (F,) * WINDOW, False),  # a clean outage never starts it
        (True, (F, A) * 4, True),  # 4 keeps it: hysteresis
        (True, (F, A) * 3 + (A,) * 34, False),  # 3 stops it
        (True, (F,) * WINDOW, False),  # turned into a clean outage: down, no longer a flap
    ],
    ids=["eight-no", "nine-starts", "outage-never", "four-keeps", "three-stops", "solid-outage"],
)
def test_flapping_starts_at_nine_and_stops_at_three(
    flapping: bool, window: tuple[bool, ...], expected: bool
) -> None:
    """Flapping starts at a score of FLAPPING_AT and only stops at SETTLED_AT or below."""
    assert (WINDOW, FLAPPING_AT, SETTLED_AT) == (40, 9, 3)
    assert still_flapping(flapping, window) is expected


def test_a_second_failure_among_the_recent_results_asks_for_fast_sampling() -> None:
    """One failure is noise; a second within RECENT results re-probes until it ages out."""
    assert not suspect((A,) * 10 + (F,) + (A,) * 10)
    assert suspect((F, A, F, A))
    assert not suspect((F, A, F) + (A,) * 40)


def test_push_keeps_only_the_newest_results() -> None:
    """push appends and forgets the oldest once WINDOW results are held."""
    window: tuple[bool, ...] = ()
    for index in range(WINDOW + 3):
        window = push(window, index < 3)
    assert window == (A,) * WINDOW


def test_noise_tail_is_under_one_in_ten_million_at_two_percent_loss() -> None:
    """The binomial tail bounds how often 2 % random loss alone can start flapping."""
    assert noise_tail(0.02) < 1e-7
    assert noise_tail(0.30) > 0.85  # a 30 % failure rate crosses it within minutes
    assert noise_tail(0.5) > 0.9


def test_two_percent_random_loss_never_flaps_in_three_months_of_results() -> None:
    """300,000 results with 2 % independent loss: the score never reaches FLAPPING_AT."""
    rng = random.Random(15)
    window: tuple[bool, ...] = ()
    worst = 0
    for _ in range(300_000):
        window = push(window, rng.random() < 0.02)
        worst = max(worst, score(window))
    assert worst < FLAPPING_AT, worst
