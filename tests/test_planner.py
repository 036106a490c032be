"""What each reader gets: one rendered notice per customer (a digest when several), and ops."""

from __future__ import annotations

from pathlib import Path

from monitor.config.load import Config
from monitor.core.notice import NoticeKind, one_line
from monitor.core.render import Renderer, format_duration
from monitor.domain.incidents import ChangeKind, Incident, IncidentChange, IncidentStatus
from monitor.domain.maintenance import MaintenanceChange, MaintenanceKind, Window, WindowProgress
from monitor.notices.audience import affected
from monitor.notices.planner import NoticePlanner
from monitor.notices.unsubscribe import UnsubscribeSigner
from tests.builders import make_incident
from tests.conftest import ConfigFactory

# 2026-11-22 12:02:00 UTC = 13:02 in Paris, 12:02 in London
FIRST_FAILURE = 1795348920.0


def incident(**changes: object) -> Incident:
    """An announced tracking incident whose next update is due 30 minutes later."""
    announced: dict[str, object] = {
        "first_failure_at": FIRST_FAILURE,
        "sequence": 1,
        "customers_told_at": FIRST_FAILURE + 10,
        "next_update_at": FIRST_FAILURE + 1810,
    }
    return make_incident("tracking-20261122T120200", FIRST_FAILURE + 10, **{**announced, **changes})


def plan(
    config: Config, kind: ChangeKind, inc: Incident, blocked: frozenset[str] = frozenset()
) -> list:
    """Plan the notices for one change to the customers of the incident's service."""
    planner = NoticePlanner(config, Renderer())
    return planner.plan([IncidentChange(kind, inc, inc.opened_at)], inc.opened_at, blocked)


def test_first_notice_reaches_each_subscriber_in_their_language(
    make_config: ConfigFactory,
) -> None:
    """Subscribers of tracking get one first notice each, in French or English; others none."""
    notices = plan(make_config(), ChangeKind.ANNOUNCED, incident())
    assert [(n.recipient, n.language, n.subject) for n in notices] == [
        ("acme", "fr", "[Incident] Suivi de colis : service perturbé"),
        ("globex", "en", "[Incident] Parcel tracking disrupted"),
    ]
    assert {n.kind for n in notices} == {NoticeKind.FIRST}
    assert [n.key for n in notices] == [
        "tracking-20261122T120200:1:acme",
        "tracking-20261122T120200:1:globex",
    ]


def test_first_notice_gives_local_times_and_the_next_update(make_config: ConfigFactory) -> None:
    """Times are in each customer's timezone, and the next update's time is promised."""
    fr, en = plan(make_config(), ChangeKind.ANNOUNCED, incident())
    assert "Depuis le 22/11/2026 à 13:02 (Europe/Paris)" in fr.text
    assert "Prochain point : le 22/11/2026 à 13:32 (Europe/Paris) au plus tard" in fr.text
    assert "22 Nov 2026, 12:02 (Europe/London)" in en.text
    assert "22 Nov 2026, 12:32 (Europe/London)" in en.text
    assert "https://status.example.net/" in fr.text
    assert "Suivi de colis" in fr.html and "<!DOCTYPE html>" in fr.html


def test_resolution_gives_measured_window_and_duration(make_config: ConfigFactory) -> None:
    """The resolution names first failure, recovery and how long it lasted."""
    resolved = incident(
        status=IncidentStatus.RESOLVED,
        sequence=3,
        recovered_at=FIRST_FAILURE + 47 * 60,
        resolved_at=FIRST_FAILURE + 3600,
    )
    fr, en = plan(make_config(), ChangeKind.RESOLVED, resolved)
    assert fr.subject == "[Incident résolu] Suivi de colis : service rétabli"
    assert "22/11/2026 à 13:02 (Europe/Paris)" in fr.text
    assert "22/11/2026 à 13:49 (Europe/Paris)" in fr.text and "47 min" in fr.text
    assert en.subject == "[Resolved] Parcel tracking restored"
    assert "22 Nov 2026, 12:49 (Europe/London)" in en.text and "47 min" in en.text


