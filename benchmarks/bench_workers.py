"""Concurrent real-time SIP calls with W voice worker processes of 4 calls each.

One PJSIP process holds at most 4 calls (the pjsua2 wheel's PJSUA_MAX_CALLS), so offercall
grows on calls by adding worker processes. For each W (default 1, 2, 4) this starts W worker
processes at once; each loads its own Vosk model and voice, opens its own PJSIP stack (SIP
port, RTP range) and its own sipp trunk, and when all are ready, places 4 whole bot calls at
the same moment through bench_sip's call (Vosk on the customer's audio, Rasa, the phrase
cache and TTS), on one shared Rasa server and action server over PostgreSQL.

Printed per W: calls placed, calls that stayed real-time (late outgoing frames at most 1 %
and 95 % of inbound frames waiting at most 200 ms: bench_sip's test), late frames over all
calls, the machine's CPU use while the calls ran, and each worker's peak memory.
Goal (issue 14): 16 calls (W = 4) real-time on these 2 cores, late frames under 1 %.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_workers.py [--workers 1,2,4]
[--call-s 30]``. Writes var/bench/workers.html.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sip import cpu_busy  # noqa: E402
from core.settings import PROJECT_ROOT, Settings  # noqa: E402

CALLS_PER_WORKER = 4
MARK = "BENCH-WORKER "
"""Starts the lines a worker says to the bench (PJSIP writes its own log lines to stdout)."""
RTP_BASE, RTP_PER_WORKER = 47000, 2000


# ------------------------------------------------------------------ one worker process
async def worker_main(index: int, call_s: float) -> None:
    """Warms, says ``ready``, waits for ``go`` on stdin, places its 4 calls, prints JSON."""
    from bench_sip import one_level
    from offercall.voice_calls import VoiceRuntime
    from persistence.engine import make_engine
    from tests.sip_peers.customer import speech_wav
    from tests.sip_peers.sipp import SippPeer
    from voice.audio import MULAW_8K, read_wav, write_wav
    from voice.transports.sip import SipConfig, SipStack

    settings = Settings.from_environ(os.environ)
    stack = SimpleNamespace(settings=settings, engine=make_engine(settings.database_url))
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-worker{index}-"))
    runtime = VoiceRuntime(settings)
    await runtime.warm(MULAW_8K)
    sip_stack = SipStack(SipConfig(host="127.0.0.1", port=0, rtp_port=RTP_BASE + index * RTP_PER_WORKER,
                                   rtp_port_range=RTP_PER_WORKER), log_level=2)
    await sip_stack.start()
    try:
        hello = await speech_wav(runtime.speaker, "喂，你好，是我", workdir / "hello.wav")
        padded = workdir / "hello_then_quiet.wav"
        write_wav(padded, read_wav(hello).pcm + bytes(8000 * 2 * 6), 8000)
        await warm_recognisers(runtime.asr_model, read_wav(hello).pcm)
        with SippPeer(workdir, "answer_stream", wav=padded, name=f"trunk{index}", ring_ms=4000) as peer:
            print(f"{MARK}ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # "go": every worker starts together
            row = await one_level(stack, runtime, sip_stack, peer, CALLS_PER_WORKER, call_s)
    finally:
        await sip_stack.stop()
    frames = sum(r["stats"].get("frames_out", 0) for r in row["results"])
    late = sum(r["stats"].get("glitch_frames", 0) for r in row["results"])
    print(MARK + json.dumps({"calls": len(row["results"]), "real_time": row["real_time"],
                      "frames_out": frames, "late_frames": late,
                      "worst_late_share": max(r["glitch_share"] for r in row["results"]),
                      "worst_backlog_p95": max(r["backlog"] for r in row["results"]),
                      "outcomes": sorted(r["outcome"] for r in row["results"]),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


async def warm_recognisers(model: object, speech: bytes) -> None:
    """Gives the worker's recogniser pool 4 used recognisers, as a worker has after its first
    calls (a new one decodes its first utterance at half real time: voice.asr)."""
    from voice.asr import CallRecognizer
    from voice.audio import PCM_8K

    async def one() -> None:
        recognizer = CallRecognizer(model, PCM_8K)
        for start in range(0, len(speech), 320):
            await recognizer.accept(speech[start:start + 320])
        await recognizer.finish()
        await recognizer.close()

    await asyncio.gather(*(one() for _ in range(CALLS_PER_WORKER)))


# ------------------------------------------------------------------ the bench
def said(child: subprocess.Popen[str]) -> str:
    """The worker's next line to the bench, skipping PJSIP's log lines."""
    for line in child.stdout:
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    raise RuntimeError(f"a worker ended without a word (exit code {child.wait()})")


def run_level(env: dict[str, str], workers: int, call_s: float) -> dict[str, Any]:
    """W worker processes, 4 calls each, started together; their results and the CPU used."""
    children = [subprocess.Popen(
        [sys.executable, __file__, "--child", str(i), "--call-s", str(call_s)],
        env=env, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for i in range(workers)]
    try:
        for child in children:
            if (line := said(child)) != "ready":
                raise RuntimeError(f"a worker did not start: {line!r}")
        busy0, total0 = cpu_busy()
        started = time.monotonic()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(said(child)) for child in children]
        wall = time.monotonic() - started
        busy1, total1 = cpu_busy()
    finally:
        for child in children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
    frames = sum(r["frames_out"] for r in results)
    late = sum(r["late_frames"] for r in results)
    return {"workers": workers, "calls": sum(r["calls"] for r in results),
            "real_time": sum(r["real_time"] for r in results),
            "late_share": late / max(1, frames),
            "worst_late_share": max(r["worst_late_share"] for r in results),
            "worst_backlog_p95_ms": 20 * max(r["worst_backlog_p95"] for r in results),
            "cpu_share": (busy1 - busy0) / max(1.0, total1 - total0), "wall_s": wall,
            "peak_rss_mb": [round(r["peak_rss_mb"]) for r in results],
            "outcomes": sorted({o for r in results for o in r["outcomes"]})}


def report(rows: list[dict[str, Any]], path: Path) -> None:
    lines = []
    for row in rows:
        lines.append(
            f"W={row['workers']}: {row['calls']:>2} calls, {row['real_time']:>2} real-time, late frames "
            f"{row['late_share'] * 100:.2f} % (worst call {row['worst_late_share'] * 100:.2f} %), "
            f"inbound wait p95 (worst call) {row['worst_backlog_p95_ms']} ms, "
            f"machine CPU {row['cpu_share'] * 100:.0f} %, peak memory per worker "
            f"{', '.join(f'{m} MB' for m in row['peak_rss_mb'])}, outcomes {', '.join(row['outcomes'])}")
    print("\n".join(lines))
    cells = "".join(
        f"<tr><td>{r['workers']}</td><td>{r['calls']}</td><td>{r['real_time']}</td>"
        f"<td>{r['late_share'] * 100:.2f}</td><td>{r['worst_late_share'] * 100:.2f}</td>"
        f"<td>{r['worst_backlog_p95_ms']}</td>"
        f"<td>{r['cpu_share'] * 100:.0f}</td><td>{max(r['peak_rss_mb'])}</td></tr>" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html><meta charset=utf-8><title>offercall: calls per worker</title>
<style>body{{font:14px system-ui;margin:2em}}td,th{{padding:4px 10px;text-align:right}}</style>
<h1>Concurrent real-time SIP calls, 4 per worker process</h1>
<table><tr><th>workers</th><th>calls</th><th>real-time</th><th>late frames %</th>
<th>worst call %</th><th>inbound wait p95, ms</th><th>machine CPU %</th><th>peak MB per worker</th></tr>{cells}</table>
<pre>{html.escape(chr(10).join(lines))}</pre>""", "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--call-s", type=float, default=30.0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        asyncio.run(worker_main(args.child, args.call_s))
        return 0

    from tests.postgres import start_postgres
    from tests.stack import start_stack

    server = start_postgres()
    stack = None
    try:
        stack = start_stack(Path(tempfile.mkdtemp(prefix="bench-workers-")), server.new_database(),
                            ["actions", "rasa"])
        env = {**stack.env, "PYTHONPATH": str(PROJECT_ROOT)}
        rows = []
        for workers in (int(x) for x in args.workers.split(",")):
            print(f"W={workers}: starting {workers} worker(s) ...", file=sys.stderr, flush=True)
            rows.append(run_level(env, workers, args.call_s))
        report(rows, PROJECT_ROOT / "var" / "bench" / "workers.html")
    finally:
        if stack is not None:
            stack.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
