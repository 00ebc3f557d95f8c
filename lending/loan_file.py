"""The loan system's daily file of outcomes: reading it (pure) and importing it.

CSV, UTF-8 (BOM optional) or GBK/GB18030 as Chinese Excel writes it. The first line is the
header, with the columns of ``lending.loan_events`` in any order::

    event_id,customer_id,application_id,status,occurred_at,amount_yuan,branch_id

``amount_yuan`` and ``branch_id`` may be left out of the header or empty; a time without an
offset is China time (UTC+08:00). Other columns are refused (a misspelt one would be lost).

Per row: every bad row is named with its line (the header is line 1) and why, and changes
nothing; the good rows are recorded. A file that cannot be read at all (not UTF-8 or GBK,
no header, a required column missing) is refused whole. Rows are applied in time order
(then applied before approved before the end), so the file need not be sorted; an event
that depends on a bad row (disbursed after an approval refused) is refused too. Event ids make
it idempotent: importing the same file again records nothing, and a file fixed and sent again
records just what was missing. Rows are committed in chunks: an import cut short is completed
by running it again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.text_files import NotText, decode_text
from core.vocabulary import LoanStatus
from lending.errors import LoanFileError
from lending.loan_events import FIELDS, REQUIRED_FIELDS, LoanEvent, parse_event
from lending.loan_outcomes import Recorded, record_events, with_retries

CHINA = timezone(timedelta(hours=8), "CST")
CHUNK = 1000
"""Rows per transaction."""
_RANK = {LoanStatus.APPLIED: 0, LoanStatus.AUTO_APPROVED: 1, LoanStatus.APPROVED: 1}
"""The order of events at the same moment; the ends come last."""


@dataclass(frozen=True)
class RowError:
    """A bad row: its line, its event id when it has one, and why."""

    line: int
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"line {self.line}{event}: {self.reason}"


@dataclass
class ParsedFile:
    """A file's good rows as (line, event), and its bad rows."""

    rows: list[tuple[int, LoanEvent]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    repeats: int = 0
    """Rows that repeat an earlier row of the file word for word (taken once)."""


@dataclass
class FileImport:
    """What an import did: rows recorded, rows recorded before (nothing done), bad rows."""

    name: str
    rows: int = 0
    recorded: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        """A report for people: the counts, then one line per bad row."""
        lines = [f"{self.name}: {self.rows} rows; {self.recorded} recorded, "
                 f"{self.duplicates} recorded before, {len(self.errors)} refused"]
        lines += [f"  {error}" for error in self.errors]
        return "\n".join(lines)


def decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GBK/GB18030."""
    try:
        return decode_text(data)
    except NotText as exc:
        raise LoanFileError(str(exc)) from exc


def _header(cells: Sequence[str]) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    unknown = [name for name in header if name not in FIELDS]
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(repr(name[:40]) for name in unknown)}")
    if repeated:
        problems.append(f"repeated column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}")
    if problems:
        raise LoanFileError(f"line 1 (the header): {'; '.join(problems)}; "
                            f"the columns are {','.join(FIELDS)}")
    return header


def parse_file(data: bytes) -> ParsedFile:
    """The rows of a daily file, each good or named bad (see the module docstring)."""
    if not data.strip():
        raise LoanFileError("the file is empty")
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    parsed = ParsedFile()
    header: list[str] | None = None
    seen: dict[str, tuple[int, LoanEvent]] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells)
                continue
            _parse_row(parsed, seen, line, header, cells)
    except csv.Error as exc:
        raise LoanFileError(f"line {reader.line_num}: not readable as CSV ({exc})") from None
    if header is None:
        raise LoanFileError("the file is empty")
    return parsed


def _parse_row(parsed: ParsedFile, seen: dict[str, tuple[int, LoanEvent]], line: int,
               header: list[str], cells: list[str]) -> None:
    while len(cells) > len(header) and not cells[-1].strip():
        cells = cells[:-1]
    at = header.index("event_id")
    event_id = (cells[at].strip() or None) if at < len(cells) else None
    if len(cells) != len(header):
        parsed.errors.append(RowError(line, event_id, f"expected {len(header)} fields as in "
                                                      f"the header, found {len(cells)}"))
        return
    try:
        values = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
        event = parse_event(values, naive_zone=CHINA)
    except ValueError as exc:
        parsed.errors.append(RowError(line, event_id, str(exc)))
        return
    if event.event_id in seen:
        first_line, first = seen[event.event_id]
        if not first.same_report(event):
            parsed.errors.append(RowError(line, event.event_id, "the same event_id as line "
                                          f"{first_line} with another report"))
        else:
            parsed.repeats += 1  # the same row again: once is enough
        return
    seen[event.event_id] = (line, event)
    parsed.rows.append((line, event))


def _order(row: tuple[int, LoanEvent]) -> tuple[datetime, int, int]:
    line, event = row
    return (event.occurred_at, _RANK.get(event.status, 2), line)


def _record_chunk(session: Session, *, chunk: Sequence[tuple[int, LoanEvent]], name: str,
                  now: datetime) -> Recorded:
    return record_events(session, [event for _, event in chunk], now=now, all_or_nothing=False,
                         sources=[f"file:{name}:{line}" for line, _ in chunk],
                         wheres=[str(line) for line, _ in chunk])


def import_file(engine: Engine, path: Path, *, now: datetime,
                progress: Callable[[int, int], None] | None = None) -> FileImport:
    """Reads and records a daily file (see the module docstring); ``progress(done, total)``
    after each chunk. Raises :class:`LoanFileError` when it cannot be read at all."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoanFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    parsed = parse_file(data)
    result = FileImport(name=path.name, rows=len(parsed.rows) + len(parsed.errors) + parsed.repeats,
                        duplicates=parsed.repeats, errors=list(parsed.errors))
    rows = sorted(parsed.rows, key=_order)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        done = with_retries(engine, partial(_record_chunk, chunk=chunk, name=path.name, now=now))
        result.recorded += len(done.recorded)
        result.duplicates += len(done.duplicates)
        by_line = {str(line): event for line, event in chunk}
        result.errors += [RowError(int(where), by_line[where].event_id, reason)
                          for where, reason in done.refused]
        if progress is not None:
            progress(start + len(chunk), len(rows))
    result.errors.sort(key=lambda error: error.line)
    return result
