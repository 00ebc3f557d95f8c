"""NLU quality on the held-out split: run ``rasa test nlu`` and summarise its report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT
from offercall.training import TEST_NLU_DATA

REPORT_PATH = PROJECT_ROOT / "docs" / "nlu_report.md"
TARGET_ACCURACY = 0.95
TARGET_OPT_OUT_RECALL = 0.98


class EvaluationError(RuntimeError):
    """``rasa test nlu`` failed or wrote no report."""


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


def run_rasa_test_nlu(model: Path, out_dir: Path, test_data: Path = TEST_NLU_DATA) -> Path:
    """Evaluate ``model`` on ``test_data``; returns the directory with Rasa's reports."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "rasa", "test", "nlu", "--nlu", str(test_data),
        "--model", str(model), "--out", str(out_dir), "--no-plot",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (out_dir / "intent_report.json").exists():
        raise EvaluationError(f"rasa test nlu failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return out_dir


def summarise(report_dir: Path) -> NluSummary:
    """Reads Rasa's intent and entity reports."""
    report = json.loads((report_dir / "intent_report.json").read_text())
    intents = [
        IntentScore(name, values["precision"], values["recall"], values["f1-score"],
                    int(values["support"]), dict(values.get("confused_with", {})))
        for name, values in sorted(report.items())
        if isinstance(values, dict) and "support" in values and name not in
        {"macro avg", "weighted avg", "micro avg"}
    ]
    entity_f1: dict[str, float] = {}
    for path in report_dir.glob("*Extractor_report.json"), report_dir.glob("DIETClassifier_report.json"):
        for file in path:
            for name, values in json.loads(file.read_text()).items():
                if isinstance(values, dict) and name not in {"macro avg", "weighted avg", "micro avg"}:
                    entity_f1[f"{name} ({file.stem.removesuffix('_report')})"] = values["f1-score"]
    return NluSummary(report["accuracy"], report["macro avg"]["f1-score"], intents, entity_f1)


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
        lines += ["", "| entity (extractor) | F1 |", "|---|---|"]
        lines += [f"| {name} | {f1:.2f} |" for name, f1 in sorted(summary.entity_f1.items())]
    return "\n".join(lines) + "\n"
