"""``forewarn demo`` keeps each email byte for byte as the real notifier sent it."""

from __future__ import annotations

from pathlib import Path

from monitor.cli.demo import keep
from monitor.cli.smtpsink import ReceivedMessage, SmtpSink
from notifiers.email import EmailNotifier
from tests.builders import accented_notice, notices_config

UNSUBSCRIBE = "https://status.example.net/unsubscribe/b3BzQGFjbWUuZXhhbXBsZQ.7BVZ0JR98h2EYt8UwzB6_g"


async def test_the_kept_eml_is_the_message_as_sent(tmp_path: Path) -> None:
    """The .eml holds the DATA the server received: List-Unsubscribe stays a plain <URL>."""
    kept: list[Path] = []
    folder = tmp_path / "received"
    folder.mkdir()

    def received(item: ReceivedMessage) -> None:
        kept.append(keep(item, folder))

    async with SmtpSink(on_message=received) as sink:
        sender = EmailNotifier(notices_config(sink.port), tmp_path)
        try:
            await sender.send(accented_notice(unsubscribe_url=UNSUBSCRIBE))
        finally:
            await sender.close()
        [item] = sink.messages
    [path] = kept
    data = path.read_bytes()
    assert data == item.raw and data
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>".encode() in data
    assert b"List-Unsubscribe: =?" not in data  # what bytes(item.message) would have kept
