"""EmailNotifier and build_email against a real SMTP server on 127.0.0.1 and real files."""

from __future__ import annotations

import asyncio
import email
import email.headerregistry
import email.policy
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.notice import Notice
from notifiers import NOTIFIERS
from notifiers.base import NotifierError
from notifiers.email import EmailNotifier
from notifiers.message import build_email
from tests.builders import SENDER, accented_notice, notices_config
from tests.smtp_server import FailingSmtpServer
from tests.waiting import LoopLateness

NOW = 1_700_000_000.0


@pytest.fixture
async def notifier(smtp: FailingSmtpServer, tmp_path: Path) -> AsyncIterator[EmailNotifier]:
    """An SMTP notifier for ``smtp``, closed after the test."""
    sender = EmailNotifier(notices_config(smtp.port), tmp_path)
    yield sender
    await sender.close()


async def send_error(notifier: EmailNotifier, notice: Notice) -> NotifierError:
    """The NotifierError that sending ``notice`` raises."""
    with pytest.raises(NotifierError) as caught:
        await notifier.send(notice)
    return caught.value


def test_message_has_stable_id_safe_headers_and_text_then_html() -> None:
    """The message is multipart/alternative and byte-identical on every build of a key."""
    message = build_email(accented_notice(), SENDER)
    digest = hashlib.sha256(b"inc-1:1:acme").hexdigest()[:32]
    assert message["Message-ID"] == f"<{digest}@example.net>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Forewarn-Kind"] == "first"
    assert message["To"] == "ops@acme.example"
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    data = message.as_bytes()
    assert data == build_email(accented_notice(), SENDER).as_bytes()
    assert data.isascii()  # French text travels as quoted-printable: no 8BITMIME needed
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Suivi de colis : incident en cours (équipe prévenue)"
    body = parsed.get_body(("plain",))
    assert body is not None and "prochain point à 14 h 32" in body.get_content()


async def test_subject_with_crlf_adds_no_header_and_no_recipient(
    smtp: FailingSmtpServer, notifier: EmailNotifier
) -> None:
    """A subject carrying "\\r\\nBcc: evil@x" stays one Subject line and reaches one recipient."""
    await notifier.send(accented_notice(subject="x\r\nBcc: evil@x\nX-Evil: 1"))
    (received,) = await smtp.wait_for(1, 5)
    assert received.rcpt_tos == ["ops@acme.example"]
    assert received.message["Bcc"] is None and received.message["X-Evil"] is None
    assert received.message["Subject"] == "x Bcc: evil@x X-Evil: 1"
    assert "evil@x" not in " ".join(received.message.get_all("To", []))


async def test_file_transport_writes_one_eml_per_key_and_a_retry_overwrites(
    tmp_path: Path,
) -> None:
    """Two keys give two .eml files; sending a key again replaces its file, leaving no temp."""
    sender = NOTIFIERS["email"].factory(notices_config(transport="file"), tmp_path)
    await sender.send(accented_notice("inc-1:1:acme"))
    await sender.send(accented_notice("inc-1:1:globex", address="it@globex.example"))
    await sender.send(accented_notice("inc-1:1:acme"))
    await sender.close()
    files = sorted((tmp_path / "mail").iterdir())
    digest = hashlib.sha256(b"inc-1:1:acme").hexdigest()[:32]
    assert len(files) == 2 and tmp_path / "mail" / f"{digest}.eml" in files
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"].startswith("<") and parsed["X-Forewarn-Kind"] == "first"


async def test_connections_are_pooled_and_reused(smtp: FailingSmtpServer, tmp_path: Path) -> None:
    """Concurrent sends share at most pool_size connections, and later sends reuse them."""
    smtp.slow_s = 0.01
    sender = EmailNotifier(notices_config(smtp.port), tmp_path, pool_size=2)
    try:
        await asyncio.gather(*(sender.send(accented_notice(f"k{i}")) for i in range(8)))
        await sender.send(accented_notice("k-last"))
    finally:
        await sender.close()
    assert len(smtp.messages) == 9
    assert smtp.connections == 2
    assert smtp.commands.count("QUIT") == 2  # close() ends idle sessions politely


async def test_a_connection_cut_while_idle_is_replaced(
    smtp: FailingSmtpServer, notifier: EmailNotifier
) -> None:
    """After the server restarts (cutting pooled sessions) the next send reconnects."""
    await notifier.send(accented_notice("k1"))
    await smtp.stop()
    await smtp.start()  # same port
    await notifier.send(accented_notice("k2"))
    assert [m.message["Message-ID"] for m in smtp.messages] == [
        build_email(accented_notice(k), SENDER)["Message-ID"] for k in ("k1", "k2")
    ]
    assert smtp.connections == 2


@pytest.mark.parametrize(
    ("setup", "permanent", "hard_bounce", "code"),
    [
        ({"fail_mail_with": (421, "4.3.0 try later")}, False, False, 421),
        ({"fail_mail_with": (451, "4.7.1 greylisted")}, False, False, 451),
        ({"fail_mail_with": (550, "5.7.1 sender rejected")}, True, False, 550),
        ({"reject_rcpt": {"ops@acme.example": "550 5.1.1 no such user"}}, True, True, 550),
        ({"reject_rcpt": {"ops@acme.example": "553 5.1.3 bad address syntax"}}, True, True, 553),
        (
            {"reject_rcpt": {"ops@acme.example": "550 5.1.8 bad sender domain"}},
            True,
            False,
            550,
        ),
        ({"reject_rcpt": {"ops@acme.example": "550 5.7.1 relay denied"}}, True, False, 550),
        ({"reject_rcpt": {"ops@acme.example": "450 4.2.2 mailbox full"}}, False, False, 450),
    ],
)
async def test_smtp_replies_map_to_permanent_transient_and_hard_bounce(
    smtp: FailingSmtpServer,
    notifier: EmailNotifier,
    setup: dict[str, Any],
    permanent: bool,
    hard_bounce: bool,
    code: int,
) -> None:
    """5xx is permanent, 4xx transient; only a 5.1.x refusal of the recipient is a hard bounce."""
    for name, value in setup.items():
        setattr(smtp, name, value)
    error = await send_error(notifier, accented_notice())
    assert (error.permanent, error.hard_bounce, error.code, error.ambiguous) == (
        permanent,
        hard_bounce,
        code,
        False,
    )
    assert smtp.messages == []


