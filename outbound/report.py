"""A campaign's report: one self-contained HTML page (inline CSS and hand-written SVG, no
scripts, opens offline) and two CSV exports. Rendering is pure; ``write_*`` do the file I/O.

The page shows no names or phone numbers, not even customer ids: only counts, rates, regions
and branches. Every piece of text is HTML-escaped. Times are shown in China Standard Time.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outbound.abtest import ABResult, VariantRate, compare, wilson_interval
from outbound.channel_funnel import (
    OPENER_WINDOW,
    ChannelFacts,
    ChannelFunnel,
    StageCounts,
    channel_funnels,
)
from outbound.funnel import (
    ALL,
    DROP_OFF_REASONS,
    STAGES,
    AttemptFacts,
    FunnelCounts,
    SegmentCounts,
    by_branch,
    by_region,
    funnel,
    median,
    percentile,
    time_to_first_claim,
)
from outbound.lead_funnel import LEAD_STAGE_NAMES, LEAD_STAGES, LeadFact, leads_by_branch
from outbound.loan_funnel import (
    LOAN_STAGES,
    UNCONTACTED,
    LoanCounts,
    LoanFact,
    LoanFunnel,
    contacts,
    disbursement_counts,
    loan_funnel,
)

if TYPE_CHECKING:  # the report takes the arms' counts; reading them is arm_results' job
    from outbound.arm_results import ArmResults

CHINA = timezone(timedelta(hours=8), "CST")  # no daylight saving: a fixed offset is exact

ARM_LABELS = {"fixed": "固定方案 (fixed plan)", "model": "模型选择 (model-chosen)"}
STAGE_LABELS = {
    "dialed": "拨打 (dialed)",
    "answered": "接听 (answered)",
    "right_person": "本人确认 (right person)",
    "disclosure_played": "已播报声明 (disclosure played)",
    "offer_heard": "听完介绍 (offer heard)",
    "interested": "有意向 (interested)",
    "transferred": "转人工 (transferred)",
    "agent_connected": "坐席接通 (agent connected)",
    "applied": "已申请 (applied)",
}
DROP_OFF_LABELS = {
    "not_interested": "不感兴趣 (not interested)",
    "already_has_loan": "已有贷款 (already has a loan)",
    "opt_out": "拒绝再联系 (opt-out)",
    "busy_callback": "约定回电 (callback)",
    "wrong_person": "非本人 (wrong person)",
    "voicemail": "语音信箱 (voicemail)",
    "no_answer": "未接/占线 (no answer, busy)",
    "hung_up_mid_offer": "介绍中挂断 (hung up mid-offer)",
    "other": "其他 (other)",
}
CHANNEL_LABELS = {
    "sms": "短信 (SMS)",
    "popup": "App 弹窗 (app pop-up)",
    "call": "外呼 (call)",
    "chat": "在线聊天 (in-app chat)",
    "branch_lead": "支行线索 (branch lead)",
}
CHANNEL_STAGE_LABELS = {
    "queued": "已创建 (queued)",
    "sent": "已发送 (sent)",
    "delivered": "已送达 (delivered)",
    "replied": "已回复 (replied)",
    "chatted": "进入聊天 (chatted)",
    "opted_out": "退订 (opted out)",
    "shown": "已展示 (shown)",
    "clicked": "已点击 (clicked)",
    "dismissed": "已关闭 (dismissed)",
    "handed_off": "转人工 (handed off)",
    "requested": "计划转支行 (requested)",
    "assigned": "已分配 (assigned)",
    "claimed": "已认领 (claimed)",
    "contacted": "已联系 (contacted)",
    "verified": "已核实 (verified)",
    **STAGE_LABELS,  # the call funnel's stages (interested, applied…) keep their labels
}
LOAN_STAGE_LABELS = {
    "contacted": "已联系 (contacted)",
    "applied": "已申请 (applied)",
    "approved": "已审批 (approved)",
    "disbursed": "已放款 (disbursed)",
    "declined": "已拒绝 (declined)",
    "withdrawn": "已撤回 (withdrawn)",
}
LOAN_CHANNEL_LABELS = {**CHANNEL_LABELS, UNCONTACTED: "申请前未联系 (no contact before applying)"}
DISBURSED_METRIC = "拨打→已放款 (dialed → disbursed)"
# Attempts over time are stacked by these groups: (key, label, colour).
OUTCOME_GROUPS = (
    ("transferred", "转人工 (transferred)", "#16a34a"),
    ("answered", "接通未转 (answered, not transferred)", "#60a5fa"),
    ("not_reached", "未接通 (no answer, busy, voicemail)", "#cbd5e1"),
    ("failed", "失败 (dropped, failed)", "#f87171"),
)
VARIANT_COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0891b2")
TIME_BINS = tuple(timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720)) + (
    timedelta(days=1), timedelta(days=7))
MAX_TIME_BINS = 48
CLAIM_BUCKETS = (  # (upper bound in seconds, label)
    (10, "<10秒"), (30, "10–30秒"), (60, "30–60秒"), (120, "1–2分"), (300, "2–5分"),
    (600, "5–10分"), (math.inf, "≥10分"),
)
CHART_WIDTH = 760


@dataclass(frozen=True)
class CampaignSummary:
    """What the report says about the campaign itself."""

    id: str
    name: str
    status: str
    created_at: datetime
    variants: list[str] = field(default_factory=list)  # the first one is the A/B control
    transport: str = ""
    window: str = ""  # the calling window, as text


def esc(value: object) -> str:
    """Text made safe for HTML and SVG (quotes included)."""
    return html.escape(str(value), quote=True)


def utc_offset_text(moment: datetime, tz: tzinfo) -> str:
    """E.g. "UTC+08:00" for China Standard Time."""
    offset = moment.astimezone(tz).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def _rate_text(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} 秒" if seconds < 120 else f"{seconds / 60:.1f} 分"


def _colour(index: int) -> str:
    return VARIANT_COLOURS[index % len(VARIANT_COLOURS)]


# --- shaping the data -------------------------------------------------------------------------


def variant_order(campaign: CampaignSummary, facts: Iterable[AttemptFacts]) -> list[str]:
    """The campaign's variants in its order (control first), then any others seen, sorted."""
    seen = {fact.variant for fact in facts}
    return list(campaign.variants) + sorted(seen - set(campaign.variants))


