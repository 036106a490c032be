"""The delivery-channel contract: a Notifier sends one Notice or says why it could not."""

from __future__ import annotations

from typing import Protocol

from monitor.core.notice import Notice


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

    def __repr__(self) -> str:
        return (
            f"NotifierError({self.message!r}, permanent={self.permanent}, code={self.code}, "
            f"hard_bounce={self.hard_bounce}, ambiguous={self.ambiguous}, setup={self.setup})"
        )


class Notifier(Protocol):
    """One delivery channel (email, webhook); shared by every notice on that channel."""

    async def send(self, notice: Notice) -> None:
        """Deliver ``notice``; raise NotifierError when it was not (or may not have been)."""
        ...

    async def close(self) -> None:
        """Release connections and sessions."""
        ...
