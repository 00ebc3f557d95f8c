"""The websocket media-stream endpoint with a real bot: a Twilio-style client streams a
μ-law call and hears the bot; bad starts are refused; a dropped socket keeps the record."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest
from aiohttp import WSMsgType
from sqlalchemy import select

from offercall.voice_calls import VoiceRuntime
from offercall.web.app import init_app
from persistence import store
from persistence.engine import session_scope
from persistence.schema import Call
from voice.audio import MULAW_8K, PCM_16K, convert, decode, frames, rms_dbfs
from voice.transports.simulated import SayText, prepare_turns

pytestmark = pytest.mark.model

SILENCE = MULAW_8K.silence()


@pytest.fixture(scope="module")
def speech(bot_stack):
    """The customer's '不是，你打错了' as 8 kHz μ-law telephone audio."""
    runtime = VoiceRuntime(bot_stack.settings)
    turns = asyncio.run(prepare_turns([SayText("不是，你打错了")], runtime.speaker))
    return turns[0].audio


@pytest.fixture
async def client(aiohttp_client, bot_stack):
    return await aiohttp_client(init_app(bot_stack.settings))


def twilio(event: str, **fields) -> str:
    return json.dumps({"event": event, **fields})


async def wait_for_call(engine, customer_id: str, since: float, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            row = session.execute(
                select(Call).where(Call.customer_id == customer_id).order_by(Call.started_at.desc())
            ).scalars().first()
            if row is not None and row.ended_at.timestamp() >= since:
                return store.get_call(session, row.id)
        await asyncio.sleep(0.2)
    for task in asyncio.all_tasks():
        task.print_stack()
    raise AssertionError(f"no call record for {customer_id}")


async def test_a_twilio_stream_hears_the_bot_and_is_hung_up_on(client, bot_stack, speech):
    token = bot_stack.settings.media_token
    ws = await client.ws_connect(f"/media/twilio?token={token}")
    await ws.send_str(twilio("connected", protocol="Call"))
    await ws.send_str(twilio("start", streamSid="MZ9", start={
        "callSid": "CA9", "customParameters": {"customer_id": "C0001"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}))
    heard = bytearray()
    marks: list[str] = []
    state = {"voiced_at": None, "sent": 0}

    async def receive() -> None:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            if body["event"] == "media":
                assert body["streamSid"] == "MZ9"
                pcm = decode(base64.b64decode(body["media"]["payload"]), "mulaw")
                heard.extend(pcm)
                if rms_dbfs(pcm) > -45:
                    state["voiced_at"] = state["sent"]
            elif body["event"] == "mark":
                marks.append(body["mark"]["name"])

    async def send(frame: bytes) -> None:
        await ws.send_str(twilio("media", media={"payload": base64.b64encode(frame).decode()}))
        state["sent"] += 1
        await asyncio.sleep(0.004)  # five times real time

    receiver = asyncio.create_task(receive())
    while state["voiced_at"] is None or state["sent"] - state["voiced_at"] < 60:
        await send(SILENCE)
        assert state["sent"] < 3000, "the bot never finished its opening"
    for frame in frames(speech, MULAW_8K):
        await send(frame)
    while not ws.closed and state["sent"] < 6000:
        await send(SILENCE)
    await asyncio.wait_for(receiver, 10)
    assert len(heard) / 2 / 8000 > 3, "expected several seconds of bot speech"
    assert marks == ["hangup:wrong_person"]
    record = await wait_for_call(bot_stack.engine, "C0001", since=0)
    assert record.outcome == "wrong_person" and record.transport == "websocket-twilio"


async def test_a_dropped_pcm_socket_ends_the_call_and_keeps_the_transcript(client, bot_stack):
    since = time.time()
    ws = await client.ws_connect(f"/media/pcm?token={bot_stack.settings.media_token}")
    await ws.send_str(json.dumps({"event": "start", "customer_id": "C0011", "format": "pcm16/16000"}))
    started = json.loads((await ws.receive()).data)
    assert started["event"] == "started"
    got_audio = False
    silence = PCM_16K.silence()
    for _ in range(400):  # 8 s of media, at five times real time
        await ws.send_bytes(silence)
        try:
            message = await asyncio.wait_for(ws.receive(), 0.004)
            got_audio = got_audio or message.type == WSMsgType.BINARY
        except asyncio.TimeoutError:
            pass
    await ws.close()  # the customer's line drops mid-sentence
    assert got_audio
    record = await wait_for_call(bot_stack.engine, "C0011", since)
    assert record.call_id == started["call_id"]
    assert record.ended_by == "customer" and record.outcome == "hung_up"
    document = json.loads(Path(record.transcript_path).read_text(encoding="utf-8"))
    assert any(line["speaker"] == "bot" for line in document["transcript"])


async def test_media_streams_need_the_token(client):
    response = await client.get("/media/pcm?token=wrong")
    assert response.status == 401


@pytest.mark.parametrize("start,error", [
    ({"event": "start", "customer_id": "C0001", "format": "pcm16/44100"}, "sample rate"),
    ({"event": "start", "customer_id": "NOBODY", "format": "mulaw/8000"}, "unknown customer"),
    ({"event": "hello"}, "start"),
])
async def test_bad_starts_get_a_clear_error(client, bot_stack, start, error):
    ws = await client.ws_connect(f"/media/pcm?token={bot_stack.settings.media_token}")
    await ws.send_str(json.dumps(start))
    reply = json.loads((await ws.receive()).data)
    assert reply["event"] == "error" and error in reply["message"]
    assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)


async def test_malformed_messages_mid_call_are_reported_not_fatal(client, bot_stack):
    ws = await client.ws_connect(f"/media/pcm?token={bot_stack.settings.media_token}")
    await ws.send_str(json.dumps({"event": "start", "customer_id": "C0001", "format": "mulaw/8000"}))
    assert json.loads((await ws.receive()).data)["event"] == "started"
    await ws.send_str("{broken json")
    errors = []
    for _ in range(200):
        await ws.send_bytes(convert(PCM_16K.silence(), PCM_16K, MULAW_8K))
        try:
            message = await asyncio.wait_for(ws.receive(), 0.004)
        except asyncio.TimeoutError:
            continue
        if message.type == WSMsgType.TEXT and json.loads(message.data)["event"] == "error":
            errors.append(json.loads(message.data)["message"])
    assert errors and "JSON" in errors[0]
    assert not ws.closed  # the call goes on
    await ws.send_str(json.dumps({"event": "stop"}))
    await ws.close()
