"""The ``status_page:`` section: the company's title, logo and contact on the public pages."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from lxml import etree
from pydantic import Field, field_validator

from monitor.config.errors import Problems
from monitor.config.yamlsource import Located
from monitor.core.fields import HttpUrl, LocalizedText, StrictModel
from notifiers.message import EMAIL_PATTERN

MAX_LOGO_BYTES = 256 * 1024
SVG = "image/svg+xml"
_RASTERS = {b"\x89PNG\r\n\x1a\n": ("image/png", "png"), b"\xff\xd8\xff": ("image/jpeg", "jpg")}
_SVG_ROOT = "{http://www.w3.org/2000/svg}svg"


class StatusPageConfig(StrictModel):
    """What the company shows of itself on the page, the feed and the JSON; all optional."""

    title: LocalizedText | None = None  # a string, or {fr, en}
    logo_file: Path | None = None  # PNG, JPEG or SVG, read when the config loads
    contact_url: HttpUrl | None = None
    contact_email: Annotated[str, Field(pattern=EMAIL_PATTERN)] | None = None

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for text in (value or {}).values():
            if not text.strip() or len(text) > 120 or any(ord(c) < 32 for c in text):
                raise ValueError("must be one line of 1 to 120 characters")
        return value

    def title_in(self, language: str) -> str:
        """The title in ``language``, else in the language it has ("" when unset)."""
        if self.title is None:
            return ""
        return self.title.get(language) or next(iter(self.title.values()))  # type: ignore[call-overload]


class Logo(StrictModel):
    """The logo's bytes, read at load, with its type and the hashed name it is served under."""

    body: bytes
    media_type: str
    name: str  # logo-<16 hex of its SHA-256>.<png|jpg|svg>


def read_logo(raw: dict[str, Any], doc: Located, problems: Problems) -> Logo | None:
    """Read ``status_page.logo_file`` (resolved beside checks.yaml), capped and type-checked."""
    section = raw.get("status_page")
    name = section.get("logo_file") if isinstance(section, dict) else None
    key = ("status_page", "logo_file")
    if not isinstance(name, str) or key in {k for p, k in problems.keys if p == doc.path}:
        return None  # absent, mistyped (validation says so) or unreadable (said already)
    try:
        with Path(name).open("rb") as handle:
            body = handle.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        problems.add(doc, key, f"cannot read {name}: {exc.strerror or exc}")
        return None
    if len(body) > MAX_LOGO_BYTES:
        problems.add(doc, key, f"is larger than {MAX_LOGO_BYTES // 1024} KiB")
        return None
    kind = logo_type(body)
    if kind is None:
        problems.add(doc, key, "must be a PNG, JPEG or SVG image")
        return None
    media_type, extension = kind
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Logo(body=body, media_type=media_type, name=f"logo-{digest}.{extension}")


def logo_type(body: bytes) -> tuple[str, str] | None:
    """``(media type, extension)`` of a PNG, JPEG or SVG image, told by its content; else None."""
    for magic, kind in _RASTERS.items():
        if body.startswith(magic):
            return kind
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None
    return (SVG, "svg") if root is not None and root.tag == _SVG_ROOT else None
