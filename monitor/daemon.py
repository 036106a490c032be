"""Wiring: config → scheduler → detector → incidents → notices → outbox → dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from operator import attrgetter
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from monitor.config import Config, ConfigError, load_config
from monitor.config_types import CheckBase
from monitor.customers import affected
from monitor.detector import CheckState, CheckStatus, Transition, observe, rollup
from monitor.dispatcher import Dispatcher
from monitor.incidents import Incident, IncidentChange, ServiceView, Timing, apply
from monitor.metrics import Metrics
from monitor.notices import Notice, NoticePlanner
from monitor.probes import PROBES
from monitor.probes.base import Probe, ProbeContext, ProbeResult
from monitor.probes.heartbeat import HeartbeatBook
from monitor.render import Renderer
from monitor.scheduler import Scheduler
from monitor.sqlite_store import SqliteStore
from monitor.statelock import StateLock
from monitor.web.app import build_app
from notifiers import NOTIFIERS, Notifier

log = structlog.get_logger("forewarn.daemon")

TICK_S = 0.25  # how often cadence, delays and stable_for are re-evaluated; results flushed
STOP_DEADLINE_S = 10.0  # below systemd's default TimeoutStopSec of 90 s


class Daemon:
    """One running forewarn: owns the store, the probes, the dispatcher and the web app."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.planner = NoticePlanner(config, Renderer())
        self.states = {
            c.id: CheckState(c.failure_threshold, c.success_threshold) for c in config.checks
        }
        self.service_of = {c.id: c.service for c in config.checks}
        self.views: dict[str, ServiceView] = {}
        self.open: dict[str, Incident] = {}
        self.results: list[ProbeResult] = []
        self.transitions: list[Transition] = []
        self.stopped = asyncio.Event()
        self.port = 0
        self.lock = StateLock(config.daemon.state_dir)
        self.reload_error: str | None = None  # first error of the last failed reload

    async def start(self) -> None:
        """Open the state, bind the listen port, and start probing and delivering."""
        config = self.config
        self.lock.acquire()  # raises StateLocked: one daemon per state_dir
        self.store = SqliteStore.open(config.daemon.state_dir)
        self.open = {i.service_id: i for i in self.store.open_incidents()}
        now = self.clock()
        for service in config.services:
            self.views[service.id] = ServiceView(service.id, CheckStatus.UNKNOWN, now)
        self.probe_context = ProbeContext(
            heartbeats=HeartbeatBook.for_checks(config.checks, now, self.clock),
            timezone=config.daemon.timezone,
        )
        self.probes: dict[str, Probe] = {
            kind: PROBES[kind].factory(self.probe_context)
            for kind in {c.type for c in config.checks}
        }
        self.notifiers = {"email": NOTIFIERS["email"](config.notices, config.daemon.state_dir)}
        self.dispatcher = Dispatcher(
            self.store,
            self.notifiers,
            self.metrics,
            clock=self.clock,
            retry_base=config.notices.retry_initial,
            retry_max=config.notices.retry_max,
        )
        self.scheduler = Scheduler(
            config.checks,
            self.probes,
            self.on_result,
            self.metrics,
            max_concurrency=config.daemon.max_concurrency,
            clock=self.clock,
        )
        app = build_app(self.metrics, self.health, self.probe_context.heartbeats)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, config.daemon.listen_host, config.daemon.listen_port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self.metrics.config_last_reload_successful.set(1)
        for service_id in self.open:
            self.metrics.incidents_open.labels(service_id).set(1)
        self.probing = [
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._tick(), name="tick"),
        ]
        self.delivering = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        log.info(
            "started",
            checks=len(config.checks),
            services=len(config.services),
            open_incidents=len(self.open),
            port=self.port,
        )

    async def stop(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """Stop probing, let in-flight deliveries finish up to the deadline, keep the rest."""
        for task in self.probing:
            task.cancel()
        await asyncio.gather(*self.probing, return_exceptions=True)
        self._flush()
        self._advance(self.clock())
        await self.dispatcher.stop(deadline_s)
        await asyncio.gather(self.delivering, return_exceptions=True)
        closables: list[Probe | Notifier] = [*self.probes.values(), *self.notifiers.values()]
        for closable in closables:
            with contextlib.suppress(Exception):
                await closable.close()
        await self.runner.cleanup()
        pending = self.store.pending_count()
        self.store.close()
        self.lock.release()
        self.stopped.set()
        log.info("stopped", outbox_pending=pending)

    def on_result(self, result: ProbeResult) -> bool:
        """Fold one probe result in; returns True while the check is confirming a change."""
        check_id = result.check_id
        if check_id not in self.states:
            return False  # removed by a reload while its probe was in flight
        self.results.append(result)
        self.metrics.probe_success.labels(check_id).set(1 if result.ok else 0)
        self.metrics.probe_duration.labels(check_id).observe(result.duration_s)
        for phase, seconds in result.phases.items():
            self.metrics.probe_phase_duration.labels(check_id, phase).observe(seconds)
        if result.cert_not_after is not None:
            self.metrics.tls_cert_expiry.labels(check_id).set(result.cert_not_after)
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
        state, transition = observe(self.states[check_id], result, self.clock())
        self.states[check_id] = state
        if transition is not None:
            self._transition(transition)
        return state.confirming

    def _transition(self, transition: Transition) -> None:
        log.info(
            "transition",
            check=transition.check_id,
            old=transition.old,
            new=transition.new,
            reason=transition.reason,
        )
        self.metrics.check_state.labels(transition.check_id, transition.old).set(0)
        self.metrics.check_state.labels(transition.check_id, transition.new).set(1)
        self.transitions.append(transition)
        self._refresh_view(self.service_of[transition.check_id], transition.at)
        self._advance(transition.at)

    def _refresh_view(self, service_id: str, now: float) -> None:
        service = self.config.service(service_id)
        states = [self.states[c.id] for c in self.config.checks if c.service == service_id]
        status = rollup([s.status for s in states], service.down_when)
        down = [s for s in states if s.status is CheckStatus.DOWN]
        old = self.views[service_id]
        self.views[service_id] = ServiceView(
            service_id=service_id,
            status=status,
            since=old.since if old.status is status else now,
            first_failure_at=min((s.failing_since or now for s in down), default=None),
            reason=str(down[0].reason or "") if down else "",
            detail=down[0].detail if down else "",
        )

    def _advance(self, now: float) -> None:
        """Move incidents forward and commit their notices with them, in one transaction."""
        changes = apply(self.open, self.views, now, self._timing)
        if not changes and not self.transitions:
            return
        notices: list[Notice] = []
        for change in changes:
            notices.extend(self._notices(change, now))
            self._track(change)
        self.store.commit(
            transitions=self.transitions, incidents=[c.incident for c in changes], notices=notices
        )
        self.transitions = []
        if notices:
            self.dispatcher.wake()

    def _notices(self, change: IncidentChange, now: float) -> list[Notice]:
        service_id = change.incident.service_id
        subscribers = affected(self.config.customers, [service_id])
        blocked = self.store.suppressed(c.email for c in subscribers)
        audience = [c for c in subscribers if c.email not in blocked]
        return self.planner.plan(change, audience, now)

    def _track(self, change: IncidentChange) -> None:
        incident = change.incident
        log.info(
            "incident",
            incident=incident.id,
            change=change.kind,
            status=incident.status,
            sequence=incident.sequence,
        )
        if incident.resolved_at is None:
            self.open[incident.service_id] = incident
            self.metrics.incidents_open.labels(incident.service_id).set(1)
        else:
            self.open.pop(incident.service_id, None)
            self.metrics.incidents_open.labels(incident.service_id).set(0)

    def _timing(self, service_id: str) -> Timing:
        notices = self.config.notices
        return Timing(notices.customer_delay, notices.update_every, notices.stable_for)

    def _flush(self) -> None:
        if self.results:
            batch, self.results = self.results, []
            self.store.write_results(batch)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._flush()
            self._advance(self.clock())
            self.metrics.outbox_pending.set(self.store.pending_count())

    def health(self) -> dict[str, Any]:
        """The /healthz body: ok while the scheduler and dispatcher loops make progress."""
        lag = time.monotonic() - min(self.scheduler.last_progress, self.dispatcher.last_progress)
        stalled = lag > 60 and bool(self.config.checks)
        return {
            "status": "degraded" if stalled else "ok",
            "checks": len(self.config.checks),
            "open_incidents": len(self.open),
            "outbox_pending": self.store.pending_count(),
        }

    def status_line(self) -> str:
        """The one-line summary for ``systemctl status``; a failed reload comes first."""
        counts = (len(self.config.checks), len(self.open), self.store.pending_count())
        words = ("check", "open incident", "notice")
        summary = ", ".join(f"{n} {w}{'s' * (n != 1)}" for n, w in zip(counts, words, strict=True))
        failed = f"reload failed: {self.reload_error} (previous config kept); "
        return (failed if self.reload_error else "") + summary + " pending"

    def progress_marks(self) -> tuple[float, float]:
        """When the scheduler and the dispatcher loops last made progress (monotonic)."""
        return self.scheduler.last_progress, self.dispatcher.last_progress

    async def reload(self, path: Path | None = None) -> list[str]:
        """Adopt a new checks.yaml; return the errors that kept the old one (empty: adopted).

        Checks whose id survives keep their detector state and their grid; open incidents
        and the outbox are untouched. ``daemon.listen`` and ``daemon.state_dir`` need a restart.
        """
        path = self.config.source if path is None else path
        try:
            new = load_config(path)
            errors = [
                f"{path}: daemon.{key}: changed from {getattr(self.config.daemon, key)!s} to "
                f"{getattr(new.daemon, key)!s}; restart forewarn to apply it"
                for key in ("listen", "state_dir")
                if getattr(self.config.daemon, key) != getattr(new.daemon, key)
            ]
            notifier = None if errors else NOTIFIERS["email"](new.notices, new.daemon.state_dir)
        except ConfigError as exc:
            errors, notifier = list(exc.errors), None
        except OSError as exc:  # the SMTP password file, read by the notifier
            errors, notifier = [f"{path}: notices.smtp.password_file: {exc}"], None
        if notifier is None:
            self.reload_error = errors[0]
            self.metrics.config_last_reload_successful.set(0)
            log.error("reload_failed", config=str(path), errors=errors)
            return errors
        old = {c.id: c for c in self.config.checks}
        ids = {c.id for c in new.checks}
        changed = [c.id for c in new.checks if c.id in old and c != old[c.id]]
        deferred = [
            key
            for key in ("daemon.max_concurrency", "notices.retry_initial", "notices.retry_max")
            if attrgetter(key)(self.config) != attrgetter(key)(new)
        ]
        self._flush()  # results of removed checks are history too
        self.config, self.reload_error = new, None
        self.states = {c.id: self._kept_state(c) for c in new.checks}
        self.service_of = {c.id: c.service for c in new.checks}
        self.planner = NoticePlanner(new, Renderer())
        for kind in {c.type for c in new.checks} - self.probes.keys():
            self.probes[kind] = PROBES[kind].factory(self.probe_context)
        self.probe_context.heartbeats.set_checks(new.checks)  # tokens may have changed
        for check_id in old.keys() - ids:
            self.metrics.forget_check(check_id)
        now = self.clock()
        old_views, self.views = self.views, {}
        for service in new.services:
            self.views[service.id] = old_views.get(service.id) or ServiceView(
                service.id, CheckStatus.UNKNOWN, now
            )
            self._refresh_view(service.id, now)  # checks may have moved, down_when changed
        self.scheduler.set_checks(new.checks)
        old_notifier, self.notifiers["email"] = self.notifiers["email"], notifier
        self.metrics.config_last_reload_successful.set(1)
        log.info(
            "reloaded",
            added=len(ids - old.keys()),
            removed=len(old.keys() - ids),
            changed=len(changed),
        )
        if deferred:
            log.warning("reload_deferred", keys=deferred, reason="applies at the next restart")
        await old_notifier.close()  # sends in flight finish on their own connection
        return []

    def _kept_state(self, check: CheckBase) -> CheckState:
        """A check's detector state across a reload: kept by id, with its new thresholds."""
        state = self.states.get(check.id)
        if state is None:
            return CheckState(check.failure_threshold, check.success_threshold)
        return replace(
            state,
            failure_threshold=check.failure_threshold,
            success_threshold=check.success_threshold,
        )
