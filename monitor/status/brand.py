"""The company on its status page: title, logo, contact — only what ``status_page:`` sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from monitor.config.load import Config
from monitor.core.fields import LANGUAGES


@dataclass(frozen=True, slots=True)
class Brand:
    """What the public sees of the company; each part empty when not configured."""

    titles: Mapping[str, str] = field(default_factory=dict)  # language → title
    logo: str = ""  # the logo's file name under the public URL, which changes with its content
    contact_url: str = ""
    contact_email: str = ""

    def title(self, language: str) -> str:
        """The title in ``language`` ("" when none is configured)."""
        return self.titles.get(language, "")

    @property
    def mailto(self) -> str:
        """A ``mailto:`` link to the contact address ("" when none)."""
        return f"mailto:{quote(self.contact_email, safe='@+')}" if self.contact_email else ""


def brand(config: Config) -> Brand:
    """The public part of ``config.status_page``: never the logo's path on disk."""
    page = config.status_page
    return Brand(
        titles={language: page.title_in(language) for language in LANGUAGES if page.title},
        logo=config.logo.name if config.logo else "",
        contact_url=page.contact_url or "",
        contact_email=page.contact_email or "",
    )
