"""The delivery-channel contract: a Notifier sends one Message or says why it could not.

Channels depend on nothing of ``monitor``: what they read of a notice (``Message``) and of the
``notices:`` settings (``DeliverySettings``) are protocols owned here, which monitor's
``Notice`` and ``NoticesConfig`` satisfy. A channel is one module declaring its ops settings
model and its factory as a ``ChannelKind``, plus one line in ``notifiers.NOTIFIERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

# The same rule as monitor's identifiers (a channel name is a recipient id and goes into
# keys); tests/test_channels.py checks that the two stay equal.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

ChannelName = Annotated[str, Field(pattern=NAME_PATTERN)]
"""An ops channel's name: a short lowercase id."""


class Message(Protocol):
    """What a channel reads of one notice: one rendered message for one address."""

    @property
    def key(self) -> str:
        """The idempotency key ``incident:sequence:recipient``, the Message-ID's seed."""
        ...

    @property
    def incident_id(self) -> str:
        """The incident it is about (or ``canary``, ``delivery``… for forewarn's own news)."""
        ...

    @property
    def kind(self) -> str:
        """What the message is about (first, update, resolved, ops, …)."""
        ...

    @property
    def address(self) -> str:
        """Where it goes: an email address or a webhook URL."""
        ...

    @property
    def language(self) -> str:
        """The language it is written in."""
        ...

    @property
    def subject(self) -> str:
        """The subject line."""
        ...

    @property
    def text(self) -> str:
        """The plain-text body."""
        ...

    @property
    def html(self) -> str:
        """The HTML body."""
        ...

    @property
    def created_at(self) -> float:
        """When it was planned (UNIX seconds): the email's Date, the same on every retry."""
        ...

    @property
    def unsubscribe_url(self) -> str:
        """The one-click unsubscribe link; empty for ops channels."""
        ...


class NotifierError(Exception):
    """A notice could not be delivered; ``permanent`` says whether retrying can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        hard_bounce: bool = False,
        ambiguous: bool = False,
        setup: bool = False,
        step: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code  # the server's status code (SMTP reply or HTTP status), when known
        self.hard_bounce = hard_bounce  # the address does not exist: stop emailing it
        # The message may have been delivered (connection lost awaiting the final reply): a
        # retry can duplicate it, which the stable Message-ID lets receivers collapse.
        self.ambiguous = ambiguous
        # The fault is in forewarn's own delivery settings (TLS, credentials), not in this
        # notice: every notice on the channel fails alike until an operator fixes them.
        self.setup = setup
        # Where the exchange stopped (email: connect, starttls, auth, mail, rcpt, data).
        self.step = step

    def __repr__(self) -> str:
        return (
            f"NotifierError({self.message!r}, permanent={self.permanent}, code={self.code}, "
            f"hard_bounce={self.hard_bounce}, ambiguous={self.ambiguous}, setup={self.setup})"
        )


class Notifier(Protocol):
    """One delivery channel (email, webhook); shared by every notice on that channel."""

    async def send(self, notice: Message) -> None:
        """Deliver ``notice``; raise NotifierError when it was not (or may not have been)."""
        ...

    async def close(self) -> None:
        """Release connections and sessions."""
        ...


class SmtpSettings(Protocol):
    """How to reach the mail server (``notices.smtp``)."""

    @property
    def host(self) -> str:
        """The server's name or address."""
        ...

    @property
    def port(self) -> int:
        """Its port."""
        ...

    @property
    def starttls(self) -> bool:
        """Upgrade the connection with STARTTLS."""
        ...

    @property
    def tls(self) -> bool:
        """Implicit TLS (port 465)."""
        ...

    @property
    def username(self) -> str | None:
        """The login, if the server wants one."""
        ...

    @property
    def password_file(self) -> Path | None:
        """The file holding the password."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds one send may take."""
        ...


class DeliverySettings(Protocol):
    """What a channel's factory may read of the ``notices:`` section."""

    @property
    def from_(self) -> str:
        """The sender, ``Support <support@example.net>``."""
        ...

    @property
    def transport(self) -> str:
        """``smtp``, or ``file`` (.eml files under state_dir/mail)."""
        ...

    @property
    def smtp(self) -> SmtpSettings:
        """The mail server."""
        ...

    @property
    def ops(self) -> Sequence[ChannelSettings]:
        """The ops channels, each with its own settings (a webhook's preset, headers…)."""
        ...


class ChannelSettings(BaseModel):
    """One ops channel under ``notices.ops``: its ``type`` is its key in ``NOTIFIERS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: ChannelName

    @property
    def address(self) -> str:
        """Where this channel's notices go (a mailbox, a URL)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """A channel: its ops settings model and how to build its notifier."""

    settings: type[ChannelSettings]
    factory: Callable[[DeliverySettings, Path], Notifier]  # (notices settings, state_dir)
    # Bounced and unsubscribed addresses are never sent to on this channel.
    suppressible: bool = False
