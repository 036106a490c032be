"""The engine on a real SQLite store with a hand-moved clock: canary, hushing, maintenance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config.load import Config, load_config
from monitor.core.notice import NoticeKind
from monitor.core.render import Renderer
from monitor.core.words import Words
from monitor.desk import Desk
from monitor.domain.detector import CheckStatus
from monitor.domain.operations import OperationError, OperatorAction
from monitor.engine import Engine
from monitor.notices.planner import NoticePlanner
from monitor.probes.base import ProbeResult, Reason
from monitor.runtime.metrics import Metrics
from monitor.store.sqlite import SqliteStore

T0 = 1795348800.0  # 2026-11-22 13:00 Europe/Paris

CONFIG = """\
daemon:
  state_dir: {state}
  canary: [{{id: uplink, type: tcp, host: 192.0.2.1, port: 53, failure_threshold: 2}}]
defaults: {{interval: 10s, timeout: 1s, retry_interval: 1s, failure_threshold: 2,
           success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: tcp, host: 192.0.2.2, port: 443}}
  - {{id: labels-ws, service: labels, type: tcp, host: 192.0.2.3, port: 443}}
customers:
  - {{id: acme, name: ACME, email: ops@acme.example, language: fr, services: [tracking, labels]}}
  - {{id: initech, name: Initech, email: it@initech.example, language: en, services: [labels]}}
notices:
  customer_delay: 0s
  ops: [{{type: webhook, url: "https://hooks.example.net/ops"}}]
maintenance:
  - {{id: release-42, services: [labels], start: 2026-11-22T14:00:00+01:00,
     end: 2026-11-22T15:00:00+01:00, announce_before: 30m}}
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The two-service config with a canary, an ops webhook and one maintenance window."""
    path = tmp_path / "checks.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"), encoding="utf-8")
    return load_config(path)


@pytest.fixture
def engine(config: Config) -> Iterator[Engine]:
    """An engine on a real store, its clock at 13:00."""
    store = SqliteStore.open(config.daemon.state_dir)
    yield Engine(config, store, NoticePlanner(config, Renderer()), Metrics(), Clock())
    store.close()


def feed(engine: Engine, now: float, **results: bool) -> None:
    """One result per check (True: ok), then a tick, all at ``now``."""
    engine.clock.now = now  # type: ignore[attr-defined]
    for check_id, ok in results.items():
        check_id = check_id.replace("_", "-")
        reason = None if ok else Reason.CONNECT_TIMEOUT
        engine.observe(ProbeResult(check_id, now, ok, reason=reason), now)
    engine.advance(now)


def pending(engine: Engine) -> list[tuple[str, str, NoticeKind]]:
    """(channel, recipient, kind) of every notice waiting in the outbox."""
    items = engine.store.due_notices(float("inf"), 1000)
    return [(i.notice.channel, i.notice.recipient, i.notice.kind) for i in items]


def test_failures_while_our_own_network_fails_open_nothing(engine: Engine) -> None:
    """With every canary failing, target failures are set aside and ops hear we are offline."""
    feed(engine, T0, uplink=True, tracking_ws=True, labels_ws=True)
    for step in range(1, 6):
        feed(engine, T0 + step, uplink=False, tracking_ws=False, labels_ws=False)
    assert engine.offline_since == T0 + 1
    assert engine.states["tracking-ws"].status is CheckStatus.UP  # its failures proved nothing
    assert engine.open == {}
    (ops,) = engine.store.due_notices(float("inf"), 10)
    assert "forewarn itself is offline" in ops.notice.subject
    feed(engine, T0 + 10, uplink=True, tracking_ws=True, labels_ws=True)
    feed(engine, T0 + 11, uplink=True)  # confirmed up: success_threshold 2
    assert engine.offline_since is None
    assert any("back online" in i.notice.subject for i in engine.store.due_notices(T0 + 99, 10))


def test_a_failure_opens_only_once_the_canary_answered_after_it(engine: Engine) -> None:
    """A target failure that began after the canary's last success waits for the next one."""
    feed(engine, T0, uplink=True, tracking_ws=True)
    feed(engine, T0 + 5, tracking_ws=False)
    feed(engine, T0 + 6, tracking_ws=False)
    assert engine.views["tracking"].status is CheckStatus.DOWN and engine.open == {}
    feed(engine, T0 + 7, uplink=True)
    assert engine.covering("tracking") is not None
    kinds = pending(engine)
    assert ("webhook", "webhook", NoticeKind.OPS) in kinds
    assert ("email", "acme", NoticeKind.FIRST) in kinds


