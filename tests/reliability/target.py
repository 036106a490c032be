"""The breakable HTTP target of the reliability suite (served by the ``target`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Target:
    """A real aiohttp server on 127.0.0.1; a path whose first segment is in ``broken`` is 503."""

    url: str = ""
    broken: set[str] = field(default_factory=set)
