"""The ``forewarn`` command: run, check-config, demo, version (operator and dry-run: cli/)."""

from __future__ import annotations

import argparse
import asyncio
import platform
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from monitor.cli.dryrun import DRY_RUN_COMMANDS, add_dry_run_commands, run_dry_run
from monitor.cli.ops import OPS_COMMANDS, add_ops_commands, run_ops
from monitor.config.load import Config, ConfigError, check_config
from monitor.runtime.logs import configure_logging

if TYPE_CHECKING:
    from monitor.daemon import Daemon
    from monitor.runtime.systemd import SystemdNotifier


def _parser() -> argparse.ArgumentParser:
    """The command line: global options and every sub-command."""
    parser = argparse.ArgumentParser(
        prog="forewarn",
        description="Probe the services your customers depend on and tell them when one breaks.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the installed versions (for a bug report)")
    for name, text in (
        ("run", "run the daemon"),
        ("check-config", "validate a checks.yaml and summarise it"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "-c",
            "--config",
            type=Path,
            default=Path("checks.yaml"),
            help="path to checks.yaml (default: ./checks.yaml)",
        )
    demo = commands.add_parser("demo", help="simulate carrier services, an outage and its emails")
    demo.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to keep the demo's state and emails (default: a temp dir)",
    )
    demo.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the status page and simulated services up this long after the demo",
    )
    add_ops_commands(commands)
    add_dry_run_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one sub-command; returns the exit status."""
    args = _parser().parse_args(argv)

    if args.command in OPS_COMMANDS:
        return run_ops(args)
    if args.command in DRY_RUN_COMMANDS:
        return run_dry_run(args)
    if args.command == "version":
        print("\n".join(version_report()))
        return 0
    if args.command == "demo":
        from monitor.cli.demo import run_demo

        configure_logging("warning" if args.log_level == "info" else args.log_level)
        return asyncio.run(run_demo(args.dir, args.linger))
    loaded = _load(args.config)
    if loaded is None:
        return 1
    config, warnings = loaded
    if args.command == "check-config":
        return _summary(args.config, config, warnings)
    configure_logging(args.log_level)
    for line in warnings:
        structlog.get_logger("forewarn.cli").warning("config_warning", warning=line)
    from monitor.runtime.lag import loop_factory

    # uvloop when the ``fast`` extra is installed; the ``started`` event names the loop.
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_run(config, args.log_level))


def installed_version(distribution: str) -> str:
    """The version of an installed distribution, from its package metadata."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_line() -> str:
    """``forewarn X.Y.Z``, as ``forewarn --version`` prints it."""
    return f"forewarn {installed_version('forewarn')}"


def version_report() -> list[str]:
    """forewarn's version, then Python's and each runtime dependency's, as installed."""
    try:
        requirements = metadata.requires("forewarn") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        requirements = []
    names = [_requirement_name(r) for r in requirements if "extra ==" not in r]
    return [
        version_line(),
        f"python {platform.python_version()}",
        *(f"{name} {installed_version(name)}" for name in names),
    ]


def _requirement_name(requirement: str) -> str:
    """The distribution name at the start of a requirement such as ``aiohttp>=3.9``."""
    end = next((i for i, c in enumerate(requirement) if not (c.isalnum() or c in "-_.")), None)
    return requirement[:end]


def _summary(path: Path, config: Config, warnings: list[str]) -> int:
    """check-config's answer: the warnings on stderr, then one line counting what was read."""
    for line in warnings:  # it runs, but probably not as meant: said, not refused
        print(line, file=sys.stderr)
    extras = [
        f"{len(config.canary)} canary checks" if config.canary else "",
        f"{len(config.notices.ops)} ops channels" if config.notices.ops else "",
        f"{len(config.maintenance)} maintenance windows" if config.maintenance else "",
        "templates overridden" if config.notices.templates_dir else "",
    ]
    print(
        f"{path}: OK — {len(config.services)} services, {len(config.checks)} checks, "
        f"{len(config.customers)} customers" + "".join(f", {e}" for e in extras if e)
    )
    return 0


def _load(path: Path) -> tuple[Config, list[str]] | None:
    try:
        return check_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return None


async def _run(config: Config, log_level: str) -> int:
    """The daemon under a service manager: 0 after a clean stop, 1 when it cannot run."""
    from monitor.config.tokens import TokenFileError
    from monitor.daemon import Daemon
    from monitor.runtime.statelock import StateLocked
    from monitor.runtime.systemd import SystemdNotifier, supervise, watchdog_period
    from monitor.store.base import StoreUnavailable
    from monitor.store.opening import DriverMissing

    log = structlog.get_logger("forewarn.cli")
    daemon = Daemon(config, log_level=log_level)
    notifier = SystemdNotifier.from_env()
    stop, reload_wanted = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Installed before start(): a SIGHUP while starting is then a reload, not the end.
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
    try:
        await daemon.start()
    except (StateLocked, TokenFileError, DriverMissing) as exc:
        print(f"forewarn: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:  # daemon.database: an unreachable or refusing server
        print(f"forewarn: cannot start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the listen port taken, the state dir not writable, …
        print(f"forewarn: cannot start: {exc}", file=sys.stderr)
        return 1
    notifier.ready(daemon.status_line())
    helpers = [
        asyncio.create_task(
            supervise(
                notifier,
                daemon.progress_marks,
                daemon.status_line,
                period=watchdog_period(),
            ),
            name="sd_notify",
        ),
        asyncio.create_task(_reloads(daemon, notifier, reload_wanted), name="reload"),
    ]
    stopping = asyncio.create_task(stop.wait())
    loops = [*daemon.probing, daemon.delivering, helpers[1]]
    await asyncio.wait([stopping, *loops], return_when=asyncio.FIRST_COMPLETED)
    died = {task.get_name(): _ending(task) for task in loops if task.done()}
    if died:  # a bug: exit non-zero so that Restart=on-failure starts a fresh process
        log.error("loop_died", loops=died)
    notifier.stopping()
    for task in [stopping, *helpers]:
        task.cancel()
    await asyncio.gather(stopping, *helpers, return_exceptions=True)
    await daemon.stop()
    notifier.close()
    return 1 if died else 0


async def _reloads(daemon: Daemon, notifier: SystemdNotifier, wanted: asyncio.Event) -> None:
    """One reload per SIGHUP (those arriving during a reload make one more)."""
    while True:
        await wanted.wait()
        wanted.clear()
        notifier.reloading()
        await daemon.reload()
        notifier.ready(daemon.status_line())


def _ending(task: asyncio.Task[None]) -> str:
    """How a task that should run forever ended."""
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return "returned" if error is None else repr(error)
