"""Which live instances probe which check: rendezvous hashing over distinct locations.

Each (check, instance) pair gets a weight from a stable hash (BLAKE2b, the same in every
process and release, unlike ``hash()``). A check is probed by the heaviest instances, taking at
most one per location, until ``probe_from`` locations are chosen (capped by the number of live
locations). Every instance computes the same answer from the same live members, with no
coordination. A join takes only the checks where the newcomer now weighs among the chosen
(about ``probe_from / (n + 1)`` of them); a death moves only the checks its member probed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from monitor.cluster.membership import Lease, locations

PROBE_FROM = 2  # locations that probe each check where at least two are live


def weight(check_id: str, instance_id: str) -> int:
    """The stable weight of ``instance_id`` for ``check_id``: a 64-bit BLAKE2b of both."""
    pair = check_id.encode() + b"\0" + instance_id.encode()
    return int.from_bytes(hashlib.blake2b(pair, digest_size=8).digest(), "big")


def choose(check_id: str, members: Sequence[Lease], count: int) -> tuple[str, ...]:
    """The ids of the ``count`` heaviest members for ``check_id``, at most one per location."""
    ranked = sorted(members, key=lambda m: (weight(check_id, m.instance_id), m.instance_id))
    chosen: list[str] = []
    taken: set[str] = set()
    for member in reversed(ranked):
        if len(chosen) == count:
            break
        if member.location not in taken:
            taken.add(member.location)
            chosen.append(member.instance_id)
    return tuple(chosen)


def assign(
    check_ids: Iterable[str], members: Iterable[Lease], probe_from: int = PROBE_FROM
) -> dict[str, tuple[str, ...]]:
    """Each check's probing instances, heaviest first, at ``probe_from`` distinct locations."""
    live = tuple(members)
    count = max(0, min(probe_from, len(locations(live))))
    return {check_id: choose(check_id, live, count) for check_id in check_ids}


def checks_for(assignment: Mapping[str, tuple[str, ...]], instance_id: str) -> frozenset[str]:
    """The checks ``instance_id`` probes under ``assignment``."""
    return frozenset(check for check, chosen in assignment.items() if instance_id in chosen)


def moved(
    before: Mapping[str, tuple[str, ...]], after: Mapping[str, tuple[str, ...]]
) -> frozenset[str]:
    """The checks whose set of probing instances differs between two assignments."""
    return frozenset(
        c for c in before.keys() | after.keys() if set(before.get(c, ())) != set(after.get(c, ()))
    )