def test_resolving_by_hand_keeps_a_failing_service_quiet_until_it_answers(
    engine: Engine,
) -> None:
    """A manual resolve while tracking still fails opens no new incident until it recovers."""
    feed(engine, T0, uplink=True, tracking_ws=True)
    feed(engine, T0 + 1, uplink=True, tracking_ws=False)
    feed(engine, T0 + 2, uplink=True, tracking_ws=False)
    incident = engine.covering("tracking")
    assert incident is not None
    desk = Desk(engine, lambda: None)
    said = Words(every="A false alarm: the carrier changed its API.")
    with pytest.raises(OperationError, match="tracking still failing") as refused:
        desk.act(incident.id, OperatorAction.RESOLVE, said)
    assert refused.value.status == 409 and engine.covering("tracking") is not None
    desk.act(incident.id, OperatorAction.RESOLVE, said, force=True)
    feed(engine, T0 + 3, uplink=True, tracking_ws=False)
    assert engine.open == {} and engine.hushed == {"tracking": incident.id}
    closed = engine.store.get_incident(incident.id)
    assert closed is not None and closed.closed_failing and closed.recovered_at is None
    feed(engine, T0 + 4, uplink=True, tracking_ws=True)
    feed(engine, T0 + 5, uplink=True, tracking_ws=True)
    # It answers at last: the closed incident's history ends at the real recovery.
    assert engine.store.get_incident(incident.id).recovered_at == T0 + 5  # type: ignore[union-attr]
    feed(engine, T0 + 6, uplink=True, tracking_ws=False)
    feed(engine, T0 + 7, uplink=True, tracking_ws=False)
    assert engine.hushed == {} and engine.covering("tracking") is not None


def test_a_configured_window_is_announced_started_and_ended(engine: Engine) -> None:
    """labels customers hear 30 min ahead, at 14:00 and at 15:00; no incident inside."""
    feed(engine, T0 + 1800, uplink=True, labels_ws=True)
    assert pending(engine) == [
        ("email", "acme", NoticeKind.MAINTENANCE_PLANNED),
        ("email", "initech", NoticeKind.MAINTENANCE_PLANNED),
    ]
    for step in range(3):
        feed(engine, T0 + 3600 + step, uplink=True, labels_ws=False)
    assert engine.open == {}
    feed(engine, T0 + 7100, uplink=True, labels_ws=True)  # back before the end
    feed(engine, T0 + 7101, uplink=True, labels_ws=True)
    feed(engine, T0 + 7200, uplink=True, labels_ws=True)
    kinds = [k for _, _, k in pending(engine)]
    assert kinds.count(NoticeKind.MAINTENANCE_STARTED) == 2
    assert kinds.count(NoticeKind.MAINTENANCE_ENDED) == 2
    assert engine.open == {}