def test_resolution_is_silent_when_customers_were_never_told(make_config: ConfigFactory) -> None:
    """An outage cancelled by customer_delay never produces a resolution email."""
    quiet = incident(
        status=IncidentStatus.RESOLVED,
        customers_told_at=None,
        sequence=0,
        recovered_at=FIRST_FAILURE + 60,
        resolved_at=FIRST_FAILURE + 60,
    )
    assert plan(make_config(), ChangeKind.RESOLVED, quiet) == []


def test_ops_only_changes_plan_no_customer_notice(make_config: ConfigFactory) -> None:
    """Opening, recovering and relapsing tell customers nothing by themselves."""
    config = make_config()
    for kind in (ChangeKind.OPENED, ChangeKind.RECOVERING, ChangeKind.RELAPSED):
        assert plan(config, kind, incident()) == []


def test_customer_name_cannot_inject_lines(make_config: ConfigFactory) -> None:
    """A name with CR/LF and U+2028 is collapsed to one line in the rendered text."""
    assert one_line("ACME\r\nBcc: evil@example.com\u2028x\x00") == "ACME Bcc: evil@example.com x"


def test_several_incidents_in_one_tick_make_one_digest_per_customer(
    make_config: ConfigFactory,
) -> None:
    """acme, subscribed to both failing services, gets one email naming both incidents."""
    labels = incident(id="labels-20261122T120205", service_id="labels")
    changes = [
        IncidentChange(ChangeKind.ANNOUNCED, incident(), FIRST_FAILURE + 10),
        IncidentChange(ChangeKind.ANNOUNCED, labels, FIRST_FAILURE + 10),
    ]
    notices = NoticePlanner(make_config(), Renderer()).plan(changes, FIRST_FAILURE + 10)
    by_customer = {n.recipient: n for n in notices}
    assert sorted(by_customer) == ["acme", "globex", "initech"] and len(notices) == 3
    acme = by_customer["acme"]
    assert "tracking-20261122T120200" in acme.text and "labels-20261122T120205" in acme.text
    assert "Suivi de colis" in acme.subject and "Étiquettes" in acme.subject
    assert "Étiquettes" not in by_customer["globex"].text


def test_a_joining_service_tells_only_customers_new_to_the_incident(
    make_config: ConfigFactory,
) -> None:
    """labels joins an announced tracking incident: initech hears first, acme already knew."""
    joined = incident(services=("tracking", "labels"), announced=("tracking", "labels"))
    change = IncidentChange(ChangeKind.JOINED, joined, FIRST_FAILURE + 60, ("labels",))
    notices = NoticePlanner(make_config(), Renderer()).plan([change], FIRST_FAILURE + 60)
    assert [(n.recipient, n.kind) for n in notices] == [("initech", NoticeKind.FIRST)]
    assert notices[0].key == "tracking-20261122T120200:1+labels:initech"


