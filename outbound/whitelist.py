"""The pre-approved whitelist (CSV or XLSX): parsing and validation (pure), then loading (database).

Header: ``customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,
term_months,valid_until,consent`` plus optional ``gender``, ``address`` and, for small-business
products, ``org_name`` and ``org_address`` (the organisation the customer is the contact of,
and its registered address), in any order.

- CSV: UTF-8 (with or without BOM) or GBK/GB18030 as Chinese Excel exports it.
- XLSX: the first worksheet. Cells may be text, numbers (a phone typed as 13800138000),
  dates (valid_until) or percentages (a rate cell showing 3.6%).

The format is told by the content (an XLSX workbook is a zip archive), not by the name.
Bad rows are reported by line number (the CSV line or the spreadsheet row; the header is
line 1); blank lines are skipped. The good rows load in one transaction, all or nothing.
Re-importing updates instead of duplicating: changed terms make a new offer version.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.clock import utcnow
from core.masking import mask_name
from core.text_files import NotText, decode_text
from core.vocabulary import AuditAction
from persistence import audit, store
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import Customer, Offer

COLUMNS = (
    "customer_id", "name", "phone", "region", "segment", "product", "amount",
    "rate_min", "rate_max", "term_months", "valid_until", "consent",
)
OPTIONAL_COLUMNS = ("gender", "address", "org_name", "org_address")
MAX_AMOUNT = 10_000_000
MAX_RATE = Decimal(36)
CENT = Decimal("0.01")
BATCH = 1000
_LENGTHS = {"customer_id": 64, "name": 100, "region": 100, "segment": 100, "product": 100,
            "address": 200, "org_name": 100, "org_address": 200}
_TRUE = {"1", "true", "是", "y", "yes"}
_FALSE = {"0", "false", "否", "n", "no"}
_GENDER = {"m": "M", "男": "M", "f": "F", "女": "F"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}


class WhitelistFormatError(ValueError):
    """The file as a whole cannot be read (encoding, header, not a workbook, no rows)."""


@dataclass(frozen=True)
class WhitelistRow:
    """One valid customer with their offer."""

    line: int
    customer_id: str
    name: str
    phone: str
    region: str
    segment: str
    product: str
    amount_yuan: int
    rate_min: Decimal
    rate_max: Decimal
    term_months: int
    valid_until: date
    consent: bool
    gender: str | None
    address: str | None = None
    org_name: str | None = None
    org_address: str | None = None


@dataclass(frozen=True)
class RowError:
    """A rejected row: its line number (spreadsheet row for XLSX) and why."""

    line: int
    customer_id: str | None
    reason: str


@dataclass
class ParsedWhitelist:
    rows: list[WhitelistRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass
class LoadResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """What an import did: counts, the ids loaded (file order) and every rejected row."""

    loaded: LoadResult
    errors: list[RowError]
    loaded_customer_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A human-readable report, one line per rejected row."""
        lines = [
            f"loaded: {self.loaded.inserted} new, {self.loaded.updated} updated, "
            f"{self.loaded.unchanged} unchanged; rejected: {len(self.errors)}"
        ]
        lines += [
            f"  line {e.line}" + (f" ({e.customer_id})" if e.customer_id else "") + f": {e.reason}"
            for e in self.errors
        ]
        return "\n".join(lines)

    def write_errors_csv(self, path: Path) -> None:
        """The rejected rows as ``line,customer_id,reason`` (UTF-8 with BOM, so Excel reads it)."""
        with Path(path).open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "customer_id", "reason"])
            writer.writerows([e.line, e.customer_id or "", e.reason] for e in self.errors)


# --- reading the file ---------------------------------------------------------------------


def decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GBK/GB18030 as Chinese Excel writes it."""
    try:
        return decode_text(data)
    except NotText as exc:
        raise WhitelistFormatError(str(exc)) from exc


def _csv_records(data: bytes) -> tuple[int, Iterator[tuple[int, Sequence[Any]]]]:
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))

    def records() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            for fields in reader:
                yield reader.line_num, fields
        except csv.Error as exc:
            raise WhitelistFormatError(f"line {reader.line_num + 1}: not readable as CSV ({exc})") from exc

    return text.count("\n"), records()


def _xlsx_records(data: bytes) -> tuple[int, Iterator[tuple[int, Sequence[Any]]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        size = sheet.max_row or 0
        # The stored dimensions may be wrong (some exporters write A1); read every row there is.
        sheet.reset_dimensions()
    except Exception as exc:
        raise WhitelistFormatError(f"not a readable XLSX workbook ({_why(exc)})") from exc

    def records() -> Iterator[tuple[int, Sequence[Any]]]:
        percent: dict[Any, bool] = {}  # by cell style: is it a percentage format?
        try:
            # iter_rows yields empty rows for the gaps, so counting gives the spreadsheet row.
            for line, cells in enumerate(sheet.iter_rows(), start=1):
                yield line, [_cell_value(cell, percent) for cell in cells]
        except WhitelistFormatError:
            raise
        except Exception as exc:
            raise WhitelistFormatError(f"the worksheet is damaged ({_why(exc)})") from exc
        finally:
            book.close()

    return size, records()


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _cell_value(cell: Any, percent: dict[Any, bool]) -> Any:
    """The cell's value; a number shown as a percentage (3.6% holds 0.036) as that percentage."""
    value = cell.value
    if value.__class__ is not float and value.__class__ is not int:
        return value
    style = getattr(cell, "_style_id", None)  # formats are looked up once per style, not per cell
    if style is None or style not in percent:
        shown_as_percent = "%" in (cell.number_format or "")
        if style is None:
            return round(value * 100, 8) if shown_as_percent else value
        percent[style] = shown_as_percent
    return round(value * 100, 8) if percent[style] else value


