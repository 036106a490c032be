"""Everything between a probe result and the outbox: states, views, incidents, windows."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

import structlog

from monitor.config.derived import ancestors, audience, config_windows
from monitor.config.load import Config
from monitor.core.notice import Notice
from monitor.domain import clockstep, maintenance
from monitor.domain.canary import Canary
from monitor.domain.detector import CheckState, CheckStatus, Transition, observe, rollup
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentUpdate,
    Rules,
    ServiceView,
    Timing,
)
from monitor.domain.lifecycle import apply
from monitor.domain.maintenance import MaintenanceChange, Window, WindowProgress, overridden
from monitor.notices.planner import NoticePlanner
from monitor.notices.setaside import plan_tick
from monitor.probes.base import ProbeResult
from monitor.runtime.metrics import Metrics
from monitor.store.base import Store, WriteFailures

log = structlog.get_logger("forewarn.engine")

ANSWERED = frozenset({CheckStatus.UP, CheckStatus.DEGRADED})
UNWRITTEN_MAX = 50_000  # results kept for the next try while the store refuses writes


class Engine:
    """Folds results in and moves incidents and windows on, committing notices with them."""

    def __init__(
        self,
        config: Config,
        store: Store,
        planner: NoticePlanner,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.planner, self.metrics, self.clock = store, planner, metrics, clock
        self.states: dict[str, CheckState] = {}
        self.views: dict[str, ServiceView] = {}
        self.open = {i.id: i for i in store.open_incidents()}
        self.progress: dict[str, WindowProgress] = store.window_progress()
        # Resolved by hand while failing (service → that incident): quiet until it answers.
        self.hushed: dict[str, str] = {}
        self.transitions: list[Transition] = []
        self.urgent = False  # a transition someone may need to hear of is waiting for a commit
        self.held: list[Notice] = []  # ops notices waiting for the next commit
        self.canary = Canary()
        self.clock_mark: clockstep.Mark | None = None  # last (wall, steady) given to us
        self.reframed: dict[str, Incident] = {}  # open incidents moved by a clock step, unsaved
        self.write_failures = WriteFailures()
        self.results: list[ProbeResult] = []  # folded in, not yet written to history
        # In a cluster, ``states`` are this location's detectors and views come from the
        # roll-up of every location's verdicts (``judge``); canary outages are the node's.
        self.cluster = False
        self.quorum: dict[str, CheckState] = {}
        # Check → its state, while that state is a fixed point of healthy results (observe).
        self.settled: dict[str, CheckState] = {}
        self.adopt(config, clock(), planner)

    def adopt(self, config: Config, now: float, planner: NoticePlanner) -> None:
        """Take a (new) configuration: states kept by check id, views by service id."""
        self.config, self.planner = config, planner
        self.kinds = {c.id: c.type for c in (*config.checks, *config.canary)}  # metric labels
        self.rules = Rules(
            self.timing, ancestors(config), config.notices.digest_window, audience(config)
        )
        self.canary.adopt(c.id for c in config.canary)
        self.service_of = {c.id: c.service for c in config.checks}
        # Each service's checks in config order: a roll-up must not scan every check (the
        # first round of 10,000 checks is 10,000 transitions).
        self.checks_of: dict[str, list[str]] = {s.id: [] for s in config.services}
        for check in config.checks:
            self.checks_of.setdefault(check.service, []).append(check.id)
        self.settled = {}
        self.metrics.describe((c.id, c.service, c.type) for c in config.checks)
        checks = (*config.checks, *config.canary)
        # Whether a new check answered before comes from history, so a restart forgets nothing.
        seen = self.store.seen_up() if any(c.id not in self.states for c in checks) else set()
        self.states = {
            c.id: self._kept(c.id, c.failure_threshold, c.success_threshold, c.id in seen)
            for c in checks
        }
        old, self.views = self.views, {}
        for service in config.services:
            self.views[service.id] = old.get(service.id) or ServiceView(
                service.id, CheckStatus.UNKNOWN, now
            )
            self.refresh_view(service.id, now)
        self._load_windows(warn=True)

    def _load_windows(self, *, warn: bool = False) -> None:
        """The config's windows, with operators' changes to them, then operators' own."""
        stored = {w.id: w for w in self.store.windows()}
        windows = []
        for window in config_windows(self.config):
            # An operator's change wins over the file: customers were told of it.
            kept = stored.pop(window.id, window)
            if kept != window and warn:
                log.warning("maintenance_config_overridden", **overridden(window, kept))
            windows.append(kept)
        self.windows = windows + list(stored.values())

    def follow(self) -> None:
        """Take up what other instances committed: open incidents, windows and progress."""
        self.open = {i.id: i for i in self.store.open_incidents()}
        self.progress = self.store.window_progress()
        self._load_windows()
        self.sync_metrics()

    def judge(self, judged: Mapping[str, CheckState], now: float) -> None:
        """Take the cluster's roll-up of some checks, and refresh their services' views."""
        self.quorum.update(judged)
        for service_id in {self.service_of[c] for c in judged if c in self.service_of}:
            self.refresh_view(service_id, now)

    def _kept(
        self, check_id: str, failure_threshold: int, success_threshold: int, seen_up: bool
    ) -> CheckState:
        state = self.states.get(check_id)
        if state is None:
            return CheckState(failure_threshold, success_threshold, seen_up=seen_up)
        return replace(
            state, failure_threshold=failure_threshold, success_threshold=success_threshold
        )

    def timing(self, service_id: str) -> Timing:
        """A service's pace: its own keys, else the notices: section's."""
        notices, service = self.config.notices, self.config.service(service_id)
        return Timing(
            notices.customer_delay if service.customer_delay is None else service.customer_delay,
            service.update_every or notices.update_every,
            service.stable_for or notices.stable_for,
        )

    def ingest(self, result: ProbeResult, now: float, steady: float | None = None) -> bool:
        """Count, log, buffer and fold one probe result; True while its check is confirming."""
        check_id = result.check_id
        if check_id not in self.states:
            return False  # removed by a reload while its probe was in flight
        self.results.append(result)
        self.metrics.record(result, self.kinds[check_id])
        # One event per probe run: failures at info, successes at debug (filtered out cheaply).
        (log.debug if result.ok else log.info)(
            "probe",
            check=check_id,
            ok=result.ok,
            degraded=result.degraded,
            reason=result.reason,
            detail=result.detail,
            duration_s=round(result.duration_s, 4),
        )
        return self.observe(result, now, steady)

    def flush(self) -> None:
        """Write the buffered results to history; what the store refuses waits, bounded."""
        if self.results:
            self.results = self.record(self.results, self._excused(self.results))

    def _excused(self, batch: list[ProbeResult]) -> list[int]:
        """Positions of results taken inside a maintenance window of their check's service."""
        return [
            index
            for index, result in enumerate(batch)
            if self.service_of.get(result.check_id) in maintenance.active(self.windows, result.at)
        ]

    def put_window(self, window: Window) -> None:
        """Hold ``window`` (saved by the caller) in place of the one with its id."""
        self.windows = [w for w in self.windows if w.id != window.id] + [window]

    def observe(self, result: ProbeResult, now: float, steady: float | None = None) -> bool:
        """Fold one result in; True while its check is confirming a change (re-probe soon).

        ``steady`` as for ``advance``: a step is followed before the result is judged.
        """
        if steady is not None:
            self._follow_clock(now, steady)
        check_id = result.check_id
        if check_id in self.canary.ids:
            self._canary(result, now)
        elif self.canary.offline_since is not None:
            return False  # our own network is failing: this result proves nothing either way
        state = self.states[check_id]
        calm = result.ok and not result.degraded
        if calm and self.settled.get(check_id) is state:
            return state.confirming  # a fixed point: observe() would give back this very state
        new, transition = observe(state, result, now)
        if calm and transition is None and new == state:
            # Every later healthy result leaves it so too (observe reads only the state then),
            # until something replaces the object: a failure, a reload, a clock step.
            self.settled[check_id] = new = state
        self.states[check_id] = new
        if transition is not None:
            self._transition(transition)
        return new.confirming

    @property
    def offline_since(self) -> float | None:
        """Since when every canary check fails (our own network is down), or None."""
        return self.canary.offline_since

    def _canary(self, result: ProbeResult, now: float) -> None:
        went = self.canary.result(result.check_id, result.ok, now)
        if went is True:
            log.warning("offline", since=now)
        elif went is False:
            self._forget_suspect_failures(now)
            log.info("online", at=now)

    def _forget_suspect_failures(self, now: float) -> None:
        """Failures seen around our own outage must be proven again from fresh results."""
        for check in self.config.checks:
            state = self.states[check.id]
            if state.failures or state.status is CheckStatus.DOWN:
                self.states[check.id] = CheckState(
                    state.failure_threshold, state.success_threshold, seen_up=state.seen_up
                )
        for service_id in self.views:
            self.refresh_view(service_id, now)

    def _transition(self, transition: Transition) -> None:
        log.info(
            "transition",
            check=transition.check_id,
            old=transition.old,
            new=transition.new,
            reason=transition.reason,
        )
        self.metrics.set_state(transition.check_id, transition.old, transition.new)
        self.transitions.append(transition)
        # A first answer (unknown → up or degraded) tells no one anything: it waits for the
        # tick's commit, so the first round of 10,000 checks is a few commits, not thousands.
        first_answer = transition.old is CheckStatus.UNKNOWN and transition.new in ANSWERED
        self.urgent = self.urgent or not first_answer
        if self.cluster:
            return  # the node publishes it; views follow the roll-up and canaries are its own
        if transition.check_id in self.canary.ids:
            self._canary_transition(transition)
        else:
            self.refresh_view(self.service_of[transition.check_id], transition.at)

    def _canary_transition(self, transition: Transition) -> None:
        """Ops hear when every canary is confirmed down, and when one answers again."""
        down = self.canary.confirmed(self.states[c].status for c in self.canary.ids)
        if down is not None:
            since = transition.first_failure_at if down else None
            self.held += self.planner.ops.canary(down, since or transition.at, transition.at)

    def refresh_view(self, service_id: str, now: float) -> None:
        """Roll a service's checks up into its view."""
        service = self.config.service(service_id)
        ids = self.checks_of.get(service_id, [])
        states = [self._judged(i) for i in ids]
        status = rollup([s.status for s in states], service.down_when)
        down = [(i, s) for i, s in zip(ids, states, strict=True) if s.status is CheckStatus.DOWN]
        old = self.views[service_id]
        self.views[service_id] = ServiceView(
            service_id=service_id,
            status=status,
            since=old.since if old.status is status else now,
            first_failure_at=min((s.failing_since or now for _, s in down), default=None),
            reason=str(down[0][1].reason or "") if down else "",
            detail=down[0][1].detail if down else "",
            check_id=down[0][0] if down else "",
            flapping=any(s.flapping for s in states),
            never_up=bool(down) and not any(s.seen_up for _, s in down),
        )

    def _judged(self, check_id: str) -> CheckState:
        """A check's state as its service's view takes it: ours, or the cluster's roll-up."""
        state = self.states[check_id]
        if not self.cluster:
            return state
        return self.quorum.get(check_id) or CheckState(
            state.failure_threshold, state.success_threshold
        )

    def advance(self, now: float, steady: float | None = None) -> bool:
        """Move incidents and windows to ``now``; commit with their notices. True if any.

        ``steady`` is a monotonic time read with ``now``: given, a step of the wall clock
        since the last call shifts what is being timed (see clockstep). A commit the store
        refuses is logged once per episode and retried on the next call: the transitions and
        held notices stay, and the incident changes are worked out again from the same state.
        """
        if steady is not None:
            self._follow_clock(now, steady)
        views = maintenance.mask(self._unhushed(now), self.windows, now)
        # In a cluster the roll-up leaves out locations whose canary fails.
        gate = self.canary.ok_at if self.canary.ids and not self.cluster else None
        changes = apply(self.open, views, now, self.rules, canary_ok_at=gate)
        steps = maintenance.advance(self.windows, self.progress, now)
        if not (changes or steps or self.transitions or self.held or self.reframed):
            return False
        overrun = {
            w.id: frozenset(
                s
                for s, v in views.items()
                if v.maintenance_id == w.id and v.status is CheckStatus.DOWN
            )
            for w in (step.window for step in steps)
        }
        try:
            told = self.commit(changes, steps, now, overrun=overrun)
        except Exception as exc:
            self.write_failures.failed("commit", exc, transitions=len(self.transitions))
            return False
        self.write_failures.succeeded("commit")
        return told

    def record(self, results: list[ProbeResult], excused: Collection[int]) -> list[ProbeResult]:
        """Write results to history; return those to try again (empty once written).

        While the store refuses writes (a full disk), the newest ``UNWRITTEN_MAX`` are kept
        for the next call and older ones dropped, so that memory stays bounded.
        """
        try:
            self.store.write_results(results, excused)
        except Exception as exc:
            self.write_failures.failed("results", exc, results=len(results))
            kept = results[-UNWRITTEN_MAX:]
            if len(kept) < len(results):
                log.warning("results_dropped", count=len(results) - len(kept))
            return kept
        self.write_failures.succeeded("results", results=len(results))
        return []

    def _follow_clock(self, now: float, steady: float) -> None:
        """On a wall-clock step, move every time being counted from by the same step."""
        by = clockstep.step(self.clock_mark, now, steady)
        self.clock_mark = (now, steady)
        if not by:
            return
        log.warning("clock_stepped", step_s=round(by, 3), open_incidents=len(self.open))
        self.open = {k: clockstep.shift_incident(i, by) for k, i in self.open.items()}
        self.reframed.update(self.open)
        self.states = {k: clockstep.shift_state(s, by) for k, s in self.states.items()}
        self.views = {k: clockstep.shift_view(v, by) for k, v in self.views.items()}
        self.canary.shift(by)

    def commit(
        self,
        changes: list[IncidentChange],
        steps: list[MaintenanceChange],
        now: float,
        overrun: Mapping[str, frozenset[str]] | None = None,
    ) -> bool:
        """Store changes, timeline, progress and their notices in one transaction.

        An operator's words (``IncidentChange.said``) are kept in the timeline with the change;
        ``overrun`` holds the services still down at the end of each window (their incident's
        first notice tells those customers the maintenance is not over: no "complete" email).
        """
        # Only a step that may reach customers is worth asking the store who unsubscribed.
        blocked = (
            self.store.suppressed(a for c in self.config.customers for a in c.email)
            if changes or steps
            else set()
        )
        # One change or window whose notice cannot be made is set aside, not the whole commit.
        steps, planned, aside = plan_tick(
            self.planner, changes, steps, now, blocked, self.config.notices.ops, overrun or {}
        )
        notices = [*self.held, *planned]
        self.store.commit(
            transitions=self.transitions,
            # Reframed first: a change made in the same call is the later word on its incident.
            incidents=[*self.reframed.values(), *(c.incident for c in changes)],
            notices=notices,
            updates=[
                IncidentUpdate(c.incident.id, c.at, c.incident.status, c.kind, c.said)
                for c in changes
                if c.kind is not ChangeKind.MERGED
            ],
            progress=[s.progress for s in steps],
        )
        # Only now that the store has them: a refused commit is worked out again next time.
        self.transitions, self.held, self.reframed = [], [], {}
        self.urgent = False
        for item in aside:
            self.metrics.set_aside.labels(item.kind).inc()
        left_out = {a.ident for a in aside if a.kind == "window"}
        self.windows = [w for w in self.windows if w.id not in left_out]
        for step in steps:
            self.progress[step.window.id] = step.progress
            log.info("maintenance", window=step.window.id, change=step.kind)
        for change in changes:
            self._track(change)
        return bool(notices)

    def hush(self, service_ids: Collection[str], incident_id: str) -> None:
        """Keep services an operator closed while failing quiet until they answer again."""
        self.hushed.update(dict.fromkeys(service_ids, incident_id))

    def _unhushed(self, now: float) -> dict[str, ServiceView]:
        """Views with the services an operator resolved by hand hidden until they answer.

        When the last of them answers, the closed incident gets its real recovery time, so
        its history shows how long the service failed, not when the incident was closed.
        """
        views = dict(self.views)
        for service_id, incident_id in list(self.hushed.items()):
            view = views.get(service_id)
            if view is not None and view.status is CheckStatus.DOWN:
                views[service_id] = replace(view, status=CheckStatus.UNKNOWN, flapping=False)
                continue
            del self.hushed[service_id]
            closed = self.store.get_incident(incident_id)
            waiting = incident_id in self.hushed.values()
            if closed is not None and closed.recovered_at is None and not waiting:
                self.reframed[incident_id] = replace(closed, recovered_at=now)
        return views

    def _track(self, change: IncidentChange) -> None:
        incident = change.incident
        log.info(
            "incident",
            incident=incident.id,
            change=change.kind,
            status=incident.status,
            sequence=incident.sequence,
            services=",".join(incident.covered),
        )
        if incident.resolved_at is None:
            self.open[incident.id] = incident
        else:
            self.open.pop(incident.id, None)
        self.sync_metrics()

    def sync_metrics(self) -> None:
        """``incidents_open{service}``: 1 for each service an open incident covers."""
        covered = {s for i in self.open.values() for s in i.covered}
        for service in self.config.services:
            self.metrics.incidents_open.labels(service.id).set(1 if service.id in covered else 0)

    def covering(self, service_id: str) -> Incident | None:
        """The open incident that covers ``service_id``, if any."""
        return next((i for i in self.open.values() if service_id in i.covered), None)

    def incident(self, incident_id: str) -> Incident | None:
        """An open incident, else a stored one."""
        return self.open.get(incident_id) or self.store.get_incident(incident_id)