def test_technical_readers_get_the_failing_check_without_secrets(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    """detail: technical adds check, reason and a scrubbed detail; summary readers get none."""
    config = make_config()
    technical = config.customers[1].model_copy(update={"detail": "technical"})
    config = config.model_copy(update={"customers": [config.customers[0], technical]})
    failing = incident(
        check_id="tracking-ws",
        reason="http_status",
        detail="HTTP 503 from https://u:pw@ws.example.net/t?token=s3cret api_key=abc",
    )
    acme, globex = plan(config, ChangeKind.ANNOUNCED, failing)
    assert "tracking-ws" in globex.text and "http_status" in globex.text
    assert "s3cret" not in globex.text and "pw@" not in globex.text and "abc" not in globex.text
    assert "tracking-ws" not in acme.text


def test_unsubscribed_customers_get_nothing_and_others_a_one_click_link(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    """A blocked address is skipped; every other email carries its signed unsubscribe URL."""
    signer = UnsubscribeSigner(b"k" * 32)
    planner = NoticePlanner(make_config(), Renderer(), signer)
    change = IncidentChange(ChangeKind.ANNOUNCED, incident(), FIRST_FAILURE)
    (notice,) = planner.plan([change], FIRST_FAILURE, frozenset({"ops@acme.example"}))
    assert notice.recipient == "globex"
    token = notice.unsubscribe_url.rsplit("/", 1)[1]
    assert notice.unsubscribe_url.startswith("https://status.example.net/unsubscribe/")
    assert signer.address(token) == "it@globex.example"
    assert notice.unsubscribe_url in notice.text


def test_ops_channels_hear_the_opening_at_once(make_config: ConfigFactory) -> None:
    """A webhook and an ops mailbox each get one technical line on OPENED; customers none."""
    extra = (
        "  ops: [{type: webhook, url: 'https://hooks.example.net/x'},\n"
        "        {type: email, name: oncall, to: oncall@example.net}]\n"
    )
    config = make_config(digest_window=f"0s\n{extra}")
    opened = incident(customers_told_at=None, sequence=0, check_id="tracking-ws", reason="timeout")
    notices = plan(config, ChangeKind.OPENED, opened)
    assert [(n.channel, n.recipient, n.kind) for n in notices] == [
        ("webhook", "webhook", NoticeKind.OPS),
        ("email", "oncall", NoticeKind.OPS),
    ]
    assert notices[0].subject == "[forewarn] DOWN: Parcel tracking"
    assert "tracking-ws (timeout)" in notices[0].text


def test_maintenance_steps_reach_the_window_customers(make_config: ConfigFactory) -> None:
    """A planned window on labels reaches acme and initech, with the summary in their language."""
    window = Window(
        "release-42",
        ("labels",),
        FIRST_FAILURE + 86400,
        FIRST_FAILURE + 86400 + 7200,
        86400,
        {"fr": "Mise à jour du service d'étiquettes", "en": "Label service upgrade"},
    )
    progress = WindowProgress("release-42", announced_at=FIRST_FAILURE, told_end=window.end)
    step = MaintenanceChange(MaintenanceKind.PLANNED, window, progress, FIRST_FAILURE)
    notices = NoticePlanner(make_config(), Renderer()).plan_maintenance([step], FIRST_FAILURE)
    assert [(n.recipient, n.kind) for n in notices] == [
        ("acme", NoticeKind.MAINTENANCE_PLANNED),
        ("initech", NoticeKind.MAINTENANCE_PLANNED),
    ]
    assert "Mise à jour du service d'étiquettes" in notices[0].text
    assert notices[0].key.startswith("maintenance-release-42:planned-")


def test_suppressed_and_unsubscribed_addresses_are_not_affected(
    make_config: ConfigFactory,
) -> None:
    """Affected customers are the service's subscribers minus suppressed addresses."""
    config = make_config()
    assert [c.id for c in affected(config.customers, ["labels"])] == ["acme", "initech"]
    assert [c.id for c in affected(config.customers, ["labels"], ["SUPPORT@initech.example"])] == [
        "acme"
    ]


def test_durations_read_naturally() -> None:
    """Durations are short and human in both languages."""
    assert [format_duration(s, "fr") for s in (47, 720, 7500, 97200)] == [
        "47 s",
        "12 min",
        "2 h 05 min",
        "1 j 3 h",
    ]
    assert format_duration(97200, "en") == "1 d 3 h"


def test_a_page_only_update_plans_no_customer_email(make_config: ConfigFactory) -> None:
    """The same update emails tracking's customers, unless it is for the page only."""
    planner, told = NoticePlanner(make_config(), Renderer()), incident(sequence=2)
    emailed = IncidentChange(ChangeKind.UPDATE, told, told.opened_at)
    assert [n.recipient for n in planner.plan([emailed], told.opened_at)] == ["acme", "globex"]
    page_only = IncidentChange(ChangeKind.UPDATE, told, told.opened_at, page_only=True)
    assert planner.plan([page_only], told.opened_at) == []


def test_ops_read_that_an_operator_opened_it(make_config: ConfigFactory) -> None:
    """A manual incident has no failing check to name: ops read who opened it."""
    config = make_config(digest_window="0s\n  ops: [{type: webhook, url: 'https://h.example/x'}]\n")
    [notice] = plan(config, ChangeKind.OPENED, incident(customers_told_at=None, manual=True))
    assert notice.subject == "[forewarn] DOWN (opened by an operator): Parcel tracking"
    assert "Opened by an operator" in notice.text and "Failing check" not in notice.text
