"""This instance's part in a cluster on one PostgreSQL: lease, share of checks, verdicts, decider.

Every ``lease_period`` (``round``) the node renews its lease, works out the live members and,
by rendezvous hashing, the checks it probes, and tries for the decider's lock. Every tick
(``tick``) it publishes what its own detectors changed, reads what the other locations
published, and rolls the verdicts of each check's locations up (quorum) into the views every
instance serves. Only the decider moves incidents on and plans notices, in transactions fenced
by its lock; any instance delivers. While the database is unreachable probing goes on, results
wait in the engine (bounded), decisions pause and /healthz says degraded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import structlog

from monitor.cluster.membership import Change, Lease, Watch, live_members, observe
from monitor.cluster.placement import assign, checks_for
from monitor.cluster.quorum import CheckVerdict, LocationVerdict, Seen, Unhealthy, decide, unhealthy
from monitor.config.load import Config
from monitor.domain.detector import CheckState, CheckStatus
from monitor.engine import Engine
from monitor.notices.cluster import location_alerts, member_alerts
from monitor.runtime.metrics import Metrics
from monitor.store.base import StoreUnavailable, WriteFailures
from monitor.store.coordination import Coordination, Report

log = structlog.get_logger("forewarn.node")

READ_SLACK_S = 2.0  # verdicts re-read this far back: a slow transaction commits an older time
_STATUS = {Seen.UP: CheckStatus.UP, Seen.DOWN: CheckStatus.DOWN, Seen.UNKNOWN: CheckStatus.UNKNOWN}


class Node:
    """Keeps this instance's lease, share of the checks, verdicts and decider role current."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        coordination: Coordination,
        set_checks: Callable[[frozenset[str]], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.engine, self.coordination = config, engine, coordination
        self.set_checks, self.metrics, self.clock = set_checks, metrics, clock
        metrics.instance_info.labels(coordination.me.instance_id, coordination.me.location).set(1)
        self.me = coordination.me
        self.watch = Watch(self.me.instance_id, config.daemon.lease_period)
        self.live: tuple[Lease, ...] = ()
        self.assignment: dict[str, tuple[str, ...]] = {}
        self.mine: frozenset[str] | None = None  # None until the first round worked
        self.reports: dict[tuple[str, str], Report] = {}  # (check, location) → latest read
        self.published: dict[str, Report] = {}  # check → what we last stored for it
        self.dirty: set[str] = set()  # checks whose detector moved since they were published
        self.withdrawn: set[str] = set()  # checks given away whose verdict is still to withdraw
        self.verdicts: dict[str, CheckVerdict] = {}
        self.read_at = 0.0  # database time of the last read of verdicts
        self.unhealthy: dict[str, Unhealthy] = {}
        self.unhealthy_since: dict[str, float] = {}
        self.canary_failing: set[str] = set()  # as of the last round: left out of every count
        self.renewed_at: float | None = None  # our clock, at the last renewal that worked
        self.failures = WriteFailures()

    @property
    def leading(self) -> bool:
        """Whether this instance decides (as of its last round)."""
        return self.coordination.leading

    @property
    def connected(self) -> bool:
        """Whether the lease was renewed within two lease periods."""
        period = self.config.daemon.lease_period
        return self.renewed_at is not None and self.clock() - self.renewed_at <= 2 * period

    def adopt(self, config: Config) -> None:
        """A reloaded configuration: checks are placed again at the next round."""
        self.config = config
        self.watch = replace(self.watch, lease_period=config.daemon.lease_period)

    async def run(self) -> None:
        """A round every lease period, until cancelled."""
        while True:
            period = self.config.daemon.lease_period
            # Back from a database outage, the lock's session reconnects on a thread: look
            # again within a second rather than a whole lease later.
            await asyncio.sleep(min(period, 1.0) if self.coordination.lock_lost else period)
            try:
                self.round(self.engine.clock())
            except Exception:
                log.exception("round_failed")  # a bug must not end the lease for good

    def health(self) -> dict[str, Any]:
        """This instance's part, for /healthz."""
        return {
            "instance": self.me.instance_id,
            "location": self.me.location,
            "decider": self.leading,
            "members": len(self.live),
            "probing": len(self.mine or ()),
            "database": "ok" if self.connected else "unreachable",
        }

    def round(self, now: float) -> None:
        """Renew the lease, place the checks, try for the lock, report members' changes."""
        try:
            if self.mine is None:  # what a previous run of ours published is nobody's now
                self.coordination.withdraw()
            leading = self.coordination.lead()
            db_now, leases = self.coordination.renew(self.engine.offline_since is None)
        except StoreUnavailable as exc:
            self.failures.failed("lease", exc)
            return  # keep probing what we probed: the others cover us if we are the one cut off
        self.failures.succeeded("lease")
        self.renewed_at = self.clock()
        period = self.config.daemon.lease_period
        self.live = live_members(leases, db_now, period)
        self.watch, events = observe(self.watch, leases, db_now)
        silent = sum(not seen.live for seen in self.watch.members.values())
        self.metrics.cluster_members.labels("live").set(len(self.live))
        self.metrics.cluster_members.labels("silent").set(silent)
        self.metrics.cluster_decider.set(1 if leading else 0)
        ops, zone = self.config.notices.ops, self.config.zone()
        if leading:
            self.engine.held += member_alerts(ops, events, now, zone)
        for event in events:
            log.info("member", change=event.change, instance=event.instance_id,
                     location=event.location)  # fmt: skip
            if event.change is Change.SILENT:
                self._depose(event.instance_id)
        ids = [c.id for c in self.config.checks]
        assignment = assign(ids, self.live, self.config.daemon.probe_from)
        mine = checks_for(assignment, self.me.instance_id)
        moved = {c for c in ids if assignment.get(c) != self.assignment.get(c)}
        failing = self._canary_failing()
        if failing != self.canary_failing:  # a location's votes stop or start counting
            moved = set(ids)
        self.canary_failing = failing
        self.assignment = assignment
        if mine != self.mine:
            self._take(mine)
        self._rejudge(moved)
        self._watch_locations(leading, now)

    def _depose(self, instance_id: str) -> None:
        """A silent member may still hold the lock (frozen, cut off): end its session."""
        try:
            ended = self.coordination.depose(instance_id)
        except Exception as exc:  # a refusal (privileges, a lost link) must not end the round
            log.warning("depose_failed", instance=instance_id, error=str(exc))
            return
        if ended:
            log.warning("deposed", instance=instance_id, sessions=ended)

    def _take(self, mine: frozenset[str]) -> None:
        """Probe ``mine`` from now on; a check that comes back later starts afresh."""
        gone = (self.mine or frozenset()) - mine
        for check_id in gone:
            state = self.engine.states.get(check_id)
            if state is not None:
                fresh = CheckState(state.failure_threshold, state.success_threshold)
                self.engine.states[check_id] = replace(fresh, seen_up=state.seen_up)
            self.published.pop(check_id, None)
            # Our old verdict must not count if the check comes back to us before we probe it.
            key = (check_id, self.me.location)
            if key in self.reports and self.reports[key].instance_id == self.me.instance_id:
                del self.reports[key]
        self.withdrawn |= gone
        log.info("placed", checks=len(mine), taken=len(mine - (self.mine or frozenset())),
                 given=len(gone), members=len(self.live))  # fmt: skip
        self.mine = mine
        self.set_checks(mine)

    def tick(self, now: float) -> None:
        """Publish our changed verdicts, read the others', roll up; decide if we lead."""
        engine = self.engine
        try:
            if self.withdrawn:
                self.coordination.withdraw(sorted(self.withdrawn))
                self.withdrawn.clear()
            if engine.transitions:  # this location's history; views follow the roll-up
                engine.store.commit(transitions=engine.transitions)
                self.dirty.update(t.check_id for t in engine.transitions)
                engine.transitions, engine.urgent = [], False
            changed = self._changed_reports()
            try:
                self.coordination.publish(changed)
            except StoreUnavailable:
                self.dirty.update(r.check_id for r in changed)  # published again next tick
                raise
            self.published.update((r.check_id, r) for r in changed)
            _, fresh = self.coordination.reports(self.read_at - READ_SLACK_S)
            engine.follow()
        except StoreUnavailable as exc:
            self.failures.failed("verdicts", exc)
            return
        self.failures.succeeded("verdicts")
        self.read_at = max((r.updated_at for r in fresh), default=self.read_at)
        touched = set()
        for report in fresh:
            key = (report.check_id, report.verdict.location)
            if self.reports.get(key) != report:
                self.reports[key] = report
                touched.add(report.check_id)
        self._rejudge(touched)

    def _changed_reports(self) -> list[Report]:
        """Our verdicts that differ from what we last stored: only a detector's transition,
        or a check newly ours, can make one differ, so only those are looked at."""
        mine = self.mine or frozenset()
        candidates = (self.dirty & mine) | (mine - self.published.keys())
        self.dirty -= candidates
        changed = []
        for check_id in candidates:
            report = self._report(check_id)
            if self.published.get(check_id) != report:
                changed.append(report)
        return changed

    def _report(self, check_id: str) -> Report:
        """What this location's detector holds of ``check_id``, as a verdict."""
        state = self.engine.states[check_id]
        down = state.status is CheckStatus.DOWN
        verdict = LocationVerdict(
            location=self.me.location,
            seen=Seen.of(state.status),
            first_failure_at=state.failing_since if down else None,
            reason=state.reason if down else None,
            detail=state.detail if down else "",
        )
        return Report(check_id, self.me.instance_id, verdict, state.flapping, state.seen_up)

    def _canary_failing(self) -> set[str]:
        """Locations every live instance of which reports its canary failing."""
        ok = {m.location for m in self.live if m.canary_ok}
        return {m.location for m in self.live} - ok

    def _rejudge(self, check_ids: Iterable[str]) -> None:
        """Roll up again the checks whose verdicts or placement changed."""
        by_instance = {m.instance_id: m.location for m in self.live}
        failing = self._canary_failing()
        judged: dict[str, CheckState] = {}
        for check_id in check_ids:
            if check_id not in self.engine.states:
                continue
            reports = []
            for instance_id in self.assignment.get(check_id, ()):
                location = by_instance.get(instance_id, "")
                report = self.reports.get((check_id, location))
                if report is not None and report.instance_id == instance_id:
                    reports.append(report)
                else:  # placed there but not reported yet: counted, and not down
                    reports.append(
                        Report(check_id, instance_id, LocationVerdict(location, Seen.UNKNOWN))
                    )
            verdict = decide(check_id, (r.verdict for r in reports), failing)
            self.verdicts[check_id] = verdict
            judged[check_id] = self._as_state(verdict, reports)
        if judged:
            self.engine.judge(judged, self.engine.clock())

    def _as_state(self, verdict: CheckVerdict, reports: list[Report]) -> CheckState:
        """The roll-up as the state a service's view is made from."""
        base = self.engine.states[verdict.check_id]
        down = verdict.state is Seen.DOWN
        counted = [r for r in reports if r.verdict.location not in verdict.left_out]
        flapping = sum(r.flapping for r in counted) * 2 > len(counted) > 0
        where = ", ".join(verdict.saw_failure)
        return CheckState(
            base.failure_threshold,
            base.success_threshold,
            status=_STATUS[verdict.state],
            failing_since=verdict.first_failure_at if down else None,
            reason=verdict.reason if down else None,
            detail=f"{verdict.detail} (seen from {where})" if down else "",
            flapping=flapping,
            seen_up=any(r.seen_up for r in reports),
        )

    def _watch_locations(self, leading: bool, now: float) -> None:
        """Note unhealthy locations; the decider tells ops when one turns, or recovers."""
        found = {u.location: u for u in unhealthy(self.verdicts.values(), self._canary_failing())}
        for location in found.keys() - self.unhealthy.keys():
            self.unhealthy_since[location] = now
        if found.keys() != self.unhealthy.keys():
            log.warning("locations", unhealthy=sorted(found))
            if leading:
                self.engine.held += location_alerts(
                    self.config.notices.ops, self.unhealthy, found, self.unhealthy_since, now,
                    self.config.zone(),
                )  # fmt: skip
        self.unhealthy = found

    def advance(self, now: float, steady: float) -> bool:
        """The decider's turn: move incidents on, fenced by its lock; True if it told anyone."""
        if not self.leading:
            # Commits that failed while we decided are the new decider's to make now: they
            # must not keep this instance's /healthz degraded.
            self.engine.write_failures.failing.pop("commit", None)
            return False
        store = self.engine.store
        with store.fenced(self.coordination.fence):  # type: ignore[attr-defined]
            return self.engine.advance(now, steady)

    def leave(self) -> None:
        """A clean stop: hand the lease and the lock back so the others take over at once."""
        try:
            self.coordination.leave()
        except StoreUnavailable as exc:
            log.warning("leave_failed", error=str(exc))
        self.coordination.close()
