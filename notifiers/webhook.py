"""Webhook channel: a JSON POST (Slack-compatible, or a preset's shape) to the notice's URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import aiohttp
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from yarl import URL

from notifiers import payloads
from notifiers.base import (
    ChannelKind,
    ChannelName,
    ChannelSettings,
    DeliverySettings,
    Message,
    NotifierError,
)
from notifiers.bodytemplate import check_template, render_body

_TIMEOUT_S = 10.0
_USER_AGENT = "forewarn (outage notices)"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
SIGNATURE_HEADER = "X-Forewarn-Signature"
TIMESTAMP_HEADER = "X-Forewarn-Timestamp"
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# Set by forewarn itself: a header of the same name would contradict the body or its signature.
_RESERVED = {
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    SIGNATURE_HEADER.lower(),
    TIMESTAMP_HEADER.lower(),
}


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


def read_secret(path: Path) -> str:
    """The one-line secret ``path`` holds; errors name the file, never what it holds."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{path} is empty")
    if _CONTROL.search(text):
        raise ValueError(f"{path} must hold one line, without control characters")
    return text


def _header_name(name: str) -> str:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name[:64]!r} is not a valid header name")
    if name.lower() in _RESERVED:
        raise ValueError(f"{name} is set by forewarn itself")
    return name


def _header_value(value: object) -> object:
    """An inline text, or ``{file: path}`` read now (its content is never quoted)."""
    if isinstance(value, dict):
        if set(value) != {"file"} or not isinstance(value["file"], str):
            raise ValueError("must be a text or {file: path}")
        return read_secret(Path(value["file"]))
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not contain control characters such as a line break")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[SecretStr, BeforeValidator(_header_value)]


class WebhookChannel(ChannelSettings):
    """An ops channel receiving JSON: Slack-compatible ``{"text": …}`` or a preset's shape."""

    type: Literal["webhook"]
    name: ChannelName = "webhook"
    url: Annotated[str, AfterValidator(_postable)] | None = None
    preset: payloads.Preset | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    routing_key_file: Path | None = None  # PagerDuty's integration key, for preset pagerduty
    secret_file: Path | None = None  # the HMAC-SHA256 key signing each body
    template: Annotated[str, AfterValidator(check_template)] | None = None  # the JSON body
    _routing_key: str = PrivateAttr("")
    _secret: bytes = PrivateAttr(b"")

    @field_validator("routing_key_file", "secret_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_secret(path)
        return path

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.preset == "pagerduty" and self.routing_key_file is None:
            raise ValueError("preset pagerduty needs routing_key_file: the integration key's file")
        if self.preset != "pagerduty" and self.routing_key_file is not None:
            raise ValueError("routing_key_file is only for preset: pagerduty")
        if self.template is not None and self.preset is not None:
            raise ValueError("template and preset exclude each other: a preset is a template")
        if self.url is None and self.preset != "pagerduty":
            raise ValueError("needs url: the incoming webhook's address")
        if self.routing_key_file is not None:
            self._routing_key = read_secret(self.routing_key_file)
        if self.secret_file is not None:
            self._secret = read_secret(self.secret_file).encode("utf-8")
        return self

    @property
    def address(self) -> str:
        """The URL notices are POSTed to."""
        return self.url or PAGERDUTY_URL

    def payload(self, notice: Message) -> dict[str, Any]:
        """The JSON body for ``notice``, in the shape of this channel's preset."""
        if self.preset == "pagerduty":
            return payloads.pagerduty(notice, self._routing_key)
        if self.preset == "teams":
            return payloads.teams(notice)
        if self.preset == "discord":
            return payloads.discord(notice)
        return payloads.slack(notice)

    def request(self, notice: Message, now: float) -> tuple[bytes, dict[str, str]]:
        """The body and headers to POST, signed when the channel has a secret_file."""
        if self.template is not None:
            body = render_body(self.template, notice)
        else:
            body = json.dumps(self.payload(notice), ensure_ascii=False).encode("utf-8")
        headers = {k: v.get_secret_value() for k, v in self.headers.items()}
        headers["Content-Type"] = "application/json"
        if self._secret:
            stamp = str(int(now))
            signed = stamp.encode("ascii") + b"." + body
            digest = hmac.new(self._secret, signed, hashlib.sha256).hexdigest()
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        return body, headers


_PLAIN = WebhookChannel(type="webhook", url="http://localhost/")  # for an unconfigured URL


class WebhookNotifier:
    """POSTs each notice's JSON to its address; one HTTP session for all of them."""

    def __init__(
        self, config: DeliverySettings, state_dir: Path, *, timeout: float = _TIMEOUT_S
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._channels = [c for c in config.ops if isinstance(c, WebhookChannel)]

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: the constructor may run before the event loop does.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": _USER_AGENT}
            )
        return self._session

    def channel(self, notice: Message) -> WebhookChannel:
        """The ops channel a notice is for: its name ends the key; else by URL; else plain."""
        same_url = [c for c in self._channels if c.address == notice.address]
        name = notice.key.rpartition(":")[2]
        named = [c for c in same_url if c.name == name]
        return (named or same_url or [_PLAIN])[0]

    async def send(self, notice: Message) -> None:
        """POST the notice; 2xx is success, 408/429/5xx and network errors are transient."""
        try:
            body, headers = self.channel(notice).request(notice, time.time())
        except Exception as exc:  # the operator's template failed on this notice's values
            raise NotifierError(
                f"webhook template failed: {type(exc).__name__}", permanent=True, setup=True
            ) from exc
        # Error messages never quote the URL (it usually embeds a token) nor any header.
        try:
            async with self._client().post(
                notice.address, data=body, headers=headers, allow_redirects=False
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
