"""The whitelist upload API: upload a CSV or XLSX, watch it being checked, read the rejected
rows, then confirm to load the good ones.

- ``POST /api/whitelists`` (multipart, field ``file``) -> 202 and the upload, being parsed.
  Nothing reaches the customers table until somebody confirms.
- ``GET /api/whitelists/{id}`` -> state (parsing, parsed, loading, loaded, failed),
  rows read of rows total, good and bad counts, the first bad rows, the error.
- ``GET /ws/whitelists/{id}`` pushes the same as it changes (``{"type": "upload", ...}``)
  until the upload is loaded or failed.
- ``GET /api/whitelists/{id}/errors.csv`` -> every rejected row with its reason, masked.
- ``POST /api/whitelists/{id}/confirm`` -> 202, loading; 409 unless parsed and unconfirmed.

Uploading and confirming need ``IMPORT_WHITELIST``; reading needs ``VIEW_WHITELIST``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import shutil
from typing import IO
from urllib.parse import unquote

from aiohttp import BodyPartReader, WSMsgType, web

from core.access import Permission
from core.clock import utcnow
from handoff.staff_api import json_error, require_staff
from outbound.upload_jobs import UploadRunner
from outbound.uploads import Upload, UploadState, confirm_refusal
from persistence.audit import Actor

log = logging.getLogger(__name__)

WHITELIST_UPLOADS = web.AppKey("whitelist_uploads", UploadRunner)
"""The app's upload runner (its directory is ``var_dir/uploads``)."""
CHUNK = 256 * 1024
WATCH_EVERY_S = 0.25
_FINISHED = (UploadState.LOADED, UploadState.FAILED)
_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def add_whitelist_routes(app: web.Application) -> None:
    app.router.add_post("/api/whitelists", upload_whitelist)
    app.router.add_get("/api/whitelists/{upload_id}", show_upload)
    app.router.add_get("/api/whitelists/{upload_id}/errors.csv", bad_rows_csv)
    app.router.add_post("/api/whitelists/{upload_id}/confirm", confirm_upload)
    app.router.add_get("/ws/whitelists/{upload_id}", watch_upload)


def _file_name(raw: str | None) -> str:
    """The uploaded file's own name (percent-decoded, as some clients send it), without any
    folders or control characters."""
    name = re.split(r"[\\/]", unquote(raw or ""))[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:200] or "whitelist"


def _too_large(runner: UploadRunner) -> web.Response:
    limit = runner.max_bytes
    shown = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit / 2**10:g} KB"
    return json_error(413, f"the file is larger than the {shown} limit; split the whitelist "
                           "into smaller files", max_bytes=limit)


async def _file_part(request: web.Request) -> BodyPartReader | None:
    """The multipart body's ``file`` field (None if there is none)."""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            return part
        await part.release()
    return None


async def _save(part: BodyPartReader, runner: UploadRunner, upload_id: str) -> int | None:
    """Streams the file into the upload's folder; its size, or None (and no folder) when
    it is over the limit."""
    folder = runner.store.folder(upload_id)
    await asyncio.to_thread(folder.mkdir, parents=True)
    size = 0
    handle: IO[bytes] = await asyncio.to_thread(runner.store.source(upload_id).open, "wb")
    try:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > runner.max_bytes:
                break
            await asyncio.to_thread(handle.write, chunk)
    except BaseException:  # the client went away mid-file: keep nothing
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    finally:
        await asyncio.to_thread(handle.close)
    if size > runner.max_bytes:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return None
    return size


