"""The work behind a whitelist upload, off the event loop: parsing with progress, the
bad-row report, and loading once confirmed; and the runner that schedules it.

A whitelist can hold 100k rows, so parsing and loading run in threads and report progress
into the upload's state (see :mod:`outbound.uploads`). Loading parses the stored file again
(nothing is held in memory between the check and the confirmation, and an offer that
expired meanwhile is refused), then loads in one audited transaction.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from tqdm import tqdm

from core.owners import Owner, is_orphaned, pid_alive
from core.vocabulary import AuditAction
from outbound import whitelist
from outbound.uploads import (
    BUSY,
    SHOWN_BAD_ROWS,
    Upload,
    UploadState,
    UploadStore,
    mask_field,
    mask_reason,
)
from outbound.whitelist import ImportReport, ParsedWhitelist, RowError, WhitelistFormatError
from persistence import audit
from persistence.audit import Actor
from persistence.engine import session_scope

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1000
"""Rows between progress reports."""
SAVE_EVERY_S = 0.25
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
LOAD_COUNTS = ("inserted", "updated", "unchanged", "rejected")
Records = Iterator[tuple[int, Sequence[Any]]]


class Interrupted(Exception):
    """The server is stopping; the job resumes when it starts again."""


# --- parsing (whitelist's reader, with progress) --------------------------------------------


def _records(data: bytes, name: str) -> tuple[str, int, Records]:
    """The file's kind, its approximate row count (header included) and its records."""
    return whitelist.file_records(data, name)


def parse_with_progress(data: bytes, name: str, today: date,
                        on_rows: Callable[[int, int | None], None],
                        stop: threading.Event | None = None) -> ParsedWhitelist:
    """:func:`outbound.whitelist.parse_whitelist`, calling ``on_rows(rows_read, rows_total)``
    every :data:`PROGRESS_EVERY` rows and at the end; raises :class:`Interrupted` once
    ``stop`` is set."""
    kind, size, records = _records(data, name)
    total = max(size - 1, 0) or None
    read = 0

    def counted() -> Records:
        nonlocal read
        try:
            for record in records:
                yield record
                read += 1
                if read % PROGRESS_EVERY == 0:
                    if stop is not None and stop.is_set():
                        raise Interrupted
                    on_rows(read - 1, total)
        finally:
            records.close()  # type: ignore[attr-defined]

    on_rows(0, total)
    with tqdm(disable=True) as quiet:
        parsed = whitelist.parse_records(counted(), today=today, padded=kind == "xlsx", bar=quiet)
    on_rows(max(read - 1, 0), total)
    return parsed


def write_bad_rows(data: bytes, name: str, errors: Sequence[RowError], path: Path) -> None:
    """The rejected rows as ``line,reason`` and then the row's own columns, masked (UTF-8
    with BOM, so Excel opens it)."""
    wanted = {e.line for e in errors}
    header: list[str] | None = None
    rows: dict[int, list[str]] = {}
    _, _, records = _records(data, name)
    for line, raw in records:
        fields = [whitelist.cell_text(f) for f in raw]
        if header is None:
            if any(f.strip() for f in fields):
                header = [f.strip().lower() for f in fields]
                while header and not header[-1]:
                    header.pop()
            continue
        if line in wanted:
            rows[line] = fields
    columns = header or []
    partial = path.with_name(path.name + ".part")
    with partial.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", *columns])
        for error in sorted(errors, key=lambda e: e.line):
            fields = (rows.get(error.line, []) + [""] * len(columns))[:len(columns)]
            writer.writerow([error.line, mask_reason(error.reason),
                             *(mask_field(c, f) for c, f in zip(columns, fields, strict=True))])
    partial.replace(path)


def shown_errors(errors: Sequence[RowError]) -> list[dict[str, Any]]:
    """The first rejected rows, as the upload's status shows them."""
    return [{"line": e.line, "customer_id": e.customer_id, "reason": mask_reason(e.reason)}
            for e in sorted(errors, key=lambda e: e.line)[:SHOWN_BAD_ROWS]]


# --- the runner -----------------------------------------------------------------------------


