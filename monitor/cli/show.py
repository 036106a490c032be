"""What a person reads for an operator API answer: tables and details, times in the daemon's
timezone with their offset (as checks.yaml, the emails and the status page write them)."""

from __future__ import annotations

import argparse
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.localtime import show_iso


def show_answer(args: argparse.Namespace, answer: dict[str, Any], zone: ZoneInfo) -> str:
    """The answer to one sub-command, for a terminal."""

    def when(value: str | None) -> str:
        return show_iso(value, zone)

    if "incidents" in answer:
        rows = [
            [i["id"], i["status"], ",".join(i["services"]), when(i["first_failure_at"]),
             when(i["next_update_at"])]
            for i in answer["incidents"]
        ]  # fmt: skip
        header = ["ID", "STATUS", "SERVICES", "FIRST FAILURE", "NEXT UPDATE"]
        return table(header, rows) if rows else "no incidents" if args.all else "no open incidents"
    if "windows" in answer:
        rows = [
            [w["id"], w["state"], ",".join(w["services"]), when(w["start"]), when(w["end"]),
             w["announce_before"]]
            for w in answer["windows"]
        ]  # fmt: skip
        header = ["ID", "STATE", "SERVICES", "START", "END", "ANNOUNCE"]
        return table(header, rows) if rows else "no maintenance windows"
    if "suppressions" in answer:
        rows = [
            [s["address"], s["reason"], when(s["since"]), ",".join(s["customers"]) or "-"]
            for s in answer["suppressions"]
        ]
        header = ["ADDRESS", "REASON", "SINCE", "CUSTOMERS"]
        return table(header, rows) if rows else "no suppressed addresses"
    if "lifted" in answer:
        lifted = answer["lifted"]
        return f"{lifted['address']} gets notices again ({lifted['reason']} lifted)"
    if "timeline" in answer:
        return _detail(answer["incident"], answer["timeline"], zone)
    if "incident" in answer:
        incident = answer["incident"]
        if args.action == "open":
            services = ",".join(incident["services"])
            return f"incident {incident['id']} opened: {services}, customers told"
        if getattr(args, "page_only", False):
            return f"incident {incident['id']}: update on the status page (no email)"
        return f"incident {incident['id']}: {args.action} sent, now {incident['status']}"
    window = answer["window"]
    done = {"add": "planned", "extend": "extended", "cancel": "cancelled"}[args.action]
    return (
        f"maintenance {window['id']} {done}: {','.join(window['services'])} "
        f"from {when(window['start'])} to {when(window['end'])} ({window['state']})"
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(row[n])) for row in [header, *rows]) for n in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _detail(incident: dict[str, Any], timeline: list[dict[str, Any]], zone: ZoneInfo) -> str:
    """Every field that has a value, then the timeline, oldest first."""
    shown = {k: v for k, v in incident.items() if v not in (None, "", [], {}, False, 0)}
    width = max(map(len, shown))
    lines = [_indent(f"{k.replace('_', ' '):<{width}}  {_cell(k, v, zone)}", width + 2)
             for k, v in shown.items()]  # fmt: skip
    lines += ["", "timeline:"]
    for entry in timeline:
        head = f"  {show_iso(entry['at'], zone)}  {entry['kind']:<10}  {entry['status']:<13}  "
        lines.append(_indent(head + _words(entry["message"]), len(head)).rstrip())
    return "\n".join(lines)


def _words(value: str | dict[str, str]) -> str:
    """An operator's message: one text, or each language's on its own line."""
    if isinstance(value, dict):
        return "\n".join(f"[{language}] {text}" for language, text in value.items())
    return value


def _cell(key: str, value: Any, zone: ZoneInfo) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return _words(value)
    return show_iso(value, zone) if key.endswith("_at") else str(value)


def _indent(text: str, width: int) -> str:
    """Continuation lines of a multi-line text aligned under its first."""
    return text.replace("\n", "\n" + " " * width)