def _text(value: Any) -> str:
    """A cell as the text a CSV would hold: 13800138000.0 -> "13800138000", a date -> ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # Whole numbers lose the ".0"; computed cells lose float noise (4.3500000000000005).
        return str(int(value)) if value.is_integer() else repr(round(value, 9))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _sniff(data: bytes, name: str = "") -> str:
    """"csv" or "xlsx", from the content; a name ending .xlsx must hold a workbook."""
    if data.startswith(_ZIP_MAGIC):
        return "xlsx"
    if data.startswith(_OLE_MAGIC):
        raise WhitelistFormatError(
            "this is an old Excel .xls file or a password-protected workbook; "
            "save it from Excel as .xlsx (without a password) or as CSV"
        )
    if Path(name).suffix.lower() in _XLSX_SUFFIXES:
        raise WhitelistFormatError(
            f"{Path(name).name} is named like an XLSX workbook but is not one (no zip signature); "
            "save it again from Excel as .xlsx, or name it .csv if it is CSV text"
        )
    return "csv"


# --- validating a row ---------------------------------------------------------------------


def _phone(raw: str) -> str:
    digits = re.sub(r"[\s\-()]", "", raw)
    digits = re.sub(r"^(\+?86)(?=1\d{10}$)", "", digits)
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return digits
    if not digits:
        raise ValueError("phone is empty")
    if re.fullmatch(r"\d(\.\d+)?e\+?\d+", digits, re.IGNORECASE):
        raise ValueError(f"phone {raw!r} was saved in scientific notation and lost digits; "
                         "format the phone column as text in Excel and export again")
    raise ValueError(f"phone {raw!r} is not a mainland mobile number (11 digits starting 13-19)")


def _amount(raw: str) -> int:
    try:
        value = Decimal(raw.replace(",", "").strip())
    except InvalidOperation as exc:
        raise ValueError(f"amount {raw!r} is not a number" if raw.strip() else "amount is empty") from exc
    if value != value.to_integral_value() or not 0 < value <= MAX_AMOUNT:
        raise ValueError(f"amount {raw!r} must be a whole number of yuan between 1 and {MAX_AMOUNT}")
    return int(value)


def _rates(raw_min: str, raw_max: str) -> tuple[Decimal, Decimal]:
    try:
        low, high = Decimal(raw_min.strip().rstrip("%")), Decimal(raw_max.strip().rstrip("%"))
    except InvalidOperation as exc:
        raise ValueError(f"rates {raw_min!r}/{raw_max!r} are not numbers") from exc
    if not Decimal(0) < low <= high <= MAX_RATE:
        raise ValueError(f"rates must satisfy 0 < rate_min <= rate_max <= {MAX_RATE} (got {low}, {high})")
    if low != low.quantize(CENT) or high != high.quantize(CENT):
        raise ValueError(f"rates are percentages with at most two decimals (got {low}, {high})")
    return low, high


def _term(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 360:
        raise ValueError(f"term_months {raw!r} must be a whole number from 1 to 360")
    return int(raw)


@lru_cache(maxsize=4096)
def _date(raw: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"valid_until {raw!r} is not a date (YYYY-MM-DD)" if raw else "valid_until is empty")


def _valid_until(raw: str, today: date) -> date:
    value = _date(raw.strip())
    if value < today:
        raise ValueError(f"offer expired on {value.isoformat()}")
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"consent {raw!r} must be 1/0, true/false, 是/否 or Y/N")


def _gender(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    if raw.strip().lower() not in _GENDER:
        raise ValueError(f"gender {raw!r} must be M/F or 男/女")
    return _GENDER[raw.strip().lower()]


def _header(fields: Sequence[Any], line: int) -> list[str]:
    header = [_text(name).strip().lower() for name in fields]
    while header and not header[-1]:
        header.pop()  # Excel leaves empty columns after the last one
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c or "(empty)" for c in header if c not in COLUMNS and c not in OPTIONAL_COLUMNS]
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if missing or unknown or repeated:
        problems = []
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown columns: {', '.join(unknown)}")
        if repeated:
            problems.append(f"repeated columns: {', '.join(repeated)}")
        raise WhitelistFormatError(
            f"bad header on line {line} (" + "; ".join(problems) + "); expected "
            + ",".join(COLUMNS) + " and optionally " + ",".join(OPTIONAL_COLUMNS)
        )
    return header


def _row(line: int, values: dict[str, str], today: date) -> WhitelistRow:
    for column, limit in _LENGTHS.items():
        if len(values.get(column, "").strip()) > limit:
            raise ValueError(f"{column} is longer than {limit} characters")
    customer_id, name = values["customer_id"].strip(), values["name"].strip()
    if not customer_id:
        raise ValueError("customer_id is empty")
    if not name:
        raise ValueError("name is empty")
    rate_min, rate_max = _rates(values["rate_min"], values["rate_max"])
    return WhitelistRow(
        line=line, customer_id=customer_id, name=name, phone=_phone(values["phone"]),
        region=values["region"].strip(), segment=values["segment"].strip(),
        product=values["product"].strip() or "预授信贷款", amount_yuan=_amount(values["amount"]),
        rate_min=rate_min, rate_max=rate_max, term_months=_term(values["term_months"]),
        valid_until=_valid_until(values["valid_until"], today), consent=_flag(values["consent"]),
        gender=_gender(values.get("gender")),
        address=_optional(values, "address"), org_name=_optional(values, "org_name"),
        org_address=_optional(values, "org_address"),
    )


def _optional(values: dict[str, str], column: str) -> str | None:
    """An optional text column's value; empty or absent is None."""
    return values.get(column, "").strip() or None


def parse_records(
    records: Iterable[tuple[int, Sequence[Any]]], *, today: date, padded: bool, bar: tqdm
) -> ParsedWhitelist:
    """Validate every record after the header. ``padded``: a short row means empty trailing
    cells (XLSX) rather than missing fields (CSV)."""
    records = iter(records)
    first = next(records, None)
    while first is not None and not any(_text(f).strip() for f in first[1]):
        first = next(records, None)  # blank lines before the header
    if first is None:
        raise WhitelistFormatError("the file is empty")
    header = _header(first[1], first[0])
    width = len(header)
    parsed = ParsedWhitelist()
    seen: dict[str, int] = {}
    count = 0
    for line, raw in records:
        count += 1
        if count % BATCH == 0:
            bar.update(BATCH)
        fields = [_text(f) for f in raw]
        if not any(f.strip() for f in fields):
            continue
        while len(fields) > width and not fields[-1].strip():
            fields.pop()
        if padded and len(fields) < width:
            fields += [""] * (width - len(fields))
        if len(fields) != width:
            parsed.errors.append(RowError(
                line, fields[header.index("customer_id")].strip() or None
                if len(fields) > header.index("customer_id") else None,
                f"expected {width} fields as in the header, found {len(fields)}",
            ))
            continue
        values = dict(zip(header, fields))
        customer_id = values["customer_id"].strip() or None
        try:
            row = _row(line, values, today)
        except ValueError as exc:
            parsed.errors.append(RowError(line, customer_id, str(exc)))
            continue
        if row.customer_id in seen:
            parsed.errors.append(RowError(
                line, row.customer_id, f"duplicate customer_id (first on line {seen[row.customer_id]})"
            ))
            continue
        seen[row.customer_id] = line
        parsed.rows.append(row)
    bar.update(count % BATCH)
    if not parsed.rows and not parsed.errors:
        raise WhitelistFormatError("the file has a header but no customer rows")
    return parsed


