"""What ops hear of the cluster itself: members gone silent or back, locations unhealthy."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from monitor.cluster.membership import Change, Lease, MemberEvent, Watch, observe
from monitor.cluster.quorum import Unhealthy
from monitor.config.load import NoticesConfig
from monitor.core.notice import NoticeKind
from monitor.notices.cluster import location_alerts, member_alerts

ZONE = ZoneInfo("Europe/Paris")
T0 = 1795348800.0  # 2026-11-22 13:00 Europe/Paris
OPS = NoticesConfig.model_validate(
    {
        "ops": [
            {"type": "email", "to": "oncall@example.net"},
            {"type": "webhook", "url": "https://hooks.example.net/ops"},
        ]
    }
).ops


def silent_seen_by(me: str, primed_at: float, seen_at: float) -> tuple[MemberEvent, ...]:
    """The events instance ``me`` finds when c, last renewed at T0, is silent at ``seen_at``."""
    leases = [Lease("c", "lille", T0, T0 - 600)]
    watch, _ = observe(Watch(me, 1.0), leases, primed_at)
    watch, events = observe(watch, leases, seen_at)
    return events


def event(change: Change) -> MemberEvent:
    """One event of ``change`` for instance c at lille."""
    return MemberEvent(change, "c", "lille", T0 + 5, T0 + 4, T0 - 600, last_live_at=T0)


def test_a_silent_member_is_one_ops_notice_per_channel() -> None:
    """Each ops channel gets one notice naming the instance, its location and last renewal."""
    notices = member_alerts(OPS, silent_seen_by("a", T0 + 0.5, T0 + 3), T0 + 3, ZONE)
    assert sorted(n.channel for n in notices) == ["email", "webhook"]
    assert all(n.kind is NoticeKind.OPS for n in notices)
    assert {n.subject for n in notices} == {
        "[forewarn] instance c at lille stopped renewing its lease"
    }
    assert all("Last renewal: " in n.text for n in notices)


def test_two_deciders_seeing_one_silence_make_the_same_keys() -> None:
    """Deciders that notice the same silence at different times give identical notice keys."""
    first = member_alerts(OPS, silent_seen_by("a", T0 + 0.5, T0 + 3), T0 + 3, ZONE)
    second = member_alerts(OPS, silent_seen_by("b", T0 + 1.5, T0 + 4.2), T0 + 4.2, ZONE)
    assert first and sorted(n.key for n in first) == sorted(n.key for n in second)
    assert len({n.key for n in first}) == len(OPS)


def test_a_member_back_is_told_and_routine_changes_are_not() -> None:
    """BACK is one notice per channel; joins, restarts and clean exits tell ops nothing."""
    back = member_alerts(OPS, [event(Change.BACK)], T0 + 5, ZONE)
    assert {n.subject for n in back} == {"[forewarn] instance c at lille is back"}
    assert len(back) == len(OPS)
    routine = [event(c) for c in (Change.JOINED, Change.RESTARTED, Change.LEFT)]
    assert member_alerts(OPS, routine, T0 + 5, ZONE) == []
    silent = member_alerts(OPS, [event(Change.SILENT)], T0 + 5, ZONE)
    assert not {n.key for n in silent} & {n.key for n in back}


def test_a_location_with_a_failing_canary_is_told_as_such() -> None:
    """A location unhealthy by its canary is one notice per channel saying so."""
    after = {"lyon": Unhealthy("lyon", canary_failing=True, dissents=())}
    notices = location_alerts(OPS, {}, after, {"lyon": T0}, T0 + 1, ZONE)
    assert len(notices) == len(OPS)
    assert {n.subject for n in notices} == {"[forewarn] location lyon is unhealthy"}
    assert all("its own canary checks fail" in n.text for n in notices)


def test_a_location_alone_seeing_checks_down_is_told_which() -> None:
    """A dissenting location's notice names the checks only it sees down."""
    after = {"lille": Unhealthy("lille", canary_failing=False, dissents=("a-ws", "b-ws", "c-ws"))}
    notices = location_alerts(OPS, {}, after, {"lille": T0}, T0 + 1, ZONE)
    assert len(notices) == len(OPS)
    assert all(
        "it alone sees down a-ws, b-ws, c-ws, which the other locations see up" in n.text
        for n in notices
    )
    assert not any("canary" in n.text for n in notices)


def test_a_location_healthy_again_is_told_and_a_steady_one_is_not() -> None:
    """Leaving the unhealthy set is one notice per channel; staying in it is none."""
    lyon = Unhealthy("lyon", canary_failing=True, dissents=())
    lille = Unhealthy("lille", canary_failing=False, dissents=("a-ws", "b-ws", "c-ws"))
    before, since = {"lyon": lyon, "lille": lille}, {"lyon": T0, "lille": T0}
    notices = location_alerts(OPS, before, {"lille": lille}, since, T0 + 60, ZONE)
    assert len(notices) == len(OPS)
    assert {n.subject for n in notices} == {"[forewarn] location lyon is healthy again"}
    assert location_alerts(OPS, before, before, since, T0 + 60, ZONE) == []
