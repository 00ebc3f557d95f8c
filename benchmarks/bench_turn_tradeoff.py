"""Benchmark: the end-of-turn trade-off (issue 17). How fast the bot answers against how often
it cuts a customer off mid-sentence, over a grid of end-of-turn settings, on the audio of
bench_turn_taking.py: a chart of every setting, the goals drawn in, and the settings that no
other beats on both.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_turn_tradeoff.py          # ~3 min on 2 cores
    PYTHONPATH=. .venv/bin/python benchmarks/bench_turn_tradeoff.py --smart  # with Smart Turn too

How: every clip (clean, 10 dB SNR, and the 0.7–1.2 s paused sentences, clean) is heard once,
frame by frame, as the call hears it (Silero VAD, Vosk streamed in 100 ms batches with partial
results, Smart Turn on the utterance once each pause reaches 100 ms), and what was known at each
frame is kept: voiced or not, the partial transcript, Smart Turn's probability. Each setting then
replays those frames through the real rules (voice.turns.TurnTaker, voice.end_of_turn,
voice.words_turn) up to its first turn end, which is all a setting changes: the sound and the
words heard before the first end do not depend on it. Scored as bench_turn_taking.py scores:
voice-to-voice = endpoint delay + the bot's 198 ms, on the clips without an inserted pause;
premature = a turn end inside a paused sentence.

Writes var/bench/turn_tradeoff.html (inline SVG, no external resources).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import statistics
import sys
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from benchmarks import turn_audio
from benchmarks.bench_turn_taking import (
    BOT_MS_DEFAULT,
    GOAL_MEDIAN_MS,
    GOAL_P95_MS,
    GOAL_PREMATURE,
    Heard,
    SmartTurnDetector,
    command_line,
    decisions_of,
    percentile,
    run_clip,
    score,
    vosk_words,
)
from benchmarks.turn_audio import Clip
from core.settings import PROJECT_ROOT, Settings
from voice.audio import FRAME_MS
from voice.end_of_turn import EndOfTurnConfig, PauseWatch
from voice.turns import SpeechEnded, TurnConfig, TurnTaker

REPORT_PATH = PROJECT_ROOT / "var" / "bench" / "turn_tradeoff.html"
NEVER_MS = 10**7


@dataclass(frozen=True)
class Frame:
    """What the call knew after one 20 ms frame."""

    voiced: bool
    partial: str
    smart_turn: float | None
    """Smart Turn's probability for the pause this frame is in (None: not heard)."""


class Recorder(SmartTurnDetector):
    """The words detector (Silero VAD, Vosk as the call streams it, Smart Turn if asked) with
    no turn end: it keeps what it knew at each frame instead of deciding."""

    def __init__(self, smart: bool) -> None:
        super().__init__(TurnConfig(endpoint_silence_ms=NEVER_MS), words=True, smart=smart)
        self.end_config = EndOfTurnConfig(min_silence_ms=100, quick_silence_ms=NEVER_MS,
                                          default_silence_ms=NEVER_MS, max_silence_ms=NEVER_MS)
        self.frames: list[Frame] = []

    def reset(self) -> None:
        super().reset()
        self.frames = []

    def feed(self, frame: bytes, at_ms: float, bot_speaking: bool) -> list:
        decided = super().feed(frame, at_ms, bot_speaking)
        self._turns.detector.end_after(NEVER_MS)
        self.frames.append(Frame(self.last_voiced, self._partial, self._pause.sound))
        return decided


@lru_cache(maxsize=None)
def _finished(text: str) -> float | None:
    from voice.words_turn import words_turn

    return words_turn().complete(text)


def replay(frames: list[Frame], config: EndOfTurnConfig, expected: frozenset[str]) -> list:
    """The decisions a setting makes on recorded frames, up to its first turn end."""
    turns = TurnTaker(TurnConfig(endpoint_silence_ms=config.max_silence_ms))
    pause = PauseWatch()
    decisions = []
    for index, frame in enumerate(frames):
        at = float(index * FRAME_MS)
        changes = turns.frame(at, frame.voiced, FRAME_MS, bot_speaking=False)
        decisions += decisions_of(changes, at)
        if any(isinstance(c, SpeechEnded) for c in changes):
            break
        detector = turns.detector
        if pause.due(frame.voiced, detector.speaking, detector.silence_ms, frame.partial, config):
            pause.sound = frame.smart_turn
            detector.end_after(pause.judge(frame.partial, expected, _finished(frame.partial), config)[0])
    return decisions