def file_records(data: bytes, name: str = "") -> tuple[str, int, Iterator[tuple[int, Sequence[Any]]]]:
    """A whitelist file's kind (``csv`` or ``xlsx``, told apart by content), its row count with
    the header (approximate for CSV) and its records, ``(line, cells)``, unvalidated."""
    if not data:
        raise WhitelistFormatError("the file is empty")
    kind = _sniff(data, name)
    size, records = _xlsx_records(data) if kind == "xlsx" else _csv_records(data)
    return kind, size, records


def cell_text(value: Any) -> str:
    """A cell as the validation reads it (numbers without a spurious .0, dates as ISO)."""
    return _text(value)


def parse_whitelist(
    data: bytes, *, today: date, name: str = "", progress: bool = False
) -> ParsedWhitelist:
    """Validate every row of a CSV or XLSX file's bytes (told apart by content; ``name`` only
    sharpens the error for a misnamed file). Valid rows become rows, the others errors."""
    kind, size, records = file_records(data, name)
    with tqdm(total=max(size - 1, 0) or None, unit="row", desc="parsing", disable=not progress) as bar:
        return parse_records(records, today=today, padded=kind == "xlsx", bar=bar)


def read_whitelist(path: Path, *, today: date, progress: bool = False) -> ParsedWhitelist:
    """Read and validate the whitelist file at ``path`` (CSV or XLSX)."""
    path = Path(path)
    return parse_whitelist(path.read_bytes(), today=today, name=path.name, progress=progress)


# --- loading ------------------------------------------------------------------------------

READ_BATCH = 5000  # ids per look-up of what is stored
_PERSON = ("name", "masked_name", "gender", "phone", "region", "segment", "consent", "address",
           "org_name", "org_address")
_TERMS = ("product", "amount_yuan", "rate_min", "rate_max", "term_months", "valid_until")
_customers = Customer.__table__
_offers = Offer.__table__
_People = dict[str, tuple]  # customer_id -> stored _PERSON values
_Offers = dict[str, tuple[int, int, tuple]]  # customer_id -> active offer (id, version, _TERMS)


def _person(row: WhitelistRow) -> dict[str, Any]:
    return dict(name=row.name, masked_name=mask_name(row.name), gender=row.gender,
                phone=row.phone, region=row.region, segment=row.segment, consent=row.consent,
                address=row.address, org_name=row.org_name, org_address=row.org_address)


def _offer_terms(row: WhitelistRow) -> tuple:
    return (row.product, row.amount_yuan, row.rate_min, row.rate_max, row.term_months, row.valid_until)


def _stored(session: Session, ids: Sequence[str]) -> tuple[_People, _Offers]:
    """What is stored for ``ids``, read before anything is written (so PostgreSQL never plans
    a look-up against a table growing under it)."""
    people: _People = {}
    offers: _Offers = {}
    for start in range(0, len(ids), READ_BATCH):
        chunk = ids[start:start + READ_BATCH]
        people.update((r[0], tuple(r[1:])) for r in session.execute(
            select(_customers.c.customer_id, *(_customers.c[k] for k in _PERSON))
            .where(_customers.c.customer_id.in_(chunk))))
        offers.update((r[0], (r[1], r[2], tuple(r[3:]))) for r in session.execute(
            select(_offers.c.customer_id, _offers.c.id, _offers.c.version, *(_offers.c[k] for k in _TERMS))
            .where(_offers.c.customer_id.in_(chunk), _offers.c.active.is_(True))))
    return people, offers


