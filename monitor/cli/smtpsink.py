"""A recording SMTP server on the running event loop, for ``forewarn demo`` and the tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiosmtpd.smtp import SMTP


class ReceivedMessage(NamedTuple):
    """One message the sink accepted."""

    envelope_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = b""  # the DATA as sent: re-serialising ``message`` would re-encode headers


class SmtpSink:
    """Accepts every message on 127.0.0.1 and keeps it in ``messages``.

    It is also the aiosmtpd handler: subclasses add ``handle_MAIL``/``handle_RCPT`` hooks or
    override ``make_protocol`` to misbehave on purpose.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_message: Callable[[ReceivedMessage], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.messages: list[ReceivedMessage] = []
        self.connections = 0  # sessions opened so far, to observe connection reuse
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self._arrived = asyncio.Condition()

    def make_protocol(self) -> SMTP:
        """A fresh aiosmtpd protocol serving one connection with this sink as handler."""
        # A fixed hostname: the default, socket.getfqdn(), can block on DNS for seconds.
        return SMTP(self, hostname="forewarn-sink", loop=asyncio.get_running_loop())

    def _protocol(self) -> SMTP:
        protocol = self.make_protocol()
        self.connections += 1
        # Forget finished sessions so a long demo does not accumulate them.
        self._sessions = {s for s in self._sessions if s.transport is not None}
        self._sessions.add(protocol)
        return protocol

    async def start(self) -> None:
        """Listen; when ``port`` was 0 it becomes the port the system chose."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open session, as a crashed server would."""
        if self._server is None:
            return
        self._server.close()
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: record the message and accept it."""
        await self.record(envelope)
        return "250 2.0.0 OK: queued"

    async def record(self, envelope: Any) -> None:
        """Keep the message from ``envelope`` and wake whoever waits for it."""
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)  # guaranteed by policy.default
        received = ReceivedMessage(
            str(envelope.mail_from),
            list(envelope.rcpt_tos),
            parsed,
            bytes(envelope.original_content),
        )
        self.messages.append(received)
        if self.on_message is not None:
            self.on_message(received)
        async with self._arrived:
            self._arrived.notify_all()

    # A timeout argument rather than asyncio.timeout() at call sites: tests read better.
    async def wait_for(self, count: int, timeout: float) -> list[ReceivedMessage]:  # noqa: ASYNC109
        """Wait until at least ``count`` messages arrived; TimeoutError after ``timeout`` s."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)
