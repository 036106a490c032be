"""forewarn out of its own resources: runs set aside, episodes logged and told to ops once.

A probe that failed because this process or host ran out of descriptors, ports or memory
(``Reason.LOCAL_RESOURCES``, see ``probes/local.py``) is inconclusive: the scheduler sets it
aside like a run cut short by a loop stall. Here such runs make *episodes*: the first one logs
``local_exhaustion`` and queues one ops notice per ops channel; the episode ends (and logs
``local_exhaustion_ended``) once no run has been set aside for ``quiet_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from monitor.config.notices import OpsChannel
from monitor.core.notice import Notice
from monitor.notices.ops import own_alerts
from monitor.probes.base import ProbeResult
from monitor.runtime.scheduler import LOCAL
from monitor.store.base import Store

log = structlog.get_logger("forewarn.exhaustion")

# Long enough that a check re-run every retry_interval (5 s by default) keeps one episode
# going while the shortage lasts; short enough that the next shortage is a new episode.
QUIET_S = 60.0


@dataclass(frozen=True, slots=True)
class Episode:
    """A stretch of time during which probes kept failing for want of local resources."""

    since: float  # monotonic
    last_seen: float  # when the latest run was set aside (monotonic)
    runs: int = 1  # runs set aside during the episode


def seen(episode: Episode | None, now: float) -> tuple[Episode, bool]:
    """Fold in one run set aside at ``now``; True when it begins an episode."""
    if episode is None:
        return Episode(since=now, last_seen=now), True
    return replace(episode, last_seen=now, runs=episode.runs + 1), False


def expire(episode: Episode | None, now: float, quiet_s: float) -> tuple[Episode | None, bool]:
    """End the episode once ``quiet_s`` passed without a run set aside; True when it ends."""
    if episode is not None and now - episode.last_seen >= quiet_s:
        return None, True
    return episode, False


def alerts(ops: Sequence[OpsChannel], result: ProbeResult, now: float) -> list[Notice]:
    """The ops notices of an episode that begins with ``result``, one per ops channel."""
    since = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    subject = "[forewarn] forewarn itself is out of resources: probe results set aside"
    text = (
        f"{subject}\nSince {since} probes fail inside forewarn, not at their targets: "
        f"{result.detail} (first seen on check {result.check_id}).\n"
        "Those runs count for nothing: no check goes down and no customer is told meanwhile;\n"
        "each check runs again after its retry_interval. Raise the limit (LimitNOFILE=) or find\n"
        "what holds forewarn's descriptors (ls /proc/<pid>/fd).\n"
    )
    return own_alerts(ops, f"local-resources-{int(now)}", "local-resources", subject, text, now)


class LocalExhaustion:
    """Watches runs set aside for want of local resources: logs and tells ops once an episode."""

    def __init__(
        self,
        store: Store,
        ops: Callable[[], Sequence[OpsChannel]],
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.store = store
        self.ops = ops  # read when an episode begins: a reload may have changed the channels
        self.wake = wake  # the dispatcher's: an ops notice was queued
        self.clock = clock
        self.quiet_s = quiet_s
        self.episode: Episode | None = None

    def set_aside(self, result: ProbeResult, cause: str) -> None:
        """Note a run the scheduler (or a worker's) set aside as inconclusive, for ``cause``."""
        if cause != LOCAL:
            return
        self.episode, began = seen(self.episode, time.monotonic())
        if not began:
            return
        log.warning("local_exhaustion", check=result.check_id, detail=result.detail)
        notices = alerts(self.ops(), result, self.clock())
        if notices:
            try:
                self.store.commit(notices=notices)
            except Exception:
                log.exception("ops_alert_not_stored", reason=LOCAL)
            self.wake()

    def tick(self) -> None:
        """End the episode when the shortage has been over for ``quiet_s``."""
        before = self.episode
        self.episode, ended = expire(before, time.monotonic(), self.quiet_s)
        if ended and before is not None:
            log.info(
                "local_exhaustion_ended",
                lasted_s=round(before.last_seen - before.since, 3),
                runs=before.runs,
            )