@dataclass(frozen=True)
class Setting:
    name: str
    config: EndOfTurnConfig


@dataclass(frozen=True)
class Outcome:
    setting: Setting
    median_ms: float
    p95_ms: float
    premature: float
    """Share of the paused sentences cut off in their pause."""
    cut_whole: float
    """Share of the sentences without an inserted pause cut off inside."""
    frontier: bool = False

    @property
    def meets_goals(self) -> bool:
        return (self.median_ms <= GOAL_MEDIAN_MS and self.p95_ms <= GOAL_P95_MS
                and self.premature <= GOAL_PREMATURE)


def grid() -> list[Setting]:
    """The settings tried: the least silence that ends a turn (a short answer the question
    expects, words that read finished), how sure the words must be to end it then (below, they
    read unfinished), and the hard maximum wait (which unfinished words wait)."""
    settings = []
    for least, finished, longest in itertools.product((100, 150, 200), (0.4, 0.5, 0.6, 0.7, 0.8),
                                                      (1000, 1200, 1400)):
        config = replace(EndOfTurnConfig(), min_silence_ms=least, finished_words=finished,
                         max_silence_ms=longest)
        settings.append(Setting(f"least {least} ms, finished ≥ {finished:g}, longest {longest} ms", config))
    return settings


def evaluate(setting: Setting, recorded: list[tuple[Clip, list[Frame]]], expected: frozenset[str],
             bot_ms: float) -> Outcome:
    latencies, premature, cut = [], [], []
    for clip, frames in recorded:
        scored = score(Heard(clip, replay(frames, setting.config, expected), {}))
        if clip.condition.startswith("paused"):
            premature.append(scored.premature > 0)
        else:
            cut.append(scored.premature > 0)
            latencies.append(float("inf") if scored.delay_ms is None else scored.delay_ms + bot_ms)
    return Outcome(setting, statistics.median(latencies), percentile(latencies, 0.95),
                   sum(premature) / len(premature), sum(cut) / len(cut))


def on_frontier(outcomes: list[Outcome]) -> list[Outcome]:
    """Marks the settings no other beats on premature ends (paused and whole sentences) and
    latency (p95 and median) together."""
    def key(o: Outcome) -> tuple[float, ...]:
        return (o.premature, o.cut_whole, o.p95_ms, o.median_ms)

    def beaten(o: Outcome) -> bool:
        return any(all(a <= b for a, b in zip(key(p), key(o))) and key(p) != key(o) for p in outcomes)
    return [replace(o, frontier=not beaten(o)) for o in outcomes]


