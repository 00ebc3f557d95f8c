"""``offercall call``, ``transcribe`` and ``understand``: the voice layer from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from core.settings import Settings
from offercall.cli.common import customer_exists


def transcribe_file(settings: Settings, path: Path) -> str:
    """The Vosk text of a WAV file, spaces between Chinese words removed."""
    from voice.asr import load_model, transcribe
    from voice.audio import read_wav

    audio = read_wav(path)
    return transcribe(load_model(settings.vosk_model_path), audio.pcm, audio.sample_rate).text


async def _rasa_parser(settings: Settings):
    """Parses with the running Rasa server when it answers (no model to load: seconds, not a
    minute); otherwise with the trained model loaded in this process."""
    from offercall.processes import is_healthy

    base = settings.rasa_url.rstrip("/")
    if await asyncio.to_thread(is_healthy, f"{base}/status?token={settings.rasa_token}"):
        import aiohttp

        async def parse_on_server(text: str) -> dict[str, Any]:
            async with aiohttp.ClientSession() as http, http.post(
                    f"{base}/model/parse", params={"token": settings.rasa_token}, json={"text": text},
                    timeout=aiohttp.ClientTimeout(total=30)) as response:
                response.raise_for_status()
                return await response.json()

        return parse_on_server
    from rasa.core.agent import Agent
    from rasa.model import get_latest_model

    model_path = get_latest_model(str(settings.models_dir))
    if model_path is None:
        raise FileNotFoundError(f"no trained model in {settings.models_dir}; run `offercall train`")
    agent = await asyncio.to_thread(Agent.load, model_path)
    return agent.parse_message


async def understand_files(settings: Settings, paths: list[Path], out: TextIO = sys.stdout) -> int:
    """Prints one JSON line per file: text, repaired text, intent and confidence.

    Uses the Rasa server when it runs, else loads the trained model in this process (no
    server is needed). Returns how many files could not be read.
    """
    from voice.asr import load_model, transcribe
    from voice.audio import read_wav
    from voice.repair import repair

    parse = await _rasa_parser(settings)
    asr_model = load_model(settings.vosk_model_path)
    failures = 0
    for path in paths:
        line: dict[str, Any] = {"file": str(path)}
        try:
            audio = read_wav(path)
        except ValueError as exc:
            failures += 1
            print(json.dumps({**line, "error": str(exc)}, ensure_ascii=False), file=out)
            continue
        heard = await asyncio.to_thread(transcribe, asr_model, audio.pcm, audio.sample_rate)
        fixed = repair(heard.raw)
        parsed = await parse(fixed.text) if fixed.text else {"intent": {}}
        intent = parsed.get("intent") or {}
        line.update(
            text=heard.text, repaired=fixed.text, repair=fixed.rule,
            asr_confidence=None if heard.confidence is None else round(heard.confidence, 3),
            intent=intent.get("name"),
            confidence=None if intent.get("confidence") is None else round(float(intent["confidence"]), 3),
        )
        print(json.dumps(line, ensure_ascii=False), file=out, flush=True)
    return failures


def cmd_call(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.processes import ServiceError, Supervisor
    from offercall.simulated_calls import call_via_agent_queue, simulated_call
    from voice.errors import VoiceError
    from voice.transports.simulated import parse_script

    lines = list(args.say or [])
    if args.script:
        lines += Path(args.script).read_text(encoding="utf-8").splitlines()
    try:
        script = parse_script(lines)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not customer_exists(settings, args.customer):
        print(f"error: unknown customer {args.customer!r} (load a whitelist with "
              "`offercall seed FILE`)", file=sys.stderr)
        return 2
    supervisor = Supervisor(settings)
    try:
        if args.answer == "answered":
            supervisor.ensure(["actions", "rasa"], echo=True)
        place = call_via_agent_queue if args.agents else simulated_call
        run = asyncio.run(place(
            settings, args.customer, script, speed=args.speed, answer=args.answer, out=sys.stdout,
        ))
    except (ServiceError, VoiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    print(f"outcome: {run.result.outcome}")
    print(json.dumps(run.result.summary(), ensure_ascii=False))
    return 0 if run.result.error is None else 1


def cmd_transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from voice.errors import VoiceError

    try:
        print(transcribe_file(settings, Path(args.file)))
    except VoiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_understand(settings: Settings, args: argparse.Namespace) -> int:
    from voice.errors import VoiceError

    try:
        failures = asyncio.run(understand_files(settings, [Path(f) for f in args.files]))
    except (VoiceError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2 if failures else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers the voice commands."""
    call = sub.add_parser("call", help="place a call to a simulated customer")
    call.add_argument("--customer", required=True)
    call.add_argument("--say", action="append", metavar="WAV_OR_TEXT",
                      help="one customer turn: a WAV file or text (repeatable)")
    call.add_argument("--script", help="a file of customer turns, one per line")
    call.add_argument("--speed", type=float, default=1.0, help="play the call this many times faster")
    call.add_argument("--answer", choices=["answered", "no_answer", "busy"], default="answered")
    call.add_argument("--agents", action="store_true",
                      help="hold a transferred call for an agent at the console of `offercall serve`")
    call.set_defaults(func=cmd_call)
    transcribe_ = sub.add_parser("transcribe", help="print the Vosk transcript of a WAV file")
    transcribe_.add_argument("file")
    transcribe_.set_defaults(func=cmd_transcribe)
    understand = sub.add_parser("understand", help="WAV files -> text, repaired text, intent (JSON lines)")
    understand.add_argument("files", nargs="+")
    understand.set_defaults(func=cmd_understand)
