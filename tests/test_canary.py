"""The canary: offline while every canary check's latest result failed, told to ops once."""

from __future__ import annotations

from monitor.domain.canary import Canary
from monitor.domain.detector import CheckStatus

DOWN, UP = CheckStatus.DOWN, CheckStatus.UP


def test_offline_only_once_every_canary_failed_and_online_at_the_first_success() -> None:
    """Steps of (check, ok, now) → what each result reports, and the times kept."""
    canary = Canary()
    canary.adopt(["uplink", "resolver"])
    steps = [
        ("uplink", False, 10.0, None),  # the other has not answered yet: not offline
        ("resolver", True, 11.0, None),
        ("resolver", False, 12.0, True),  # now both failed: offline since 12
        ("uplink", False, 13.0, None),  # still offline: said once
        ("resolver", True, 14.0, False),  # one answers: online again
    ]
    for check_id, ok, now, expected in steps:
        assert canary.result(check_id, ok, now) is expected, (check_id, now)
    assert canary.offline_since is None and canary.ok_at == 14.0


def test_ops_hear_when_all_are_confirmed_down_and_when_one_is_back_once_each() -> None:
    """confirmed() answers True, then nothing while unchanged, then False."""
    canary = Canary()
    assert canary.confirmed([DOWN, UP]) is None
    assert canary.confirmed([DOWN, DOWN]) is True
    assert canary.confirmed([DOWN, DOWN]) is None
    assert canary.confirmed([UP, DOWN]) is False


def test_a_reload_forgets_removed_canaries_and_a_clock_step_moves_the_times() -> None:
    """adopt() keeps only configured checks' results; shift() moves ok_at and offline_since."""
    canary = Canary()
    canary.adopt(["a", "b"])
    canary.result("a", True, 5.0)
    canary.result("b", False, 6.0)
    canary.adopt(["b"])
    assert canary.last == {"b": False}
    assert canary.result("b", False, 7.0) is True  # b alone is every canary now
    canary.shift(100.0)
    assert (canary.ok_at, canary.offline_since) == (105.0, 107.0)
