"""Webhook channel: a Slack-compatible JSON POST to the notice's URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import aiohttp
from pydantic import AfterValidator
from yarl import URL

from notifiers.base import (
    ChannelKind,
    ChannelName,
    ChannelSettings,
    DeliverySettings,
    Message,
    NotifierError,
)

_TIMEOUT_S = 10.0
_USER_AGENT = "forewarn (outage notices)"


def _postable(url: str) -> str:
    """Accept only an http:// or https:// URL that names a host and that aiohttp can parse."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("must not contain control characters such as a line break")
    try:
        parsed = URL(url)
        parsed.port  # noqa: B018 -- parsing the port is what finds "host:99999" or "host:abc"
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {str(exc)[:80]}") from None
    if not parsed.host or any(ch.isspace() for ch in parsed.host):
        raise ValueError("must name a host, such as https://ws.example.net/path")
    return url


class WebhookChannel(ChannelSettings):
    """An ops channel receiving Slack-compatible ``{"text": …}`` JSON."""

    type: Literal["webhook"]
    name: ChannelName = "webhook"
    url: Annotated[str, AfterValidator(_postable)]

    @property
    def address(self) -> str:
        """The URL notices are POSTed to."""
        return self.url


class WebhookNotifier:
    """POSTs ``{"text": …}`` to each notice's address; one HTTP session for all of them."""

    def __init__(
        self, config: DeliverySettings, state_dir: Path, *, timeout: float = _TIMEOUT_S
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: the constructor may run before the event loop does.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": _USER_AGENT}
            )
        return self._session

    async def send(self, notice: Message) -> None:
        """POST the notice; 2xx is success, 408/429/5xx and network errors are transient."""
        # Ops texts start with their title already; a text without one gets the subject.
        text = notice.text.rstrip("\n")
        body = {"text": text if text.startswith(notice.subject) else f"{notice.subject}\n\n{text}"}
        # Error messages never quote the URL: a webhook URL usually embeds its secret token.
        try:
            async with self._client().post(
                notice.address, json=body, allow_redirects=False
            ) as response:
                status = response.status
                await response.read()  # drain, so the connection can be reused
        except aiohttp.InvalidURL as exc:
            raise NotifierError("invalid webhook URL", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifierError(
                f"webhook unreachable: {type(exc).__name__}", permanent=False
            ) from exc
        if 200 <= status < 300:
            return
        transient = status in (408, 429) or status >= 500
        raise NotifierError(f"webhook answered HTTP {status}", permanent=not transient, code=status)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


KIND = ChannelKind(settings=WebhookChannel, factory=WebhookNotifier)
