"""The ``forewarn`` command: run, check-config, demo."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.config import Config, ConfigError, load_config
from monitor.logs import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one sub-command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="forewarn",
        description="Probe the services your customers depend on and tell them when one breaks.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True)
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
    args = parser.parse_args(argv)

    if args.command == "demo":
        from monitor.demo import run_demo

        configure_logging("warning" if args.log_level == "info" else args.log_level)
        return asyncio.run(run_demo(args.dir))
    config = _load(args.config)
    if config is None:
        return 1
    if args.command == "check-config":
        print(
            f"{args.config}: OK — {len(config.services)} services, {len(config.checks)} checks, "
            f"{len(config.customers)} customers"
        )
        return 0
    configure_logging(args.log_level)
    return asyncio.run(_run(config))


def _load(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return None


async def _run(config: Config) -> int:
    from monitor.daemon import Daemon

    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await daemon.start()
    await stop.wait()
    await daemon.stop()
    return 0
