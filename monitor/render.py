"""Email templates: sandboxed Jinja2, French and English, plain text and HTML."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).parent / "templates" / "email"
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def format_time(at: float, *, zone: ZoneInfo, language: str) -> str:
    """A local time as a customer reads it: ``21/11/2026 à 13:02 (Europe/Paris)``."""
    local = datetime.fromtimestamp(at, zone)
    if language == "fr":
        return f"{local:%d/%m/%Y} à {local:%H:%M} ({zone.key})"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M} ({zone.key})"


def format_duration(seconds: float, language: str) -> str:
    """A human duration: ``47 s``, ``12 min``, ``2 h 05 min``, ``1 j 3 h`` / ``1 d 3 h``."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} {'j' if language == 'fr' else 'd'} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


class Renderer:
    """Renders ``<language>/<kind>.subject|.txt|.html`` from the packaged templates."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """Subject, plain text and HTML of one message."""
        parts = (
            self.env.get_template(f"{language}/{kind}.{ext}").render(context)
            for ext in ("subject", "txt", "html")
        )
        subject, text, html = parts
        return subject.strip(), text, html
