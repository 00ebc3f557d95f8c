"""The pre-approved whitelist CSV: parsing and validation (pure), then loading (database).

Header: ``customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,
term_months,valid_until,consent`` plus an optional ``gender`` column. UTF-8 (with or without
BOM) or GBK as Chinese Excel exports it. Bad rows are reported by file line number (the
header is line 1); good rows still load; re-importing updates instead of duplicating.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from tqdm import tqdm

from offercall import store
from offercall.db import session_scope, utcnow
from offercall.masking import mask_name
from offercall.schema import Customer, Offer

COLUMNS = (
    "customer_id", "name", "phone", "region", "segment", "product", "amount",
    "rate_min", "rate_max", "term_months", "valid_until", "consent",
)
OPTIONAL_COLUMNS = ("gender",)
MAX_AMOUNT = 10_000_000
MAX_RATE = Decimal(36)
BATCH = 1000
_TRUE = {"1", "true", "是", "y", "yes"}
_FALSE = {"0", "false", "否", "n", "no"}
_GENDER = {"m": "M", "男": "M", "f": "F", "女": "F"}


class WhitelistFormatError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


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


@dataclass(frozen=True)
class RowError:
    """A rejected row: its file line number and why."""

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
    """What an import did, with every rejected row."""

    loaded: LoadResult
    errors: list[RowError]

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


def decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GBK/GB18030 as Chinese Excel writes it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise WhitelistFormatError("the file is neither UTF-8 nor GBK text") from exc


def _phone(raw: str) -> str:
    digits = re.sub(r"[\s\-()]", "", raw)
    digits = re.sub(r"^(\+?86)(?=1\d{10}$)", "", digits)
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise ValueError(f"phone {raw!r} is not a mainland mobile number")
    return digits


def _amount(raw: str) -> int:
    try:
        value = Decimal(raw.replace(",", "").strip())
    except InvalidOperation as exc:
        raise ValueError(f"amount {raw!r} is not a number") from exc
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
    return low, high


def _term(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 360:
        raise ValueError(f"term_months {raw!r} must be a whole number from 1 to 360")
    return int(raw)


def _valid_until(raw: str, today: date) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            value = datetime.strptime(raw.strip(), fmt).date()
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"valid_until {raw!r} is not a date (YYYY-MM-DD)")
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


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    for fields in reader:
        yield reader.line_num, fields


def _header(fields: Sequence[str]) -> list[str]:
    header = [name.strip().lower() for name in fields]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS and c not in OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown columns: {', '.join(unknown)}")
        raise WhitelistFormatError(
            "bad header (" + "; ".join(problems) + "); expected " + ",".join(COLUMNS)
        )
    return header


def _row(line: int, values: dict[str, str], today: date) -> WhitelistRow:
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
    )


def parse_whitelist(data: bytes, *, today: date) -> ParsedWhitelist:
    """Validate every row; valid ones become rows, the others errors with their line number."""
    records = _records(decode(data))
    first = next(records, None)
    if first is None:
        raise WhitelistFormatError("the file is empty")
    header = _header(first[1])
    parsed = ParsedWhitelist()
    seen: dict[str, int] = {}
    for line, fields in records:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            parsed.errors.append(RowError(
                line, fields[0].strip() or None if fields else None,
                f"expected {len(header)} fields, found {len(fields)}",
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
    return parsed


def _offer_terms(row: WhitelistRow) -> tuple:
    return (row.product, row.amount_yuan, row.rate_min, row.rate_max, row.term_months, row.valid_until)


def _stored_terms(offer: Offer) -> tuple:
    return (offer.product, offer.amount_yuan, Decimal(offer.rate_min), Decimal(offer.rate_max),
            offer.term_months, offer.valid_until)


def load_whitelist(engine: Engine, rows: Sequence[WhitelistRow], progress: bool = False) -> LoadResult:
    """Upsert customers and offers in batches. Changed terms make a new offer version."""
    result = LoadResult()
    bar = tqdm(total=len(rows), unit="row", desc="loading", disable=not progress)
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        with session_scope(engine) as session:
            ids = [r.customer_id for r in batch]
            customers = {c.customer_id: c for c in session.execute(
                select(Customer).where(Customer.customer_id.in_(ids))).scalars()}
            offers = {o.customer_id: o for o in session.execute(
                select(Offer).where(Offer.customer_id.in_(ids), Offer.active.is_(True))).scalars()}
            now = utcnow()
            for row in batch:
                _upsert(session, row, customers.get(row.customer_id), offers.get(row.customer_id), now, result)
        bar.update(len(batch))
    bar.close()
    return result


def _upsert(session, row: WhitelistRow, customer: Customer | None, offer: Offer | None,
            now: datetime, result: LoadResult) -> None:
    person = dict(name=row.name, masked_name=mask_name(row.name), gender=row.gender,
                  phone=row.phone, region=row.region, segment=row.segment, consent=row.consent)
    changed = False
    if customer is None:
        session.add(Customer(customer_id=row.customer_id, created_at=now, updated_at=now, **person))
        changed = True
    elif any(getattr(customer, k) != v for k, v in person.items()):
        for key, value in person.items():
            setattr(customer, key, value)
        customer.updated_at = now
        changed = True
    if offer is None or _stored_terms(offer) != _offer_terms(row):
        if offer is not None:
            offer.active = False
            session.flush()
        session.add(Offer(
            customer_id=row.customer_id, product=row.product, amount_yuan=row.amount_yuan,
            rate_min=row.rate_min, rate_max=row.rate_max, term_months=row.term_months,
            valid_until=row.valid_until, version=(offer.version + 1) if offer else 1,
            active=True, created_at=now,
        ))
        changed = True
    if customer is None:
        result.inserted += 1
    elif changed:
        result.updated += 1
    else:
        result.unchanged += 1


def import_whitelist_file(
    engine: Engine, path: Path, *, today: date | None = None, progress: bool = False
) -> ImportReport:
    """Parse, drop rows on the do-not-contact list, and load the rest."""
    parsed = parse_whitelist(Path(path).read_bytes(), today=today or date.today())
    with session_scope(engine) as session:
        blocked_ids, blocked_phones = store.do_not_contact_keys(session)
    rows, errors = [], list(parsed.errors)
    for row in parsed.rows:
        if row.customer_id in blocked_ids or row.phone in blocked_phones:
            errors.append(RowError(row.line, row.customer_id, "on do-not-contact list"))
        else:
            rows.append(row)
    errors.sort(key=lambda e: e.line)
    return ImportReport(loaded=load_whitelist(engine, rows, progress), errors=errors)