async def upload_whitelist(request: web.Request) -> web.Response:
    """POST multipart ``file`` -> 202 the upload (parsing), or 413 over the size limit."""
    account = await require_staff(request, Permission.IMPORT_WHITELIST)
    runner = request.app[WHITELIST_UPLOADS]
    if request.content_length is not None and request.content_length > runner.max_bytes + CHUNK:
        return _too_large(runner)
    if request.content_type != "multipart/form-data":
        return json_error(400, "send the whitelist as multipart/form-data in a field named file")
    try:
        part = await _file_part(request)
    except ValueError as exc:
        return json_error(400, f"the multipart body cannot be read ({exc})")
    if part is None:
        return json_error(400, "the form has no field named file")
    upload_id = runner.store.new_id()
    size = await _save(part, runner, upload_id)
    if size is None:
        return _too_large(runner)
    upload = Upload(id=upload_id, filename=_file_name(part.filename), size=size,
                    uploaded_by=account.username, uploaded_at=utcnow().isoformat())
    await asyncio.to_thread(runner.store.save, upload)
    runner.parse(upload)
    log.info("whitelist.upload.received upload=%s bytes=%d by=%s",
             upload_id, size, account.username)
    return web.json_response(upload.view(), status=202,
                             headers={"Location": f"/api/whitelists/{upload_id}"})


async def _upload(request: web.Request) -> Upload:
    """The upload named in the path, or a 404."""
    upload_id = request.match_info["upload_id"]
    found = await asyncio.to_thread(request.app[WHITELIST_UPLOADS].store.load, upload_id)
    if found is None:
        message = f"no whitelist upload {upload_id[:40]!r}"
        raise web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")
    return found


async def show_upload(request: web.Request) -> web.Response:
    await require_staff(request, Permission.VIEW_WHITELIST)
    return web.json_response((await _upload(request)).view())


async def bad_rows_csv(request: web.Request) -> web.StreamResponse:
    """The rejected rows (line, customer id, reason, the row's fields masked) as CSV."""
    await require_staff(request, Permission.VIEW_WHITELIST)
    upload = await _upload(request)
    if upload.state is UploadState.PARSING:
        return json_error(409, "the file is still being checked", state=upload.state)
    path = request.app[WHITELIST_UPLOADS].store.errors_csv(upload.id)
    if not await asyncio.to_thread(path.is_file):
        return json_error(409, f"the file could not be read: {upload.error}", state=upload.state)
    return web.FileResponse(path, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="whitelist-errors-{upload.id}.csv"',
        "Cache-Control": "no-store",
    })


async def confirm_upload(request: web.Request) -> web.Response:
    """POST -> 202, loading the good rows (audited as the confirming account); 409 when
    the upload is not parsed or was confirmed already."""
    account = await require_staff(request, Permission.IMPORT_WHITELIST)
    runner = request.app[WHITELIST_UPLOADS]
    upload = await _upload(request)
    refusal = confirm_refusal(upload)
    if refusal is None and not await asyncio.to_thread(runner.store.claim_confirmation, upload.id):
        refusal = "this whitelist has already been confirmed"
    if refusal is not None:
        return json_error(409, refusal, state=upload.state)
    actor = Actor(account.username, account.role, account.id)
    upload.state, upload.confirmed_by = UploadState.LOADING, dataclasses.asdict(actor)
    await asyncio.to_thread(runner.store.save, upload)
    runner.load(upload, actor)
    log.info("whitelist.upload.confirmed upload=%s by=%s", upload.id, account.username)
    return web.json_response(upload.view(), status=202)


async def watch_upload(request: web.Request) -> web.StreamResponse:
    """The upload's state, pushed whenever it changes, until it is loaded or failed."""
    await require_staff(request, Permission.VIEW_WHITELIST)
    upload, store = await _upload(request), request.app[WHITELIST_UPLOADS].store
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    shown: dict | None = None
    while not ws.closed:
        view = upload.view()
        if view != shown:
            await ws.send_json({"type": "upload", **view})
            shown = view
        if upload.state in _FINISHED:
            break
        try:
            message = await ws.receive(timeout=WATCH_EVERY_S)
        except asyncio.TimeoutError:
            pass
        else:
            if message.type in _CLOSING:
                break
        upload = await asyncio.to_thread(store.load, upload.id) or upload
    await ws.close()
    return ws