async def test_drop_after_data_is_transient_and_ambiguous(
    smtp: FailingSmtpServer, notifier: EmailNotifier
) -> None:
    """A connection lost awaiting the final reply may have delivered: transient, ambiguous."""
    smtp.drop_after_data = True
    error = await send_error(notifier, accented_notice())
    assert (error.permanent, error.ambiguous) == (False, True)
    assert len(smtp.messages) == 1


async def test_unreachable_server_is_transient(tmp_path: Path) -> None:
    """A closed port is a transient, unambiguous failure."""
    async with FailingSmtpServer() as server:
        port = server.port
    sender = EmailNotifier(notices_config(port), tmp_path)
    error = await send_error(sender, accented_notice())
    await sender.close()
    assert (error.permanent, error.ambiguous) == (False, False)


async def test_whole_send_has_one_deadline(smtp: FailingSmtpServer, tmp_path: Path) -> None:
    """A server answering every line slowly cannot stretch a send past smtp.timeout."""
    smtp.slow_s = 0.05  # greeting + EHLO + MAIL + RCPT + DATA alone exceed 0.12 s
    sender = EmailNotifier(notices_config(smtp.port, timeout="120ms"), tmp_path)
    loop = asyncio.get_running_loop()
    async with LoopLateness() as lateness:  # the server shares this loop: it is as late
        started = loop.time()
        error = await send_error(sender, accented_notice())
        await sender.close()
        elapsed = loop.time() - started
    # Each reply alone is within 120 ms: only one deadline for the whole send ends it there.
    assert 0.12 <= elapsed < 0.5 + lateness.worst
    assert error.permanent is False


async def test_starttls_not_offered_fails_before_auth_or_mail(tmp_path: Path) -> None:
    """With starttls required and not offered, nothing, credentials included, is sent in clear."""
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = {"username": "forewarn", "password_file": str(secret)}
    async with FailingSmtpServer(auth_in_clear=True) as server:
        # Control: without starttls this server does get AUTH, so its absence below means something.
        clear = EmailNotifier(notices_config(server.port, **settings), tmp_path)
        await clear.send(accented_notice("control"))
        await clear.close()
        assert "AUTH" in server.commands
        server.commands.clear()
        strict = EmailNotifier(notices_config(server.port, starttls=True, **settings), tmp_path)
        error = await send_error(strict, accented_notice("strict"))
        await strict.close()
        assert error.permanent is False
        assert "STARTTLS" in error.message
        assert "AUTH" not in server.commands and "MAIL" not in server.commands
        assert len(server.messages) == 1


async def test_password_file_is_read_once_at_construction(tmp_path: Path) -> None:
    """The secret is read when the notifier is built; the file may go away afterwards."""
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    async with FailingSmtpServer(auth_in_clear=True) as server:
        sender = EmailNotifier(
            notices_config(server.port, username="forewarn", password_file=str(secret)), tmp_path
        )
        secret.unlink()
        await sender.send(accented_notice())
        await sender.close()
        assert "AUTH" in server.commands and len(server.messages) == 1


def test_starttls_and_implicit_tls_together_are_refused(tmp_path: Path) -> None:
    """Asking for both STARTTLS and implicit TLS is a configuration error, found at startup."""
    with pytest.raises(ValueError, match="starttls"):
        EmailNotifier(notices_config(starttls=True, tls=True), tmp_path)


def test_unsubscribe_url_adds_rfc8058_one_click_headers() -> None:
    """A notice with an unsubscribe link carries List-Unsubscribe and List-Unsubscribe-Post."""
    url = "https://status.example.net/unsubscribe/b3BzQGFjbWUuZXhhbXBsZQ.c2lnbmF0dXJl"
    raw = build_email(accented_notice(unsubscribe_url=url), SENDER).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.SMTP)
    # On one line even past 78 columns: folding would encode the URL into RFC 2047 words.
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_no_unsubscribe_url_means_no_list_unsubscribe_headers() -> None:
    """An ops notice (no unsubscribe link) has neither List-Unsubscribe header."""
    message = build_email(accented_notice(), SENDER)
    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


def test_unsubscribe_url_with_crlf_cannot_add_a_header() -> None:
    """Line breaks in the unsubscribe URL are collapsed, so no header can be smuggled in."""
    url = "https://status.example.net/unsubscribe/x\r\nBcc: victim@example.org"
    raw = build_email(accented_notice(unsubscribe_url=url), SENDER).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert parsed["Bcc"] is None
    assert b"\r\nBcc:" not in raw
    assert parsed["List-Unsubscribe"].startswith("<https://status.example.net/unsubscribe/x")


def test_header_classes_are_made_once_and_parse_as_the_standard_ones() -> None:
    """Two messages share each header class; each header reads as the stdlib's registry reads it."""
    first, second = (build_email(accented_notice(k), SENDER) for k in ("k1", "k2"))
    assert type(first["Subject"]) is type(second["Subject"])
    assert type(first["From"]) is type(second["From"])
    standard = email.headerregistry.HeaderRegistry()
    for name, value in first.items():
        assert str(standard(name, str(value))) == str(value), name
