"""``forewarn incidents …`` and ``forewarn maintenance …``: the operator API from a shell.

Exit status: 0 done, 1 refused or failed, 2 a wrong command line, 3 the daemon unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from zoneinfo import ZoneInfo

from monitor.cli.api_client import FAILED, Client, Failure
from monitor.cli.settings import OperatorSettings, operator_settings
from monitor.cli.show import show_answer
from monitor.config.load import ConfigError
from monitor.config.tokens import read_token_lines
from monitor.core import timebounds
from monitor.core.fields import LANGUAGES, parse_delay
from monitor.core.localtime import LocalTimeError, parse_local

OK, USAGE = 0, 2
OPS_COMMANDS = ("incidents", "maintenance", "customers")
ACTIONS = ("identify", "update", "resolve", "postmortem")
LANGUAGE_NAMES = {"fr": "French", "en": "English"}
UTC = ZoneInfo("UTC")
EXAMPLE_LOCAL = "'2026-12-08 22:00' (daemon.timezone)"
if TYPE_CHECKING:  # generic only to type checkers, not at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_ops_commands(commands: Subparsers) -> None:
    """Register ``incidents`` and ``maintenance`` with their sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    config = common.add_argument("-c", "--config", type=Path, default=Path("checks.yaml"))
    config.help = "checks.yaml naming the daemon's address and token file"
    common.add_argument("--url", help="the daemon's address (default: from daemon.listen)")
    token = common.add_argument("--token-file", type=Path)
    token.help = "token file (default: FOREWARN_TOKEN, then daemon.api_tokens_file)"
    common.add_argument("--json", action="store_true", help="print the API's JSON")

    def sub(group: Subparsers, name: str, text: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=text, description=text, parents=[common])

    incidents = commands.add_parser("incidents", help="list, show and speak on incidents")
    verbs = incidents.add_subparsers(dest="action", required=True)
    sub(verbs, "list", "open incidents").add_argument(
        "--all", action="store_true", help="with those resolved in the last 14 days"
    )
    sub(verbs, "show", "one incident and its timeline").add_argument("id")
    for action in ("open", *ACTIONS):
        if action == "open":  # an outage no check found: no id yet, the services instead
            verb = sub(verbs, action, "open an incident no check found: its customers hear now")
            verb.add_argument("--services", required=True, help="service ids, comma-separated")
            verb.add_argument("--since", help=f"when it began, as {EXAMPLE_LOCAL} (default: now)")
        else:
            verb = sub(verbs, action, f"{action} an incident: a message to its customers")
            verb.add_argument("id")
        verb.add_argument("-m", "--message", help="one text for customers of every language")
        for lang in LANGUAGES:
            help_text = f"the text customers reading {LANGUAGE_NAMES[lang]} get"
            verb.add_argument(f"--message-{lang}", help=help_text)
        if action == "update":
            help_text = "on the status page and feed only: no email"
            verb.add_argument("--page-only", action="store_true", help=help_text)
        if action == "postmortem":
            verb.add_argument("--file", type=Path, help="read the one text from a UTF-8 file")
            for lang in LANGUAGES:
                verb.add_argument(
                    f"--file-{lang}", type=Path, help=f"read --message-{lang} from a file"
                )
        if action == "resolve":
            verb.add_argument(
                "--review", action="store_true", help="announce a review (postmortem) to come"
            )
            verb.add_argument(
                "--force",
                action="store_true",
                help="close it although its services still fail (customers read it was closed)",
            )

    maintenance = commands.add_parser("maintenance", help="plan, extend, cancel maintenance")
    verbs = maintenance.add_subparsers(dest="action", required=True)
    sub(verbs, "list", "known maintenance windows")
    add = sub(verbs, "add", "plan a maintenance window")
    add.add_argument("--services", required=True, help="service ids, comma-separated")
    add.add_argument("--start", required=True, help=f"as {EXAMPLE_LOCAL}, or ISO 8601 with offset")
    add.add_argument("--end", required=True, help=f"as {EXAMPLE_LOCAL}, or ISO 8601 with offset")
    add.add_argument("--announce-before", help="notice ahead, such as 24h (the default)")
    add.add_argument("--summary-fr", help="what customers reading French are told")
    add.add_argument("--summary-en", help="what customers reading English are told")
    add.add_argument("--id", help="a short lowercase id (default: mw-<UTC start>)")
    extend = sub(verbs, "extend", "move a window's end")
    extend.add_argument("id")
    extend.add_argument("--end", required=True, help=f"as {EXAMPLE_LOCAL}, or with offset")
    sub(verbs, "cancel", "cancel a window").add_argument("id")

    customers = commands.add_parser("customers", help="who gets no email, and why")
    verbs = customers.add_subparsers(dest="action", required=True)
    suppressed = sub(verbs, "suppressed", "unsubscribed and bounced addresses; lift ADDRESS")
    suppressed.add_argument("verb", nargs="?", choices=("list", "lift"), default="list")
    suppressed.add_argument("address", nargs="?", help="the address to email again (lift)")


