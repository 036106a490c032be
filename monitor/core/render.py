"""Email templates: sandboxed Jinja2, French and English, plain text and HTML, with overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from monitor.core.fields import LANGUAGES
from monitor.core.timebounds import moment

TEMPLATES = Path(__file__).parent.parent / "templates" / "email"
EXTENSIONS = ("subject", "txt", "html")
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_REFERENCES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def format_time(at: float, *, zone: ZoneInfo, language: str) -> str:
    """A local time as a customer reads it: ``21/11/2026 à 13:02 (Europe/Paris)``."""
    local = moment(at, zone)
    if language == "fr":
        return f"{local:%d/%m/%Y} à {local:%H:%M} ({zone.key})"
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M} ({zone.key})"


def format_duration(seconds: float, language: str) -> str:
    """A human duration: ``47 s``, ``12 min``, ``2 h 05 min``, ``1 j 3 h`` / ``1 d 3 h``."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} {'j' if language == 'fr' else 'd'} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _environment(overrides: Path | None) -> SandboxedEnvironment:
    """The one environment configuration, shared by rendering and checking."""
    # Operators edit templates, so they run sandboxed; StrictUndefined turns a misspelt
    # variable into an error instead of a silently empty sentence in a customer's email.
    search = [str(overrides)] if overrides is not None else []
    return SandboxedEnvironment(
        loader=_ContainedLoader([*search, str(TEMPLATES)]),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


class _ContainedLoader(FileSystemLoader):
    """A FileSystemLoader that refuses a file whose real path leaves its search folders.

    A link inside ``templates_dir`` to a file elsewhere (a key, a token file) would otherwise
    be rendered into an email verbatim.
    """

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not any(_inside(Path(filename), Path(root)) for root in self.searchpath):
            raise TemplateNotFound(template)
        return source, filename, uptodate


def _inside(path: Path, root: Path) -> bool:
    """True when ``path``, links resolved, lies within ``root`` (links resolved too)."""
    return path.resolve().is_relative_to(root.resolve())


class Renderer:
    """Renders ``<language>/<kind>.subject|.txt|.html``: the operator's override, else packaged."""

    def __init__(self, overrides: Path | None = None) -> None:
        self.env = _environment(overrides)

    def render(self, kind: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """Subject, plain text and HTML of one message."""
        subject, text, html = (
            self.env.get_template(f"{language}/{kind}.{ext}").render(context) for ext in EXTENSIONS
        )
        return subject.strip(), text, html


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One template file's syntax tree, or why it has none."""

    path: Path
    tree: nodes.Template | None
    errors: tuple[str, ...]


def _parse(env: SandboxedEnvironment, name: str, path: Path) -> _Parsed:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _Parsed(path, None, (f"{path}:1: not UTF-8 text",))
    except OSError as exc:
        return _Parsed(path, None, (f"{path}:1: cannot read: {exc.strerror or exc}",))
    try:
        return _Parsed(path, env.parse(source, name, str(path)), ())
    except TemplateSyntaxError as exc:
        return _Parsed(path, None, (f"{path}:{exc.lineno or 1}: {exc.message}",))


def _files(root: Path) -> dict[str, Path]:
    """Template name (as the loader spells it) → file, skipping hidden files and folders."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found[relative.as_posix()] = path
    return found


def _references(tree: nodes.Template) -> Iterable[tuple[str, int]]:
    """Templates named literally by extends, include and import, with their line."""
    for node in tree.find_all(_REFERENCES):
        target = getattr(node, "template", None)  # Node declares no fields to mypy
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            yield target.value, node.lineno


def _stored_names(tree: nodes.Template) -> set[str]:
    """Every name a template defines (set, for, macro parameters): what an include can see."""
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}


def _first_use(tree: nodes.Template, name: str) -> int:
    for node in tree.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return node.lineno
    return 1


def _is_customer_template(name: str, kinds: Iterable[str]) -> bool:
    language, _, file_name = name.partition("/")
    kind, dot, ext = file_name.partition(".")
    return language in LANGUAGES and bool(dot) and kind in kinds and ext in EXTENSIONS


def _transitive(name: str, referrers: dict[str, set[str]]) -> set[str]:
    """Every template that references ``name`` directly or through other helpers."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for referrer in referrers.get(todo.pop(), ()):
            if referrer not in seen:
                seen.add(referrer)
                todo.append(referrer)
    return seen


def check_templates(overrides: Path | None) -> list[str]:
    """Problems in the override templates (or the packaged ones), as ``path:line: message``."""
    # Imported here: monitor.core.notice imports this module to render.
    from monitor.core.notice import CUSTOMER_KINDS, TEMPLATE_VARIABLES

    if overrides is not None and not overrides.is_dir():
        return [f"{overrides}:1: template directory does not exist (notices.templates_dir)"]
    env = _environment(overrides)
    checked = _files(overrides if overrides is not None else TEMPLATES)
    escaping = [p for p in checked.values() if overrides and not _inside(p, overrides)]
    # Never read, so no error can quote what they lead to.
    checked = {name: path for name, path in checked.items() if path not in escaping}
    # What the loader would actually use: overrides shadow packaged files of the same name, and
    # packaged templates may extend an overridden helper, so both count as referrers.
    effective = {**_files(TEMPLATES), **checked}
    parsed = {name: _parse(env, name, path) for name, path in effective.items()}
    referrers: dict[str, set[str]] = {}
    for name, item in parsed.items():
        for target, _ in _references(item.tree) if item.tree is not None else ():
            referrers.setdefault(target, set()).add(name)

    kinds = {str(kind) for kind in CUSTOMER_KINDS}
    known = ", ".join(sorted(TEMPLATE_VARIABLES))
    errors = [f"{p}:1: a link leading outside notices.templates_dir (refused)" for p in escaping]
    for name, path in checked.items():
        item = parsed[name]
        errors.extend(item.errors)
        customer = _is_customer_template(name, kinds)
        if not customer and "/" in name and name not in referrers:
            errors.append(
                f"{path}:1: not a template forewarn uses: expected <language>/<kind>.<ext> with "
                f"language in {', '.join(sorted(LANGUAGES))}, ext in {', '.join(EXTENSIONS)} "
                f"and kind in {', '.join(sorted(kinds))} (helpers go at the top level)"
            )
        if item.tree is None:
            continue
        for target, line in _references(item.tree):
            if target not in effective:
                errors.append(f"{path}:{line}: unknown template '{target}'")
        allowed = set(TEMPLATE_VARIABLES) | set(env.globals)
        if not customer:
            # A helper also sees what the templates that extend or include it define.
            for referrer in _transitive(name, referrers):
                tree = parsed[referrer].tree
                allowed |= _stored_names(tree) if tree is not None else set()
        for variable in sorted(meta.find_undeclared_variables(item.tree) - allowed):
            errors.append(
                f"{path}:{_first_use(item.tree, variable)}: unknown variable "
                f"'{variable}' (known: {known})"
            )
    return errors
