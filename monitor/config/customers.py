"""Customers: the model, and where they come from (inline, CSV files, or both), each row located."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator

from monitor.config.errors import Problems
from monitor.config.yamlsource import MAX_BYTES, Located, format_key
from monitor.core.fields import FROM_FILE, Identifier, Language, StrictModel, check_zone
from notifiers.message import EMAIL_PATTERN

CSV_COLUMNS = ("id", "name", "email", "language", "services", "timezone", "detail")
_REQUIRED_COLUMNS = CSV_COLUMNS[:3]
# Several services or addresses in one CSV cell: separated by spaces, `|`, `,` or `;`
# (a cell holding the file's own separator is quoted, as spreadsheets do).
_CELL_LIST = re.compile(r"[\s|,;]+")


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _folded(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class Customer(StrictModel):
    """Someone to tell when their services break, at one or more addresses."""

    id: Identifier
    name: Annotated[str, Field(min_length=1)]
    # One address or a list; each gets the customer's emails and unsubscribes on its own.
    email: Annotated[
        tuple[Annotated[str, Field(pattern=EMAIL_PATTERN)], ...],
        BeforeValidator(_one_or_many),
        Field(min_length=1, max_length=20),
    ]
    language: Annotated[Language, BeforeValidator(_folded)] = "fr"  # FR, En: the same
    services: list[Identifier] = Field(default_factory=list)
    timezone: str | None = None
    detail: Literal["summary", "technical"] = "summary"  # technical: the failing check too

    @field_validator("email")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        folded = [address.lower() for address in value]
        if len(set(folded)) < len(folded):
            raise ValueError("lists the same address twice")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    def owns(self, address: str) -> bool:
        """Whether ``address`` (any case) is one of this customer's."""
        folded = address.strip().lower()
        return any(mine.lower() == folded for mine in self.email)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer as written, and where: key ``("customers", index)`` of ``source``."""

    source: Located
    index: int
    value: Any

    @property
    def key(self) -> tuple[str, int]:
        """Its key path in its source."""
        return ("customers", self.index)

    def place(self) -> str:
        """``file:line`` of the row, to point at it from an error about another row."""
        return f"{self.source.path}:{self.source.line_of((*self.key, 'id'))}"


def customer_rows(raw: dict[str, Any], doc: Located, problems: Problems) -> list[CustomerRow]:
    """Customers written inline, read from ``{file: customers.csv}``, or a list mixing both.

    In a list, an item ``{file: more.csv}`` stands for that file's rows.
    """
    section = raw.get("customers", [])
    if isinstance(section, list):
        rows: list[CustomerRow] = []
        for i, item in enumerate(section):
            if isinstance(item, dict) and "file" in item:
                rows += _included(item, ("customers", i), doc, problems)
            else:
                rows.append(CustomerRow(doc, i, item))
        return rows
    if not isinstance(section, dict):
        empty = ", not empty" if section is None else ""
        problems.add(doc, ("customers",), f"must be a list or {{file: customers.csv}}{empty}")
        return []
    return _included(section, ("customers",), doc, problems)


def _included(
    section: dict[str, Any], key: tuple[Any, ...], doc: Located, problems: Problems
) -> list[CustomerRow]:
    """The rows of the CSV file a ``{file: …}`` mapping at ``key`` names."""
    for other in section:
        if other != "file":
            problems.add(doc, (*key, other), "unknown key")
    name = section.get("file")
    if not isinstance(name, str) or not name:
        message = "is required" if name is None else "must be a path"
        problems.add(doc, (*key, "file"), message)
        return []
    path = Path(name) if Path(name).is_absolute() else doc.path.parent / name
    return _read_csv(path, doc, (*key, "file"), problems)


def _read_csv(
    path: Path, doc: Located, key: tuple[Any, ...], problems: Problems
) -> list[CustomerRow]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        problems.add(doc, key, f"cannot read {path}: {exc.strerror or exc}")
        return []
    if len(data) > MAX_BYTES:
        problems.add(doc, key, f"{path} is larger than {MAX_BYTES} bytes")
        return []
    try:
        text = data.decode("utf-8-sig")  # spreadsheets often start their CSV with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add_at(path, line, f"{path}:{line}: not UTF-8 text")
        return []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator(text))
    try:
        return _rows(reader, path, problems)
    except csv.Error as exc:
        problems.add_at(path, reader.line_num, f"{path}:{reader.line_num}: invalid CSV: {exc}")
        return []


def separator(text: str) -> str:
    """``;`` (a French spreadsheet's export) or ``,``: whichever the header line uses more."""
    header = text.partition("\n")[0]
    return ";" if header.count(";") > header.count(",") else ","


def _rows(reader: Any, path: Path, problems: Problems) -> list[CustomerRow]:
    """Rows as customer mappings, each remembering its line; none if the header is unusable."""
    header = [column.strip() for column in next(reader, [])]
    # By position, never quoted: a file named by mistake (a token file) must not be printed.
    wrong = [f"unknown column {i}" for i, c in enumerate(header, 1) if c not in CSV_COLUMNS]
    wrong += [f"column {c!r} appears twice" for c in CSV_COLUMNS if header.count(c) > 1]
    wrong += [f"missing column {c!r}" for c in _REQUIRED_COLUMNS if c not in header]
    for message in wrong:
        problems.add_at(path, 1, f"{path}:1: {message} (columns: {', '.join(CSV_COLUMNS)})")
    if wrong:
        return []
    rows: list[dict[str, Any]] = []
    lines: dict[tuple[Any, ...], int] = {("customers",): 1}
    end = reader.line_num
    for record in reader:
        start, end = end + 1, reader.line_num
        if not record:
            continue  # a blank line
        key = ("customers", len(rows))
        lines[key] = start
        if len(record) > len(header):
            text = f"{path}:{start}: {format_key(key)}: more fields than columns"
            problems.add_at(path, start, text)
        row: dict[str, Any] = {c: v.strip() for c, v in zip(header, record, strict=False)}
        row = {column: cell for column, cell in row.items() if cell}
        row["services"] = [s for s in _CELL_LIST.split(row.get("services", "")) if s]
        addresses = [a for a in _CELL_LIST.split(row.get("email", "")) if a]
        if len(addresses) > 1:  # one address stays a string: its errors name `email`
            row["email"] = addresses
        rows.append(row)
    source = Located(path, {"customers": rows}, lines)
    return [CustomerRow(source, i, row) for i, row in enumerate(rows)]


def validate_customers(rows: Sequence[CustomerRow], problems: Problems) -> list[Customer]:
    """Validate each customer on its own, so each error names its row's file and line."""
    customers: list[Customer] = []
    for row in rows:
        if not isinstance(row.value, dict):
            problems.add(row.source, row.key, "must be a mapping")
            continue
        try:
            customers.append(Customer.model_validate(row.value, context=FROM_FILE))
        except ValidationError as exc:
            problems.add_validation(exc, row.source, row.key, row.value, Customer)
    return customers


def unique_customers(rows: Sequence[CustomerRow], problems: Problems) -> None:
    """A customer id appears once, across the inline list and every file."""
    first: dict[str, CustomerRow] = {}
    for row in rows:
        ident = row.value.get("id") if isinstance(row.value, dict) else None
        if not isinstance(ident, str):
            continue
        if ident not in first:
            first[ident] = row
            continue
        earlier = first[ident]
        same = earlier.source.path == row.source.path
        where = f"line {earlier.place().rpartition(':')[2]}" if same else earlier.place()
        problems.add(row.source, (*row.key, "id"), f"duplicate id {ident!r} (first on {where})")
