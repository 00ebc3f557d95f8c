"""Benchmark: response prediction on SYNTHETIC customers (outbound.synthetic_history: made up,
not real ones): training with cross-validation, scoring 100,000 customers, and how much
response the model's choices would bring against a fixed plan, by the generator's own truth.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_response.py [--history 5000]
        [--customers 100000] [--repeats 3] [--html var/bench/response.html]

- **train**: fit with 5-fold cross-validation by customer on ``--history`` customers' contacts;
  prints the cross-validated AUC next to the AUC of the generator's true probabilities on the
  same contacts (the best any model could do on that noisy history);
- **score**: every candidate (3 channels x 4 hours x 2 variants = 24) for ``--customers``
  fresh customers with histories, then the best per customer; median of ``--repeats`` runs,
  with the two phases (coding the customers, the trees) side by side;
- **policy value**: the mean true response probability of each customer's first contact under
  the model's choice, a fixed plan (a text at 09:00 with variant A), the best fixed
  (channel, hour, variant) for everyone, a random choice, and the oracle (the truth's best).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from outbound import synthetic_history
from outbound.plan_choice import candidates
from outbound.response_features import CHANNELS, History, training_rows
from outbound.response_model import train


def _histories(profiles, seed: int) -> list[History]:
    """Plausible earlier contacts for fresh customers: none for most, a few for some."""
    rng = random.Random(seed)
    made = []
    for _ in profiles:
        contacts = rng.choice((0, 0, 0, 1, 2, 3))
        responses = sum(rng.random() < 0.1 for _ in range(contacts))
        channel = rng.choice(CHANNELS)
        made.append(History(contacts, responses, ((channel, contacts, responses),) if contacts
                            else (), rng.uniform(5, 180) if contacts else 999.0))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--html", help="also write an HTML report here")
    args = parser.parse_args()

    print("SYNTHETIC customers (made up): figures say nothing about real ones.")
    history = synthetic_history.generate(args.history, seed=args.seed)
    by_id = {p.customer_id: p for p in history.profiles}
    rows, labels, groups = training_rows(by_id, history.contacts)
    started = time.perf_counter()
    model = train(rows, labels, groups, source="synthetic", seed=args.seed)
    train_s = time.perf_counter() - started
    from sklearn.metrics import roc_auc_score

    truth_auc = roc_auc_score(labels, _true_probabilities(history, args.seed))
    assert model.evaluation is not None
    print(f"train: {len(labels)} contacts of {args.history} customers, "
          f"{model.evaluation.describe()}; in {train_s:.1f} s")
    print(f"       the generator's own probabilities reach AUC {truth_auc:.3f} on them "
          "(the ceiling)")

    fresh = synthetic_history.profiles(args.customers, seed=args.seed, start=1_000_000)
    histories = _histories(fresh, args.seed)
    options = candidates(CHANNELS, synthetic_history.VARIANTS)
    times, codings = [], []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        base = model.matrix([_row(p, h) for p, h in zip(fresh[:20_000], histories[:20_000])])
        codings.append((time.perf_counter() - started) * len(fresh) / 20_000)
        del base
        started = time.perf_counter()
        scores = model.score_all(fresh, histories, options)
        chosen = scores.argmax(axis=1)
        times.append(time.perf_counter() - started)
        print(f"score round {repeat + 1}: {args.customers} customers x {len(options)} "
              f"candidates in {times[-1]:.2f} s", file=sys.stderr)
    total = statistics.median(times)
    coding = statistics.median(codings)
    print(f"score: {args.customers} customers x {len(options)} candidates: median {total:.2f} s "
          f"({args.customers / total:,.0f} customers/s); of which coding the customers "
          f"~{coding:.2f} s ({coding / total:.0%}), the trees the rest")

    sample = list(range(0, len(fresh), max(1, len(fresh) // 20_000)))
    value = _policy_values(fresh, histories, options, chosen, sample, args.seed)
    print("policy value (mean true response of the first contact, on "
          f"{len(sample)} of the fresh customers):")
    for name, rate in value.items():
        print(f"  {name:<28} {rate:6.1%}   x{rate / value['fixed: sms 09:00 A']:.2f} of fixed")
    if args.html:
        _write_html(Path(args.html), value, model.evaluation.auc_mean, truth_auc, total,
                    args.customers)
        print(f"report: {args.html}")
    return 0


def _row(profile, history):
    from outbound.response_features import Candidate, features

    return features(profile, Candidate("call", 9, "A"), history)


def _true_probabilities(history, seed: int) -> list[float]:
    from outbound.response_features import Candidate
    from outbound.response_features import History as Summary

    by_customer: dict[str, list] = {}
    for contact in sorted(history.contacts, key=lambda c: (c.customer_id, c.at)):
        by_customer.setdefault(contact.customer_id, []).append(contact)
    profiles = {p.customer_id: p for p in history.profiles}
    values = []
    for customer_id, own in by_customer.items():
        for index, contact in enumerate(own):
            values.append(synthetic_history.true_probability(
                profiles[customer_id], Candidate(contact.channel, contact.hour, contact.variant),
                Summary.of(own[:index], contact.at), seed))
    return values


def _policy_values(fresh, histories, options, chosen, sample, seed):
    def truth(i, option):
        return synthetic_history.true_probability(fresh[i], option, histories[i], seed)

    fixed = next(o for o in options if (o.channel, o.hour, o.variant) == ("sms", 9, "A"))
    by_option = {o: np.mean([truth(i, o) for i in sample]) for o in options}
    best_fixed = max(by_option, key=by_option.get)
    return {
        "model's choice": float(np.mean([truth(i, options[chosen[i]]) for i in sample])),
        "fixed: sms 09:00 A": float(by_option[fixed]),
        f"best fixed: {best_fixed.channel} {best_fixed.hour:02d}:00 {best_fixed.variant}":
            float(by_option[best_fixed]),
        "random": float(np.mean(list(by_option.values()))),
        "oracle": float(np.mean([max(truth(i, o) for o in options) for i in sample])),
    }


def _write_html(path: Path, value: dict[str, float], auc: float, ceiling: float,
                seconds: float, customers: int) -> None:
    top = max(value.values())
    bars = "".join(
        f"<tr><td>{name}</td><td><div style='background:#2b6cb0;height:14px;"
        f"width:{400 * rate / top:.0f}px'></div></td><td>{rate:.1%}</td></tr>"
        for name, rate in value.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Response prediction benchmark</title>"
        "<h1>Response prediction (SYNTHETIC customers)</h1>"
        f"<p>Cross-validated AUC {auc:.3f} (ceiling on this history {ceiling:.3f}). "
        f"Scoring {customers:,} customers: {seconds:.2f} s (median).</p>"
        f"<h2>Mean true response of the first contact</h2><table>{bars}</table>",
        encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