# C0 but line feed and tab, DEL, C1, and the bidirectional overrides that reorder a line.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run_ops(args: argparse.Namespace) -> int:
    """Run one ``incidents``, ``maintenance`` or ``customers`` sub-command; its exit status."""
    try:
        settings = _settings(args)
        zone = settings.zone if settings is not None else UTC
        request = _request(args, settings)  # the command line is checked before anything is sent
        answer = _client(args, settings).call(*request)
        text = (
            json.dumps(answer, indent=2, ensure_ascii=False)
            if args.json
            else show_answer(args, answer, zone)
        )
    except Failure as exc:
        print(printable(f"forewarn: {exc}"), file=sys.stderr)
        return exc.status
    except (KeyError, TypeError, AttributeError):  # from show_answer: JSON, not forewarn's
        print("forewarn: unexpected answer: is --url a forewarn of this version?", file=sys.stderr)
        return FAILED
    print(printable(text))
    return OK


def _settings(args: argparse.Namespace) -> OperatorSettings | None:
    """checks.yaml as the CLI reads it; None if it is unreadable but not needed."""
    try:
        return operator_settings(args.config)
    except ConfigError as exc:
        token = args.token_file or os.environ.get("FOREWARN_TOKEN", "").strip()
        if args.url is not None and token:
            return None  # told where and how: the file is only for times and languages
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        raise Failure(exc.errors[0] + more) from None


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), line breaks and tabs kept.

    Operator messages come from other operators through the API: an escape sequence in one
    must not drive the terminal of whoever reads it.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _request(
    args: argparse.Namespace, settings: OperatorSettings | None
) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body a sub-command sends."""
    quoted = urllib.parse.quote(getattr(args, "id", None) or "", safe="")
    if args.command == "incidents":
        if args.action == "list":
            return "GET", "/api/v1/incidents" + ("?all=1" if args.all else ""), None
        if args.action == "show":
            return "GET", f"/api/v1/incidents/{quoted}", None
        body: dict[str, Any] = {"message": _message(args, settings)}
        if args.action == "open":
            body["services"] = _services(args.services)
            if args.since is not None:
                body["since"] = _time(args.since, "--since", settings)
            return "POST", "/api/v1/incidents", body
        for flag in ("review", "force", "page_only"):
            if getattr(args, flag, False):
                body[flag] = True
        return "POST", f"/api/v1/incidents/{quoted}/{args.action}", body
    if args.command == "customers":
        if args.verb == "list":
            return "GET", "/api/v1/suppressions", None
        if not args.address:
            raise Failure("lift: which address? forewarn customers suppressed lift ADDRESS", USAGE)
        return "POST", "/api/v1/suppressions/lift", {"address": args.address}
    if args.action == "list":
        return "GET", "/api/v1/maintenance", None
    if args.action == "add":
        return "POST", "/api/v1/maintenance", _window(args, settings)
    if args.action == "extend":
        end = _time(args.end, "--end", settings)
        return "POST", f"/api/v1/maintenance/{quoted}/extend", {"end": end}
    return "DELETE", f"/api/v1/maintenance/{quoted}", None


def _message(args: argparse.Namespace, settings: OperatorSettings | None) -> str | dict[str, str]:
    """One text for every language, or ``{language: text}``; warns of who reads what."""
    one = _text(args.message, getattr(args, "file", None), "-m")
    own = {
        lang: text
        for lang in LANGUAGES
        if (text := _text(getattr(args, f"message_{lang}"), getattr(args, f"file_{lang}", None),
                          f"--message-{lang}")) is not None
    }  # fmt: skip
    if one is not None and own:
        raise Failure("-m is one text for every language: give it alone, or give "
                      "--message-fr and --message-en", USAGE)  # fmt: skip
    if one is None and not own:
        raise Failure("a message is needed: -m TEXT, or --message-fr and --message-en", USAGE)
    for warning in _warnings(own, settings):
        print(f"forewarn: warning: {warning}", file=sys.stderr)
    return one if one is not None else own


def _text(given: str | None, path: Path | None, option: str) -> str | None:
    """An option's text, or its file's; None when neither is given."""
    if path is not None:
        if given is not None:
            raise Failure(f"{option}: give the text or a file, not both", USAGE)
        try:
            given = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Failure(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if given is not None and not given.strip():
        raise Failure(f"{option}: the message is empty", USAGE)
    return given


def _warnings(own: dict[str, str], settings: OperatorSettings | None) -> list[str]:
    """What the configured customers will read that the operator may not expect."""
    if settings is None:
        return []
    readers = {lang: n for lang, n in settings.languages.items() if n}
    if not own:
        if len(readers) < 2:
            return []
        who = " and ".join(f"{LANGUAGE_NAMES[lang]} ({n})" for lang, n in readers.items())
        return [f"one text for every language: customers reading {who} all get it as written; "
                "--message-fr and --message-en write to each in their own"]  # fmt: skip
    fallback = settings.default_language if settings.default_language in own else next(iter(own))
    return [
        f"no --message-{lang}: the {n} customer{'s' * (n != 1)} reading {LANGUAGE_NAMES[lang]} "
        f"will get the {LANGUAGE_NAMES[fallback]} text"
        for lang, n in readers.items()
        if lang not in own
    ]


def _time(text: str, option: str, settings: OperatorSettings | None) -> str:
    """An ISO time with its offset: a time written without one is in daemon.timezone."""
    try:
        moment = parse_local(text, settings.zone if settings is not None else None)
    except LocalTimeError as exc:
        raise Failure(f"{option}: {exc}", USAGE) from None
    try:
        timebounds.check_moment(moment)
    except (ValueError, OverflowError):
        raise Failure(f"{option}: must be {timebounds.SPAN_TEXT}", USAGE) from None
    return moment.isoformat()


def _services(text: str) -> list[str]:
    services = [s.strip() for s in text.split(",") if s.strip()]
    if not services:
        raise Failure("--services: expected service ids such as tracking,labels", USAGE)
    return services


def _window(args: argparse.Namespace, settings: OperatorSettings | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "services": _services(args.services),
        "start": _time(args.start, "--start", settings),
        "end": _time(args.end, "--end", settings),
    }
    if args.announce_before is not None:
        try:
            parse_delay(args.announce_before)
        except ValueError as exc:
            raise Failure(f"--announce-before: {exc}", USAGE) from None
        body["announce_before"] = args.announce_before
    summary = {"fr": args.summary_fr, "en": args.summary_en}
    body["summary"] = {lang: text for lang, text in summary.items() if text}
    if args.id is not None:
        body["id"] = args.id
    return body


def _client(args: argparse.Namespace, settings: OperatorSettings | None) -> Client:
    """Where to send and with which token: options, then FOREWARN_TOKEN, then checks.yaml."""
    url: str | None = args.url
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise Failure("--url: expected http://host:port", USAGE)
    token = _file_token(args.token_file) if args.token_file else None
    token = token or os.environ.get("FOREWARN_TOKEN", "").strip() or None
    if url is None or token is None:
        assert settings is not None  # _settings read it, as one of them is missing
        if url is None:
            host, port = settings.api_host, settings.api_port  # admin_listen when set
            # A daemon listening everywhere is reached here through loopback.
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if token is None:
            configured = settings.api_tokens_file
            if configured is None:
                message = "no daemon.api_tokens_file; pass --token-file or set FOREWARN_TOKEN"
                raise Failure(f"{args.config}: {message}")
            token = _file_token(configured, settings.source.parent)
    if not (token.isascii() and token.isprintable() and " " not in token):
        raise Failure("the token has characters no token has: check where it came from")
    return Client(url.rstrip("/"), token, args.config)


def _file_token(path: Path, beside: Path | None = None) -> str:
    """The first write token of a token file (else its first), or a file holding one token."""
    if beside is not None and not path.is_absolute():
        path = beside / path  # as the daemon reads it: beside checks.yaml
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    meaningful = [line for line in lines if line and not line.startswith("#")]
    if len(meaningful) == 1 and ":" not in meaningful[0]:
        return meaningful[0]
    try:
        tokens = read_token_lines(path)
    except ValueError as exc:  # the message names the line, never the secret
        raise Failure(str(exc)) from None
    chosen = next((t for t in tokens if t.write), tokens[0] if tokens else None)
    if chosen is None:
        raise Failure(f"{path}: no token in this file")
    return chosen.secret
