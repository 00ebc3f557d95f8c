"""Does the transcript so far read as a finished turn? A small text model of end of turn,
learned from the NLU data: every training example, whole, is a finished turn; every prefix of
one cut at a word boundary (jieba) is unfinished, unless it is an example itself (不需要 of
不需要，谢谢 is finished). 已经 and 你们这利息比 read unfinished; 利率高吗 and 没啥兴趣 finished.

Why a model of its own rather than the NLU's confidence on the partial transcript: the NLU
says *which* intent, not whether the sentence is over (已经 is confidently "already has a
loan"). Why this model: character n-grams (1–4, with the start and end marked) and the last
one to three characters, in a logistic regression from scikit-learn (which Rasa brings): the
ending of a Chinese sentence carries most of the signal (吗, 了, 的 against 是, 比, 在), it
learns in a fraction of a second from data we already keep, reads the recogniser's
unpunctuated output, and scores a partial transcript in well under a millisecond. The
multilingual text turn detectors (LiveKit's, from Qwen 0.5B) are hundreds of megabytes and
ask for a GPU-class budget per call; Smart Turn (:mod:`voice.smart_turn`) hears the sound, not
the words.

Public interface: :class:`WordsTurn` (``train(examples)``, ``complete(text) -> float``),
:func:`training_pairs` and :func:`words_turn` (the process's model, learned from the training
NLU data on first use, about a second).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from core.nlu_examples import TRAINING_NLU, nlu_examples
from voice.turns import words_only

FINISHED, UNFINISHED = 1, 0


def word_prefixes(text: str) -> list[str]:
    """Every proper prefix of ``text`` ending at a word boundary (jieba's), as words only."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    words = [w for w in jieba.cut(words_only(text)) if w]
    return ["".join(words[:i]) for i in range(1, len(words))]


def training_pairs(texts: Iterable[str]) -> tuple[list[str], list[int]]:
    """What the model learns from: each text whole is finished; each word-boundary prefix
    unfinished, unless some text is that prefix whole."""
    whole = [w for w in (words_only(t) for t in texts) if w]
    finished = set(whole)
    samples, labels = [], []
    for text in whole:
        samples.append(text)
        labels.append(FINISHED)
        for prefix in word_prefixes(text):
            if prefix not in finished:
                samples.append(prefix)
                labels.append(UNFINISHED)
    return samples, labels


def _endings(texts: Sequence[str]) -> list[str]:
    """The last one, two and three characters and the length, as tokens."""
    return [f"E1{t[-1:]} E2{t[-2:]} E3{t[-3:]} L{min(len(t), 8)}" for t in texts]


def _marked(text: str) -> str:
    return f"^{text}$"


class WordsTurn:
    """A learned probability that a transcript is a finished turn."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    @classmethod
    def train(cls, texts: Iterable[str]) -> WordsTurn:
        """Learns from whole utterances (:func:`training_pairs`)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.preprocessing import FunctionTransformer

        samples, labels = training_pairs(texts)
        if len(set(labels)) < 2:
            raise ValueError("need whole utterances of two words or more to learn end of turn from")
        features = make_union(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True, preprocessor=_marked),
            make_pipeline(FunctionTransformer(_endings), TfidfVectorizer(token_pattern=r"\S+", lowercase=False)),
        )
        pipeline = make_pipeline(features, LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
        pipeline.fit(samples, labels)
        return cls(pipeline)

    def complete(self, text: str) -> float | None:
        """The probability that ``text`` (a partial transcript) is a finished turn; None for no
        words."""
        words = words_only(text)
        if not words:
            return None
        return float(self._pipeline.predict_proba([words])[0][1])


@lru_cache(maxsize=1)
def words_turn() -> WordsTurn:
    """The process's model, learned from the training NLU data (``nlu_data/train``) on first use."""
    return WordsTurn.train(example.text for example in nlu_examples(TRAINING_NLU))
