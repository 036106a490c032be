"""Email channel: the messages of ``notifiers.message`` over pooled SMTP or into .eml files."""

from __future__ import annotations

import asyncio
import contextlib
import email.header
import email.policy
import email.utils
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Literal

import aiosmtplib
from pydantic import Field

from notifiers.base import (
    ChannelKind,
    ChannelName,
    ChannelSettings,
    DeliverySettings,
    Message,
    NotifierError,
)
from notifiers.message import (
    EMAIL_PATTERN,
    build_email,
    clean_header,
    key_digest,
    valid_mailbox,
    wire_bytes,
)

_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")
# 5.1.7/5.1.8 name a bad *sender*; servers often report them at RCPT time (delayed reject).
_SENDER_STATUSES = ("5.1.7", "5.1.8")
_QUIT_TIMEOUT = 5.0
# Steps of setting up the session: a refusal there is about our relay account, not a notice.
_CONNECTING = ("connect", "starttls", "auth")


@dataclass
class _Progress:
    """How far one SMTP transaction got, to classify the error that ends it."""

    phase: str = "connect"  # connect | starttls | auth | mail | rcpt | data


class EmailChannel(ChannelSettings):
    """An ops mailbox."""

    type: Literal["email"]
    name: ChannelName = "email"
    to: Annotated[str, Field(pattern=EMAIL_PATTERN)]

    @property
    def address(self) -> str:
        """The mailbox."""
        return self.to


