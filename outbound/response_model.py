"""Response prediction: a gradient-boosted tree model (scikit-learn, which Rasa brings) trained
on offercall's own contact history, its cross-validated AUC, and fast scoring of every way to
contact many customers.

Trees rather than a linear model, because the choice it serves is an interaction: which
channel, hour and script suit *this* customer. A linear score would rank the candidates the
same way for everyone. Categories are coded as integers the model treats as categories
(unknown ones as missing), so scoring a whitelist is array work, not a dict per row.

A saved model is a joblib (pickle) file: load only files this installation trained.

The trees fit and predict on one OpenMP thread: on a shared machine, OpenMP's spinning threads
competing with other work made a 2-second fit take 40 seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from outbound.response_features import (
    CATEGORICAL,
    CHANNELS,
    COLUMNS,
    NUMERIC,
    Candidate,
    History,
    Profile,
    features,
)

FORMAT = "offercall-response-model/1"
MAX_CATEGORIES = 250  # the trees' limit per categorical feature is 255 bins
MIN_EXAMPLES = 200
MIN_PER_CLASS = 20


class ModelError(ValueError):
    """Training or loading a model failed, with the reason."""


@dataclass(frozen=True)
class Evaluation:
    """How well the model ranks responders above the rest on contacts it did not see."""

    auc_mean: float
    auc_std: float
    folds: int
    examples: int
    responses: int
    customers: int
    fold_aucs: tuple[float, ...] = ()

    def describe(self) -> str:
        return (f"cross-validated AUC {self.auc_mean:.3f} ± {self.auc_std:.3f} "
                f"({self.folds} folds by customer; {self.examples} contacts of "
                f"{self.customers} customers, {self.responses} responded)")


@dataclass
class ResponseModel:
    """A trained model with the category codes it was trained with."""

    estimator: Any
    categories: dict[str, list[str]]
    evaluation: Evaluation | None = None
    trained_at: str = ""
    source: str = ""
    """What it was trained on, e.g. "contact history" or "synthetic history (demo)"."""
    meta: dict[str, Any] = field(default_factory=dict)

    def matrix(self, rows: Sequence[dict[str, object]]) -> np.ndarray:
        """Rows of :func:`outbound.response_features.features` as the model's input."""
        return encode(rows, self.categories)

    def predict(self, rows: Sequence[dict[str, object]]) -> np.ndarray:
        """The probability each row's contact gets a response."""
        if not rows:
            return np.zeros(0)
        with _one_thread():
            return self.estimator.predict_proba(self.matrix(rows))[:, 1]

    def score_all(self, profiles: Sequence[Profile], histories: Sequence[History],
                  candidates: Sequence[Candidate], chunk: int = 20_000) -> np.ndarray:
        """``scores[i, j]``: customer ``i``'s chance of responding to candidate ``j``.

        The customer's columns are coded once per chunk; each candidate only changes its own.
        """
        if len(profiles) != len(histories):
            raise ValueError("one history per profile")
        scores = np.empty((len(profiles), len(candidates)))
        index = {name: i for i, name in enumerate(COLUMNS)}
        for start in range(0, len(profiles), chunk):
            part = slice(start, start + chunk)
            base = self.matrix([features(p, Candidate("call", 0, ""), h)
                                for p, h in zip(profiles[part], histories[part])])
            per_channel = {c: np.array([h.channel_counts(c) for h in histories[part]],
                                       dtype=float).reshape(-1, 2) for c in CHANNELS}
            for j, candidate in enumerate(candidates):
                x = base.copy()
                x[:, index["channel"]] = _code(self.categories, "channel", candidate.channel)
                x[:, index["variant"]] = _code(self.categories, "variant", candidate.variant)
                x[:, index["hour"]] = candidate.hour
                counts = per_channel.get(candidate.channel)
                if counts is not None:
                    x[:, index["prior_on_channel"]] = counts[:, 0]
                    x[:, index["prior_responses_on_channel"]] = counts[:, 1]
                with _one_thread():
                    scores[part, j] = self.estimator.predict_proba(x)[:, 1]
        return scores

    def save(self, path: str | Path) -> Path:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".part")
        joblib.dump({"format": FORMAT, "estimator": self.estimator,
                     "categories": self.categories, "evaluation": self.evaluation,
                     "trained_at": self.trained_at, "source": self.source,
                     "meta": self.meta}, temporary)
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ResponseModel:
        import joblib

        try:
            data = joblib.load(Path(path))
        except FileNotFoundError:
            raise ModelError(f"no response model at {path}: train one with "
                             "`offercall model response-train`") from None
        except Exception as exc:  # a truncated or foreign file
            raise ModelError(f"{path} is not a response model: {exc!r}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f"{path} is not a response model of format {FORMAT}")
        return cls(data["estimator"], data["categories"], data["evaluation"],
                   data["trained_at"], data["source"], data.get("meta", {}))


def _one_thread():
    """Limits OpenMP (the trees' threads) to one thread in this block."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _code(categories: dict[str, list[str]], column: str, value: object) -> float:
    known = categories.get(column, [])
    if value is None:
        return math.nan
    try:
        return float(known.index(str(value)))
    except ValueError:
        return math.nan  # an unknown category counts as missing


def learn_categories(rows: Sequence[dict[str, object]]) -> dict[str, list[str]]:
    """Each categorical column's most frequent values (at most :data:`MAX_CATEGORIES`)."""
    categories = {}
    for column in CATEGORICAL:
        counts: dict[str, int] = {}
        for row in rows:
            value = row.get(column)
            if value is not None:
                counts[str(value)] = counts.get(str(value), 0) + 1
        ranked = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_CATEGORIES]
        categories[column] = sorted(ranked)
    return categories