def ab_counts(funnels: Mapping[str, FunnelCounts], variants: Sequence[str],
              stage_to: str = "transferred", stage_from: str = "dialed"
              ) -> dict[str, tuple[int, int]]:
    """``{variant: (customers at stage_to, customers at stage_from)}`` for ``compare``."""
    empty = FunnelCounts()
    stages = {name: funnels.get(name, empty).stages for name in variants}
    return {name: (stages[name][stage_to], stages[name][stage_from]) for name in variants}


def outcome_group(fact: AttemptFacts) -> str:
    """The ``OUTCOME_GROUPS`` key an attempt is stacked under."""
    if fact.transferred or fact.outcome == "transferred":
        return "transferred"
    if fact.outcome in ("no_answer", "busy", "declined", "voicemail"):
        return "not_reached"
    if fact.outcome in ("dropped", "failed") or not fact.answered:
        return "failed"
    return "answered"


def choose_time_bin(span: timedelta) -> timedelta:
    """The smallest of ``TIME_BINS`` that covers ``span`` in fewer than ``MAX_TIME_BINS`` bins
    (one more at most, once the first bin is aligned to the clock)."""
    for size in TIME_BINS:
        if span < size * MAX_TIME_BINS:
            return size
    return TIME_BINS[-1]


def _bin_origin(first: datetime, size: timedelta) -> datetime:
    """``first`` floored to a multiple of ``size`` since its local midnight."""
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if size >= timedelta(days=1):
        return midnight
    return midnight + size * ((first - midnight) // size)


@dataclass(frozen=True)
class TimeBin:
    """Attempts started in ``[start, start + size)``, per outcome group."""

    start: datetime
    counts: dict[str, int]


def attempts_over_time(facts: Sequence[AttemptFacts], tz: tzinfo = CHINA
                       ) -> tuple[timedelta, list[TimeBin]]:
    """The bin size chosen from the campaign's span, and every bin from first to last attempt
    (empty bins included), counting attempts per outcome group."""
    if not facts:
        return TIME_BINS[0], []
    starts = [fact.started_at.astimezone(tz) for fact in facts]
    size = choose_time_bin(max(starts) - min(starts))
    origin = _bin_origin(min(starts), size)
    bins = [TimeBin(origin + size * i, {key: 0 for key, _, _ in OUTCOME_GROUPS})
            for i in range((max(starts) - origin) // size + 1)]
    for fact, start in zip(facts, starts, strict=True):
        bins[(start - origin) // size].counts[outcome_group(fact)] += 1
    return size, bins


def _bin_label(start: datetime, size: timedelta, same_day: bool) -> str:
    if size >= timedelta(days=1):
        return start.strftime("%m-%d")
    return start.strftime("%H:%M" if same_day else "%m-%d %H:%M")


def _stage_counts_json(counts: StageCounts) -> dict[str, Any]:
    return {"customers": counts.customers, "stages": dict(counts.stages)}


def channel_funnel_json(funnels: Mapping[str, ChannelFunnel]) -> dict[str, Any]:
    """The funnel across channels as JSON: per channel (only those with activity) its stages
    in order, and customers touched and per stage in all, per variant, per branch, and per
    variant and branch."""
    return {channel: {
        "stages": list(found.stages),
        "all": _stage_counts_json(found.total),
        "by_variant": {name: _stage_counts_json(c) for name, c in found.by_variant.items()},
        "by_branch": {name: _stage_counts_json(c) for name, c in found.by_branch.items()},
        "by_variant_branch": [{"variant": variant, "branch": branch, **_stage_counts_json(c)}
                              for (variant, branch), c in found.by_variant_branch.items()],
    } for channel, found in funnels.items()}


def claim_histogram(seconds: Sequence[float]) -> list[tuple[str, int]]:
    """Time-to-first-claim counts per ``CLAIM_BUCKETS`` bucket."""
    counts = [0] * len(CLAIM_BUCKETS)
    for value in seconds:
        counts[next(i for i, (upper, _) in enumerate(CLAIM_BUCKETS) if value < upper)] += 1
    return [(label, count) for (_, label), count in zip(CLAIM_BUCKETS, counts, strict=True)]


# --- SVG --------------------------------------------------------------------------------------


def _svg(height: float, title: str, body: list[str], width: int = CHART_WIDTH) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{esc(title)}">'
            f"<title>{esc(title)}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{esc(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> str:
    tooltip = f"<title>{esc(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}">{tooltip}</rect>')


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{css}"/>'


def text_width(text: str, size: float = 12) -> float:
    """A rough rendered width: CJK characters are square, Latin ones about half as wide."""
    return sum(size if ord(char) >= 0x2E80 else size * 0.58 for char in text)


def _legend(items: Sequence[tuple[str, str]]) -> tuple[list[str], float]:
    """Colour swatches with labels (items: label, colour), wrapped into rows; answers the
    elements and the height they take."""
    out, x, y = [], 8.0, 14.0
    for label, colour in items:
        width = 17 + text_width(label) + 16
        if x > 8 and x + width > CHART_WIDTH:
            x, y = 8.0, y + 18
        out += [_rect(x, y - 10, 12, 12, colour), _text(x + 17, y, label)]
        x += width
    return out, y + 10


def _nice_step(top: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks up to ``top``."""
    raw = max(top, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _axis_top(top: float, step: float) -> float:
    return max(step, step * math.ceil(top / step))


def grouped_bars_svg(title: str, categories: Sequence[tuple[str, str]],
                     series: Sequence[tuple[str, str, Mapping[str, int], int]]) -> str:
    """Horizontal bars, one group per category, one bar per series, each labelled
    ``count (share of the series' base)``. categories: (key, label); series: (name, colour,
    count per category key, base)."""
    label_w, value_w, bar_h, gap, group_gap = 230, 110, 15, 3, 12
    scale_w = CHART_WIDTH - label_w - value_w
    biggest = max([counts.get(key, 0) for _, _, counts, _ in series for key, _ in categories] + [1])
    group_h = len(series) * (bar_h + gap) - gap
    body, legend_h = _legend([(name, colour) for name, colour, _, _ in series])
    y = legend_h + 8
    for key, label in categories:
        body.append(_text(label_w - 8, y + group_h / 2 + 4, label, "end"))
        for name, colour, counts, base in series:
            count = counts.get(key, 0)
            width = scale_w * count / biggest
            value = f"{count} ({_pct(count, base)})"
            body.append(_rect(label_w, y, width, bar_h, colour, f"{name} · {label}: {value}"))
            body.append(_text(label_w + width + 5, y + bar_h - 3, value, css="value"))
            y += bar_h + gap
        y += group_gap - gap
    return _svg(y + 4, title, body)


def conversion_svg(title: str, metrics: Sequence[tuple[str, Mapping[str, VariantRate]]],
                   colours: Mapping[str, str]) -> str:
    """Vertical bars of conversion rates per metric and variant, with the Wilson interval as an
    error bar. metrics: (label, rate per variant)."""
    body, legend_h = _legend([(name, colour) for name, colour in colours.items()])
    top, bottom, left = legend_h + 16, 50, 50
    height = top + 220 + bottom
    plot_h = height - top - bottom
    highest = max([r.ci_high for _, rates in metrics for r in rates.values() if r.n] + [0.01])
    step = _nice_step(highest)
    axis_top = _axis_top(highest, step)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / axis_top)

    tick = 0.0
    while tick <= axis_top + 1e-9:
        body += [_line(left, y_of(tick), CHART_WIDTH - 10, y_of(tick), "grid"),
                 _text(left - 6, y_of(tick) + 4, f"{tick:.0%}" if step >= 0.01 else f"{tick:.1%}",
                       "end", "axis")]
        tick += step
    group_w = (CHART_WIDTH - left - 10) / max(len(metrics), 1)
    for index, (label, rates) in enumerate(metrics):
        x0 = left + index * group_w
        bar_w = min(60.0, (group_w - 40) / max(len(rates), 1))
        x = x0 + (group_w - bar_w * len(rates)) / 2
        body.append(_text(x0 + group_w / 2, height - bottom + 34, label, "middle"))
        for name, rate in rates.items():
            body += _error_bar(x, bar_w, rate, colours[name], y_of, height - bottom)
            x += bar_w
    return _svg(height, title, body)


def _error_bar(x: float, bar_w: float, rate: VariantRate, colour: str,
               y_of: Callable[[float], float], baseline: float) -> list[str]:
    """One variant's bar, its Wilson interval, and its labels."""
    centre = x + bar_w / 2
    value = rate.rate or 0.0
    tip = (f"{rate.name}: {rate.successes}/{rate.n} = {_rate_text(rate.rate)}, "
           f"95% CI {rate.ci_low:.1%}–{rate.ci_high:.1%}")
    out = [_rect(x + 4, y_of(value), bar_w - 8, baseline - y_of(value), colour, tip),
           _text(centre, baseline + 14, f"{rate.name} n={rate.n}", "middle", "axis")]
    if rate.n:
        low, high = y_of(rate.ci_low), y_of(rate.ci_high)
        out += [_line(centre, low, centre, high, "whisker"),
                _line(centre - 6, low, centre + 6, low, "whisker"),
                _line(centre - 6, high, centre + 6, high, "whisker"),
                _text(centre, high - 5, _rate_text(rate.rate), "middle", "value")]
    return out


def columns_svg(title: str, columns: Sequence[tuple[str, Sequence[int]]],
                series: Sequence[tuple[str, str]], legend: bool = True) -> str:
    """Vertical columns, each stacked from its series' counts (bottom up), with a count axis.
    columns: (x label, count per series); series: (label, colour)."""
    body, legend_h = _legend(series) if legend else ([], 0.0)
    top, bottom, left = legend_h + 16, 40, 50
    height = top + 200 + bottom
    plot_h = height - top - bottom
    highest = max([sum(counts) for _, counts in columns] + [1])
    step = max(1.0, _nice_step(highest))
    axis_top = _axis_top(highest, step)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / axis_top)

    tick = 0.0
    while tick <= axis_top + 1e-9:
        body += [_line(left, y_of(tick), CHART_WIDTH - 10, y_of(tick), "grid"),
                 _text(left - 6, y_of(tick) + 4, f"{tick:.0f}", "end", "axis")]
        tick += step
    slot = (CHART_WIDTH - left - 10) / max(len(columns), 1)
    widest = max([text_width(label, 11) for label, _ in columns] + [1])
    label_every = max(1, math.ceil((widest + 8) / slot))
    for index, (label, counts) in enumerate(columns):
        x, stacked = left + index * slot, 0
        for (name, colour), count in zip(series, counts, strict=True):
            if count:
                body.append(_rect(x + 1, y_of(stacked + count), max(slot - 2, 1),
                                  y_of(stacked) - y_of(stacked + count), colour,
                                  f"{label} · {name}: {count}"))
            stacked += count
        if stacked and slot >= text_width(str(stacked), 11) + 4:
            body.append(_text(x + slot / 2, y_of(stacked) - 4, str(stacked), "middle", "value"))
        if index % label_every == 0:
            body.append(_text(x + slot / 2, height - bottom + 16, label, "middle", "axis"))
    return _svg(height, title, body)


# --- HTML sections ----------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(anchor: str, heading: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(heading)}</h2>{"".join(parts)}</section>'


def _p(text: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<p{klass}>{esc(text)}</p>"


def _header(campaign: CampaignSummary, facts: Sequence[AttemptFacts], everyone: FunnelCounts,
            generated_at: datetime, tz: tzinfo) -> str:
    def when(moment: datetime) -> str:
        return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({utc_offset_text(moment, tz)})"

    period = (f"{when(min(f.started_at for f in facts))} – {when(max(f.started_at for f in facts))}"
              if facts else "–")
    items = [
        ("活动编号 (campaign id)", campaign.id), ("状态 (status)", campaign.status),
        ("创建时间 (created)", when(campaign.created_at)),
        ("话术版本 (variants)", " / ".join(campaign.variants) or "–"),
        ("通道 (transport)", campaign.transport or "–"),
        ("呼叫时段 (calling window)", campaign.window or "–"),
        ("拨打期间 (attempts made)", period),
        ("客户数 / 拨打次数 (customers / attempts)", f"{everyone.customers} / {everyone.attempts}"),
        ("报告生成 (generated)", when(generated_at)),
    ]
    meta = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items)
    return (f"<header><h1>外呼活动报告 (campaign report): {esc(campaign.name)}</h1>"
            f'<dl class="meta">{meta}</dl></header>')


def _verdict(transfer: ABResult, applied: ABResult, disbursed: ABResult | None = None) -> str:
    css = "verdict" + ("" if transfer.enough_data else " insufficient")
    disbursement = ("" if disbursed is None else
                    f"<p>{esc(DISBURSED_METRIC)}: {esc(disbursed.verdict)}</p>")
    return (f'<section id="verdict" class="{css}"><h2>A/B 结论 (verdict)</h2>'
            f'<p class="headline">拨打→转人工 (dialed → transferred): {esc(transfer.verdict)}</p>'
            f"<p>拨打→已申请 (dialed → applied): {esc(applied.verdict)}</p>{disbursement}"
            f'<p class="note">The first variant ({esc(_control(transfer))}) is the control. '
            f"Pooled two-proportion z-test, two-sided, α = {transfer.alpha}; "
            "with more than two variants the p-values are Bonferroni-adjusted."
            + ("" if disbursed is None else " Disbursed: the loan system paid out a loan the "
               "customer applied for after the variant's first call.")
            + "</p></section>")


def _control(result: ABResult) -> str:
    return next(iter(result.variants), "–")


def _funnel_section(funnels: Mapping[str, FunnelCounts], variants: Sequence[str],
                    colours: Mapping[str, str]) -> str:
    series = [(name, colours[name], funnels[name].stages, funnels[name].customers)
              for name in variants]
    chart = grouped_bars_svg("各阶段客户数 (customers per stage)",
                             [(stage, STAGE_LABELS[stage]) for stage in STAGES], series)
    shown = [*variants, ALL] if len(variants) > 1 else list(variants) or [ALL]
    rows = [[STAGE_LABELS[stage]] + [_count_and_share(funnels[name], stage) for name in shown]
            for stage in STAGES]
    rows.append(["拨打次数 (attempts)"] + [str(funnels[name].attempts) for name in shown])
    table = _table(["阶段 (stage)"] + [("合计 (all)" if n == ALL else n) for n in shown], rows,
                   "funnel")
    return _section("funnel", "转化漏斗 (funnel, customers; % of dialed)", chart, table,
                    _p("A customer counts once per stage if any of their attempts reached it; "
                       "stages are counted independently, not assumed from later ones.", "note"))


def _count_and_share(counts: FunnelCounts, stage: str) -> str:
    return f"{counts.stages[stage]} ({_pct(counts.stages[stage], counts.customers)})"


def _conversion_section(results: Sequence[tuple[str, ABResult]],
                        colours: Mapping[str, str]) -> str:
    chart = conversion_svg("各版本转化率 (conversion by variant, 95% Wilson interval)",
                           [(label, result.variants) for label, result in results], colours)
    rows = [[label, r.name, r.n, r.successes, _rate_text(r.rate),
             f"{r.ci_low:.1%} – {r.ci_high:.1%}" if r.n else "–"]
            for label, result in results for r in result.variants.values()]
    table = _table(["指标 (metric)", "版本 (variant)", "客户 (customers)", "转化 (converted)",
                    "转化率 (rate)", "95% 置信区间 (Wilson CI)"], rows)
    return _section("conversion", "转化率 (conversion)", chart, table)


def _timeline_section(facts: Sequence[AttemptFacts], tz: tzinfo) -> str:
    size, bins = attempts_over_time(facts, tz)
    heading = "拨打时间分布 (attempts over time)"
    if not bins:
        return _section("timeline", heading, _p("暂无拨打 (no attempts yet)", "empty"))
    same_day = bins[0].start.date() == bins[-1].start.date()
    columns = [(_bin_label(b.start, size, same_day),
                [b.counts[key] for key, _, _ in OUTCOME_GROUPS]) for b in bins]
    chart = columns_svg(heading, columns, [(label, colour) for _, label, colour in OUTCOME_GROUPS])
    return _section("timeline", heading, chart,
                    _p(f"每格 (bin): {_duration_text(size)}; attempts by start time "
                       f"({utc_offset_text(bins[0].start, tz)}).", "note"))


def _duration_text(size: timedelta) -> str:
    minutes = size.total_seconds() / 60
    if minutes < 60:
        return f"{minutes:.0f} 分钟 (min)"
    if minutes < 24 * 60:
        return f"{minutes / 60:.0f} 小时 (h)"
    return f"{minutes / 1440:.0f} 天 (d)"


def _drop_off_section(funnels: Mapping[str, FunnelCounts], variants: Sequence[str],
                      colours: Mapping[str, str]) -> str:
    series = [(name, colours[name], funnels[name].drop_offs, sum(funnels[name].drop_offs.values()))
              for name in variants]
    chart = grouped_bars_svg("流失原因 (drop-off reasons)",
                             [(reason, DROP_OFF_LABELS[reason]) for reason in DROP_OFF_REASONS],
                             series)
    return _section("drop-offs", "流失原因 (drop-off reasons; % of customers not transferred)",
                    chart, _p("One reason per customer not transferred, from their latest "
                              "answered attempt (else their latest attempt).", "note"))


def _segment_table(heading: str, segments: Mapping[str, SegmentCounts]) -> str:
    rows = [[name, s.dialed, s.answered, s.transferred, s.applied,
             _rate_text(s.rate("transferred")), _rate_text(s.rate("applied"))]
            for name, s in segments.items()]
    return f"<h3>{esc(heading)}</h3>" + _table(
        [heading, "拨打 (dialed)", "接听 (answered)", "转人工 (transferred)", "已申请 (applied)",
         "转人工率 (transfer rate)", "申请率 (apply rate)"], rows, "segments")


def _segments_section(facts: Sequence[AttemptFacts]) -> str:
    return _section("segments", "地区与网点 (regions and branches; customers)",
                    _segment_table("地区 (region)", by_region(facts)),
                    _segment_table("网点 (branch)", by_branch(facts)))


def _claims_section(facts: Sequence[AttemptFacts]) -> str:
    heading = "首次认领用时 (time to first agent claim)"
    seconds = time_to_first_claim(facts)
    if not seconds:
        return _section("claims", heading, _p("暂无转人工认领 (no claimed handoffs yet)", "empty"))
    summary = (f"n = {len(seconds)}; 中位数 (median) {_seconds_text(median(seconds))}; "
               f"P90 {_seconds_text(percentile(seconds, 90))}; "
               f"最长 (max) {_seconds_text(max(seconds))}")
    chart = columns_svg(heading, [(label, [count]) for label, count in claim_histogram(seconds)],
                        [("认领 (claims)", "#0891b2")], legend=False)
    return _section("claims", heading, _p(summary, "summary"), chart)


def _leads_section(leads: Sequence[LeadFact]) -> str:
    heading = "支行线索 (branch leads of this campaign's customers)"
    if not leads:
        return _section("leads", heading, _p("暂无支行线索 (no branch leads yet)", "empty"))
    rows = [[counts.name, *(counts.counts[stage] for stage in LEAD_STAGES)]
            for counts in leads_by_branch(leads).values()]
    return _section("leads", heading, _table(
        ["网点 (branch)", *(LEAD_STAGE_NAMES[stage] for stage in LEAD_STAGES)], rows, "leads"),
        _p("Each lead counts at the branch it is with now, in every stage it reached there; "
           "rerouted in: it came from a branch that missed a deadline or was suspended.", "note"))


def _channel_row(label: str, counts: StageCounts, stages: Sequence[str]) -> list[object]:
    return [label, counts.customers,
            *(f"{counts.stages[stage]} ({_pct(counts.stages[stage], counts.customers)})"
              for stage in stages)]


def _channel_tables(found: ChannelFunnel, variants: Sequence[str]) -> str:
    headers = [CHANNEL_STAGE_LABELS[stage] for stage in found.stages]
    shown = [name for name in variants if name in found.by_variant]
    shown += sorted(set(found.by_variant) - set(shown))
    rows = [_channel_row(name, found.by_variant[name], found.stages) for name in shown]
    if len(shown) > 1:
        rows.append(_channel_row("合计 (all)", found.total, found.stages))
    branch_rows = [_channel_row(name, counts, found.stages)
                   for name, counts in found.by_branch.items()]
    if len(branch_rows) > 1:
        branch_rows.append(_channel_row("合计 (all)", found.total, found.stages))
    label = CHANNEL_LABELS[found.channel]
    return (f"<h3>{esc(label)}</h3>"
            + _table(["版本 (variant)", "客户 (customers)", *headers], rows,
                     f"channel-{found.channel}")
            + _table(["网点 (branch)", "客户 (customers)", *headers], branch_rows,
                     f"channel-{found.channel}-branches"))


def _channels_section(funnels: Mapping[str, ChannelFunnel], variants: Sequence[str]) -> str:
    return _section(
        "channels", "跨渠道漏斗 (funnel across channels; customers, % of the row's customers)",
        *(_channel_tables(found, variants) for found in funnels.values()),
        _p("Per channel a customer counts once per stage, in each variant they had there and "
           "at one branch; stages are counted independently. A chat is credited to the "
           "customer's latest text or pop-up click before it (within "
           f"{OPENER_WINDOW.days} days); the in-app chat table counts every chat of the "
           "campaign's customers since they joined it, whatever opened it.", "note"))


def _yuan(fen: int) -> str:
    yuan, cents = divmod(fen, 100)
    return f"{yuan:,}" + (f".{cents:02d}" if cents else "")


def _loan_row(label: str, counts: LoanCounts) -> list[object]:
    contacted = counts.stages["contacted"]
    return [label, counts.customers,
            _count_share(contacted, counts.customers),
            *(_count_share(counts.stages[stage], contacted) for stage in LOAN_STAGES[1:]),
            _yuan(counts.disbursed_fen)]


def _loan_table(first: str, rows: Sequence[tuple[str, LoanCounts]], total: LoanCounts,
                css: str) -> str:
    shown = [_loan_row(label, counts) for label, counts in rows]
    if len(shown) > 1:
        shown.append(_loan_row("合计 (all)", total))
    headers = [first, "客户 (customers)", *(LOAN_STAGE_LABELS[stage] for stage in LOAN_STAGES),
               "放款金额 (disbursed, 元)"]
    return _table(headers, shown, css)


def _loans_section(found: LoanFunnel, variants: Sequence[str], colours: Mapping[str, str]) -> str:
    names = [name for name in variants if name in found.by_variant]
    names += sorted(set(found.by_variant) - set(names))
    series = [(name, colours.get(name, _colour(len(colours) + i)),
               found.by_variant[name].stages, found.by_variant[name].customers)
              for i, name in enumerate(names)]
    chart = grouped_bars_svg("放款漏斗 (funnel to disbursement)",
                             [(stage, LOAN_STAGE_LABELS[stage]) for stage in LOAN_STAGES], series)
    parts = [chart,
             "<h3>版本 (variant)</h3>",
             _loan_table("版本 (variant)", [(n, found.by_variant[n]) for n in names],
                         found.total, "loans-variants"),
             "<h3>渠道 (channel of the last contact before applying)</h3>",
             _loan_table("渠道 (channel)", [(LOAN_CHANNEL_LABELS[c], counts) for c, counts
                                           in found.by_channel.items()],
                         found.total, "loans-channels"),
             "<h3>网点 (branch)</h3>",
             _loan_table("网点 (branch)", list(found.by_branch.items()), found.total,
                         "loans-branches")]
    if len(found.by_variant) > 1 and len(found.by_branch) > 1:
        parts += ["<h3>版本 × 网点 (variant × branch)</h3>",
                  _loan_table("版本 · 网点 (variant · branch)",
                              [(f"{v} · {b}", c) for (v, b), c in found.by_variant_branch.items()],
                              found.total, "loans-cells")]
    return _section(
        "loans", "放款漏斗 (contacted → applied → approved → disbursed; customers, "
                 "% of contacted)", *parts,
        _p("The loan system's outcomes of the applications the campaign's customers made once "
           "they had joined it. Each customer counts once, under the campaign's last contact "
           "before they applied (its channel and variant) and the branch that booked the "
           "loan (else the contact's); stages are counted independently; approved includes "
           "the rules' automatic approvals.", "note"))


def channel_section_funnels(facts: Sequence[AttemptFacts],
                            channels: ChannelFacts | None) -> dict[str, ChannelFunnel]:
    """The funnels the report's cross-channel section shows: ``channels`` with the report's
    own attempts as its calls; none when nothing but calls happened (the call funnel above
    says it all)."""
    if channels is None:
        return {}
    funnels = channel_funnels(replace(channels, calls=tuple(facts)))
    return funnels if set(funnels) - {"call"} else {}


CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",
sans-serif;margin:0 auto;max-width:1000px;padding:16px 24px;color:#1f2937;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
h3{font-size:1rem}.meta{display:grid;grid-template-columns:repeat(3,1fr);gap:4px 16px}
.meta dt{font-size:.75rem;color:#6b7280}.meta dd{margin:0 0 6px}
.verdict{border-left:6px solid #16a34a;background:#f0fdf4;padding:4px 16px;margin:16px 0}
.verdict.insufficient{border-color:#d97706;background:#fffbeb}
.headline{font-size:1.15rem;font-weight:600}.note{font-size:.8rem;color:#6b7280}
svg{max-width:100%;height:auto;display:block;margin:8px 0}
svg text{font-size:12px;fill:#1f2937}svg .axis{font-size:11px;fill:#6b7280}
svg .value{font-size:11px}svg .grid{stroke:#e5e7eb}svg .whisker{stroke:#111827;stroke-width:1.5}
table{border-collapse:collapse;margin:8px 0;font-size:.85rem}
th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f9fafb}
.empty{color:#6b7280;font-style:italic}
"""


def _arms_section(arms: ArmResults) -> str:
    rows = []
    for arm in arms.customers:
        n = arms.customers[arm]
        low, high = wilson_interval(arms.responded[arm], n) if n else (0.0, 0.0)
        rows.append([ARM_LABELS.get(arm, arm), n, _count_share(arms.responded[arm], n),
                     f"{low:.1%} – {high:.1%}" if n else "–",
                     _count_share(arms.handed_over[arm], n)])
    table = _table(["组别 (arm)", "客户 (customers)", "有响应 (responded)",
                    "95% 置信区间 (Wilson CI)", "转人工 (handed over)"], rows)
    return _section(
        "arms", "响应预测 A/B (model-chosen plans vs the fixed plan)", table,
        f'<p class="headline">有响应 (responded): {esc(arms.response_test.verdict)}</p>',
        _p(f"转人工 (handed over): {arms.handover_test.verdict}"),
        _p("The fixed arm (the plan as written) is the control. Responded: opened a chat, "
           "replied (not to opt out), tapped a pop-up or was interested on a call, since "
           "joining the campaign. Pooled two-proportion z-test, two-sided.", "note"))


def _count_share(part: int, whole: int) -> str:
    return f"{part} ({_pct(part, whole)})"


def render_html(campaign: CampaignSummary, facts: Sequence[AttemptFacts], generated_at: datetime,
                tz: tzinfo = CHINA, leads: Sequence[LeadFact] = (),
                channels: ChannelFacts | None = None, arms: ArmResults | None = None,
                loans: Sequence[LoanFact] = ()) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources);
    ``leads``: the branch leads of the campaign's customers, counted per branch; ``channels``:
    what its customers did on every channel, for the funnel across channels (its calls are
    ``facts``; see ``channel_section_funnels``); ``arms``: the response-prediction A/B test
    (``outbound.arm_results``), when the campaign was targeted; ``loans``: the loan system's
    outcomes of its customers' applications (``outbound.loan_funnel_data``), for the A/B test
    on disbursement and the funnel to disbursement (both left out when there are none)."""
    facts = list(facts)
    across = channel_section_funnels(facts, channels)
    variants = variant_order(campaign, facts)
    funnels = funnel(facts)
    for name in variants:
        funnels.setdefault(name, FunnelCounts())
    colours = {name: _colour(i) for i, name in enumerate(variants)}
    transfer = compare(ab_counts(funnels, variants, "transferred"))
    applied = compare(ab_counts(funnels, variants, "applied"))
    loans = list(loans)
    disbursed = compare(disbursement_counts(facts, loans, variants)) if loans else None
    metrics = [("拨打→转人工 (dialed → transferred)", transfer),
               ("拨打→已申请 (dialed → applied)", applied)]
    if disbursed is not None:
        metrics.append((DISBURSED_METRIC, disbursed))
    reached = (ChannelFacts(calls=tuple(facts)) if channels is None
               else replace(channels, calls=tuple(facts)))
    body = [
        _header(campaign, facts, funnels[ALL], generated_at, tz),
        _verdict(transfer, applied, disbursed),
        _funnel_section(funnels, variants, colours),
        _channels_section(across, variants) if across else "",
        _loans_section(loan_funnel(contacts(reached), loans), variants, colours) if loans else "",
        _arms_section(arms) if arms is not None else "",
        _conversion_section(metrics, colours),
        _timeline_section(facts, tz),
        _drop_off_section(funnels, variants, colours),
        _segments_section(facts),
        _claims_section(facts),
        _leads_section(leads),
        "<footer>" + _p("Counts are customers unless marked as attempts. The report holds no "
                        "names, phone numbers or customer ids.", "note") + "</footer>",
    ]
    return ("<!DOCTYPE html>\n"
            '<html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<meta http-equiv=\"Content-Security-Policy\" "
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>外呼活动报告 (campaign report): {esc(campaign.name)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


# --- files ------------------------------------------------------------------------------------

CSV_FIELDS = tuple(f.name for f in fields(AttemptFacts))
FUNNEL_CSV_FIELDS = ("variant", "stage", "customers", "pct_of_dialed")
CSV_ENCODING = "utf-8-sig"  # with a BOM, so Excel on Chinese Windows reads UTF-8 correctly


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _parse(type_name: str, text: str) -> object:
    """A CSV cell back to the field's type (type names as written in ``AttemptFacts``)."""
    optional = type_name.endswith("| None")
    if optional and text == "":
        return None
    base = type_name.removesuffix("| None").strip()
    if base == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text == "true"
    converters: dict[str, Callable[[str], object]] = {
        "int": int, "float": float, "datetime": datetime.fromisoformat, "str": str}
    return converters[base](text)


def _write_atomically(path: Path, text: str, encoding: str) -> Path:
    """Writes ``text`` to a temporary file beside ``path``, then renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding=encoding, newline="")
    os.replace(temporary, path)
    return path


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[_cell(value) for value in row] for row in rows])
    return buffer.getvalue()


def write_csv(facts: Iterable[AttemptFacts], path: Path) -> Path:
    """One row per attempt with every ``AttemptFacts`` field (UTF-8 with BOM; booleans as
    true/false, times as ISO 8601, None as empty)."""
    rows = ([getattr(fact, name) for name in CSV_FIELDS] for fact in facts)
    return _write_atomically(Path(path), _csv_text(CSV_FIELDS, rows), CSV_ENCODING)


def read_csv(path: Path) -> list[AttemptFacts]:
    """The attempts of a ``write_csv`` file."""
    types = {f.name: str(f.type) for f in fields(AttemptFacts)}
    with Path(path).open(encoding=CSV_ENCODING, newline="") as handle:
        return [AttemptFacts(**{name: _parse(types[name], text) for name, text in row.items()})
                for row in csv.DictReader(handle)]


def write_funnel_csv(funnels: Mapping[str, FunnelCounts], path: Path) -> Path:
    """One row per variant and stage: customers and percent of dialled (one decimal)."""
    rows = [(name, stage, counts.stages[stage],
             f"{100 * counts.stages[stage] / counts.customers:.1f}" if counts.customers else "")
            for name, counts in funnels.items() for stage in STAGES]
    return _write_atomically(Path(path), _csv_text(FUNNEL_CSV_FIELDS, rows), CSV_ENCODING)


def write_report(out_dir: Path, campaign: CampaignSummary, facts: Iterable[AttemptFacts],
                 generated_at: datetime, leads: Sequence[LeadFact] = (),
                 channels: ChannelFacts | None = None,
                 arms: ArmResults | None = None, loans: Sequence[LoanFact] = ()) -> dict[str, Path]:
    """Writes ``report.html``, ``attempts.csv`` and ``funnel.csv`` into ``out_dir`` (created if
    missing); answers their paths under the keys ``html``, ``attempts`` and ``funnel``."""
    facts = list(facts)
    out_dir = Path(out_dir)
    page = render_html(campaign, facts, generated_at, leads=leads, channels=channels, arms=arms,
                       loans=loans)
    return {
        "html": _write_atomically(out_dir / "report.html", page, "utf-8"),
        "attempts": write_csv(facts, out_dir / "attempts.csv"),
        "funnel": write_funnel_csv(funnel(facts), out_dir / "funnel.csv"),
    }