class EmailNotifier:
    """Sends notices as email: over SMTP (a small connection pool) or as .eml files."""

    def __init__(self, config: DeliverySettings, state_dir: Path, *, pool_size: int = 4) -> None:
        if config.smtp.starttls and config.smtp.tls:
            raise ValueError("notices.smtp: starttls and tls cannot both be set")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._config = config
        self._smtp = config.smtp
        self._sender = clean_header(config.from_)
        self._envelope_from = email.utils.parseaddr(self._sender)[1]
        self._mail_dir = state_dir / "mail"
        self._password: str | None = None
        if self._smtp.password_file is not None:
            self._password = self._smtp.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        # The semaphore bounds sends in progress, hence open connections; idle ones wait in a
        # plain list, so no lock is held across network I/O.
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False

    async def send(self, notice: Message) -> None:
        """Deliver ``notice`` by the configured transport; raise NotifierError otherwise."""
        if not valid_mailbox(notice.address):
            # Checked for .eml files too: a To header naming two addresses would reach both
            # through any relay that reads recipients from the headers.
            raise NotifierError("invalid address (not one plain ASCII mailbox)", permanent=True)
        message = build_email(notice, self._sender)
        if self._config.transport == "file":
            try:
                await asyncio.to_thread(
                    self._write_eml, key_digest(notice.key), wire_bytes(message)
                )
            except OSError as exc:
                raise NotifierError(f"cannot write .eml: {exc}", permanent=False) from exc
            return
        await self._send_smtp(message, notice.address)

    def _write_eml(self, digest: str, data: bytes) -> None:
        """Write atomically under a name fixed by the key, so a retry replaces, never adds."""
        _private_folder(self._mail_dir)
        fd, tmp = tempfile.mkstemp(dir=self._mail_dir, prefix=f".{digest}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._mail_dir / f"{digest}.eml")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def _send_smtp(self, message: EmailMessage, recipient: str) -> None:
        payload = wire_bytes(message)
        progress = _Progress()
        try:
            # One deadline for the whole exchange with the server; waiting for a free pool slot
            # is not the server's slowness, so it does not count.
            async with self._slots, asyncio.timeout(self._smtp.timeout):
                await self._transact(payload, recipient, progress)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise _reply_error(exc, "auth", setup=True) from exc
        except ssl.SSLCertVerificationError as exc:
            raise NotifierError(
                f"TLS certificate not trusted: {exc}",
                permanent=False,
                setup=True,
                step=progress.phase,
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _reply_error(exc.recipients[0], "rcpt") from exc
        except aiosmtplib.SMTPHeloError as exc:  # EHLO is sent lazily, by the first MAIL
            raise _reply_error(exc, "connect") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_error(exc, progress.phase) from exc
        except (TimeoutError, OSError, aiosmtplib.SMTPException) as exc:
            # Lost or stalled once DATA began: the message may have been delivered. aiosmtplib
            # sends DATA and the content in one call, so a drop before the 354 counts too;
            # erring that way only mislabels an outcome, never loses a notice.
            raise NotifierError(
                f"{type(exc).__name__} during {progress.phase}: {exc}",
                permanent=False,
                ambiguous=progress.phase == "data",
                step=progress.phase,
            ) from exc
        except ValueError as exc:  # an address aiosmtplib refuses to put on the wire
            raise NotifierError(
                f"invalid address: {exc}", permanent=True, step=progress.phase
            ) from exc

    async def _transact(self, payload: bytes, recipient: str, progress: _Progress) -> None:
        for first_try in (True, False):
            progress.phase = "connect"
            client, reused = await self._checkout(progress)
            try:
                progress.phase = "mail"
                await client.mail(self._envelope_from)
                progress.phase = "rcpt"
                await client.rcpt(recipient)
                progress.phase = "data"
                await client.data(payload)
            except aiosmtplib.SMTPServerDisconnected:
                client.close()
                # A pooled connection the server dropped while idle: nothing was sent yet,
                # so one retry on a fresh connection is safe.
                if first_try and reused and progress.phase == "mail":
                    continue
                raise
            except BaseException:
                # After an error (or a cancellation) the session state is unknown: discard.
                client.close()
                raise
            self._checkin(client)
            return

    async def _checkout(self, progress: _Progress) -> tuple[aiosmtplib.SMTP, bool]:
        """An idle pooled connection, else a new one; and whether it was reused."""
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            client.close()
        client = aiosmtplib.SMTP(
            hostname=self._smtp.host,
            port=self._smtp.port,
            # STARTTLS and AUTH are done by _secure(), not by connect(): False, not None,
            # or opportunistic mode would fall back to cleartext silently.
            start_tls=False,
            use_tls=self._smtp.tls,
            timeout=self._smtp.timeout,
        )
        await client.connect()
        try:
            await self._secure(client, progress)
        except BaseException:
            client.close()
            raise
        return client, False

    async def _secure(self, client: aiosmtplib.SMTP, progress: _Progress) -> None:
        """STARTTLS, then AUTH, as configured; a server unable to do either is a setup fault."""
        if self._smtp.starttls:
            progress.phase = "starttls"
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise NotifierError(
                    "the server does not offer STARTTLS, which notices.smtp.starttls requires;"
                    " nothing was sent",
                    permanent=False,
                    setup=True,
                    step="starttls",
                )
            await client.starttls()
        if self._smtp.username is not None:
            progress.phase = "auth"
            await client.ehlo()
            if not client.supports_extension("auth"):
                raise NotifierError(
                    "the server offers no AUTH for notices.smtp.username; nothing was sent",
                    permanent=False,
                    setup=True,
                    step="auth",
                )
            await client.login(self._smtp.username, self._password or "")

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if self._closed or not client.is_connected:
            client.close()
        else:
            self._idle.append(client)

    async def close(self) -> None:
        """Say QUIT on idle connections and drop them; busy ones close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit(timeout=min(_QUIT_TIMEOUT, self._smtp.timeout))
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass  # the server may already have gone; closing is all that matters
            finally:
                client.close()


def _reply_error(
    exc: aiosmtplib.SMTPResponseException, phase: str, *, setup: bool = False
) -> NotifierError:
    """Classify an SMTP error reply: 5xx is permanent (unless connecting), 5.1.x at RCPT bounces."""
    code, text = exc.code, clean_header(exc.message)
    # A refusal while connecting (greeting, EHLO, STARTTLS, AUTH) is about our relay account,
    # not this notice: failing every notice permanently over a bad password would lose them.
    # So is 530 (authentication or encryption required) wherever it comes: every notice would
    # get it until an operator fixes the settings.
    setup = setup or code == 530
    permanent = code >= 500 and phase not in _CONNECTING and not setup
    status = _ENHANCED.match(text)
    hard_bounce = (
        permanent
        and phase == "rcpt"
        and status is not None
        and status.group(1).startswith("5.1.")
        and status.group(1) not in _SENDER_STATUSES
    )
    return NotifierError(
        f"SMTP {code} {text} (at {phase})",
        permanent=permanent,
        code=code,
        hard_bounce=hard_bounce,
        setup=setup,
        step=phase,
    )


def _private_folder(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 whatever the umask: emails name customers.

    monitor.core.private does the same for the daemon's state; channels import nothing of
    monitor, hence these four lines.
    """
    for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask; chmod is not


KIND = ChannelKind(settings=EmailChannel, factory=EmailNotifier, suppressible=True)
