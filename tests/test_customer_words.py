"""What customers read, end to end: the real daemon, the real CLI, a real SMTP server.

Each customer reads the operator's words in their own language, a service's own impact
instead of generic wording, no stale update at resolution, and a review promised only when
one is planned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.operator_scene import (
    ConfigWriter,
    Target,
    forewarn,
    kinds,
    text_of,
    tracking_outage,
)
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

pytestmark = pytest.mark.usefixtures("quiet_logs")

LABELS_IMPACT = ', impact: {fr: "l\'impression des étiquettes échoue", en: label printing fails}'
ACME, GLOBEX, INITECH = "ops@acme.example", "it@globex.example", "support@initech.example"


def mail_to(smtp: FailingSmtpServer, kind: str, address: str) -> str:
    """The plain text of the one ``kind`` email sent to ``address``."""
    [message] = [m for m in kinds(smtp, kind) if m.rcpt_tos == [address]]
    return text_of(message)


async def test_each_customer_reads_the_operators_update_in_their_language(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """--message-fr/--message-en reach French and English readers apart; none is repeated later."""
    config = write_config()
    daemon = await running(config)
    incident_id = await tracking_outage(daemon, target, smtp)

    status, _, err = await forewarn(
        capsys, config, "incidents", "update", incident_id,
        "--message-fr", "Restauration à 80 %.", "--message-en", "Restore at 80 %.",
    )  # fmt: skip
    assert (status, err) == (0, "")
    await until(lambda: len(kinds(smtp, "update")) == 2)
    french, english = mail_to(smtp, "update", ACME), mail_to(smtp, "update", GLOBEX)
    assert "Précisions de nos équipes : Restauration à 80 %." in french
    assert "Latest from our team: Restore at 80 %." in english
    assert "Restore" not in french and "Restauration" not in english

    target.broken.discard("tracking")
    await until(lambda: len(kinds(smtp, "resolved")) == 2)
    french, english = mail_to(smtp, "resolved", ACME), mail_to(smtp, "resolved", GLOBEX)
    # Resolved on its own: the last update ("80 %") is not news any more.
    assert "80 %" not in french and "80 %" not in english
    assert "Précisions" not in french and "Latest from our team" not in english
    # A blip of a second: no review is planned, so none is promised.
    assert "bilan" not in french and "review" not in english
    assert "If you still see errors, simply reply to this message." in english


async def test_one_language_only_falls_back_and_the_cli_says_so(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """Only --message-fr: the CLI warns, and English readers get the French text, as it warned."""
    config = write_config()
    daemon = await running(config)
    incident_id = await tracking_outage(daemon, target, smtp)

    status, _, err = await forewarn(
        capsys, config, "incidents", "identify", incident_id, "--message-fr", "Base en panne."
    )
    assert status == 0
    assert err == (
        "forewarn: warning: no --message-en: the 1 customer reading English will get the "
        "French text\n"
    )
    await until(lambda: len(kinds(smtp, "update")) == 2)
    assert "Latest from our team: Base en panne." in mail_to(smtp, "update", GLOBEX)

    status, _, err = await forewarn(
        capsys, config, "incidents", "update", incident_id, "-m", "Same words for all."
    )
    assert status == 0
    assert "one text for every language: customers reading French (2) and English (1)" in err


async def test_a_service_says_what_its_customers_experience_and_a_review_when_announced(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """labels' impact replaces the generic sentence; resolve --review promises the review."""
    config = write_config(labels_extra=LABELS_IMPACT)
    daemon = await running(config)
    await until(lambda: daemon.engine.states["labels-ws"].status is CheckStatus.UP)
    target.broken.add("labels")
    await until(lambda: len(kinds(smtp, "first")) == 2)
    first = mail_to(smtp, "first", INITECH)
    assert "est indisponible : l'impression des étiquettes échoue." in first
    assert "vos appels peuvent échouer" not in first
    incident_id = daemon.engine.covering("labels").id
    target.broken.discard("labels")  # it answers again: resolving early is then the truth
    await until(lambda: daemon.engine.covering("labels").recovered_at is not None)

    status, _, _ = await forewarn(
        capsys, config, "incidents", "resolve", incident_id, "--review",
        "--message-fr", "Le serveur d'impression est remplacé.",
        "--message-en", "The print server is replaced.",
    )  # fmt: skip
    assert status == 0
    await until(lambda: len(kinds(smtp, "resolved")) == 2)
    resolved = mail_to(smtp, "resolved", INITECH)
    assert "Précisions de nos équipes : Le serveur d'impression est remplacé." in resolved
    assert "Nous vous adresserons prochainement un bilan de l'incident" in resolved
