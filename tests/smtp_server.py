"""A real SMTP server for tests that misbehaves on demand; every knob can change mid-test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from monitor.cli.smtpsink import ReceivedMessage, SmtpSink


class FailingSmtpServer(SmtpSink):
    """SmtpSink whose replies tests can turn into refusals, drops and delays."""

    def __init__(self, port: int = 0, *, auth_in_clear: bool = False) -> None:
        super().__init__(port=port)
        self.fail_mail_with: tuple[int, str] | None = None  # reply to every MAIL FROM
        self.reject_rcpt: dict[str, str] = {}  # address -> full reply, e.g. "550 5.1.1 ..."
        self.drop_after_data = False  # keep the message, then hang up before the final 250
        # Like drop_after_data, for the messages this returns True for (given once stored).
        self.drop_when: Callable[[ReceivedMessage], bool] | None = None
        self.tarpit_s = 0.0  # send every reply one byte at a time, this many seconds apart
        self.rcpts: list[str] = []  # every RCPT TO address, refused ones included
        self.mail_at: list[float] = []  # time.monotonic() of every MAIL FROM
        self.raw: list[bytes] = []  # every message exactly as received, as in ``messages``
        self.slow_s = 0.0  # delay before every reply
        self.commands: list[str] = []  # every command verb received, in order
        # Advertise AUTH without TLS, so a test can see whether a client would use it.
        self.auth_in_clear = auth_in_clear
        self.refuse_auth = False  # with auth_in_clear: answer every login 535

    def make_protocol(self) -> SMTP:
        """A protocol that records commands and honours ``slow_s``."""
        return _TestSMTP(
            self,
            hostname="test-sink",
            loop=asyncio.get_running_loop(),
            auth_require_tls=not self.auth_in_clear,
            authenticator=self._authenticate if self.auth_in_clear else None,
        )

    def _authenticate(self, *_args: Any) -> AuthResult:
        """Accept any login, unless ``refuse_auth`` is set."""
        if self.refuse_auth:  # handled=False: aiosmtpd itself answers 535, as servers do
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True)

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse the sender while ``fail_mail_with`` is set."""
        self.mail_at.append(time.monotonic())
        if self.fail_mail_with is not None:
            code, text = self.fail_mail_with
            return f"{code} {text}"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse the recipients listed in ``reject_rcpt``."""
        self.rcpts.append(address)
        if address in self.reject_rcpt:
            return self.reject_rcpt[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        """Keep the message; with ``drop_after_data``, hang up instead of confirming it."""
        drop = self.drop_after_data  # as it was when DATA came, whatever on_message changes
        self.raw.append(envelope.original_content)
        await self.record(envelope)
        if self.drop_when is not None and self.drop_when(self.messages[-1]):
            drop = True
        if drop and server.transport is not None:
            server.transport.close()
            await asyncio.Event().wait()  # cancelled by aiosmtpd when the connection is lost
        return "250 OK"


class _TestSMTP(SMTP):
    def __init__(self, handler: FailingSmtpServer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._flaky = handler
        # Wrap each command so the test can see exactly what the client sent.
        self._smtp_methods = {
            name: self._recording(name, method) for name, method in self._smtp_methods.items()
        }

    def _recording(
        self, name: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        async def wrapper(arg: str | None) -> None:
            self._flaky.commands.append(name)
            await method(arg)

        return wrapper

    async def push(self, status: Any) -> None:
        if self._flaky.slow_s:
            await asyncio.sleep(self._flaky.slow_s)
        if not self._flaky.tarpit_s:
            await super().push(status)
            return
        data = (status if isinstance(status, bytes) else status.encode()) + b"\r\n"
        for index in range(len(data)):  # cancelled by aiosmtpd when the client hangs up
            await asyncio.sleep(self._flaky.tarpit_s)
            transport = self.transport
            if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
                return
            transport.write(data[index : index + 1])
