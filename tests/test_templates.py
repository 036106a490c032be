"""The packaged customer email templates, rendered for real through Renderer for every kind."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import meta

from monitor.core.fields import LANGUAGES
from monitor.core.render import TEMPLATES, Renderer
from tests.email_samples import (
    INCIDENT_KINDS,
    KINDS,
    NEXT_UPDATE,
    POSTMORTEM,
    WHEN,
    context,
)

ALL = [(kind, language) for kind in KINDS for language in LANGUAGES]
ALLOWED = {
    "customer_name",
    "language",
    "incidents",
    "services",
    "next_update",
    "status_url",
    "sender",
    "unsubscribe_url",
    "technical",
    "maintenance",
}
TECHNICAL_TITLE = {"fr": "Détail technique", "en": "Technical detail"}


def render(kind: str, language: str, ctx: dict[str, Any]) -> tuple[str, str, str]:
    return Renderer().render(kind, language, ctx)


@pytest.mark.parametrize("digest", [False, True])
@pytest.mark.parametrize(("kind", "language"), ALL)
def test_every_kind_renders_a_complete_message(kind: str, language: str, digest: bool) -> None:
    """Each kind gives a one-line subject and bodies naming the customer and every service."""
    ctx = context(kind, language, digest=digest)
    subject, text, html = render(kind, language, ctx)
    assert subject and "\n" not in subject
    for body in (text, html):
        assert ctx["customer_name"] in body
        for name in ctx["services"]:
            assert name in body
        assert "{{" not in body and "{%" not in body
    assert ctx["status_url"] in text and ctx["unsubscribe_url"] in text


@pytest.mark.parametrize("kind", ["first", "update", "unstable"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_ongoing_incident_promises_next_update(kind: str, language: str) -> None:
    """While an incident is ongoing, both bodies say when the next update comes."""
    _, text, html = render(kind, language, context(kind, language))
    assert NEXT_UPDATE[language] in text
    assert NEXT_UPDATE[language] in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_resolved_states_window_and_duration(language: str) -> None:
    """The resolution gives the measured window (start, recovery) and its duration."""
    _, text, html = render("resolved", language, context("resolved", language))
    for value in (*WHEN[language], "2 h 05 min"):
        assert value in text
        assert value in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_digest_names_every_incident_reference(kind: str, language: str) -> None:
    """A digest of two incidents names both references in both bodies."""
    _, text, html = render(kind, language, context(kind, language, digest=True))
    for ref in ("INC-20261122-0001", "INC-20261122-0002"):
        assert ref in text
        assert ref in html


@pytest.mark.parametrize("technical", [False, True])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_technical_section_only_when_asked(kind: str, language: str, technical: bool) -> None:
    """The technical detail section (check, reason, detail) appears only when technical is true."""
    ctx = context(kind, language, technical=technical)
    ctx["incidents"][0]["technical"] = [
        {"check": "tracking-ws", "reason": "http_status", "detail": "HTTP 503 on GET /v2/parcels"}
    ]
    _, text, html = render(kind, language, ctx)
    for body in (text, html):
        assert (TECHNICAL_TITLE[language] in body) is technical
        for value in ("tracking-ws", "http_status", "HTTP 503 on GET /v2/parcels"):
            assert (value in body) is technical


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_html_escapes_customer_name(kind: str, language: str) -> None:
    """A customer name carrying markup is escaped in HTML and left verbatim in plain text."""
    ctx = context(kind, language, customer_name="<script>alert(1)</script>")
    _, text, html = render(kind, language, ctx)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<script>alert(1)</script>" in text


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_html_escapes_every_value_exactly_once(kind: str, language: str) -> None:
    """Markup in service names, messages, postmortems and summaries is escaped exactly once."""
    hostile = "<b>Suivi</b> & co"
    ctx = context(kind, language, services=[hostile], sender="<i>Ops</i>")
    for item in ctx["incidents"]:
        item.update(services=[hostile], message="<img src=x>", postmortem="<script>x</script>")
    if ctx["maintenance"]:
        ctx["maintenance"]["summary"] = "<img src=x>"
    _, text, html = render(kind, language, ctx)
    assert "&lt;b&gt;Suivi&lt;/b&gt; &amp; co" in html
    assert not any(tag in html for tag in ("<b>", "<i>", "<img", "<script"))
    assert "&amp;amp;" not in html and "&amp;lt;" not in html
    assert hostile in text and "&lt;" not in text and "&amp;" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_postmortem_keeps_line_breaks(language: str) -> None:
    """The postmortem text keeps its line breaks: verbatim in text, pre-line in HTML."""
    _, text, html = render("postmortem", language, context("postmortem", language))
    assert POSTMORTEM in text
    assert f'<p style="white-space:pre-line;margin-top:0">{POSTMORTEM}</p>' in html


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_unsubscribe_line_omitted_without_url(kind: str, language: str) -> None:
    """With no unsubscribe URL there is no unsubscribe line, in either body."""
    _, text, html = render(kind, language, context(kind, language, unsubscribe_url=""))
    marker = {"fr": "Pour ne plus recevoir", "en": "To stop receiving"}[language]
    assert marker not in text
    assert "notifications</a>" not in html


@pytest.mark.parametrize(
    "name", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*") if p.is_file())
)
def test_templates_use_only_allowed_variables(name: str) -> None:
    """Every template file reads only the documented context variables (and Jinja globals)."""
    env = Renderer().env
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    undeclared = meta.find_undeclared_variables(env.parse(source))
    assert undeclared <= ALLOWED | set(env.globals), sorted(undeclared - ALLOWED)


@pytest.mark.parametrize(
    ("language", "impact", "sentence"),
    [
        ("en", "label printing fails", "has been unavailable: label printing fails."),
        ("fr", "l'impression échoue", "est indisponible : l'impression échoue."),
    ],
)
def test_a_service_impact_replaces_the_generic_sentence(
    language: str, impact: str, sentence: str
) -> None:
    """First notices and updates say what the service's customers experience."""
    ctx = context("first", language)
    ctx["incidents"][0]["impact"] = impact
    _, text, html = render("first", language, ctx)
    assert sentence in " ".join(text.split())
    assert impact.replace("'", "&#39;") in html
    assert "go unanswered" not in text and "sans réponse" not in text
    update = context("update", language)
    update["incidents"][0].update(impact=impact, status="investigating")
    assert impact in render("update", language, update)[1]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_review_is_promised_only_for_incidents_that_will_have_one(language: str) -> None:
    """Short incidents promise nothing; a postmortem of one says "here is", not "as promised"."""
    promise = {"en": "review of", "fr": "bilan"}[language]
    for kind in ("resolved", "postmortem"):
        ctx = context(kind, language, digest=True)
        for item in ctx["incidents"]:
            item["review"] = False
        _, text, html = render(kind, language, ctx)
        if kind == "resolved":
            assert promise not in text and promise not in html
        assert "As promised" not in text and "Comme annoncé" not in text
        ctx["incidents"][1]["review"] = True
        _, text, _ = render(kind, language, ctx)
        if kind == "resolved":
            assert "INC-20261122-0002" in text.split(promise)[1]  # names the one reviewed


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_incident_closed_while_failing_is_never_called_restored(language: str) -> None:
    """Resolved by hand while still failing: "closed", with no recovery time or duration."""
    ctx = context("resolved", language)
    ctx["incidents"][0].update(closed=True, recovered="", duration="")
    subject, text, html = render("resolved", language, ctx)
    closed, restored = {"en": ("closed", "restored"), "fr": ("clos", "rétabli")}[language]
    assert closed in subject and restored not in subject
    assert closed in text and closed in html
    again = {"en": "working normally again", "fr": "de nouveau normalement"}[language]
    assert again not in text and again not in html
    assert "2 h 05 min" not in text
