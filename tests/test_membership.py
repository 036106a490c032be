"""Membership as tables of steps: lease rows in, live members and once-per-episode events out."""

from __future__ import annotations

import pytest

from monitor.cluster.membership import (
    SILENT_AFTER,
    Change,
    Lease,
    Watch,
    is_live,
    live_members,
    locations,
    observe,
)

PERIOD = 5.0
JOINED, SILENT, BACK, RESTARTED, LEFT = (
    Change.JOINED,
    Change.SILENT,
    Change.BACK,
    Change.RESTARTED,
    Change.LEFT,
)


def lease(instance: str, renewed_at: float, started_at: float = 0.0, where: str = "") -> Lease:
    """A lease row of ``instance`` at location ``where`` (its id's first letter by default)."""
    return Lease(instance, where or f"loc-{instance[0]}", renewed_at, started_at)


def run(steps: list[tuple[float, list[Lease]]]) -> list[list[tuple[Change, str]]]:
    """Feed each look at the leases to a watch of instance "me"; return the events of each."""
    watch = Watch(me="me", lease_period=PERIOD)
    seen = []
    for now, rows in steps:
        watch, events = observe(watch, rows, now)
        seen.append([(e.change, e.instance_id) for e in events])
    return seen


@pytest.mark.parametrize(
    ("age", "live"),
    [(0.0, True), (PERIOD, True), (2 * PERIOD, True), (2 * PERIOD + 0.01, False), (-3.0, True)],
    ids=["just-renewed", "one-period", "two-periods", "past-two-periods", "clock-ahead"],
)
def test_a_member_is_live_for_two_lease_periods_after_its_renewal(age: float, live: bool) -> None:
    """Live while ``now - renewed_at <= 2 * lease_period``: one missed renewal is tolerated."""
    assert SILENT_AFTER == 2.0
    assert is_live(lease("b", 100.0), 100.0 + age, PERIOD) is live


def test_live_members_keeps_the_newest_row_per_instance_and_drops_silent_ones() -> None:
    """Live members are sorted by id, one row each, the silent left out."""
    rows = [lease("c", 90.0), lease("b", 80.0), lease("b", 99.0), lease("d", 50.0)]
    assert live_members(rows, 100.0, PERIOD) == (lease("b", 99.0), lease("c", 90.0))
    assert locations([lease("b1", 0.0), lease("b2", 0.0), lease("c", 0.0)]) == ("loc-b", "loc-c")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # The first look only learns who is there, silent members included: the others told ops.
        ([(0.0, [lease("b", 0.0), lease("c", -60.0)])], [[]]),
        (
            [(0.0, [lease("b", 0.0)]), (5.0, [lease("b", 5.0), lease("c", 4.0)])],
            [[], [(JOINED, "c")]],
        ),
        # b renews at 0, 5, 10 and then stops: silent at 25 (10 + 2 periods passed), once.
        (
            [
                (0.0, [lease("b", 0.0)]),
                (5.0, [lease("b", 5.0)]),
                (10.0, [lease("b", 10.0)]),
                (15.0, [lease("b", 10.0)]),
                (20.0, [lease("b", 10.0)]),
                (25.0, [lease("b", 10.0)]),
                (30.0, [lease("b", 10.0)]),
                (35.0, [lease("b", 10.0)]),
            ],
            [[], [], [], [], [], [(SILENT, "b")], [], []],
        ),
        # One late renewal (a pause of under a period) is no episode at all.
        (
            [(0.0, [lease("b", 0.0)]), (10.0, [lease("b", 0.0)]), (15.0, [lease("b", 14.0)])],
            [[], [], []],
        ),
        (
            [
                (0.0, [lease("b", 0.0)]),
                (15.0, [lease("b", 0.0)]),
                (20.0, [lease("b", 0.0)]),
                (25.0, [lease("b", 24.0)]),
                (30.0, [lease("b", 29.0)]),
            ],
            [[], [(SILENT, "b")], [], [(BACK, "b")], []],
        ),
        # A restart faster than two periods is no silence, but ops hear it restarted.
        (
            [(0.0, [lease("b", 0.0)]), (5.0, [lease("b", 5.0, started_at=3.0)])],
            [[], [(RESTARTED, "b")]],
        ),
        # A row removed by a clean stop is "left"; a silent member's removed row says nothing.
        (
            [
                (0.0, [lease("b", 0.0), lease("c", 0.0)]),
                (15.0, [lease("b", 15.0), lease("c", 0.0)]),
                (20.0, []),
            ],
            [[], [(SILENT, "c")], [(LEFT, "b")]],
        ),
        # A newcomer seen only once it has gone silent is not announced at all.
        ([(0.0, []), (30.0, [lease("b", 1.0)])], [[], []]),
        # The watching instance never reports itself.
        ([(0.0, [lease("me", 0.0)]), (30.0, [lease("me", 0.0)])], [[], []]),
    ],
    ids=[
        "first-look-is-silent",
        "newcomer-joins",
        "silent-once-within-two-periods",
        "late-renewal-tolerated",
        "silent-then-back",
        "quick-restart",
        "clean-stop-left",
        "stale-newcomer-ignored",
        "self-not-reported",
    ],
)
def test_watch_table(
    steps: list[tuple[float, list[Lease]]], expected: list[list[tuple[Change, str]]]
) -> None:
    """Each row feeds looks at the leases in order and checks the events of every look."""
    assert run(steps) == expected


