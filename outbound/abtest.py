"""A/B statistics for script variants: Wilson intervals, the pooled two-proportion z-test, and
a verdict in one plain sentence. Pure functions, standard library only.

``compare`` takes ``{variant: (successes, customers)}`` in order; the first variant is the
control. With more than two variants each other variant is compared with the control and the
p-values are Bonferroni-adjusted (multiplied by the number of comparisons, capped at 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class VariantRate:
    """One variant's conversion: successes out of n, the rate and its Wilson interval."""

    name: str
    successes: int
    n: int
    rate: float | None
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """One variant against the control: z > 0 when the variant converts better."""

    control: str
    variant: str
    z: float
    p: float  # two-sided, unadjusted
    p_adjusted: float  # Bonferroni-adjusted for the number of comparisons
    significant: bool  # p_adjusted < alpha, and there was enough data to say so


@dataclass(frozen=True)
class ABResult:
    """The outcome of ``compare``: per-variant rates, the tests, and the verdict sentence."""

    variants: dict[str, VariantRate]
    comparisons: list[Comparison]
    enough_data: bool
    verdict: str
    alpha: float = 0.05

    @property
    def _main(self) -> Comparison | None:
        """The comparison with the smallest p-value."""
        return min(self.comparisons, key=lambda c: c.p, default=None)

    @property
    def z(self) -> float | None:
        """z of the most significant comparison (the only one for two variants)."""
        return self._main.z if self._main else None

    @property
    def p(self) -> float | None:
        """Unadjusted two-sided p of the most significant comparison."""
        return self._main.p if self._main else None


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0.0, 1.0) when n is 0."""
    _check_counts(successes, n)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges, where
    high = 1.0 if successes == n else min(1.0, centre + half)  # rounding would leave 1e-17
    return (low, high)


def two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_z_test(s_a: int, n_a: int, s_b: int, n_b: int) -> tuple[float, float]:
    """The pooled two-proportion z-test of B against A: (z, two-sided p), z > 0 when B's rate is
    higher. With no variance to test (an empty arm, or all or none converting) it is (0.0, 1.0)."""
    _check_counts(s_a, n_a)
    _check_counts(s_b, n_b)
    if n_a == 0 or n_b == 0:
        return (0.0, 1.0)
    pooled = (s_a + s_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return (0.0, 1.0)
    z = (s_b / n_b - s_a / n_a) / se
    return (z, two_sided_p(z))


def _rate(name: str, successes: int, n: int, confidence: float) -> VariantRate:
    low, high = wilson_interval(successes, n, confidence)
    return VariantRate(name, successes, n, successes / n if n else None, low, high)


def _shortfalls(rates: list[VariantRate], min_per_arm: int, min_events: int) -> list[str]:
    """Why the data cannot support a verdict yet, one phrase per reason (none when it can)."""
    reasons = [
        f"{rate.name} has {rate.n} customer{'s' if rate.n != 1 else ''} "
        f"(need {min_per_arm} per variant)"
        for rate in rates if rate.n < min_per_arm
    ]
    successes = sum(rate.successes for rate in rates)
    failures = sum(rate.n - rate.successes for rate in rates)
    if successes < min_events:
        reasons.append(f"only {successes} conversion{'s' if successes != 1 else ''} in total "
                       f"(need {min_events})")
    if failures < min_events:
        reasons.append(f"only {failures} non-conversion{'s' if failures != 1 else ''} in total "
                       f"(need {min_events})")
    return reasons


def format_p(p: float) -> str:
    """A p-value for people: two significant digits, or "< 0.001"."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _describe(comparison: Comparison, rates: dict[str, VariantRate], tests: int) -> str:
    """One comparison in words, e.g. "B converts better than A (12.0% vs 6.1%, p = 0.03)"."""
    a, b = rates[comparison.control], rates[comparison.variant]
    p_text = format_p(comparison.p_adjusted if tests > 1 else comparison.p)
    if tests > 1:
        p_text += f", Bonferroni-adjusted for {tests} comparisons"
    if not comparison.significant:
        return (f"No significant difference between {b.name} and {a.name} "
                f"({_pct(b.rate)} vs {_pct(a.rate)}, {p_text})")
    better, worse = (b, a) if comparison.z > 0 else (a, b)
    return (f"{better.name} converts better than {worse.name} "
            f"({_pct(better.rate)} vs {_pct(worse.rate)}, {p_text})")


def compare(variants: dict[str, tuple[int, int]], min_per_arm: int = 30, min_events: int = 5,
            alpha: float = 0.05, confidence: float = 0.95) -> ABResult:
    """Compares ``{variant: (successes, customers)}``; the first variant is the control.

    There is enough data when every variant has ``min_per_arm`` customers and the variants
    together have ``min_events`` conversions and as many non-conversions. The tests are run
    either way; the verdict only calls a winner when there is enough data.
    """
    rates = {name: _rate(name, s, n, confidence) for name, (s, n) in variants.items()}
    names = list(rates)
    if len(names) < 2:
        verdict = (f"Only one variant ({names[0]}): nothing to compare." if names
                   else "No variants: nothing to compare.")
        return ABResult(rates, [], False, verdict, alpha)
    control, tests = names[0], len(names) - 1
    shortfalls = _shortfalls(list(rates.values()), min_per_arm, min_events)
    comparisons = []
    for name in names[1:]:
        z, p = two_proportion_z_test(*variants[control], *variants[name])
        p_adjusted = min(1.0, p * tests)
        significant = not shortfalls and p_adjusted < alpha
        comparisons.append(Comparison(control, name, z, p, p_adjusted, significant))
    if shortfalls:
        verdict = "Not enough data: " + "; ".join(shortfalls) + "."
    else:
        verdict = "; ".join(_describe(c, rates, tests) for c in comparisons) + "."
    return ABResult(rates, comparisons, not shortfalls, verdict, alpha)
