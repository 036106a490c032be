"""``forewarn probe`` and ``forewarn notices preview|send-test``: try it before customers do.

Exit status: 0 done (every check passed), 1 a check or the send failed, 2 a wrong command line
or an invalid checks.yaml.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from jinja2 import TemplateError

from monitor.config.load import Config, ConfigError, check_config
from monitor.core.fields import LANGUAGES
from monitor.notices.preview import KINDS, PreviewError, preview
from monitor.runtime.logs import configure_logging

DRY_RUN_COMMANDS = ("probe", "notices")
FAILED, USAGE = 1, 2
if TYPE_CHECKING:  # generic only to type checkers, not at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_dry_run_commands(commands: Subparsers) -> None:
    """Register ``probe`` and ``notices`` with its ``preview`` and ``send-test``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=Path("checks.yaml"), help="path to checks.yaml"
    )
    text = "run checks once, now, and print each result (no state, no notices)"
    probe = commands.add_parser("probe", help=text, description=text, parents=[common])
    probe.add_argument("checks", nargs="*", metavar="CHECK_ID", help="default: every check")
    probe.add_argument("--json", action="store_true", help="print the results as JSON")

    notices = commands.add_parser("notices", help="preview customer emails, send a test email")
    verbs = notices.add_subparsers(dest="action", required=True)
    text = "render a customer email with sample values from checks.yaml"
    shown = verbs.add_parser("preview", help=text, description=text, parents=[common])
    shown.add_argument("kind", choices=KINDS, metavar="KIND", help=", ".join(KINDS))
    shown.add_argument("--service", help="the service it is about (default: the customer's)")
    shown.add_argument("--customer", help="who reads it (default: the service's first)")
    shown.add_argument("--lang", choices=LANGUAGES, help="default: the customer's language")
    shown.add_argument("--out", type=Path, help="write KIND.LANG.subject/.txt/.html here")
    text = "send one test email through the configured transport"
    test = verbs.add_parser("send-test", help=text, description=text, parents=[common])
    test.add_argument("--to", required=True, metavar="ADDRESS", help="where to send it")


def run_dry_run(args: argparse.Namespace) -> int:
    """Run ``probe``, ``notices preview`` or ``notices send-test``; its exit status."""
    try:
        config, _ = check_config(args.config)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{args.config}: {len(exc.errors)} error(s)", file=sys.stderr)
        return USAGE
    if args.command == "notices" and args.action == "preview":
        return _preview(config, args)  # pure rendering: nothing logs, the process is left as is
    configure_logging("error")  # stdout is the command's answer: no log line in the way
    if args.command == "probe":
        from monitor.cli.probe import run_probe

        return run_probe(config, args.checks, args.json)
    if args.action == "send-test":
        from monitor.cli.sendtest import run_send_test

        return run_send_test(config, args.to)
    raise AssertionError(f"no such command: {args.command}")  # argparse allows no other


def _preview(config: Config, args: argparse.Namespace) -> int:
    """Render one notice: subject and text on stdout, or three files in ``--out``."""
    try:
        notice = preview(
            config,
            args.kind,
            time.time(),
            service_id=args.service,
            customer_id=args.customer,
            language=args.lang,
        )
    except PreviewError as exc:
        print(f"forewarn notices preview: {exc}", file=sys.stderr)
        return USAGE
    except TemplateError as exc:  # an override in notices.templates_dir that fails to render
        print(f"forewarn notices preview: the template failed: {exc}", file=sys.stderr)
        return FAILED
    if args.out is None:
        print(f"Subject: {notice.subject}\n\n{notice.text}", end="")
        return 0
    parts = {"subject": notice.subject + "\n", "txt": notice.text, "html": notice.html}
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for ext, content in parts.items():
            path = args.out / f"{args.kind}.{notice.language}.{ext}"
            path.write_text(content, encoding="utf-8")
            print(path)
    except OSError as exc:
        print(f"forewarn notices preview: cannot write: {exc}", file=sys.stderr)
        return FAILED
    return 0
