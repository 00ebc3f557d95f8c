"""Settlement records as the settlement system sends them, read and checked. Pure: bytes or
JSON in, records and the problems of the bad ones out (``lending.settlements`` stores them).

Fields (the CSV header, in any order, English or Chinese; the API's JSON keys)::

    ref          流水号    the settlement system's id of the record, 1-64 of A-Z a-z 0-9 . _ : -
                           (the same ref again is the same record: stored once)
    customer_id  客户号    the whitelist's customer id
    date         结算日期  the local date it settled: 2026-11-03 (or 2026/11/03, 20261103),
                           not after today
    amount       金额      yuan above 0 with at most two decimals (12000, 12,000.50)
    payer        付款方    who paid it, 1-100 characters

The file is CSV in UTF-8 (a BOM is fine) or GBK/GB18030 as Chinese Excel saves it; its first
non-blank line is the header, blank lines are skipped, and each bad row is named by its line
(the header is line 1) with why. The same ref twice in one batch is one record, unless the
two differ: then the second is a bad row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from core.text_files import NotText, decode_text
from lending.alert_rules import Settlement, yuan
from lending.errors import SettlementFileError

FIELDS = ("ref", "customer_id", "date", "amount", "payer")
ALIASES = {"流水号": "ref", "客户号": "customer_id", "结算日期": "date", "金额": "amount",
           "付款方": "payer"}
MAX_FEN = 10**13  # 100 billion yuan: anything larger is a typo
MAX_RECORDS = 2000
"""Records in one API request (a file may have any number); the web server takes bodies
of at most 256 KB, which 2,000 records of the usual length fit."""

_REF = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CUSTOMER = re.compile(r"\S{1,64}")
_AMOUNT = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?|[0-9]+(\.[0-9]+)?")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")


@dataclass(frozen=True)
class SettlementRow:
    """One good record and where it came from (``line 7``, ``settlements[2]``)."""

    where: str
    ref: str
    customer_id: str
    on: date
    amount_fen: int
    payer: str

    def settlement(self) -> Settlement:
        """The rules' view of it."""
        return Settlement(self.on, self.amount_fen, self.payer)

    def figures(self) -> tuple[str, date, int, str]:
        """What must match when the same ref comes again."""
        return (self.customer_id, self.on, self.amount_fen, self.payer)


@dataclass
class ParsedRows:
    """A batch's good records, and ``(where, reason)`` for each bad one."""

    rows: list[SettlementRow] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class Progress(Protocol):
    """A progress bar (tqdm's ``update``)."""

    def update(self, n: int = 1) -> Any: ...


# ------------------------------------------------------------------ one record
def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise ValueError(f"{name} is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{name} must be text")
    return str(value).strip()


def parse_amount(value: object) -> int:
    """Yuan (text or a JSON number) as whole fen: ``12,000.50`` -> 1200050."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("amount must be yuan, e.g. 12000.50")
    text = str(value).strip()
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"amount must be yuan above 0 with at most two decimals, got {text!r}")
    try:
        fen = Decimal(text.replace(",", "")) * 100
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if fen != fen.to_integral_value():
        raise ValueError(f"amount has at most two decimals (fen), got {text!r}")
    if not 0 < fen <= MAX_FEN:
        raise ValueError(f"amount must be above 0 and at most {yuan(MAX_FEN)}, got {text!r}")
    return int(fen)


def parse_date(text: str, today: date) -> date:
    """``2026-11-03`` (or ``2026/11/03``, ``20261103``), not after ``today``."""
    for form in _DATE_FORMATS:
        try:
            on = datetime.strptime(text, form).date()
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"date must be a date such as 2026-11-03, got {text!r}")
    if on > today:
        raise ValueError(f"date {on.isoformat()} is after today ({today.isoformat()})")
    return on


def parse_record(fields: Mapping[str, object], where: str, today: date) -> SettlementRow:
    """One record's fields as a row; ``ValueError`` with the first thing wrong."""
    ref = _text(fields, "ref")
    if not _REF.fullmatch(ref):
        raise ValueError(f"ref must be 1-64 of A-Z a-z 0-9 . _ : -, got {ref!r}")
    customer_id = _text(fields, "customer_id")
    if not _CUSTOMER.fullmatch(customer_id):
        raise ValueError("customer_id must be 1-64 characters without spaces")
    on = parse_date(_text(fields, "date"), today)
    if "amount" not in fields or fields["amount"] is None:
        raise ValueError("amount is missing")
    amount_fen = parse_amount(fields["amount"])
    payer = " ".join(_text(fields, "payer").split())
    if not 1 <= len(payer) <= 100:
        raise ValueError("payer must be 1-100 characters")
    return SettlementRow(where, ref, customer_id, on, amount_fen, payer)


