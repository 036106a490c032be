"""``forewarn incidents …`` and ``forewarn maintenance …``: the operator API from a shell.

Exit status: 0 done, 1 refused or failed, 2 a wrong command line, 3 the daemon unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from monitor import timebounds
from monitor.api_client import FAILED, Client, Failure
from monitor.config import ConfigError, load_config
from monitor.config_types import parse_delay
from monitor.web.auth import read_token_lines

OK, USAGE = 0, 2
OPS_COMMANDS = ("incidents", "maintenance")
ACTIONS = ("identify", "update", "resolve", "postmortem")
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
    for action in ACTIONS:
        verb = sub(verbs, action, f"{action} an incident: a message to its customers")
        verb.add_argument("id")
        source = verb.add_mutually_exclusive_group(required=True)
        source.add_argument("-m", "--message", help="the text customers get")
        if action == "postmortem":
            source.add_argument("--file", type=Path, help="read the text from a UTF-8 file")

    maintenance = commands.add_parser("maintenance", help="plan, extend, cancel maintenance")
    verbs = maintenance.add_subparsers(dest="action", required=True)
    sub(verbs, "list", "known maintenance windows")
    add = sub(verbs, "add", "plan a maintenance window")
    add.add_argument("--services", required=True, help="service ids, comma-separated")
    add.add_argument("--start", required=True, help="ISO 8601 with offset")
    add.add_argument("--end", required=True, help="ISO 8601 with offset")
    add.add_argument("--announce-before", help="notice ahead, such as 24h (the default)")
    add.add_argument("--summary-fr", help="what customers reading French are told")
    add.add_argument("--summary-en", help="what customers reading English are told")
    add.add_argument("--id", help="a short lowercase id (default: mw-<UTC start>)")
    extend = sub(verbs, "extend", "move a window's end")
    extend.add_argument("id")
    extend.add_argument("--end", required=True, help="ISO 8601 with offset")
    sub(verbs, "cancel", "cancel a window").add_argument("id")


# C0 but line feed and tab, DEL, C1, and the bidirectional overrides that reorder a line.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run_ops(args: argparse.Namespace) -> int:
    """Run one ``incidents`` or ``maintenance`` sub-command; returns the exit status."""
    try:
        request = _request(args)  # the command line is checked before anything is sent
        answer = _client(args).call(*request)
        text = (
            json.dumps(answer, indent=2, ensure_ascii=False) if args.json else _show(args, answer)
        )
    except Failure as exc:
        print(printable(f"forewarn: {exc}"), file=sys.stderr)
        return exc.status
    except (KeyError, TypeError, AttributeError):  # from _show: JSON, but not forewarn's
        print("forewarn: unexpected answer: is --url a forewarn of this version?", file=sys.stderr)
        return FAILED
    print(printable(text))
    return OK


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), line breaks and tabs kept.

    Operator messages come from other operators through the API: an escape sequence in one
    must not drive the terminal of whoever reads it.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body a sub-command sends."""
    quoted = urllib.parse.quote(getattr(args, "id", None) or "", safe="")
    if args.command == "incidents":
        if args.action == "list":
            return "GET", "/api/v1/incidents" + ("?all=1" if args.all else ""), None
        if args.action == "show":
            return "GET", f"/api/v1/incidents/{quoted}", None
        return "POST", f"/api/v1/incidents/{quoted}/{args.action}", {"message": _message(args)}
    if args.action == "list":
        return "GET", "/api/v1/maintenance", None
    if args.action == "add":
        return "POST", "/api/v1/maintenance", _window(args)
    if args.action == "extend":
        return "POST", f"/api/v1/maintenance/{quoted}/extend", {"end": _time(args.end, "--end")}
    return "DELETE", f"/api/v1/maintenance/{quoted}", None


