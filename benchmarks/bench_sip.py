"""SIP benchmarks on loopback: concurrent bot calls that stay real-time, post-dial delay, and
turn latency over SIP compared with the simulated transport.

1. **Concurrency.** For each level N, the bot places N calls at once through PJSIP to a sipp
   trunk that answers and plays a customer saying "喂，你好，是我" every few seconds (μ-law RTP).
   The trunk rings for 4 s before it answers. Every call is a whole conversation: Vosk on the
   inbound audio, Rasa, the phrase cache and TTS.
   A call *stays real-time* when its outgoing audio had no late frames beyond 1 % of the
   frames (glitches: the bot's audio missing the 20 ms media clock) and 95 % of its inbound
   frames waited at most 200 ms (10 frames) for the session. The machine's CPU use is printed.
   One process holds at most 4 SIP calls (the pjsua2-python wheel's PJSUA_MAX_CALLS); more
   calls take more dialer processes, which share a campaign.
2. **Post-dial delay.** INVITE to the first provisional response (180), and to the answer,
   over every call of part 1 (sipp sends 180 at once: this is our stack's own delay; it
   answers after 4 s of ringing).
3. **Turn latency.** The same conversation ("是的，我是" / "好的，我有兴趣，帮我转人工") over SIP,
   with a baresip phone as the customer, and with the simulated customer at real-time pace:
   end of the customer's speech to the bot's first audio, per turn.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_sip.py [--levels 1,2,3,4] [--call-s 30]
[--latency-calls 4]``. Starts a private stack (Rasa, actions, SQLite) in a temporary directory.
Writes var/bench/sip.png (the turn latency distributions and the concurrency levels).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from core.settings import PROJECT_ROOT
from offercall.sip_calls import SipCalls
from offercall.voice_calls import VoiceRuntime, new_call_id, run_call
from voice.audio import MULAW_8K, read_wav, write_wav
from voice.session import SessionConfig
from voice.transports.sip import SipConfig, SipStack, TrunkConfig
from voice.turns import TurnConfig

RING_MS = 4000
"""The trunk rings this long before answering (people take seconds to pick up; the bot's
recogniser and the customer's prompts are prepared meanwhile)."""
REAL_TIME_GLITCH_SHARE = 0.01
REAL_TIME_BACKLOG_FRAMES = 10
CUSTOMERS = ["C0001", "C0002", "C0003", "C0004", "C0005"]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def turn_latencies(result) -> list[float]:
    return [e.latency_ms["total"] for e in result.transcript
            if e.speaker == "customer" and e.latency_ms and "total" in e.latency_ms]


# ------------------------------------------------------------------ 1 + 2
async def one_level(stack, runtime, sip_stack, peer, level: int, call_s: float) -> dict[str, Any]:
    trunk = TrunkConfig(dial_uri=f"sip:{{number}}@127.0.0.1:{peer.port}")
    calls = SipCalls(sip_stack, runtime, stack.engine, trunk)
    config = SessionConfig(turn=TurnConfig(max_call_ms=int(call_s * 1000), silence_timeout_ms=8000))
    runtime.session_config = lambda detect_machine=False: config  # type: ignore[method-assign]

    async def one(i: int) -> dict[str, Any]:
        customer_id = CUSTOMERS[i % len(CUSTOMERS)]
        await runtime.warm_for_customer(stack.engine, customer_id, MULAW_8K)  # as the dialer does
        transport = calls.transport("13800138000", new_call_id())
        async with aiohttp.ClientSession() as http:
            result = await run_call(stack.settings, runtime, stack.engine, http,
                                    customer_id=customer_id, transport=transport,
                                    call_id=transport.call_id)
        stats = transport.stats()
        timings = transport.answer.detail.get("timings_ms", {}) if transport.answer else {}
        share = stats.get("glitch_frames", 0) / max(1, stats.get("frames_out", 1))
        return {"outcome": result.outcome, "stats": stats, "glitch_share": share,
                "backlog": stats.get("p95_inbound_backlog_frames", 0),
                "backlog_max": stats.get("max_inbound_backlog_frames", 0),
                "pdd_ms": timings.get("provisional"), "answer_ms": timings.get("answered"),
                "latencies": turn_latencies(result)}

    busy0, total0 = cpu_busy()
    started = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(level)))
    wall = time.monotonic() - started
    busy1, total1 = cpu_busy()
    ok = [r for r in results if r["glitch_share"] <= REAL_TIME_GLITCH_SHARE
          and r["backlog"] <= REAL_TIME_BACKLOG_FRAMES]
    return {"level": level, "wall_s": wall, "results": results, "real_time": len(ok),
            "cpu_share": (busy1 - busy0) / max(1.0, total1 - total0)}


def print_level(row: dict[str, Any]) -> None:
    results = row["results"]
    glitch = max(r["glitch_share"] for r in results) * 100
    backlog = max(r["backlog"] for r in results)
    backlog_max = max(r["backlog_max"] for r in results)
    latency = median([x for r in results for x in r["latencies"]])
    print(f"  {row['level']:>3} calls: {row['real_time']:>3} real-time | worst glitches {glitch:5.2f} % of frames"
          f" | inbound wait p95 {backlog * 20:>4} ms (max {backlog_max * 20:>5} ms) | turn latency median {latency:6.0f} ms"
          f" | machine CPU {row['cpu_share'] * 100:3.0f} % | outcomes "
          + ", ".join(sorted({r['outcome'] for r in results})))