def collect(records: Iterable[tuple[str, Mapping[str, object]]], today: date, *,
            progress: Progress | None = None) -> ParsedRows:
    """Every record checked: the good ones (a ref repeated with the same figures once), and
    the problem of each bad one."""
    parsed = ParsedRows()
    first: dict[str, SettlementRow] = {}
    for count, (where, fields) in enumerate(records, start=1):
        if progress is not None and count % 1000 == 0:
            progress.update(1000)
        try:
            row = parse_record(fields, where, today)
        except ValueError as exc:
            parsed.problems.append((where, str(exc)))
            continue
        seen = first.get(row.ref)
        if seen is None:
            first[row.ref] = row
            parsed.rows.append(row)
        elif seen.figures() != row.figures():
            parsed.problems.append(
                (where, f"ref {row.ref} is also {seen.where}, with other figures"))
    return parsed


# ------------------------------------------------------------------ the API's JSON
def parse_request(body: object, today: date) -> ParsedRows:
    """``{"settlements": [{...}, ...]}``; a ``SettlementFileError`` when it is not that shape."""
    if not isinstance(body, dict) or not isinstance(body.get("settlements"), list):
        raise SettlementFileError('the body must be {"settlements": [{"ref", "customer_id", '
                                  '"date", "amount", "payer"}, ...]}')
    items = body["settlements"]
    if not items:
        raise SettlementFileError("settlements is empty")
    if len(items) > MAX_RECORDS:
        raise SettlementFileError(f"at most {MAX_RECORDS} settlements a request, got {len(items)}")
    records: list[tuple[str, Mapping[str, object]]] = []
    problems = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            records.append((f"settlements[{index}]", item))
        else:
            problems.append((f"settlements[{index}]", "must be an object"))
    parsed = collect(records, today)
    parsed.problems = sorted(problems + parsed.problems, key=lambda p: _index(p[0]))
    return parsed


def _index(where: str) -> int:
    return int(where[where.index("[") + 1:-1])


# ------------------------------------------------------------------ the CSV file
def decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GBK/GB18030 as Chinese Excel writes it."""
    try:
        return decode_text(data)
    except NotText as exc:
        raise SettlementFileError(str(exc)) from exc


def _header(cells: Sequence[str]) -> list[str]:
    names = [ALIASES.get(cell.strip(), cell.strip().lower()) for cell in cells]
    missing = [name for name in FIELDS if name not in names]
    if missing:
        raise SettlementFileError(f"line 1: the header lacks {', '.join(missing)} "
                                  f"(it needs {', '.join(FIELDS)})")
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise SettlementFileError(f"the header has {', '.join(repeated)} twice")
    return names


def _lines(data: bytes) -> Iterator[tuple[str, Mapping[str, object] | str]]:
    """Each row after the header as ``("line N", its fields)``, or ``("line N", why)`` when
    it has the wrong number of cells; a ``SettlementFileError`` when the file cannot be read
    as CSV with the header at all."""
    if not data.strip():
        raise SettlementFileError("the file is empty")
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    header: list[str] | None = None
    try:
        for cells in reader:
            if header is None:
                if any(cell.strip() for cell in cells):
                    header = _header(cells)
                continue
            if not any(cell.strip() for cell in cells):
                continue
            while len(cells) > len(header) and not cells[-1].strip():
                cells = cells[:-1]
            where = f"line {reader.line_num}"
            if len(cells) != len(header):
                yield where, f"expected {len(header)} fields as in the header, found {len(cells)}"
            else:
                yield where, dict(zip(header, cells, strict=True))
    except csv.Error as exc:
        raise SettlementFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from None
    if header is None:
        raise SettlementFileError("the file is empty")


def parse_csv(data: bytes, today: date, *, progress: Progress | None = None) -> ParsedRows:
    """The file's good records and the problem of each bad row, in line order (see the
    module docstring); ``progress`` is told of every thousand rows read."""
    wrong_width: list[tuple[str, str]] = []

    def well_formed() -> Iterator[tuple[str, Mapping[str, object]]]:
        for where, fields in _lines(data):
            if isinstance(fields, str):
                wrong_width.append((where, fields))
            else:
                yield where, fields

    parsed = collect(well_formed(), today, progress=progress)
    if wrong_width:
        parsed.problems = sorted(parsed.problems + wrong_width, key=lambda p: int(p[0].split()[1]))
    if not parsed.rows and not parsed.problems:
        raise SettlementFileError("the file has a header but no settlement rows")
    return parsed
