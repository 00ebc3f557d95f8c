"""NLU quality on the held-out split (``nlu_data/test``, never trained on): every example is
parsed by a running Rasa server with the trained model (``/model/parse``) and scored here, the
intents as Rasa's own ``rasa test nlu`` would (scikit-learn's report), the entities as exact
spans per extractor. Asking the server instead of loading the model again is what lets the
suite check quality in seconds."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from core.settings import PROJECT_ROOT
from offercall.training import TEST_NLU_DATA

REPORT_PATH = PROJECT_ROOT / "docs" / "nlu_report.md"
TARGET_ACCURACY = 0.95
TARGET_OPT_OUT_RECALL = 0.98


class EvaluationError(RuntimeError):
    """The held-out data cannot be read, or the Rasa server did not parse it."""


@dataclass(frozen=True)
class Example:
    """A held-out utterance, its intent and its entities as ``(entity, start, end)``."""

    text: str
    intent: str
    entities: frozenset[tuple[str, int, int]]


@dataclass(frozen=True)
class IntentScore:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int
    confused_with: dict[str, int]


@dataclass(frozen=True)
class NluSummary:
    accuracy: float
    macro_f1: float
    intents: list[IntentScore]
    entity_f1: dict[str, float]

    def recall(self, intent: str) -> float:
        return next(score.recall for score in self.intents if score.intent == intent)

    @property
    def examples(self) -> int:
        return sum(score.support for score in self.intents)


def held_out_examples(test_data: Path = TEST_NLU_DATA) -> list[Example]:
    """The held-out split, read with Rasa's own loader (so entity markup means what it means
    in training)."""
    from rasa.shared.nlu.training_data.loading import load_data

    try:
        data = load_data(str(test_data))
    except Exception as exc:  # Rasa raises its own types for a broken file
        raise EvaluationError(f"cannot read {test_data}: {exc}") from exc
    return [
        Example(message.get("text"), message.get("intent"), frozenset(
            (entity["entity"], entity["start"], entity["end"]) for entity in message.get("entities") or []))
        for message in data.intent_examples
    ]


async def parse_all(rasa_url: str, token: str, texts: list[str], at_once: int = 4) -> list[dict[str, Any]]:
    """Rasa's parse of every text (``/model/parse``, which changes no conversation)."""
    gate = asyncio.Semaphore(at_once)
    async with aiohttp.ClientSession() as http:

        async def parse(text: str) -> dict[str, Any]:
            async with gate, http.post(f"{rasa_url.rstrip('/')}/model/parse", params={"token": token},
                                       json={"text": text}, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                if resp.status != 200:
                    raise EvaluationError(f"Rasa answered HTTP {resp.status} to /model/parse")
                return await resp.json()

        try:
            return list(await asyncio.gather(*(parse(text) for text in texts)))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise EvaluationError(f"no answer from the Rasa server at {rasa_url}: {exc!r}") from exc


def intent_names(parses: list[dict[str, Any]]) -> list[str]:
    """The top intent of each Rasa parse (``None`` when there is none, as a label)."""
    return [(parse.get("intent") or {}).get("name") or "None" for parse in parses]


def score(examples: list[Example], parses: list[dict[str, Any]]) -> NluSummary:
    """The held-out examples against what the model made of them (pure)."""
    from sklearn.metrics import precision_recall_fscore_support

    gold = [example.intent for example in examples]
    predicted = intent_names(parses)
    labels = sorted(set(gold) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0)
    confused: dict[str, Counter[str]] = {label: Counter() for label in labels}
    for truth, guess in zip(gold, predicted, strict=True):
        if truth != guess:
            confused[truth][guess] += 1
    intents = [
        IntentScore(label, float(p), float(r), float(f), int(n), dict(confused[label].most_common()))
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True) if n
    ]
    accuracy = sum(t == g for t, g in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0
    gold_f1 = [float(f) for f, n in zip(f1, support, strict=True) if n]
    macro_f1 = sum(gold_f1) / len(gold_f1) if gold_f1 else 0.0
    return NluSummary(accuracy, macro_f1, intents, _entity_f1(examples, parses))


def _entity_f1(examples: list[Example], parses: list[dict[str, Any]]) -> dict[str, float]:
    """F1 per entity and extractor, counting exact spans."""
    found: dict[tuple[str, str], Counter[str]] = {}
    extractors = {e.get("extractor", "?") for parse in parses for e in parse.get("entities") or []}
    for example, parse in zip(examples, parses, strict=True):
        for extractor in extractors:
            spans = {(e["entity"], e["start"], e["end"]) for e in parse.get("entities") or []
                     if e.get("extractor", "?") == extractor}
            for entity in {name for name, _, _ in spans | example.entities}:
                mine = {span for span in spans if span[0] == entity}
                truth = {span for span in example.entities if span[0] == entity}
                counts = found.setdefault((entity, extractor), Counter())
                counts["tp"] += len(mine & truth)
                counts["fp"] += len(mine - truth)
                counts["fn"] += len(truth - mine)
    return {f"{entity} ({extractor})": _f1(c["tp"], c["fp"], c["fn"]) for (entity, extractor), c in found.items()}


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def evaluate(rasa_url: str, token: str, test_data: Path = TEST_NLU_DATA) -> NluSummary:
    """The held-out split, parsed by the Rasa server at ``rasa_url`` and scored."""
    examples = held_out_examples(test_data)
    parses = asyncio.run(parse_all(rasa_url, token, [example.text for example in examples]))
    return score(examples, parses)


def render_markdown(summary: NluSummary, command: str) -> str:
    """The summary as the Markdown page committed to docs/."""
    lines = [
        "# NLU quality on the held-out split",
        "",
        f"Reproduce: `{command}`",
        "",
        f"- examples: {summary.examples} in `nlu_data/test/` (never trained on)",
        f"- intent accuracy: **{summary.accuracy:.3f}** (target {TARGET_ACCURACY}, the test fails below 0.90)",
        f"- macro F1: {summary.macro_f1:.3f}",
        f"- opt_out recall: **{summary.recall('opt_out'):.3f}** (target {TARGET_OPT_OUT_RECALL})",
        "",
        "| intent | precision | recall | F1 | n | confused with |",
        "|---|---|---|---|---|---|",
    ]
    for score in summary.intents:
        confused = ", ".join(f"{name} ×{count}" for name, count in score.confused_with.items())
        lines.append(f"| {score.intent} | {score.precision:.2f} | {score.recall:.2f} | "
                     f"{score.f1:.2f} | {score.support} | {confused} |")
    if summary.entity_f1:
        lines += ["", "Entities: exact spans (entity, start, end) per extractor; a partial or extra "
                  "overlapping span counts as an error (stricter than `rasa test nlu`'s token count).", "",
                  "| entity (extractor) | F1 |", "|---|---|"]
        lines += [f"| {name} | {f1:.2f} |" for name, f1 in sorted(summary.entity_f1.items())]
    return "\n".join(lines) + "\n"
