"""NLU quality of the trained model on the held-out split (``nlu_data/test``, never trained on)."""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT
from offercall.nlu_eval import render_markdown, run_rasa_test_nlu, summarise

pytestmark = pytest.mark.model
MINIMUM_ACCURACY = 0.90


@pytest.fixture(scope="module")
def summary(trained_model, tmp_path_factory):
    return summarise(run_rasa_test_nlu(trained_model, tmp_path_factory.mktemp("nlu_eval")))


def test_held_out_split_is_never_trained_on():
    import yaml

    def examples(path):
        block = yaml.safe_load(path.read_text())["nlu"][0]["examples"]
        return {line.lstrip("- ").strip() for line in block.splitlines() if line.strip()}

    for test_file in (PROJECT_ROOT / "nlu_data" / "test").glob("*.yml"):
        train_file = PROJECT_ROOT / "nlu_data" / "train" / "intents" / test_file.name
        assert not examples(test_file) & examples(train_file), test_file.name


def test_intent_accuracy_on_held_out_examples(summary):
    print("\n" + render_markdown(summary, "pytest tests/test_nlu_quality.py -s"))
    assert summary.examples >= 21 * 14
    assert summary.accuracy >= MINIMUM_ACCURACY


def test_opt_out_is_almost_never_missed(summary):
    # a missed opt-out means calling someone who asked never to be called again
    assert summary.recall("opt_out") >= MINIMUM_ACCURACY


def test_every_contract_intent_is_recognised_most_of_the_time(summary):
    weak = {s.intent: round(s.recall, 2) for s in summary.intents if s.recall < 0.75}
    assert not weak
