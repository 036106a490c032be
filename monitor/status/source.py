"""The live source of public snapshots: gathers them from the engine and store, and caches."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from zoneinfo import ZoneInfo

from monitor.config.load import Config
from monitor.config.statuspage import Logo
from monitor.domain import availability as history
from monitor.domain.incidents import Incident, ServiceView
from monitor.domain.maintenance import Window, WindowProgress
from monitor.status.board import RECENT_S, Inputs, Snapshot, build, public
from monitor.store.base import Store

CACHE_S = 2.0  # a snapshot serves every request within this many seconds
MAX_BODIES = 64  # documents kept per snapshot; odd query strings cannot grow it further


class StatusBoard:
    """Builds snapshots from the live engine and the store, and reuses one for ``CACHE_S``."""

    def __init__(
        self,
        config: Callable[[], Config],
        views: Callable[[], Mapping[str, ServiceView]],
        open_incidents: Callable[[], Sequence[Incident]],
        windows: Callable[[], tuple[Sequence[Window], Mapping[str, WindowProgress]]],
        store: Store,
        clock: Callable[[], float],
    ) -> None:
        self._config, self._views, self._open, self._windows = (
            config,
            views,
            open_incidents,
            windows,
        )
        self._store, self._clock = store, clock
        self._cached: Snapshot | None = None
        self._bodies: dict[Hashable, bytes] = {}
        self._bodies_of: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        """The current snapshot; at most ``CACHE_S`` old."""
        now = self._clock()
        cached = self._cached
        if cached is not None and 0 <= now - cached.generated_at < CACHE_S:
            return cached
        self._cached = build(self._gather(now), now)
        return self._cached

    def rendered(self, snap: Snapshot, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """A document drawn from ``snap``, made once per ``key`` while ``snap`` is current.

        Pages are rendered per request otherwise, and a 304 costs a render too (its ETag is
        the body's hash): at 100 services, 39 ms a request against 0.1 ms from here.
        """
        if snap is not self._bodies_of:
            self._bodies, self._bodies_of = {}, snap
        if key not in self._bodies:
            if len(self._bodies) >= MAX_BODIES:
                self._bodies.clear()
            self._bodies[key] = make()
        return self._bodies[key]

    def logo(self) -> Logo | None:
        """The configured logo's bytes, type and name, if any."""
        return self._config().logo

    def invalidate(self) -> None:
        """Forget the cached snapshot: something customers may see just changed."""
        self._cached = None

    def _gather(self, now: float) -> Inputs:
        config, store = self._config(), self._store
        zone = ZoneInfo(config.daemon.timezone)
        first_day = history.last_days(now, zone)[0]
        since, _ = history.day_bounds(first_day, zone)
        open_ = list(self._open())
        past = [i for i in store.resolved_since(since) if public(i)]
        windows, progress = self._windows()
        timelines = {
            i.id: store.timeline(i.id)
            for i in (*open_, *past)
            if i.resolved_at is None or (i.resolved_at >= now - RECENT_S and public(i))
        }
        return Inputs(
            config=config,
            views=self._views(),
            open=open_,
            past=past,
            timelines=timelines,
            windows=windows,
            progress=progress,
            days=store.day_tallies(first_day),
            measured_at=store.last_result_at(),
        )
