"""What customers read: one rendered notice per affected customer, in their language."""

from __future__ import annotations

from monitor.config import Config
from monitor.customers import affected
from monitor.incidents import ChangeKind, Incident, IncidentChange, IncidentStatus
from monitor.notices import NoticeKind, NoticePlanner, one_line
from monitor.render import Renderer, format_duration
from tests.conftest import ConfigFactory

# 2026-11-22 12:02:00 UTC = 13:02 in Paris, 12:02 in London
FIRST_FAILURE = 1795348920.0


def incident(**changes: object) -> Incident:
    """An announced tracking incident whose next update is due 30 minutes later."""
    values: dict[str, object] = {
        "id": "tracking-20261122T120200",
        "service_id": "tracking",
        "status": IncidentStatus.INVESTIGATING,
        "opened_at": FIRST_FAILURE + 10,
        "first_failure_at": FIRST_FAILURE,
        "sequence": 1,
        "customers_told_at": FIRST_FAILURE + 10,
        "next_update_at": FIRST_FAILURE + 1810,
    }
    values.update(changes)
    return Incident(**values)  # type: ignore[arg-type]


def plan(config: Config, kind: ChangeKind, inc: Incident) -> list:
    """Plan the notices for one change to the customers of the incident's service."""
    planner = NoticePlanner(config, Renderer())
    audience = affected(config.customers, [inc.service_id])
    return planner.plan(IncidentChange(kind, inc, inc.opened_at), audience, inc.opened_at)


def test_first_notice_reaches_each_subscriber_in_their_language(
    make_config: ConfigFactory,
) -> None:
    """Subscribers of tracking get one first notice each, in French or English; others none."""
    notices = plan(make_config(), ChangeKind.ANNOUNCED, incident())
    assert [(n.recipient, n.language, n.subject) for n in notices] == [
        ("acme", "fr", "[Incident] Suivi de colis perturbé"),
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
    assert "depuis le 22/11/2026 à 13:02 (Europe/Paris)" in fr.text
    assert "Prochain point : le 22/11/2026 à 13:32 (Europe/Paris) au plus tard" in fr.text
    assert "Since 22 Nov 2026, 12:02 (Europe/London)" in en.text
    assert "Next update: by 22 Nov 2026, 12:32 (Europe/London)" in en.text
    assert "https://status.example.net/" in fr.text
    assert "<strong>Suivi de colis</strong>" in fr.html and "<!DOCTYPE html>" in fr.html


def test_resolution_gives_measured_window_and_duration(make_config: ConfigFactory) -> None:
    """The resolution names first failure, recovery and how long it lasted."""
    resolved = incident(
        status=IncidentStatus.RESOLVED,
        sequence=3,
        recovered_at=FIRST_FAILURE + 47 * 60,
        resolved_at=FIRST_FAILURE + 3600,
    )
    fr, en = plan(make_config(), ChangeKind.RESOLVED, resolved)
    assert fr.subject == "[Résolu] Suivi de colis rétabli"
    assert "Rétablissement :           22/11/2026 à 13:49 (Europe/Paris)" in fr.text
    assert "Durée :                    47 min" in fr.text
    assert en.subject == "[Resolved] Parcel tracking restored"
    assert "Restored:         22 Nov 2026, 12:49 (Europe/London)" in en.text


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


def test_html_escapes_customer_controlled_text(make_config: ConfigFactory) -> None:
    """HTML templates autoescape names, so markup in a customer name stays text."""
    _, _, html = Renderer().render(
        "first",
        "en",
        {
            "customer_name": "<script>x</script>",
            "service": "S",
            "services": ["S"],
            "incident_id": "i",
            "first_failure": "t",
            "recovered": "",
            "duration": "",
            "next_update": "n",
            "status_url": "u",
            "sender": "s",
        },
    )
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


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