def test_a_check_never_seen_up_tells_ops_and_no_customer(engine: Engine) -> None:
    """Down from its first probe: ops hear "never seen up", customers nothing, however long."""
    for step in range(4):
        feed(engine, T0 + step, uplink=True, tracking_ws=False)
    incident = engine.covering("tracking")
    assert incident is not None and incident.never_up
    (ops,) = engine.store.due_notices(float("inf"), 10)
    assert ops.notice.subject == "[forewarn] NEVER SEEN UP: Parcel tracking"
    assert "Never seen up" in ops.notice.text
    feed(engine, T0 + 3600, uplink=True, tracking_ws=False)
    told = {NoticeKind.FIRST, NoticeKind.UNSTABLE, NoticeKind.UPDATE}
    assert [n for n in pending(engine) if n[2] in told] == []
    feed(engine, T0 + 3601, tracking_ws=True)
    feed(engine, T0 + 3602, tracking_ws=True)
    assert engine.covering("tracking") is None  # answered at last: closed quietly
    assert engine.states["tracking-ws"].seen_up


def test_a_check_that_answered_before_a_restart_is_told_from_its_first_failure(
    config: Config,
) -> None:
    """History from an earlier run counts: its outage after a restart reaches customers."""
    store = SqliteStore.open(config.daemon.state_dir)
    store.write_results([ProbeResult("tracking-ws", T0 - 86400, ok=True)])
    engine = Engine(config, store, NoticePlanner(config, Renderer()), Metrics(), Clock())
    try:
        assert engine.states["tracking-ws"].seen_up
        assert not engine.states["labels-ws"].seen_up
        for step in range(4):
            feed(engine, T0 + step, uplink=True, tracking_ws=False)
        incident = engine.covering("tracking")
        assert incident is not None and not incident.never_up
        assert ("email", "acme", NoticeKind.FIRST) in pending(engine)
    finally:
        store.close()


# Steps of one check (tracking-ws): "ok", "slow" (degraded), "fail"; each repeated n times.
STEPS = [
    ("ok", 45),  # up, then a clean failure window: a fixed point the engine skips
    ("slow", 3),
    ("ok", 45),
    ("fail", 1),  # one lost request: the window still counts it, suspect afterwards
    ("ok", 45),
    ("fail", 3),  # down
    ("ok", 45),
    *[("fail", 1), ("ok", 2)] * 12,  # flapping
    ("ok", 60),
]


def test_skipping_settled_checks_gives_the_states_observe_gives(engine: Engine) -> None:
    """Through the engine (fixed points skipped, calm checks short-cut) or the full fold alone:
    the same states after every step."""
    from monitor.domain.detector import calm, observe_fully

    state, skipped, short, now = engine.states["tracking-ws"], 0, 0, T0
    for kind, times in STEPS:
        for _ in range(times):
            now += 1
            reason = Reason.CONNECT_TIMEOUT if kind == "fail" else None
            result = ProbeResult("tracking-ws", now, kind != "fail", kind == "slow", reason)
            skipped += engine.settled.get("tracking-ws") is engine.states["tracking-ws"]
            short += calm(engine.states["tracking-ws"])
            confirming = engine.observe(result, now)
            state, _ = observe_fully(state, result, now)
            assert engine.states["tracking-ws"] == state
            assert confirming is state.confirming
    assert skipped > 50  # the skip did happen: 40 clean results into each calm stretch
    assert short > skipped  # and the short cut before it


def test_first_answers_are_committed_together_by_the_tick(engine: Engine) -> None:
    """unknown → up is not urgent: one commit for the whole first round; a failure is urgent."""
    commits = 0
    commit = engine.store.commit

    def counting(**parts: object) -> None:
        nonlocal commits
        commits += 1
        commit(**parts)  # type: ignore[arg-type]

    engine.store.commit = counting  # type: ignore[method-assign]
    for check_id in ("uplink", "tracking-ws", "labels-ws"):
        engine.observe(ProbeResult(check_id, T0, True), T0)
    assert len(engine.transitions) == 3 and not engine.urgent
    engine.advance(T0)
    assert commits == 1 and engine.transitions == []
    for step in (1, 2):
        engine.observe(ProbeResult("tracking-ws", T0 + step, False, reason=Reason.TIMEOUT), T0)
    assert engine.urgent
    engine.advance(T0 + 2)
    assert commits == 2 and not engine.urgent
