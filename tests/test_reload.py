"""Daemon.reload: a new checks.yaml without losing what the running daemon knows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus, Transition
from monitor.store.sqlite import SqliteStore
from tests.conftest import ConfigFactory
from tests.waiting import until

FAST = {"interval": "200ms", "retry": "100ms", "timeout": "1s"}


@pytest.fixture
async def daemon(make_config: ConfigFactory) -> AsyncIterator[Daemon]:
    """A running daemon whose two checks target a closed port: both go down.

    The state holds a previous run in which both checks answered, so that their outage is
    told to customers (a check never seen up would tell ops only).
    """
    config = make_config(**FAST)
    earlier = SqliteStore.open(config.daemon.state_dir)
    earlier.commit(
        transitions=[
            Transition(check, CheckStatus.UNKNOWN, CheckStatus.UP, 1.0, None, "", None)
            for check in ("tracking-ws", "labels-ws")
        ]
    )
    earlier.close()
    running = Daemon(config)
    await running.start()
    yield running
    await running.stop()


def emails(daemon: Daemon) -> list[Path]:
    """The .eml files the file transport wrote."""
    return sorted((daemon.config.daemon.state_dir / "mail").glob("*.eml"))


def probes_of(daemon: Daemon, check_id: str) -> float:
    """How many results a check produced so far."""
    value = daemon.metrics.registry.get_sample_value("forewarn_probes_total", {"check": check_id})
    return value or 0.0


def rewrite(config: Path, old: str, new: str) -> None:
    """Edit the checks.yaml on disk."""
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


async def test_a_down_check_stays_down_with_no_new_incident_nor_notice(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Surviving checks keep state and incident; removed ones stop; new ones start UNKNOWN."""
    # Both services are told: acme (maybe one digest for both), globex, initech.
    await until(
        lambda: (
            len(daemon.engine.open) == 2
            and all(i.customers_told_at for i in daemon.engine.open.values())
            and daemon.store.pending_count() == 0
        )
    )
    told = len(emails(daemon))
    assert told in (3, 4)
    incidents = {i.service_id: i for i in daemon.engine.open.values()}
    assert set(incidents) == {"tracking", "labels"}
    tracking_state = daemon.engine.states["tracking-ws"]
    assert tracking_state.status is CheckStatus.DOWN

    config = tmp_path / "checks.yaml"
    # labels-ws is replaced by labels-tcp; tracking-ws gets a new failure_threshold.
    rewrite(
        config,
        """  - {id: labels-ws, service: labels, type: http, url: "http://127.0.0.1:9/l"}""",
        """  - {id: labels-tcp, service: labels, type: tcp, host: 127.0.0.1, port: 9}""",
    )
    rewrite(config, "failure_threshold: 3", "failure_threshold: 4")
    assert await daemon.reload() == []

    assert daemon.engine.states["tracking-ws"].status is CheckStatus.DOWN
    assert daemon.engine.states["tracking-ws"].failing_since == tracking_state.failing_since
    assert daemon.engine.states["tracking-ws"].failure_threshold == 4
    assert daemon.engine.states["labels-tcp"].status is CheckStatus.UNKNOWN
    assert "labels-ws" not in daemon.engine.states
    assert daemon.metrics.registry.get_sample_value("forewarn_config_last_reload_successful") == 1

    # Keep probing a while: the tracking outage goes on, quietly; labels-ws is not probed.
    removed_runs, runs = probes_of(daemon, "labels-ws"), probes_of(daemon, "tracking-ws")
    await until(lambda: probes_of(daemon, "tracking-ws") >= runs + 5)
    await until(lambda: daemon.engine.states["labels-tcp"].status is CheckStatus.DOWN)
    assert probes_of(daemon, "labels-ws") == removed_runs == 0  # its series was dropped
    assert {i.service_id: i.id for i in daemon.engine.open.values()} == {
        s: i.id for s, i in incidents.items()
    }
    assert daemon.engine.covering("tracking").sequence == incidents["tracking"].sequence
    assert len(emails(daemon)) == told, "no second first notice after a reload"


async def test_a_bad_config_keeps_the_old_one(daemon: Daemon, tmp_path: Path) -> None:
    """Errors are returned (file:line), the gauge drops to 0, STATUS says so; nothing changes."""
    config = tmp_path / "checks.yaml"
    before = daemon.config
    rewrite(config, "interval: 200ms", "interval: soon")
    errors = await daemon.reload()
    assert errors and errors[0].startswith(f"{config}:3: defaults.interval")
    assert daemon.config is before
    assert daemon.metrics.registry.get_sample_value("forewarn_config_last_reload_successful") == 0
    assert daemon.status_line().startswith(f"reload failed: {errors[0]}")

    rewrite(config, "interval: soon", "interval: 300ms")
    assert await daemon.reload() == []
    assert daemon.metrics.registry.get_sample_value("forewarn_config_last_reload_successful") == 1
    assert daemon.status_line().startswith("2 checks, ")
    assert daemon.scheduler.checks["tracking-ws"].interval == 0.3


@pytest.mark.parametrize("key", ["listen", "state_dir"])
async def test_listen_and_state_dir_need_a_restart(
    daemon: Daemon, tmp_path: Path, key: str
) -> None:
    """A reload cannot move the port or the state: refused, the old config stays."""
    config = tmp_path / "checks.yaml"
    before = daemon.config
    if key == "listen":
        rewrite(config, 'listen: "127.0.0.1:0"', 'listen: "127.0.0.1:1"')
    else:
        rewrite(config, f"state_dir: {tmp_path / 'state'}", f"state_dir: {tmp_path / 'other'}")
    errors = await daemon.reload()
    assert len(errors) == 1
    assert f"daemon.{key}: changed from" in errors[0] and "restart forewarn" in errors[0]
    assert daemon.config is before


async def test_customers_and_notice_settings_are_rebuilt(daemon: Daemon, tmp_path: Path) -> None:
    """The planner, the customers and the email notifier follow the new file."""
    config = tmp_path / "checks.yaml"
    planner, notifier = daemon.engine.planner, daemon.notifiers["email"]
    rewrite(config, "name: Initech,", "name: Initech SA,")
    assert await daemon.reload() == []
    assert daemon.engine.planner is not planner and daemon.notifiers["email"] is not notifier
    assert daemon.dispatcher._notifiers["email"] is daemon.notifiers["email"]
    assert [c.name for c in daemon.config.customers][-1] == "Initech SA"
