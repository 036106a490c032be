"""Customers as real systems export them: ; or , CSV, any-case languages, many addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from probe_servers import serve

from monitor.config.load import Config, ConfigError, load_config
from monitor.core.render import Renderer
from monitor.domain.incidents import ChangeKind, IncidentChange
from monitor.notices.planner import NoticePlanner
from monitor.notices.unsubscribe import UnsubscribeSigner, unsubscribe_url
from monitor.store.sqlite import SqliteStore
from monitor.web.unsubscribe import add_unsubscribe_routes
from tests.builders import make_incident

S = "services: [{id: t, name: T}, {id: u, name: U}]\n"
C = "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
NOW = 1_795_348_920.0
SECRET = "WWWWWWWWWWWWWWWWWWWWWWWW"


def write(tmp_path: Path, text: str, csv: bytes | None = None) -> Path:
    """checks.yaml holding ``text``, and people.csv beside it when given."""
    if csv is not None:
        (tmp_path / "people.csv").write_bytes(csv)
    path = tmp_path / "checks.yaml"
    path.write_text(S + C + text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """The error lines load_config raises for ``path``."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


def summary(config: Config) -> list[tuple[str, str, tuple[str, ...], str, list[str]]]:
    """Each customer as (id, name, addresses, language, services)."""
    return [(c.id, c.name, c.email, c.language, c.services) for c in config.customers]


COMMA = b'id,name,email,language,services\na,"A, Inc",a@x.example,FR,t;u\nb,B,b@x.example,En,u\n'
SEMICOLON = (
    b"id;name;email;language;services\r\na;A, Inc;a@x.example;FR;t,u\r\nb;B;b@x.example;En;u\r\n"
)
EXCEL_FR = (  # a BOM, CRLF, a blank line, and a quoted cell holding the separator
    b"\xef\xbb\xbfid;name;email;language;services\r\n"
    b'a;"A, Inc";a@x.example;fr;"t;u"\r\n\r\nb;B;b@x.example;en;u\r\n'
)
BOTH = [
    ("a", "A, Inc", ("a@x.example",), "fr", ["t", "u"]),
    ("b", "B", ("b@x.example",), "en", ["u"]),
]


@pytest.mark.parametrize(
    "content", [COMMA, SEMICOLON, EXCEL_FR], ids=["comma", "semicolon", "excel"]
)
def test_a_csv_separated_by_semicolons_or_commas_reads_the_same(
    tmp_path: Path, content: bytes
) -> None:
    """The header line tells the separator; languages in any case; a BOM and CRLF tolerated."""
    config = load_config(write(tmp_path, "customers: {file: people.csv}\n", content))
    assert summary(config) == BOTH


@pytest.mark.parametrize(
    ("cell", "addresses"),
    [
        ("a@x.example", ("a@x.example",)),
        ("a@x.example b@x.example", ("a@x.example", "b@x.example")),
        ("a@x.example | b@x.example|c@x.example", ("a@x.example", "b@x.example", "c@x.example")),
        ('"a@x.example; b@x.example"', ("a@x.example", "b@x.example")),
    ],
)
def test_a_csv_cell_may_hold_several_addresses(
    tmp_path: Path, cell: str, addresses: tuple[str, ...]
) -> None:
    """Addresses in one cell are separated by spaces, ``|``, ``,`` or ``;``."""
    content = f"id;name;email;services\na;A;{cell};t\n".encode()
    config = load_config(write(tmp_path, "customers: {file: people.csv}\n", content))
    assert config.customers[0].email == addresses


def test_yaml_takes_one_address_or_a_list_and_any_case_language(tmp_path: Path) -> None:
    """``email:`` is a string or a list; ``language: EN`` is English."""
    text = (
        "customers:\n"
        "  - {id: a, name: A, email: a@x.example, language: FR, services: [t]}\n"
        "  - {id: b, name: B, email: [b@x.example, B2@x.example], language: En, services: [u]}\n"
    )
    assert summary(load_config(write(tmp_path, text))) == [
        ("a", "A", ("a@x.example",), "fr", ["t"]),
        ("b", "B", ("b@x.example", "B2@x.example"), "en", ["u"]),
    ]


YAML_ERRORS = [
    ("customers: [{id: a, name: A, email: [a@x.example, nope]}]\n",
     "3: customers[0].email[1]: must be an email address"),
    ("customers: [{id: a, name: A, email: [a@x.example, A@X.example]}]\n",
     "3: customers[0].email: lists the same address twice"),
    ("customers: [{id: a, name: A, email: []}]\n", "3: customers[0].email: must not be empty"),
    ("customers: [{id: a, name: A, email: a@x.example, language: de}]\n",
     "3: customers[0].language: must be one of fr | en"),
    ("customers: [{file: people.csv, id: a}]\n", "3: customers[0].id: unknown key"),
    ("customers: [{file: missing.csv}]\n", "3: customers[0].file: cannot read"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), YAML_ERRORS)
