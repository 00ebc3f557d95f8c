"""The dialer's counters (prometheus_client's default registry of the process that dials)."""

from __future__ import annotations

from prometheus_client import Counter

from core.vocabulary import DialOutcome

CALLS_PLACED = Counter(
    "offercall_calls_placed", "Campaign calls started by this process's dialers")
CALLS_ENDED = Counter(
    "offercall_calls_ended", "Campaign calls ended, by dial outcome (core.vocabulary.DialOutcome)",
    ["outcome"])
for _outcome in DialOutcome:
    CALLS_ENDED.labels(str(_outcome))  # every outcome present at 0 from the start