class UploadRunner:
    """One per web app: stores uploads, and parses and loads them in threads.

    ``start`` resumes jobs a crashed server left half done; ``stop`` waits for the running
    ones (a parse stops at its next progress report and resumes at the next start)."""

    def __init__(self, directory: Path, engine: Engine, *, max_bytes: int = MAX_UPLOAD_BYTES,
                 today: Callable[[], date] = date.today) -> None:
        self.store = UploadStore(directory)
        self.engine = engine
        self.max_bytes = max_bytes
        self.today = today
        self._me = Owner.of_this_process()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = threading.Event()

    @property
    def worker(self) -> str:
        return self._me.tag

    async def start(self) -> None:
        """Resumes uploads whose worker died mid-job."""
        for upload in await asyncio.to_thread(lambda: list(self.store.all())):
            if upload.state in BUSY and is_orphaned(
                    upload.worker, me=self._me, pid_alive=pid_alive(upload.worker)):
                log.info("whitelist.upload.resumed upload=%s state=%s", upload.id, upload.state)
                if upload.state is UploadState.PARSING:
                    self.parse(upload)
                else:
                    self.load(upload, None)

    async def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def idle(self) -> None:
        """Waits for the running jobs (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def parse(self, upload: Upload) -> None:
        """Checks the stored file in a thread (the upload is in state parsing)."""
        self._spawn(self._parse, upload, f"whitelist-parse-{upload.id}")

    def load(self, upload: Upload, actor: Actor | None) -> None:
        """Loads the confirmed upload in a thread (``actor``: who confirmed; None when
        resuming, then the one recorded in the upload)."""
        self._spawn(lambda u: self._load(u, actor), upload, f"whitelist-load-{upload.id}")

    def _spawn(self, job: Callable[[Upload], None], upload: Upload, name: str) -> None:
        upload.worker = self.worker

        def run() -> None:
            self.store.save(upload)
            job(upload)

        task = asyncio.create_task(asyncio.to_thread(run), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reporter(self, upload: Upload) -> Callable[[int, int | None], None]:
        last = 0.0

        def report(read: int, total: int | None) -> None:
            nonlocal last
            upload.rows_read, upload.rows_total = read, total
            if time.monotonic() - last >= SAVE_EVERY_S:
                last = time.monotonic()
                self.store.save(upload)
        return report

    def _parse(self, upload: Upload) -> None:
        try:
            data = self.store.source(upload.id).read_bytes()
            parsed = parse_with_progress(data, upload.filename, self.today(),
                                         self._reporter(upload), self._stop)
            write_bad_rows(data, upload.filename, parsed.errors, self.store.errors_csv(upload.id))
        except Interrupted:
            return  # the state still says parsing: the next start resumes it
        except WhitelistFormatError as exc:
            upload.state, upload.error = UploadState.FAILED, str(exc)
        except Exception as exc:  # a job must end in a state the page can show
            log.exception("whitelist.upload.parse_failed upload=%s", upload.id)
            upload.state = UploadState.FAILED
            upload.error = f"the file could not be checked ({type(exc).__name__})"
        else:
            upload.state = UploadState.PARSED
            upload.good, upload.bad = len(parsed.rows), len(parsed.errors)
            upload.bad_rows = shown_errors(parsed.errors)
        upload.worker = None
        self.store.save(upload)
        log.info("whitelist.upload.parsed upload=%s state=%s good=%d bad=%d",
                 upload.id, upload.state, upload.good, upload.bad)

    def _load(self, upload: Upload, actor: Actor | None) -> None:
        who = actor or Actor(**(upload.confirmed_by or {"name": "unknown", "role": "admin"}))
        source = f"upload:{upload.id}"
        try:
            with session_scope(self.engine) as session:
                done = [e for e in audit.history(session, "whitelist", source)
                        if e.action == AuditAction.WHITELIST_IMPORTED]
            if done:  # loaded before the server stopped, but the state was not saved
                detail = done[0].detail
                upload.loaded = {k: detail[k] for k in LOAD_COUNTS}
            else:
                data = self.store.source(upload.id).read_bytes()
                parsed = parse_with_progress(data, upload.filename, self.today(), lambda *_: None)
                report = whitelist.load_whitelist(self.engine, parsed, actor=who, source=source)
                self._loaded(upload, data, report)
            upload.state = UploadState.LOADED
        except Exception as exc:  # nothing was written: the load is one transaction
            log.exception("whitelist.upload.load_failed upload=%s", upload.id)
            upload.state = UploadState.FAILED
            upload.error = f"loading failed, nothing was loaded ({exc})"
        upload.worker = None
        self.store.save(upload)
        log.info("whitelist.upload.loaded upload=%s state=%s", upload.id, upload.state)

    def _loaded(self, upload: Upload, data: bytes, report: ImportReport) -> None:
        result = report.loaded
        upload.loaded = {"inserted": result.inserted, "updated": result.updated,
                         "unchanged": result.unchanged, "rejected": len(report.errors)}
        upload.good = len(report.loaded_customer_ids)
        upload.bad, upload.bad_rows = len(report.errors), shown_errors(report.errors)
        write_bad_rows(data, upload.filename, report.errors, self.store.errors_csv(upload.id))