# ------------------------------------------------------------------ 3
async def latency_over_sip(stack, runtime, sip_stack, workdir: Path, calls: int) -> list[float]:
    from tests.sip_peers.baresip import BaresipPhone
    from tests.sip_peers.customer import customer_says, speech_wav

    wavs = [await speech_wav(runtime.speaker, text, workdir / f"line{i}.wav")
            for i, text in enumerate(["是的，我是", "好的，我有兴趣，帮我转人工"])]
    runtime.session_config = lambda detect_machine=False: SessionConfig()  # type: ignore[method-assign]
    latencies: list[float] = []
    for i in range(calls):
        with BaresipPhone(workdir, f"customer{i}") as phone, BaresipPhone(workdir, f"agent{i}") as agent:
            trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1", agent_uri=agent.uri)
            transport = SipCalls(sip_stack, runtime, stack.engine, trunk).transport(phone.uri, new_call_id())
            async with aiohttp.ClientSession() as http:
                script = asyncio.create_task(customer_says(phone, transport, wavs))
                result = await run_call(stack.settings, runtime, stack.engine, http, customer_id="C0001",
                                        transport=transport, call_id=transport.call_id)
                script.cancel()
        latencies += turn_latencies(result)
        print(f"    SIP call {i + 1}: {result.outcome}, turn latencies {turn_latencies(result)}", file=sys.stderr)
    return latencies


async def latency_simulated(stack, runtime, calls: int) -> list[float]:
    from offercall.simulated_calls import simulated_call
    from voice.transports.simulated import parse_script

    runtime.session_config = lambda detect_machine=False: SessionConfig()  # type: ignore[method-assign]
    latencies: list[float] = []
    for _ in range(calls):
        run = await simulated_call(stack.settings, "C0001", parse_script(["是的，我是", "好的，我有兴趣，帮我转人工"]),
                                   speed=1.0, runtime=runtime)
        latencies += turn_latencies(run.result)
    return latencies


def draw(path: Path, sip: list[float], simulated: list[float], levels: list[dict[str, Any]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.boxplot([simulated, sip], labels=["simulated", "SIP (PJSIP + baresip)"], vert=False)
    left.set_xlabel("turn latency: end of customer speech -> bot audio (ms)")
    left.set_title("Turn latency")
    xs = [row["level"] for row in levels]
    right.plot(xs, [max(r["glitch_share"] for r in row["results"]) * 100 for row in levels], "o-",
               label="worst late frames (%)")
    right.plot(xs, [row["cpu_share"] * 100 / 10 for row in levels], "s--", label="machine CPU (% / 10)")
    right.axhline(REAL_TIME_GLITCH_SHARE * 100, color="grey", lw=0.8, ls=":")
    right.set_xlabel("concurrent SIP calls")
    right.set_title("Real-time audio under load")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> int:
    from tests.sip_peers.customer import speech_wav
    from tests.sip_peers.sipp import SippPeer
    from tests.stack import start_stack

    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        workdir = Path(tmp)
        stack = await asyncio.to_thread(start_stack, workdir, f"sqlite:///{workdir / 'offercall.db'}",
                                        ["actions", "rasa"])
        sip_stack = SipStack(SipConfig(host="127.0.0.1", port=0, rtp_port=47000, rtp_port_range=4000),
                             log_level=3)
        try:
            runtime = VoiceRuntime(stack.settings)
            await runtime.warm(MULAW_8K)
            await sip_stack.start()
            customer = await speech_wav(runtime.speaker, "喂，你好，是我", workdir / "hello.wav")
            padded = workdir / "hello_then_quiet.wav"
            audio = read_wav(customer)
            write_wav(padded, audio.pcm + bytes(8000 * 2 * 6), 8000)

            print("== 1. concurrent SIP calls (sipp trunk answering, full bot per call) ==")
            levels = []
            for level in (int(x) for x in args.levels.split(",")):
                with SippPeer(workdir, "answer_stream", wav=padded, name=f"trunk{level}",
                              ring_ms=RING_MS) as peer:
                    row = await one_level(stack, runtime, sip_stack, peer, level, args.call_s)
                levels.append(row)
                print_level(row)
            sustained = max((row["level"] for row in levels if row["real_time"] == row["level"]), default=0)
            print(f"  sustained with real-time audio: {sustained} concurrent calls")

            all_calls = [r for row in levels for r in row["results"]]
            pdd = [r["pdd_ms"] for r in all_calls if r["pdd_ms"] is not None]
            answer = [r["answer_ms"] for r in all_calls if r["answer_ms"] is not None]
            print("\n== 2. post-dial delay (loopback, sipp rings at once and answers after 4 s) ==")
            print(f"  INVITE -> 180 median {median(pdd):.1f} ms (max {max(pdd, default=0):.1f});"
                  f" INVITE -> 200 median {median(answer):.1f} ms over {len(pdd)} calls")

            if not args.latency_calls:
                return 0
            print("\n== 3. turn latency, SIP vs simulated (real-time pace) ==")
            sip = await latency_over_sip(stack, runtime, sip_stack, workdir, args.latency_calls)
            simulated = await latency_simulated(stack, runtime, args.latency_calls)
            print(f"  SIP:       median {median(sip):.0f} ms over {len(sip)} turns")
            print(f"  simulated: median {median(simulated):.0f} ms over {len(simulated)} turns")
            print(f"  ratio SIP / simulated: {median(sip) / median(simulated):.2f}")
            out = PROJECT_ROOT / "var" / "bench" / "sip.png"
            draw(out, sip, simulated, levels)
            print(f"\npicture: {out}")
        finally:
            await sip_stack.stop()
            stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,3,4")
    parser.add_argument("--call-s", type=float, default=30.0)
    parser.add_argument("--latency-calls", type=int, default=4)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
