"""Whitelist uploads: an uploaded file's state from parsing to loading, and where it is kept.

Each upload is a directory ``<uploads>/<id>/`` holding the file as sent (``source``), its
state (``state.json``, replaced atomically, so it survives a restart of the web server), the
bad-row report (``errors.csv``) and, once somebody confirms it, ``confirmed`` (created with
``O_EXCL``: of two confirmations, even from two processes, exactly one wins)::

    parsing ──> parsed ──(confirm)──> loading ──> loaded
       └──> failed            └──> (409)      └──> failed

While a thread works on an upload its ``worker`` names it (host, process, runner), so a
server that starts after a crash can tell which interrupted jobs to resume.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.masking import mask_name, mask_phone, mask_text
from core.vocabulary import StrEnum

SHOWN_BAD_ROWS = 200
"""How many rejected rows the status carries; the rest are in the errors.csv download."""
_ID = re.compile(r"[0-9a-f]{32}")


class UploadState(StrEnum):
    PARSING = "parsing"
    PARSED = "parsed"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"


BUSY = frozenset({UploadState.PARSING, UploadState.LOADING})
"""States in which a thread is (or was, before a crash) working on the upload."""


@dataclass
class Upload:
    """One uploaded whitelist and what has become of it."""

    id: str
    filename: str
    size: int
    uploaded_by: str
    uploaded_at: str
    state: UploadState = UploadState.PARSING
    rows_read: int = 0
    rows_total: int | None = None
    good: int = 0
    bad: int = 0
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    loaded: dict[str, int] | None = None
    """After loading: inserted, updated, unchanged and rejected (do-not-contact included)."""
    confirmed_by: dict[str, Any] | None = None
    """Who confirmed it: an :class:`persistence.audit.Actor`'s name, role and account id."""
    worker: str | None = None

    def view(self) -> dict[str, Any]:
        """The upload as the page shows it."""
        shown = asdict(self)
        del shown["worker"]
        return shown

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Upload:
        return cls(**{**data, "state": UploadState(data["state"])})


def confirm_refusal(upload: Upload) -> str | None:
    """Why ``upload`` cannot be confirmed now (None: it can)."""
    if upload.state is UploadState.PARSED:
        return None if upload.good else "the file has no valid rows to load"
    return {
        UploadState.PARSING: "the file is still being checked; confirm once it is parsed",
        UploadState.LOADING: "this whitelist is already being loaded",
        UploadState.LOADED: "this whitelist has already been loaded",
        UploadState.FAILED: f"this upload failed and cannot be loaded: {upload.error}",
    }[upload.state]


class UploadStore:
    """The uploads directory: one subdirectory per upload."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    @staticmethod
    def valid_id(upload_id: str) -> bool:
        return bool(_ID.fullmatch(upload_id))

    def folder(self, upload_id: str) -> Path:
        if not self.valid_id(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.directory / upload_id

    def source(self, upload_id: str) -> Path:
        """The file as uploaded."""
        return self.folder(upload_id) / "source"

    def errors_csv(self, upload_id: str) -> Path:
        return self.folder(upload_id) / "errors.csv"

    def save(self, upload: Upload) -> None:
        """Replaces the stored state atomically."""
        path = self.folder(upload.id) / "state.json"
        partial = path.with_name("state.json.part")
        partial.write_text(json.dumps(asdict(upload), ensure_ascii=False), encoding="utf-8")
        partial.replace(path)

    def load(self, upload_id: str) -> Upload | None:
        """The stored state, or None for an unknown (or malformed) id."""
        if not self.valid_id(upload_id):
            return None
        try:
            text = (self.folder(upload_id) / "state.json").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return Upload.from_json(json.loads(text))

    def all(self) -> Iterator[Upload]:
        """Every stored upload (in no particular order)."""
        if not self.directory.is_dir():
            return
        for folder in self.directory.iterdir():
            found = self.load(folder.name)
            if found is not None:
                yield found

    def claim_confirmation(self, upload_id: str) -> bool:
        """Marks the upload confirmed; False if it already was (by anyone, anywhere)."""
        try:
            marker = os.open(self.folder(upload_id) / "confirmed",
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(marker)
        return True


# --- masking what the reports show ------------------------------------------------------------

_QUOTED_DIGITS = re.compile(r"'([+\d][\d\s\-()]{6,})'")


def mask_reason(reason: str) -> str:
    """A rejection reason without the personal numbers it quotes (a malformed phone is still
    most of somebody's phone number)."""
    return _QUOTED_DIGITS.sub(lambda m: f"'{mask_phone(m.group(1))}'", mask_text(reason))


def mask_field(column: str, value: str) -> str:
    """One cell of a rejected row as the bad-row report shows it."""
    if not value.strip():
        return value
    if column == "name":
        return mask_name(value)
    if column == "phone":
        return mask_phone(value) if any(c.isdigit() for c in value) else value
    return mask_text(value)
