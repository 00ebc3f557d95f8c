"""The customer utterances in the NLU data (``nlu_data/``), read without Rasa: the intent and
the text of every example, entity annotations removed (``[十万](amount)`` is 十万)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.settings import PROJECT_ROOT

NLU_DATA = PROJECT_ROOT / "nlu_data"
TRAINING_NLU = NLU_DATA / "train"
_ANNOTATION = re.compile(r"\[([^\]]*)\](\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class NluExample:
    """One example: what a customer says and the intent it means."""

    intent: str
    text: str


def without_annotations(line: str) -> str:
    """An example line as the customer says it: ``- 借[十万](amount)`` is 借十万."""
    return _ANNOTATION.sub(r"\1", line.strip().removeprefix("- ")).strip()


def nlu_examples(folder: Path = NLU_DATA) -> list[NluExample]:
    """Every intent example in the YAML files under ``folder`` (by default training and
    held-out), in file order."""
    examples = []
    for path in sorted(folder.glob("**/*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in item:
                continue
            for line in item.get("examples", "").splitlines():
                text = without_annotations(line)
                if text:
                    examples.append(NluExample(item["intent"], text))
    return examples
