"""What a reload cannot apply at once: pure comparisons of the running config and the new one."""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path

from monitor.config.load import Config

# Keys that a running daemon keeps until its next restart (a reload logs them as deferred).
DEFERRED = (
    "daemon.header_timeout",
    "daemon.max_concurrency",
    "daemon.max_connections",
    "daemon.max_connections_per_address",
    "daemon.probe_workers",
    "daemon.retention",
    "daemon.timezone",  # the days results are counted in
    "daemon.trusted_proxies",
    "notices.retry_initial",
    "notices.retry_max",
)
# Keys whose change makes a reload fail: the old config stays until a restart.
# database: a daemon moving to another database mid-incident would lose its outbox.
RESTART_ONLY = (
    "listen",
    "admin_listen",
    "state_dir",
    "database",
    "database_password_file",
    "location",
)


def restart_needed(path: Path, old: Config, new: Config) -> list[str]:
    """One error line per ``daemon`` key that only a restart can change."""
    return [
        f"{path}: daemon.{key}: changed from {getattr(old.daemon, key)!s} to "
        f"{getattr(new.daemon, key)!s}; restart forewarn to apply it"
        for key in RESTART_ONLY
        if getattr(old.daemon, key) != getattr(new.daemon, key)
    ]


def deferred_keys(old: Config, new: Config) -> list[str]:
    """The changed keys that apply at the next restart."""
    return [key for key in DEFERRED if attrgetter(key)(old) != attrgetter(key)(new)]
