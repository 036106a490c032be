"""A webhook's own body template: sandboxed Jinja2, checked when the configuration loads."""

from __future__ import annotations

import functools

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from notifiers.base import Message

VARIABLES = frozenset({"subject", "text", "incident_id", "kind", "key"})
"""The names a webhook body template may use; any other is a config error."""

# Operators write these templates: sandboxed, and a misspelt name fails instead of rendering "".
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def check_template(source: str) -> str:
    """``source`` if it parses and uses only known variables; else why not, with its line."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"line {exc.lineno or 1} of the template: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(tree) - VARIABLES - set(_ENV.globals))
    if unknown:
        known = ", ".join(sorted(VARIABLES))
        raise ValueError(f"unknown variable '{unknown[0]}' in the template (known: {known})")
    return source


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def render_body(source: str, notice: Message) -> bytes:
    """The body ``source`` renders for ``notice``, as UTF-8."""
    text = _compiled(source).render(
        subject=notice.subject,
        text=notice.text,
        incident_id=notice.incident_id,
        kind=notice.kind,
        key=notice.key,
    )
    return text.encode("utf-8")
