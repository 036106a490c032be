"""``forewarn notices send-test``: one test email through the configured transport.

Built and sent as every notice is (``notifiers.email``: the real message builder, STARTTLS,
AUTH and the pool), so a success means customers' emails can leave; a failure names the SMTP
step that refused (connect, STARTTLS, AUTH, MAIL, RCPT, DATA) and the server's reply.
"""

from __future__ import annotations

import asyncio
import html
import sys
import time

from monitor.config.load import Config
from monitor.core.notice import Notice, NoticeKind, notice_key
from notifiers import NOTIFIERS
from notifiers.base import NotifierError
from notifiers.message import key_digest, valid_mailbox

SENT, FAILED, USAGE = 0, 1, 2
STEPS = {
    "connect": "connect (reaching the server and its greeting)",
    "starttls": "STARTTLS",
    "auth": "AUTH (the login of notices.smtp.username)",
    "mail": "MAIL FROM (the sender, notices.from)",
    "rcpt": "RCPT TO (the recipient)",
    "data": "DATA (the message itself)",
}
_TEXT = {
    "fr": (
        "[forewarn] Email de test",
        "Ceci est un email de test de forewarn, envoyé par « forewarn notices send-test ».\n\n"
        "S'il vous parvient, les notifications aux clients peuvent partir par {route}.\n",
    ),
    "en": (
        "[forewarn] Test email",
        "This is a test email from forewarn, sent by `forewarn notices send-test`.\n\n"
        "If it reached you, customer notices can leave through {route}.\n",
    ),
}


def build_test_notice(config: Config, address: str, now: float) -> Notice:
    """The test email to ``address``, in ``notices.default_language``; a fresh Message-ID."""
    language = config.notices.default_language
    smtp = config.notices.smtp
    route = (
        f"SMTP {smtp.host}:{smtp.port}"
        if config.notices.transport == "smtp"
        else f"file {config.daemon.state_dir / 'mail'}"
    )
    subject, text = _TEXT[language]
    text = text.format(route=route)
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in text.strip().split("\n\n"))
    return Notice(
        key=notice_key("test", int(now * 1000), address),
        incident_id="test",
        kind=NoticeKind.TEST,
        channel="email",
        recipient="test",
        address=address,
        language=language,
        subject=subject,
        text=text,
        html=f'<!doctype html>\n<html lang="{language}"><body>\n{body}</body></html>\n',
        created_at=now,
    )


async def _send(config: Config, notice: Notice) -> None:
    notifier = NOTIFIERS["email"].factory(config.notices, config.daemon.state_dir)
    try:
        await notifier.send(notice)
    finally:
        await notifier.close()


def run_send_test(config: Config, address: str) -> int:
    """The ``send-test`` command: what happened on stdout, or the failing step on stderr."""
    if not valid_mailbox(address):
        print(f"forewarn: --to: {address!r} is not one plain email address", file=sys.stderr)
        return USAGE
    notice = build_test_notice(config, address, time.time())
    try:
        asyncio.run(_send(config, notice))
    except NotifierError as exc:
        step = STEPS.get(exc.step, exc.step or "sending")
        print(f"forewarn: the test email was not sent: failed at {step}: {exc.message}",
              file=sys.stderr)  # fmt: skip
        return FAILED
    except OSError as exc:  # the password file unreadable, and the like
        print(f"forewarn: the test email was not sent: {exc}", file=sys.stderr)
        return FAILED
    if config.notices.transport == "file":
        path = config.daemon.state_dir / "mail" / f"{key_digest(notice.key)}.eml"
        print(f"written to {path} (notices.transport is file: nothing leaves this host)")
    else:
        smtp = config.notices.smtp
        print(f"sent to {address} through {smtp.host}:{smtp.port}: the server accepted it")
    return SENT
