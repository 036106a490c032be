"""Wiring: config → scheduler → detector → incidents → notices → outbox → dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from monitor.cluster.membership import Lease
from monitor.config.load import Config, ConfigError, load_config
from monitor.config.reload import deferred_keys, restart_needed
from monitor.core.fields import CheckBase
from monitor.core.render import Renderer
from monitor.delivery.dispatcher import Dispatcher
from monitor.desk import Desk
from monitor.engine import Engine
from monitor.node import Node
from monitor.notices.exhaustion import LocalExhaustion
from monitor.notices.planner import CUSTOMER_CHANNEL, NoticePlanner
from monitor.notices.unsubscribe import UnsubscribeSigner
from monitor.probes import PROBES
from monitor.probes.base import Probe, ProbeContext, ProbeResult
from monitor.probes.heartbeat import HeartbeatBook
from monitor.runtime.heartbeat import Heartbeat
from monitor.runtime.lag import LagMonitor, loop_name
from monitor.runtime.metrics import Metrics
from monitor.runtime.scheduler import Scheduler
from monitor.runtime.statelock import StateLock
from monitor.runtime.workers import ProbeWorkers, Settings, split, worker_count
from monitor.status.source import StatusBoard
from monitor.store.base import Store, StoreUnavailable, WriteFailures
from monitor.store.opening import instance_id, open_coordination, open_store
from monitor.store.retention import retention_loop
from monitor.web.auth import BearerAuth, load_tokens
from monitor.web.listeners import install_accept_handler
from monitor.web.serving import WebParts, build_apps, serve
from monitor.web.views import iso
from notifiers import NOTIFIERS, Notifier

log = structlog.get_logger("forewarn.daemon")

TICK_S = 0.25  # how often cadence, delays and stable_for are re-evaluated; results flushed
COMMIT_FAILURES = 3  # failed commits in a row that make /healthz degraded
STOP_DEADLINE_S = 10.0  # below systemd's default TimeoutStopSec of 90 s


class Daemon:
    """One running forewarn: owns the store, the probes, the dispatcher and the web app."""

    def __init__(
        self, config: Config, *, clock: Callable[[], float] = time.time, log_level: str = "info"
    ) -> None:
        self.config = config
        self.log_level = log_level  # handed to probe workers, which configure their own logs
        self.clock = clock
        self.metrics = Metrics()
        self.stopped = asyncio.Event()
        self.port = 0
        self.admin_port = 0  # /healthz and the operator API; port itself without admin_listen
        self.lock = StateLock(config.daemon.state_dir)
        self.reload_error: str | None = None  # first error of the last failed reload
        self.advance_queued = False  # an advance is due at the end of this loop turn
        self.store_reads = WriteFailures()  # the store's database away (PostgreSQL): episodes

    async def start(self) -> None:
        """Open the state, build the parts, bind the listen ports, then probe and deliver."""
        # Checked by load_config; read again first, so that a file broken since then stops
        # the start (TokenFileError) before anything is opened.
        auth = self._auth(self.config)
        self.lock.acquire()  # raises StateLocked: one daemon per state_dir
        self.build(auth)
        await self._run()

    def build(self, auth: BearerAuth | None) -> None:
        """Make every part from the config, each handed what it needs; nothing runs yet."""
        config = self.config
        daemon = config.daemon
        # The lock, the unsubscribe key and the rest of the state stay in state_dir even
        # when the store is a PostgreSQL several instances share.
        self.store: Store = open_store(
            daemon.state_dir, ZoneInfo(daemon.timezone), daemon.database, daemon.database_password
        )
        now = self.clock()
        self.node: Node | None = None
        if daemon.database is None:
            self.signer = UnsubscribeSigner.from_state_dir(config.daemon.state_dir)
        else:
            me = Lease(instance_id(daemon.state_dir), daemon.location, 0.0, now)
            coordination = open_coordination(daemon.database, daemon.database_password, me)
            # Every instance must verify the links any of them wrote: one key, in the database.
            key = coordination.shared_secret("unsubscribe", secrets.token_urlsafe(48))
            self.signer = UnsubscribeSigner(key.encode())
        self.engine = Engine(config, self.store, self._planner(config), self.metrics, self.clock)
        if daemon.database is not None:
            self.engine.cluster = True
            self.node = Node(config, self.engine, coordination, self._probe_only, self.metrics)
            self.node.round(now)  # our share of the checks, before probing starts
            self.node.tick(now)
        self.heartbeats = HeartbeatBook.for_checks(config.checks, now, self.clock)
        self.probe_context = ProbeContext(self.heartbeats, timezone=config.daemon.timezone)
        self.probes: dict[str, Probe] = {
            kind: PROBES[kind].factory(self.probe_context)
            for kind in {c.type for c in (*config.checks, *config.canary)}
        }
        self.notifiers = self._notifiers(config)
        self.dispatcher = Dispatcher(
            self.store,
            self.notifiers,
            self.metrics,
            clock=self.clock,
            retry_base=config.notices.retry_initial,
            retry_max=config.notices.retry_max,
            max_per_second=config.notices.max_per_second,
            ops=config.notices.ops,  # told once when a channel fails for a setup reason
            zone=config.zone(),
            alarm_after=config.notices.delivery_alarm_after,
            claim_as=None if self.node is None else self.node.me.instance_id,
        )
        self.desk = Desk(self.engine, self.dispatcher.wake)
        self.exhaustion = LocalExhaustion(
            self.store, lambda: self.config.notices.ops, self.dispatcher.wake, clock=self.clock
        )
        self._build_probing()
        self.apps = build_apps(self._web_parts(auth), admin=config.daemon.admin_listen is not None)

    def _build_probing(self) -> None:
        """The loop-lag monitor, the probe workers and this process's own scheduler."""
        config = self.config
        self.lag = LagMonitor(self.metrics)
        count = worker_count(config.daemon.probe_workers, config.checks, os.cpu_count())
        self.local, self.remote = split(self._probed(), count)
        settings = Settings(config.daemon.timezone, config.daemon.max_concurrency, self.log_level)
        set_aside = self.exhaustion.set_aside
        self.workers = ProbeWorkers(count, settings, self.on_result, self.metrics, set_aside)
        self.scheduler = Scheduler(
            self.local,
            self.probes,
            self.on_result,
            self.metrics,
            max_concurrency=config.daemon.max_concurrency,
            clock=self.clock,
            lag=self.lag,
            on_set_aside=set_aside,
        )

    def _probed(self) -> list[CheckBase]:
        """The checks this instance probes: all of them, or its share in a cluster."""
        config, mine = self.config, None if self.node is None else self.node.mine
        checks = config.checks if mine is None else [c for c in config.checks if c.id in mine]
        return [*checks, *config.canary]  # every instance watches its own network

    def _probe_only(self, mine: frozenset[str]) -> None:
        """The node moved checks to or from us: hand the new share to the probing loops."""
        if hasattr(self, "scheduler"):  # else _build_probing, still to come, reads the share
            local, remote = split(self._probed(), len(self.workers.workers))
            self.scheduler.set_checks(local)
            self.workers.set_checks(remote)

    def _web_parts(self, auth: BearerAuth | None) -> WebParts:
        """What the web faces read and call: metrics, health, the board, the operator desk."""
        engine = self.engine
        board = StatusBoard(
            config=lambda: self.config,
            views=lambda: engine.views,
            open_incidents=lambda: list(engine.open.values()),
            windows=lambda: (engine.windows, engine.progress),
            store=self.store,
            clock=self.clock,
        )
        return WebParts(
            self.metrics,
            self.health,
            self.heartbeats,
            board,
            self.signer,
            self.store,
            self.desk,
            auth,
            self.clock,
            self.desk.unsubscribed,
        )

    async def _run(self) -> None:
        """Bind the listeners, start the workers and the loops; the parts are built."""
        config = self.config
        install_accept_handler(asyncio.get_running_loop())
        in_flight = min(config.daemon.max_concurrency, len(self.local))
        self.web = await serve(config.daemon, self.apps, self.metrics, in_flight)
        self.port, self.admin_port = self.web.port, self.web.admin_port
        self.metrics.config_last_reload_successful.set(1)
        self.engine.sync_metrics()
        # What start-up built (config, templates, modules, the app) lives as long as the
        # process: frozen, it leaves the GC's generations, so that full collections scan only
        # what probing churns and stay short instead of stalling every probe in flight.
        gc.collect()
        gc.freeze()
        await self.workers.start(self.remote)
        self.probing = [
            asyncio.create_task(self.lag.run(), name="loop_lag"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._tick(), name="tick"),
            asyncio.create_task(
                retention_loop(self.store, config.daemon.retention, self.clock), name="retention"
            ),
        ]
        if self.node is not None:
            self.probing.append(asyncio.create_task(self.node.run(), name="node"))
        if config.daemon.heartbeat_url is not None:
            self.probing.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        self.delivering = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        log.info(
            "started",
            checks=len(config.checks),
            services=len(config.services),
            open_incidents=len(self.engine.open),
            port=self.port,
            admin_port=self.admin_port,
            loop=loop_name(),
            probe_workers=len(self.workers.workers),
            **self.web.limits,
        )

    async def stop(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """Stop probing, let in-flight deliveries finish up to the deadline, keep the rest."""
        for task in self.probing:
            task.cancel()
        await asyncio.gather(*self.probing, return_exceptions=True)
        await self.workers.stop()
        self.engine.flush()
        self._advance(self.clock())
        await self.dispatcher.stop(deadline_s)
        await asyncio.gather(self.delivering, return_exceptions=True)
        if self.node is not None:
            self.node.leave()  # the others take our checks and, if we decided, the decisions
        closables: list[Probe | Notifier] = [*self.probes.values(), *self.notifiers.values()]
        for closable in closables:
            with contextlib.suppress(Exception):
                await closable.close()
        await self.web.stop()
        pending = self.pending_count()
        self.store.close()
        self.lock.release()
        gc.unfreeze()  # a process that starts another daemon (tests, the demo) may collect it
        self.stopped.set()
        log.info("stopped", outbox_pending=pending)

    def on_result(self, result: ProbeResult) -> bool:
        """Hand one probe result to the engine; True while the check is confirming a change."""
        confirming = self.engine.ingest(result, self.clock(), time.monotonic())
        if self.engine.urgent and not self.advance_queued:
            # A change: tell whoever needs it now, not at the next tick; but once per loop
            # turn, so that a batch of results (a worker's report, a start) is one commit.
            # First answers of a start wait for the tick (Engine.urgent).
            self.advance_queued = True
            asyncio.get_running_loop().call_soon(self._advance_soon)
        return confirming

    def _advance_soon(self) -> None:
        self.advance_queued = False
        self._advance(self.clock())

    def _advance(self, now: float) -> None:
        """Move incidents and windows forward; wake the dispatcher for their notices."""
        # With a monotonic reading, the engine tells a wall-clock step from time passing.
        steady = time.monotonic()
        if self.node is not None:
            self.node.tick(now)
            told = self.node.advance(now, steady)
        else:
            told = self.engine.advance(now, steady)
        if told:
            self.dispatcher.wake()

    async def _heartbeat(self) -> None:
        """Ping daemon.heartbeat_url while this instance is healthy (a dead-man's switch)."""
        daemon, node = self.config.daemon, self.node
        assert daemon.heartbeat_url is not None
        async with aiohttp.ClientSession() as session:
            every = daemon.heartbeat_every
            healthy = lambda: node is None or node.connected  # noqa: E731 (a one-line gate)
            await Heartbeat(daemon.heartbeat_url, every, session, healthy=healthy).run()

    def _planner(self, config: Config) -> NoticePlanner:
        overrides = config.notices.templates_dir
        return NoticePlanner(config, Renderer(overrides), self.signer)

    def _notifiers(self, config: Config) -> dict[str, Notifier]:
        """The channels in use: the customers' (email) and those of the ops channels."""
        in_use = dict.fromkeys([CUSTOMER_CHANNEL, *(c.type for c in config.notices.ops)])
        return {
            name: NOTIFIERS[name].factory(config.notices, config.daemon.state_dir)
            for name in in_use
        }

    @staticmethod
    def _auth(config: Config) -> BearerAuth | None:
        path = config.daemon.api_tokens_file
        proxies = config.daemon.trusted_proxies
        return None if path is None else BearerAuth(load_tokens(path), proxies=proxies)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.engine.flush()
                self._advance(self.clock())
                self.exhaustion.tick()
                if (pending := self.pending_count()) is not None:
                    self.metrics.outbox_pending.set(pending)
            except Exception:
                # Store refusals are handled inside; anything else is a bug that must not
                # stop flushing, cadences and resolutions for the rest of the process's life.
                log.exception("tick_failed")

    def pending_count(self) -> int | None:
        """Notices in the outbox, or None while the store's database cannot be reached."""
        try:
            count = self.store.pending_count()
        except StoreUnavailable as exc:
            self.store_reads.failed("outbox_count", exc)
            return None
        self.store_reads.succeeded("outbox_count")
        return count

    def health(self) -> dict[str, Any]:
        """The /healthz body: ok while both loops make progress and the event loop keeps up."""
        idle = time.monotonic() - min(self.progress_marks())
        stalled = idle > 60 and bool(self.config.checks)
        loop_lag = max(self.lag.recent_worst(), self.workers.recent_worst())
        behind = loop_lag >= self.lag.behind_s
        delivery = self.dispatcher.watch.failing()
        short = self.exhaustion.episode is not None  # out of descriptors, ports or memory
        # Commits retry every tick; a few failed in a row mean notices are not going out.
        commits = self.engine.write_failures.failing.get("commit", 0)
        pending = self.pending_count()  # None: the store's database cannot be reached
        degraded = stalled or behind or delivery or short or commits >= COMMIT_FAILURES
        body: dict[str, Any] = {
            "status": "degraded" if degraded or pending is None else "ok",
            "checks": len(self.config.checks),
            "open_incidents": len(self.engine.open),
            "outbox_pending": pending,
        }
        if pending is None:
            body["store"] = "unreachable"
        if self.node is not None:
            body["cluster"] = self.node.health()
            if not self.node.connected:
                body["status"] = "degraded"
        if behind:
            body["loop_lag_s"] = round(loop_lag, 3)
        if delivery:  # each channel: failing since (UTC), until one send succeeds
            body["delivery_failing"] = {c: iso(e.since) for c, e in delivery.items()}
        if short:
            body["local_resources"] = "exhausted"
        if commits:
            body["commit_failures"] = commits
        return body

    def status_line(self) -> str:
        """The one-line summary for ``systemctl status``; a failed reload comes first."""
        counts = (len(self.config.checks), len(self.engine.open), self.pending_count() or 0)
        words = ("check", "open incident", "notice")
        summary = ", ".join(f"{n} {w}{'s' * (n != 1)}" for n, w in zip(counts, words, strict=True))
        failed = f"reload failed: {self.reload_error} (previous config kept); "
        return (failed if self.reload_error else "") + summary + " pending"

    def progress_marks(self) -> tuple[float, float]:
        """When the scheduler and the dispatcher loops last made progress (monotonic)."""
        probing = min(self.scheduler.last_progress, self.workers.last_progress)
        return probing, self.dispatcher.last_progress

    async def reload(self, path: Path | None = None) -> list[str]:
        """Adopt a new checks.yaml; return the errors that kept the old one (empty: adopted).

        Checks whose id survives keep their detector state and their grid; open incidents
        and the outbox are untouched. ``daemon.listen`` and ``daemon.state_dir`` need a restart.
        """
        path = self.config.source if path is None else path
        try:
            new = await asyncio.to_thread(load_config, path)  # a big file must not stall probing
            errors = restart_needed(path, self.config, new)
            notifiers = None if errors else self._notifiers(new)
            self._auth(new)  # a broken tokens file fails the reload, not the next request
        except ConfigError as exc:
            errors, notifiers = list(exc.errors), None
        except OSError as exc:  # the SMTP password file, read by the notifier
            errors, notifiers = [f"{path}: notices.smtp.password_file: {exc}"], None
        except ValueError as exc:  # the API tokens file
            errors, notifiers = [f"{path}: daemon.api_tokens_file: {exc}"], None
        if notifiers is None:
            self.reload_error = errors[0]
            self.metrics.config_last_reload_successful.set(0)
            log.error("reload_failed", config=str(path), errors=errors)
            return errors
        old = {c.id: c for c in self.config.checks}
        ids = {c.id for c in new.checks}
        changed = [c.id for c in new.checks if c.id in old and c != old[c.id]]
        deferred = deferred_keys(self.config, new)
        self.engine.flush()  # results of removed checks are history too
        self.config, self.reload_error = new, None
        # States kept by check id, views by service id.
        self.engine.adopt(new, self.clock(), self._planner(new))
        if self.node is not None:
            self.node.adopt(new)
            self.node.round(self.clock())  # new checks are placed now, not a lease later
        for kind in {c.type for c in (*new.checks, *new.canary)} - self.probes.keys():
            self.probes[kind] = PROBES[kind].factory(self.probe_context)
        self.heartbeats.set_checks(new.checks)  # tokens may have changed
        for check_id in old.keys() - ids:
            self.metrics.forget_check(check_id)
        local, remote = split(self._probed(), len(self.workers.workers))
        self.scheduler.set_checks(local)
        self.workers.set_checks(remote)
        old_notifiers = dict(self.notifiers)
        self.notifiers.clear()  # the dispatcher holds this very dict
        self.notifiers.update(notifiers)
        self.dispatcher.set_ops(new.notices.ops)
        self.dispatcher.watch.alarm_after = new.notices.delivery_alarm_after
        self.metrics.config_last_reload_successful.set(1)
        log.info(
            "reloaded",
            added=len(ids - old.keys()),
            removed=len(old.keys() - ids),
            changed=len(changed),
        )
        if deferred:
            log.warning("reload_deferred", keys=deferred, reason="applies at the next restart")
        for notifier in old_notifiers.values():
            await notifier.close()  # sends in flight finish on their own connection
        return []