@pytest.mark.parametrize("renewed_last", [0.0, 0.1, 2.5, 4.9])
def test_a_stopped_member_is_reported_within_two_periods_of_its_missed_renewal(
    renewed_last: float,
) -> None:
    """Whatever the phase of the watcher's looks, silence shows ≤ 2 periods after a miss."""
    watch = Watch(me="me", lease_period=PERIOD)
    watch, _ = observe(watch, [lease("b", renewed_last)], renewed_last)
    missed = renewed_last + PERIOD  # the renewal that never came
    now = 3.0  # the watcher looks every period, at its own phase
    while True:
        watch, events = observe(watch, [lease("b", renewed_last)], now)
        if events:
            break
        now += PERIOD
    assert [e.change for e in events] == [SILENT]
    assert now - missed <= 2 * PERIOD


def test_every_watcher_names_an_episode_with_the_same_key() -> None:
    """Two instances looking at different times give one silence the same key, for dedup."""
    keys = []
    for me, phase in (("x", 1.0), ("y", 3.5)):
        watch = Watch(me=me, lease_period=PERIOD)
        watch, _ = observe(watch, [lease("b", 10.0)], 10.0 + phase)
        watch, events = observe(watch, [lease("b", 10.0)], 25.0 + phase)
        (event,) = events
        assert (event.change, event.last_live_at, event.location) == (SILENT, 10.0, "loc-b")
        keys.append(event.key)
    assert keys[0] == keys[1]


def test_back_names_the_silence_it_ends() -> None:
    """BACK carries the last renewal before the silence, as the SILENT event did."""
    watch = Watch(me="me", lease_period=PERIOD)
    watch, _ = observe(watch, [lease("b", 10.0)], 10.0)
    watch, (silent,) = observe(watch, [lease("b", 10.0)], 30.0)
    watch, (back,) = observe(watch, [lease("b", 40.0, started_at=39.0)], 40.0)
    assert (back.change, back.last_live_at, back.started_at) == (BACK, 10.0, 39.0)
    assert silent.last_live_at == back.last_live_at and silent.key != back.key


def test_the_watch_judges_each_member_by_its_most_recent_row() -> None:
    """An older duplicate row read alongside the renewed one does not make the member silent."""
    watch = Watch(me="me", lease_period=PERIOD)
    watch, _ = observe(watch, [lease("b", 0.0)], 0.0)
    watch, events = observe(watch, [lease("b", 29.0), lease("b", 0.0)], 30.0)
    assert events == () and watch.members["b"].live