def scatter_svg(outcomes: list[Outcome], y: str, title: str, goal_y: float) -> str:
    """Premature ends (x) against a latency (y) per setting; the goal's corner shaded."""
    width, height, left, bottom, top, right = 820, 340, 60, 40, 30, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max(0.1, max(o.premature for o in outcomes) * 1.1)
    finite = [getattr(o, y) for o in outcomes if getattr(o, y) != float("inf")]
    y_max = max([*finite, goal_y]) * 1.1

    def px(v: float) -> float:
        return left + v / x_max * plot_w

    def py(v: float) -> float:
        return top + plot_h - min(v, y_max) / y_max * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html.escape(title)}"><text x="{left}" y="18" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{py(goal_y):.1f}" width="{px(GOAL_PREMATURE) - left:.1f}" '
           f'height="{top + plot_h - py(goal_y):.1f}" fill="#dcfce7"><title>the goals</title></rect>']
    for tick in range(6):
        xv, yv = x_max * tick / 5, y_max * tick / 5
        out.append(f'<text x="{px(xv):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{xv:.0%}</text>'
                   f'<text x="{left - 4}" y="{py(yv) + 4:.1f}" font-size="10" text-anchor="end">{yv:.0f}</text>'
                   f'<line x1="{left}" y1="{py(yv):.1f}" x2="{width - right}" y2="{py(yv):.1f}" stroke="#eee"/>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
               'premature turn ends on paused sentences</text>')
    for o in outcomes:
        colour = "#00703c" if o.frontier else "#9ca3af"
        out.append(f'<circle cx="{px(o.premature):.1f}" cy="{py(getattr(o, y)):.1f}" r="{5 if o.frontier else 3}" '
                   f'fill="{colour}"><title>{html.escape(o.setting.name)}: median {o.median_ms:.0f} ms, '
                   f'p95 {o.p95_ms:.0f} ms, premature {o.premature:.0%}, cut whole {o.cut_whole:.0%}'
                   '</title></circle>')
        if o.setting.config == EndOfTurnConfig():
            out.append(f'<circle cx="{px(o.premature):.1f}" cy="{py(getattr(o, y)):.1f}" r="9" fill="none" '
                       f'stroke="#c00" stroke-width="2"/><text x="{px(o.premature) + 12:.1f}" '
                       f'y="{py(getattr(o, y)) + 4:.1f}" font-size="11" fill="#c00">the default</text>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#111"/>'
               f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#111"/></svg>')
    return "".join(out)


def write_report(path: Path, outcomes: list[Outcome], header: list[str]) -> None:
    bold = ' style="font-weight:bold"'
    rows = "".join(
        f"<tr{bold if o.frontier else ''}><td>{html.escape(o.setting.name)}</td>"
        f"<td>{o.median_ms:.0f}</td><td>{o.p95_ms:.0f}</td><td>{o.premature:.0%}</td><td>{o.cut_whole:.0%}</td>"
        f"<td>{'yes' if o.meets_goals else ''}</td></tr>"
        for o in sorted(outcomes, key=lambda o: (o.premature, o.p95_ms)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>End-of-turn trade-off</title>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:1em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>"
        "<h1>End of turn: answering fast against cutting customers off</h1>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in header)
        + scatter_svg(outcomes, "p95_ms", "Voice-to-voice p95 (ms) against premature ends; green: no setting beats it",
                      GOAL_P95_MS)
        + scatter_svg(outcomes, "median_ms", "Voice-to-voice median (ms) against premature ends", GOAL_MEDIAN_MS)
        + "<h2>Every setting</h2><table><tr><th>setting</th><th>median ms</th><th>p95 ms</th>"
          "<th>premature (paused)</th><th>cut off (whole sentences)</th><th>meets the goals</th></tr>" + rows + "</table>", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=36)
    parser.add_argument("--smart", action="store_true", help="Smart Turn's evidence too")
    parser.add_argument("--bot-ms", type=float, default=BOT_MS_DEFAULT)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--report", type=Path, default=REPORT_PATH)
    args = parser.parse_args()
    settings = Settings.from_environ()
    from voice.asr import load_model
    from voice.end_of_turn import expected_answers

    started = time.perf_counter()
    utterances = turn_audio.select_utterances(turn_audio.held_out(), args.utterances, args.seed)
    vosk_model = load_model(settings.vosk_model_path)
    audio = asyncio.run(turn_audio.build(
        utterances, snrs=[10.0], paused_snrs=[None], noise="pink", seed=args.seed,
        aligner=lambda speech: vosk_words(vosk_model, speech)))
    recorder = Recorder(smart=args.smart)
    recorded = []
    for index, clip in enumerate(audio.clips, start=1):
        run_clip(recorder, clip)
        recorded.append((clip, recorder.frames))
        print(f"\rhear: {index}/{len(audio.clips)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    expected = expected_answers("yes_no")
    outcomes = on_frontier([evaluate(s, recorded, expected, args.bot_ms) for s in grid()])
    best = sorted((o for o in outcomes if o.frontier), key=lambda o: (o.premature, o.p95_ms))
    conditions = sorted({c.condition for c, _ in recorded})
    header = [f"{len(utterances)} held-out sentences, seed {args.seed}, pink noise; conditions "
              f"{', '.join(conditions)}; Silero VAD + the words model"
              f"{' + Smart Turn' if args.smart else ''}; the bot's answer time {args.bot_ms:.0f} ms.",
              f"Goals: median ≤ {GOAL_MEDIAN_MS:.0f} ms, p95 ≤ {GOAL_P95_MS:.0f} ms, premature ≤ "
              f"{GOAL_PREMATURE:.0%}. Settings meeting all three: {sum(o.meets_goals for o in outcomes)} "
              f"of {len(outcomes)}.",
              f"Reproduce: {command_line()} ({time.perf_counter() - started:.0f} s)"]
    print("\n".join(header))
    print(f"\n{'setting':72} {'median':>7} {'p95':>7} {'premature':>9} {'cut whole':>9}")
    for o in best:
        print(f"{o.setting.name:72} {o.median_ms:7.0f} {o.p95_ms:7.0f} {o.premature:9.0%} {o.cut_whole:9.0%}")
    default = next(o for o in outcomes if o.setting.config == EndOfTurnConfig())
    print(f"\nthe default ({default.setting.name}): median {default.median_ms:.0f} ms, "
          f"p95 {default.p95_ms:.0f} ms, premature {default.premature:.0%}, cut whole {default.cut_whole:.0%}")
    write_report(args.report, outcomes, header)
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
