"""forewarn's own network as its canary checks see it: offline while every one of them fails.

While offline, results of the other checks prove nothing either way and are set aside; an
incident only opens for a failure that began before a canary's latest success (``ok_at``);
ops hear when every canary is confirmed down, and when one answers again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.domain.detector import CheckStatus


@dataclass
class Canary:
    """The canary checks' latest results, and what they say of our own connectivity."""

    ids: frozenset[str] = frozenset()
    last: dict[str, bool] = field(default_factory=dict)  # canary check → latest result ok
    ok_at: float = float("-inf")  # a canary's latest success
    offline_since: float | None = None  # every canary's latest result failed since then
    told_down: bool = False  # ops were told forewarn is offline

    def adopt(self, ids: Iterable[str]) -> None:
        """A reloaded configuration's canary checks; results of removed ones are forgotten."""
        self.ids = frozenset(ids)
        self.last = {k: v for k, v in self.last.items() if k in self.ids}

    def result(self, check_id: str, ok: bool, now: float) -> bool | None:
        """Take one canary result; True when we just went offline, False when back online."""
        self.last[check_id] = ok
        if ok:
            self.ok_at = now
        offline = len(self.last) == len(self.ids) and not any(self.last.values())
        if offline and self.offline_since is None:
            self.offline_since = now
            return True
        if not offline and self.offline_since is not None:
            self.offline_since = None
            return False
        return None

    def confirmed(self, statuses: Iterable[CheckStatus]) -> bool | None:
        """The canaries' detector statuses; True when ops must hear we are offline, False when
        they must hear we are back, None when nothing changed for them."""
        down = all(s is CheckStatus.DOWN for s in statuses)
        if down == self.told_down:
            return None
        self.told_down = down
        return down

    def shift(self, by: float) -> None:
        """Move the times kept by a wall-clock step of ``by`` seconds."""
        self.ok_at += by
        if self.offline_since is not None:
            self.offline_since += by