def _message(args: argparse.Namespace) -> str:
    path: Path | None = getattr(args, "file", None)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Failure(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    else:
        text = args.message
    if not text.strip():
        raise Failure("the message is empty", USAGE)
    return str(text)


def _time(text: str, option: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Failure(f"{option}: expected ISO 8601 with offset, such as "
                      "2026-11-22T13:00:00+01:00", USAGE)  # fmt: skip
    try:
        timebounds.check_moment(moment)
    except (ValueError, OverflowError):
        raise Failure(f"{option}: must be {timebounds.SPAN_TEXT}", USAGE) from None
    return text


def _window(args: argparse.Namespace) -> dict[str, Any]:
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    if not services:
        raise Failure("--services: expected service ids such as tracking,labels", USAGE)
    body: dict[str, Any] = {
        "services": services,
        "start": _time(args.start, "--start"),
        "end": _time(args.end, "--end"),
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


def _client(args: argparse.Namespace) -> Client:
    """Where to send and with which token: options, then FOREWARN_TOKEN, then checks.yaml."""
    url: str | None = args.url
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise Failure("--url: expected http://host:port", USAGE)
    token = _file_token(args.token_file) if args.token_file else None
    token = token or os.environ.get("FOREWARN_TOKEN", "").strip() or None
    if url is None or token is None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
            raise Failure(exc.errors[0] + more) from None
        if url is None:
            # The operator API is on admin_listen when there is one.
            address = config.daemon.admin_listen or config.daemon.listen
            host, _, digits = address.rpartition(":")
            host, port = host.strip("[]"), int(digits)
            # A daemon listening everywhere is reached here through loopback.
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if token is None:
            configured: Path | None = getattr(config.daemon, "api_tokens_file", None)
            if configured is None:
                message = "no daemon.api_tokens_file; pass --token-file or set FOREWARN_TOKEN"
                raise Failure(f"{args.config}: {message}")
            token = _file_token(configured, config.source.parent)
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


def _show(args: argparse.Namespace, answer: dict[str, Any]) -> str:
    """What a person reads for an answer."""
    if "incidents" in answer:
        rows = [
            [i["id"], i["status"], ",".join(i["services"]), _when(i["first_failure_at"]),
             _when(i["next_update_at"])]
            for i in answer["incidents"]
        ]  # fmt: skip
        header = ["ID", "STATUS", "SERVICES", "FIRST FAILURE", "NEXT UPDATE"]
        return _table(header, rows) if rows else "no incidents" if args.all else "no open incidents"
    if "windows" in answer:
        rows = [
            [w["id"], w["state"], ",".join(w["services"]), _when(w["start"]), _when(w["end"]),
             w["announce_before"]]
            for w in answer["windows"]
        ]  # fmt: skip
        header = ["ID", "STATE", "SERVICES", "START", "END", "ANNOUNCE"]
        return _table(header, rows) if rows else "no maintenance windows"
    if "timeline" in answer:
        return _detail(answer["incident"], answer["timeline"])
    if "incident" in answer:
        incident = answer["incident"]
        return f"incident {incident['id']}: {args.action} sent, now {incident['status']}"
    window = answer["window"]
    done = {"add": "planned", "extend": "extended", "cancel": "cancelled"}[args.action]
    return (
        f"maintenance {window['id']} {done}: {','.join(window['services'])} "
        f"from {_when(window['start'])} to {_when(window['end'])} ({window['state']})"
    )


def _when(value: str | None) -> str:
    return "-" if value is None else value.replace("T", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(row[n])) for row in [header, *rows]) for n in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _detail(incident: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """Every field that has a value, then the timeline, oldest first."""
    shown = {k: v for k, v in incident.items() if v not in (None, "", [], False, 0)}
    width = max(map(len, shown))
    lines = [_indent(f"{k.replace('_', ' '):<{width}}  {_cell(k, v)}", width + 2)
             for k, v in shown.items()]  # fmt: skip
    lines += ["", "timeline:"]
    for entry in timeline:
        head = f"  {_when(entry['at'])}  {entry['kind']:<10}  {entry['status']:<13}  "
        lines.append(_indent(head + entry["message"], len(head)).rstrip())
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return _when(value) if key.endswith("_at") else str(value)


def _indent(text: str, width: int) -> str:
    """Continuation lines of a multi-line text aligned under its first."""
    return text.replace("\n", "\n" + " " * width)