def encode(rows: Sequence[dict[str, object]], categories: dict[str, list[str]]) -> np.ndarray:
    """Rows as a float matrix in :data:`COLUMNS` order; categories as codes, unknowns NaN."""
    lookup = {c: {v: float(i) for i, v in enumerate(categories.get(c, []))} for c in CATEGORICAL}
    x = np.full((len(rows), len(COLUMNS)), np.nan)
    for i, row in enumerate(rows):
        for j, column in enumerate(COLUMNS):
            value = row.get(column)
            if value is None:
                continue
            if column in lookup:
                x[i, j] = lookup[column].get(str(value), np.nan)
            else:
                x[i, j] = float(value)  # type: ignore[arg-type]
    return x


def _estimator(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    categorical = [COLUMNS.index(c) for c in CATEGORICAL]
    return HistGradientBoostingClassifier(
        categorical_features=categorical, learning_rate=0.08, max_iter=150,
        max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0, random_state=seed)


def cross_validate(x: np.ndarray, y: np.ndarray, groups: Sequence[str], folds: int = 5,
                   seed: int = 0) -> Evaluation:
    """AUC on held-out customers: folds split by customer (all of a customer's contacts on one
    side), stratified by response."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs = []
    for train, test in splitter.split(x, y, groups):
        if len(set(y[test])) < 2:
            continue
        with _one_thread():
            estimator = _estimator(seed).fit(x[train], y[train])
        aucs.append(float(roc_auc_score(y[test], estimator.predict_proba(x[test])[:, 1])))
    if not aucs:
        raise ModelError("no fold had both responders and non-responders")
    return Evaluation(float(np.mean(aucs)), float(np.std(aucs)), len(aucs), len(y),
                      int(y.sum()), len(set(groups)), tuple(aucs))


def train(rows: Sequence[dict[str, object]], labels: Sequence[int], groups: Sequence[str], *,
          source: str, folds: int = 5, seed: int = 0,
          progress: Callable[[str], None] = lambda _: None) -> ResponseModel:
    """Cross-validates, then fits on every contact. Refuses too little history to learn from."""
    y = np.asarray(labels, dtype=int)
    if len(rows) != len(y) or len(groups) != len(y):
        raise ValueError("one label and one customer per row")
    responses = int(y.sum())
    if len(y) < MIN_EXAMPLES or min(responses, len(y) - responses) < MIN_PER_CLASS:
        raise ModelError(f"too little history to learn from: {len(y)} contacts, {responses} "
                         f"responded (need {MIN_EXAMPLES} contacts and {MIN_PER_CLASS} of "
                         "each outcome)")
    categories = learn_categories(rows)
    x = encode(rows, categories)
    progress(f"cross-validating on {len(y)} contacts ({folds} folds)")
    evaluation = cross_validate(x, y, groups, folds, seed)
    progress(evaluation.describe())
    progress("fitting on all contacts")
    with _one_thread():
        estimator = _estimator(seed).fit(x, y)
    return ResponseModel(estimator, categories, evaluation,
                         datetime.now(timezone.utc).isoformat(timespec="seconds"), source,
                         {"columns": list(COLUMNS), "numeric": list(NUMERIC)})