def _load_batch(session: Session, batch: Sequence[WhitelistRow], people: _People, offers: _Offers,
                now: datetime, result: LoadResult) -> None:
    """Compare a batch with what is stored and write only the differences, in bulk."""
    new_customers, changed_customers, new_offers, retired = [], [], [], []
    for row in batch:
        person = _person(row)
        current = people.get(row.customer_id)
        changed = False
        if current is None:
            new_customers.append(dict(customer_id=row.customer_id, created_at=now, updated_at=now, **person))
        elif current != tuple(person.values()):
            changed_customers.append(dict(key=row.customer_id, updated_at=now, **person))
            changed = True
        offer = offers.get(row.customer_id)
        if offer is None or offer[2] != _offer_terms(row):
            if offer is not None:
                retired.append(offer[0])
            new_offers.append(dict(
                customer_id=row.customer_id, product=row.product, amount_yuan=row.amount_yuan,
                rate_min=row.rate_min, rate_max=row.rate_max, term_months=row.term_months,
                valid_until=row.valid_until, version=offer[1] + 1 if offer else 1,
                active=True, created_at=now,
            ))
            changed = True
        if current is None:
            result.inserted += 1
        elif changed:
            result.updated += 1
        else:
            result.unchanged += 1
    if new_customers:
        session.execute(insert(_customers), new_customers)
    if changed_customers:
        session.execute(
            update(_customers).where(_customers.c.customer_id == bindparam("key"))
            .values({k: bindparam(k) for k in (*_PERSON, "updated_at")}),
            changed_customers,
        )
    if retired:
        session.execute(update(_offers).where(_offers.c.id.in_(retired)).values(active=False))
    if new_offers:
        session.execute(insert(_offers), new_offers)


def load_whitelist(engine: Engine, parsed: ParsedWhitelist, *, progress: bool = False,
                   actor: Actor | None = None, source: str = "") -> ImportReport:
    """Drop rows on the do-not-contact list and upsert the rest, all in one transaction with
    its audit entry (``actor``: the command line's user by default): if anything fails,
    nothing is written. Changed terms make a new offer version."""
    errors = list(parsed.errors)
    result = LoadResult()
    loaded: list[WhitelistRow] = []
    with session_scope(engine) as session, tqdm(
        total=len(parsed.rows), unit="row", desc="loading", disable=not progress
    ) as bar:
        blocked_ids, blocked_phones = store.do_not_contact_keys(session)
        for row in parsed.rows:
            if row.customer_id in blocked_ids or row.phone in blocked_phones:
                errors.append(RowError(row.line, row.customer_id, "on do-not-contact list"))
            else:
                loaded.append(row)
        bar.update(len(parsed.rows) - len(loaded))
        people, offers = _stored(session, [r.customer_id for r in loaded])
        now = utcnow()
        for start in range(0, len(loaded), BATCH):
            batch = loaded[start:start + BATCH]
            _load_batch(session, batch, people, offers, now, result)
            bar.update(len(batch))
        audit.record(session, actor or Actor.command_line(), AuditAction.WHITELIST_IMPORTED,
                     "whitelist", source or "(rows)", now, rows=len(parsed.rows),
                     inserted=result.inserted, updated=result.updated,
                     unchanged=result.unchanged, rejected=len(errors))
    if engine.dialect.name == "postgresql" and (result.inserted or result.updated):
        # Fresh statistics after a bulk load, so look-ups by customer id use the indexes.
        with engine.begin() as connection:
            connection.execute(text(f"ANALYZE {_customers.name}, {_offers.name}"))
    errors.sort(key=lambda e: e.line)
    return ImportReport(loaded=result, errors=errors, loaded_customer_ids=[r.customer_id for r in loaded])


def import_whitelist_file(
    engine: Engine, path: Path, *, today: date | None = None, progress: bool = False,
    actor: Actor | None = None,
) -> ImportReport:
    """Read and validate ``path`` (CSV or XLSX), then load the good rows in one transaction.

    File-level problems raise :class:`WhitelistFormatError` before anything is written.
    """
    parsed = read_whitelist(Path(path), today=today or date.today(), progress=progress)
    return load_whitelist(engine, parsed, progress=progress, actor=actor, source=Path(path).name)
