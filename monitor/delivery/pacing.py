"""Pacing: a token bucket that spreads sends over time (``notices.max_per_second``)."""

from __future__ import annotations

# Float refill can leave 0.9999999 of a token right when one is due: that counts as one.
_TOKEN_EPSILON = 1e-9


class TokenBucket:
    """At most ``rate`` takes per second on average, ``burst`` at once; the caller gives ``now``."""

    def __init__(self, rate: float, now: float) -> None:
        if rate <= 0:
            raise ValueError("max_per_second must be positive")
        self.rate = rate
        self.burst = max(1.0, rate)
        # One token to begin with, not a full bucket: a restart with a full outbox ramps up at
        # the rate instead of releasing a whole burst at once.
        self._tokens = 1.0
        self._at = now

    def available(self, now: float) -> int:
        """How many whole tokens can be taken at ``now``."""
        self._refill(now)
        return int(self._tokens + _TOKEN_EPSILON)

    def take(self, now: float) -> None:
        """Spend one token; the caller checked ``available`` first."""
        self._refill(now)
        self._tokens -= 1.0

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until a whole token is available (0 if one is)."""
        self._refill(now)
        return max(0.0, (1.0 - _TOKEN_EPSILON - self._tokens) / self.rate)

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)
