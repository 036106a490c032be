"""The token bucket behind ``notices.max_per_second``, as tables of steps."""

from __future__ import annotations

import pytest

from monitor.delivery.pacing import TokenBucket


@pytest.mark.parametrize(
    ("rate", "steps"),
    [
        # (now, action, expected): action "avail" → whole tokens, "delay" → seconds to one
        (100.0, [(0.0, "avail", 1), (0.0, "take", None), (0.0, "delay", 0.01), (0.01, "avail", 1)]),
        (100.0, [(0.0, "take", None), (0.005, "avail", 0), (0.005, "delay", 0.005)]),
        (100.0, [(0.0, "take", None), (5.0, "avail", 100)]),  # refills up to burst = rate
        (0.5, [(0.0, "take", None), (1.0, "delay", 1.0), (2.0, "avail", 1), (9.0, "avail", 1)]),
        (
            4.0,
            [(0.0, "take", None), (0.0, "delay", 0.25), (-1.0, "avail", 0)],
        ),  # time never rewinds
    ],
    ids=[
        "one-token-to-start",
        "waits-for-next-token",
        "burst-of-one-second",
        "slow-rate",
        "clock-back",
    ],
)
def test_token_bucket_table(rate: float, steps: list[tuple[float, str, float | None]]) -> None:
    """The bucket starts with one token, refills at ``rate`` up to max(1, rate), never below 0."""
    bucket = TokenBucket(rate, 0.0)
    for now, action, expected in steps:
        if action == "take":
            bucket.take(now)
        elif action == "avail":
            assert bucket.available(now) == expected, (now, action)
        else:
            assert bucket.delay(now) == pytest.approx(expected, abs=1e-6), (now, action)


def test_token_bucket_refuses_a_rate_that_is_not_positive() -> None:
    """A zero or negative rate would never send anything: it is a configuration error."""
    with pytest.raises(ValueError, match="max_per_second"):
        TokenBucket(0.0, 0.0)
