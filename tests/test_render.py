"""Template overrides and check_templates, on real template files written to tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, TemplateNotFound

from monitor.core.render import TEMPLATES, Renderer, check_templates

CLEAN = {
    # A top-level helper: its title comes from the templates that extend it.
    "base.html": "<html><body><h1>{{ title }}</h1>\n{% block body %}{% endblock %}</body></html>\n",
    "fr/first.subject": "Incident : {{ services | join(', ') }}\n",
    "fr/first.txt": "Bonjour {{ customer_name }},\n{% include 'fr/footer.txt' %}",
    "fr/first.html": (
        '{% extends "base.html" %}{% set title = "Incident" %}\n'
        "{% block body %}<p>Bonjour {{ customer_name }}</p>{% endblock %}\n"
    ),
    # Not a kind, but included by fr/first.txt, so a helper.
    "fr/footer.txt": "{{ sender }}\n",
    "en/resolved.subject": "Resolved: {% for s in services %}{{ s }}{% endfor %}\n",
}
CONTEXT = {"customer_name": "ACME <Boutique>", "services": ["Suivi"], "sender": "Support"}


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative name → text) under ``root`` and return it."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_override_wins_over_packaged_and_html_alone_is_escaped(tmp_path: Path) -> None:
    """An override is rendered instead of the packaged template; only HTML escapes values."""
    overrides = write(tmp_path / "t", CLEAN)
    subject, text, html = Renderer(overrides).render("first", "fr", CONTEXT)
    assert subject == "Incident : Suivi"
    assert text == "Bonjour ACME <Boutique>,\nSupport\n"
    assert "<h1>Incident</h1>" in html
    assert "<p>Bonjour ACME &lt;Boutique&gt;</p>" in html


def test_missing_override_falls_back_to_packaged(tmp_path: Path) -> None:
    """A template the override dir lacks is loaded from the packaged set."""
    overrides = write(tmp_path / "t", {"fr/first.subject": "Override\n"})
    env = Renderer(overrides).env
    assert env.get_template("fr/first.subject").filename == str(overrides / "fr/first.subject")
    assert env.get_template("fr/first.txt").filename == str(TEMPLATES / "fr" / "first.txt")


def test_override_dir_that_does_not_exist_falls_back_to_packaged(tmp_path: Path) -> None:
    """Rendering never depends on the override dir existing; check_templates reports it."""
    env = Renderer(tmp_path / "missing").env
    assert env.get_template("fr/first.txt").filename == str(TEMPLATES / "fr" / "first.txt")


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__ }}", "{{ customer_name.__class__.__mro__ }}", "{{ lipsum.__globals__ }}"],
)
def test_sandbox_blocks_unsafe_access(tmp_path: Path, source: str) -> None:
    """A template cannot reach Python internals such as classes or function globals."""
    overrides = write(tmp_path / "t", {**CLEAN, "fr/first.subject": source})
    with pytest.raises(SecurityError):
        Renderer(overrides).render("first", "fr", CONTEXT)


def test_clean_override_dir_has_no_problems(tmp_path: Path) -> None:
    """Valid names, known variables, helpers at the top level or included: no error."""
    assert check_templates(write(tmp_path / "t", CLEAN)) == []


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    """A Jinja syntax error names the file and the line it is on."""
    overrides = write(tmp_path / "t", {"fr/update.txt": "Bonjour,\n\n{% if %}\n"})
    errors = check_templates(overrides)
    assert len(errors) == 1
    assert errors[0].startswith(f"{overrides / 'fr/update.txt'}:3: ")


def test_unknown_variable_is_reported_with_its_line_and_the_known_names(tmp_path: Path) -> None:
    """A misspelt variable is an error at the line that uses it, listing the valid names."""
    overrides = write(tmp_path / "t", {"en/first.html": "<p>\nHello {{ custmer_name }}</p>\n"})
    assert check_templates(overrides) == [
        f"{overrides / 'en/first.html'}:2: unknown variable 'custmer_name' (known: "
        "customer_name, incidents, language, maintenance, next_update, sender, services, "
        "status_url, technical, unsubscribe_url)"
    ]


@pytest.mark.parametrize("name", ["fr/frist.txt", "de/first.txt", "fr/first.md", "x/y/z.txt"])
def test_file_that_is_no_template_forewarn_uses_is_reported(tmp_path: Path, name: str) -> None:
    """A misspelt kind, language or extension would be silently ignored, so it is an error."""
    overrides = write(tmp_path / "t", {name: "{{ sender }}\n"})
    errors = check_templates(overrides)
    assert len(errors) == 1
    assert errors[0].startswith(f"{overrides / name}:1: not a template forewarn uses")


def test_reference_to_a_missing_template_is_reported(tmp_path: Path) -> None:
    """Extending a helper that exists nowhere is an error at the extends line."""
    overrides = write(tmp_path / "t", {"fr/first.html": "\n{% extends 'bse.html' %}\n"})
    assert check_templates(overrides) == [
        f"{overrides / 'fr/first.html'}:2: unknown template 'bse.html'"
    ]


def test_missing_override_dir_is_reported(tmp_path: Path) -> None:
    """A templates_dir that does not exist is an error, not an empty set of overrides."""
    missing = tmp_path / "nowhere"
    errors = check_templates(missing)
    assert len(errors) == 1
    assert errors[0].startswith(f"{missing}:1: ")
    assert "does not exist" in errors[0]


def test_packaged_templates_are_checked_when_there_is_no_override(tmp_path: Path) -> None:
    """Without overrides, every problem reported is in a packaged template file."""
    errors = check_templates(None)
    assert all(error.startswith(str(TEMPLATES)) for error in errors)


def test_a_link_leading_outside_the_override_dir_is_refused(tmp_path: Path) -> None:
    """A link to a file elsewhere is reported by check_templates and never rendered."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-{{ 1 }", encoding="utf-8")  # not even valid Jinja
    overrides = write(tmp_path / "t", CLEAN)
    (overrides / "fr" / "first.txt").unlink()
    (overrides / "fr" / "first.txt").symlink_to(secret)
    errors = check_templates(overrides)
    link = overrides / "fr" / "first.txt"
    assert errors[0] == f"{link}:1: a link leading outside notices.templates_dir (refused)"
    assert not [e for e in errors if "TOP-SECRET" in e]
    with pytest.raises(TemplateNotFound):
        Renderer(overrides).render("first", "fr", CONTEXT)
    inside = overrides / "fr" / "alias.txt"
    inside.symlink_to(overrides / "fr" / "footer.txt")  # a link that stays inside is fine
    assert Renderer(overrides).env.get_template("fr/alias.txt").render(CONTEXT) == "Support\n"