def test_bad_addresses_and_entries_are_located_errors(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each mistake names checks.yaml, its line and the key."""
    path = write(tmp_path, text, b"id,name,email\nz,Z,z@x.example\n")
    errors = errors_of(path)
    assert len(errors) == 1 and errors[0].startswith(f"{path}:{expected}")


def test_a_bad_address_in_a_csv_cell_names_its_line_never_its_content(tmp_path: Path) -> None:
    """A cell that could be a secret is never quoted, in either separator's file."""
    content = f"id;name;email\na;A;a@x.example\nb;B;b@x.example {SECRET}\n".encode()
    path = write(tmp_path, "customers: {file: people.csv}\n", content)
    csv = tmp_path / "people.csv"
    assert errors_of(path) == [f"{csv}:3: customers[1].email[1]: must be an email address"]


def test_inline_customers_and_files_combine(tmp_path: Path) -> None:
    """A list item ``{file: …}`` stands for the file's rows, in order with the inline ones."""
    text = (
        "customers:\n"
        "  - {id: a, name: A, email: a@x.example, services: [t]}\n"
        "  - {file: people.csv}\n"
        "  - {id: c, name: C, email: c@x.example}\n"
    )
    path = write(tmp_path, text, b"id;name;email;services\nb;B;b@x.example;u\n")
    assert [(c.id, c.services) for c in load_config(path).customers] == [
        ("a", ["t"]),
        ("b", ["u"]),
        ("c", []),
    ]


def test_a_customer_in_both_places_is_a_located_error(tmp_path: Path) -> None:
    """The second occurrence is the error, in its own file, pointing at the first."""
    text = (
        "customers:\n"
        "  - {id: a, name: A, email: a@x.example}\n"
        "  - {file: people.csv}\n"
        "  - {id: b, name: B, email: b2@x.example}\n"
    )
    csv = tmp_path / "people.csv"
    path = write(tmp_path, text, b"id,name,email,services\nb,B,b@x.example,t\na,A,a@x.example,x\n")
    assert errors_of(path) == [
        f"{path}:6: customers[2].id: duplicate id 'b' (first on {csv}:2)",
        f"{csv}:3: customers[1].id: duplicate id 'a' (first on {path}:4)",
        f"{csv}:3: customers[1].services[0]: unknown service 'x'",
    ]


def test_a_customer_file_keeps_its_old_shapes(tmp_path: Path) -> None:
    """``customers: {file: …}`` alone still works, and duplicates in one file say the line."""
    content = b"id,name,email\na,A,a@x.example\na,A2,a2@x.example\n"
    path = write(tmp_path, "customers: {file: people.csv}\n", content)
    csv = tmp_path / "people.csv"
    assert errors_of(path) == [f"{csv}:3: customers[1].id: duplicate id 'a' (first on line 2)"]


def announced(config: Config, blocked: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """(key, address, unsubscribe link) of the first notices of an incident on service ``t``."""
    signer = UnsubscribeSigner(b"k" * 32)
    inc = make_incident("t-1", NOW, service_id="t", sequence=1, customers_told_at=NOW)
    change = IncidentChange(ChangeKind.ANNOUNCED, inc, NOW)
    notices = NoticePlanner(config, Renderer(), signer).plan([change], NOW, blocked)
    return [(n.key, n.address, n.unsubscribe_url) for n in notices if n.channel == "email"]


TWO = "customers: [{id: a, name: A, email: [a@x.example, b@x.example], services: [t]}]\n"


def test_each_address_gets_its_own_email_and_unsubscribe_link(tmp_path: Path) -> None:
    """The first address keeps the key a one-address customer had; the second has its own."""
    config = load_config(write(tmp_path, TWO))
    (first, second) = announced(config)
    assert first[:2] == ("t-1:1:a", "a@x.example")
    assert second[0].startswith("t-1:1:a~") and second[1] == "b@x.example"
    signer = UnsubscribeSigner(b"k" * 32)
    assert [signer.address(link.rpartition("/")[2]) for *_, link in (first, second)] == [
        "a@x.example",
        "b@x.example",
    ]


@pytest.fixture
async def unsubscribing(sqlite_store: SqliteStore) -> AsyncIterator[tuple[str, SqliteStore]]:
    """The real unsubscribe routes on 127.0.0.1, over a real SQLite store."""
    app = web.Application()
    add_unsubscribe_routes(app, UnsubscribeSigner(b"k" * 32), sqlite_store, lambda: NOW)
    async with serve(app) as url:
        yield url, sqlite_store


async def test_unsubscribing_one_address_keeps_the_others(
    tmp_path: Path, unsubscribing: tuple[str, SqliteStore]
) -> None:
    """One address's one-click unsubscribe stops its emails only; the customer still hears."""
    url, store = unsubscribing
    config = load_config(write(tmp_path, TWO))
    link = unsubscribe_url(url, UnsubscribeSigner(b"k" * 32).token("B@x.example"))
    async with aiohttp.ClientSession() as http, http.post(link) as response:
        assert response.status == 200
    blocked = frozenset(store.suppressed(a for c in config.customers for a in c.email))
    assert blocked == {"b@x.example"}
    assert [address for _, address, _ in announced(config, blocked)] == ["a@x.example"]
    everything = frozenset({"a@x.example", "b@x.example"})
    assert announced(config, everything) == []


def test_ops_hear_whose_second_address_unsubscribed(tmp_path: Path) -> None:
    """Any of a customer's addresses, in any case, names the customer to ops."""
    ops = "notices: {ops: [{type: webhook, url: 'https://hooks.example.net/x'}]}\n"
    config = load_config(write(tmp_path, TWO + ops))
    notices = NoticePlanner(config, Renderer()).ops.unsubscribed("B@X.example", NOW)
    assert [n.subject for n in notices] == ["[forewarn] Unsubscribed: A (a)"]
