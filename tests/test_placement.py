"""Placement: rendezvous hashing is stable, moves few checks, and prefers distinct locations."""

from __future__ import annotations

from collections import Counter

import pytest

from monitor.cluster.membership import Lease
from monitor.cluster.placement import assign, checks_for, moved, weight

CHECKS = [f"check-{n}" for n in range(1000)]


def member(instance: str, location: str = "") -> Lease:
    """A live member; each at a location of its own unless told."""
    return Lease(instance, location or f"at-{instance}", renewed_at=0.0, started_at=0.0)


def members(count: int) -> list[Lease]:
    """``count`` members, each at a location of its own."""
    return [member(f"i{n}") for n in range(count)]


def test_the_weight_is_a_stable_hash_of_both_ids() -> None:
    """BLAKE2b, not ``hash()``: the same in every process, and it depends on both ids."""
    # Pinned: instances of different releases sharing a database must agree on the placement.
    assert weight("web", "i0") == 0x9D3FA81249651074
    assert weight("web", "i0") != weight("web", "i1") != weight("api", "i1")
    assert weight("ab", "c") != weight("a", "bc")  # the ids are kept apart


def test_assign_is_deterministic_whatever_the_order_of_members() -> None:
    """Every instance computes the same placement from the same live members."""
    group = members(5)
    assert assign(CHECKS, group) == assign(reversed(CHECKS), group[::-1])


@pytest.mark.parametrize(("count", "probe_from"), [(4, 1), (4, 2), (9, 1), (9, 2)])
def test_a_join_moves_only_the_newcomers_share(count: int, probe_from: int) -> None:
    """A newcomer takes about probe_from/(n+1) of the checks; no other check moves."""
    before = assign(CHECKS, members(count), probe_from)
    after = assign(CHECKS, [*members(count), member("new")], probe_from)
    changed = moved(before, after)
    theory = probe_from / (count + 1)
    assert abs(len(changed) / len(CHECKS) - theory) < 0.05, (len(changed), theory)
    assert changed == checks_for(after, "new")
    for check in changed:  # the newcomer replaced exactly one of them
        assert len(set(before[check]) & set(after[check])) == probe_from - 1


@pytest.mark.parametrize("probe_from", [1, 2])
def test_a_death_moves_only_the_dead_members_checks(probe_from: int) -> None:
    """Checks the dead member did not probe keep their instances; its own keep the others."""
    group = members(5)
    before = assign(CHECKS, group, probe_from)
    after = assign(CHECKS, [m for m in group if m.instance_id != "i2"], probe_from)
    assert moved(before, after) == checks_for(before, "i2")
    for check in checks_for(before, "i2"):
        assert set(before[check]) - {"i2"} <= set(after[check])


def test_the_chosen_instances_are_at_distinct_locations() -> None:
    """Two instances at one location count as one: a check never gets both."""
    group = [
        member("p1", "paris"),
        member("p2", "paris"),
        member("p3", "paris"),
        member("f1", "frankfurt"),
    ]
    placement = assign(CHECKS, group)
    locations = {m.instance_id: m.location for m in group}
    assert all(
        sorted(locations[i] for i in chosen) == ["frankfurt", "paris"]
        for chosen in placement.values()
    )
    # f1 is the only one in Frankfurt: it probes everything; Paris's share is spread.
    assert checks_for(placement, "f1") == set(CHECKS)
    paris = Counter(i for chosen in placement.values() for i in chosen if i != "f1")
    assert all(abs(n - 333) < 60 for n in paris.values()), paris


@pytest.mark.parametrize(
    ("group", "probe_from", "count"),
    [
        ([member("a", "x"), member("b", "x")], 2, 1),  # one live location: one instance
        ([member("a"), member("b"), member("c")], 2, 2),
        ([member("a"), member("b"), member("c")], 5, 3),  # capped by live locations
        ([member("a"), member("b"), member("c")], 1, 1),
        ([], 2, 0),  # nobody live: nobody probes
    ],
    ids=["one-location", "default-two", "capped", "one", "nobody"],
)
def test_probe_from_is_capped_by_the_live_locations(
    group: list[Lease], probe_from: int, count: int
) -> None:
    """Each check gets min(probe_from, live locations) instances, the heaviest first."""
    placement = assign(CHECKS[:50], group, probe_from)
    assert {len(chosen) for chosen in placement.values()} == {count}
    for check, chosen in placement.items():
        weights = [weight(check, i) for i in chosen]
        assert weights == sorted(weights, reverse=True)


def test_probe_from_one_is_pure_balanced_sharding() -> None:
    """With probe_from=1 each check is probed exactly once, about evenly across 5 members."""
    placement = assign(CHECKS, members(5), probe_from=1)
    assert all(len(chosen) == 1 for chosen in placement.values())
    shares = Counter(chosen[0] for chosen in placement.values())
    assert sum(shares.values()) == len(CHECKS)
    assert all(abs(n - 200) < 50 for n in shares.values()), shares
