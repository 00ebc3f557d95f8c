"""The campaign report: the HTML page's numbers, verdict, SVG charts, escaping and privacy; the
CSV exports; and the page in a real browser (Debian's Chromium, offline, via Playwright).

The browser test saves ``test-artifacts/report.png`` at the repository root.
"""

from __future__ import annotations

import csv
import random
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from outbound.funnel import ALL, STAGES, AttemptFacts, funnel
from outbound.lead_funnel import LeadFact, leads_by_branch
from outbound.report import (
    CSV_FIELDS,
    CampaignSummary,
    attempts_over_time,
    choose_time_bin,
    claim_histogram,
    read_csv,
    render_html,
    write_csv,
    write_funnel_csv,
    write_report,
)
from tests.test_funnel import TRANSFERRED, attempt

T0 = datetime(2024, 5, 6, 1, 0, tzinfo=timezone.utc)  # 09:00 in Beijing
GENERATED = datetime(2024, 5, 9, 12, 0, tzinfo=timezone.utc)
REGIONS = {"四川": ["成都高新支行", "绵阳支行"], "重庆": ["解放碑支行"]}
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "dl", "div",
    "dt", "dd", "section", "p", "table", "thead", "tbody", "tr", "th", "td", "footer",
    "svg", "rect", "text", "line",
}


def campaign(variants: list[str] | None = None, name: str = "五月邮享贷预授信") -> CampaignSummary:
    return CampaignSummary(
        id="K1", name=name, status="running", created_at=T0 - timedelta(days=1),
        variants=["A", "B"] if variants is None else variants, transport="simulated",
        window="09:00–20:00 周一至周六",
    )


def simulated_campaign(customers: int, span: timedelta, seed: int = 7,
                       variants: tuple[str, ...] = ("A", "B")) -> list[AttemptFacts]:
    """Customers with up to three attempts each spread over ``span``; B's pitch converts
    better. Customer ids look like phone numbers, to prove the page never shows them."""
    rng = random.Random(seed)
    facts = []
    for index in range(customers):
        variant = variants[index % len(variants)]
        region = rng.choice(sorted(REGIONS))
        branch = rng.choice(REGIONS[region])
        lift = 0.12 * variants.index(variant)
        for no in range(1, 4):
            start = T0 + span * rng.random()
            facts.append(_attempt(rng, f"138{index:08d}", no, variant, region, branch, start, lift))
            if facts[-1].answered:
                break
    return facts


def _attempt(rng: random.Random, customer: str, no: int, variant: str, region: str,
             branch: str, start: datetime, lift: float) -> AttemptFacts:
    common = dict(customer=customer, no=no, variant=variant, region=region, started_at=start,
                  ended_at=start + timedelta(seconds=rng.randint(5, 180)))
    if rng.random() < 0.45:
        outcome = rng.choice(["no_answer", "busy", "voicemail"])
        return attempt(**common, branch=None, outcome=outcome)
    if rng.random() < 0.25 + lift:
        agent = rng.choice(["applied", "follow_up", None])
        return attempt(**common, branch=branch, **TRANSFERRED, agent_connected=agent is not None,
                       agent_outcome=agent, first_claim_s=rng.expovariate(1 / 40))
    outcome = rng.choice(["not_interested", "callback", "opt_out", "wrong_person",
                          "already_has_loan", "dropped"])
    return attempt(**common, branch=branch, outcome=outcome, answered=True,
                   right_person=outcome != "wrong_person", offer_heard=rng.random() < 0.6,
                   hung_up_mid_offer=outcome == "dropped")


class Page(HTMLParser):
    """Everything the tests read from a page: its tags, visible text and table rows."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.table_classes: list[str | None] = []
        self._cell: list[str] | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
            self.table_classes.append(dict(attrs).get("class"))
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, css: str) -> list[list[str]]:
        return self.tables[self.table_classes.index(css)]

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def svg_blocks(markup: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", markup, flags=re.S)


@pytest.fixture(scope="module")
def facts() -> list[AttemptFacts]:
    return simulated_campaign(400, timedelta(days=3))


@pytest.fixture(scope="module")
def markup(facts) -> str:
    return render_html(campaign(), facts, GENERATED)


def test_the_page_is_a_zh_cn_utf8_document(markup):
    assert markup.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in markup
    assert '<meta charset="utf-8">' in markup
    assert "五月邮享贷预授信" in Page(markup).all_text


def test_the_funnel_table_shows_customers_and_share_of_dialled_per_variant(markup, facts):
    funnels = funnel(facts)
    rows = Page(markup).table("funnel")
    assert rows[0][1:] == ["A", "B", "合计 (all)"]
    for stage, row in zip(STAGES, rows[1:-1], strict=True):
        for name, cell in zip(["A", "B", ALL], row[1:], strict=True):
            count, dialed = funnels[name].stages[stage], funnels[name].customers
            assert cell == f"{count} ({count / dialed:.1%})"
    assert rows[-1][1:] == [str(funnels[name].attempts) for name in ["A", "B", ALL]]


def test_funnel_bars_carry_their_numbers(markup, facts):
    funnels = funnel(facts)
    chart = svg_blocks(markup)[0]
    transferred = funnels["B"].stages["transferred"]
    assert f">{transferred} ({transferred / funnels['B'].customers:.1%})</text>" in chart


def test_the_verdict_is_prominent_and_names_the_winner(markup):
    headline = re.search(r'<p class="headline">(.*?)</p>', markup).group(1)
    assert "B converts better than A" in headline
    assert markup.index('id="verdict"') < markup.index('id="funnel"')


def test_a_small_campaign_says_there_is_not_enough_data():
    page = Page(render_html(campaign(), simulated_campaign(24, timedelta(minutes=5)), GENERATED))
    assert "Not enough data: A has 12 customers (need 30 per variant); " \
           "B has 12 customers (need 30 per variant)" in page.all_text


def test_every_chart_is_well_formed_svg_with_a_title(markup):
    blocks = svg_blocks(markup)
    assert len(blocks) == 5  # funnel, conversion, attempts over time, drop-offs, claims
    for block in blocks:
        root = ET.fromstring(block)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.find("{http://www.w3.org/2000/svg}title").text
        assert float(root.get("width")) > 0 and float(root.get("height")) > 0
        assert root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_conversion_chart_draws_wilson_error_bars(markup):
    chart = ET.fromstring(svg_blocks(markup)[1])
    whiskers = [e for e in chart.iter("{http://www.w3.org/2000/svg}line")
                if e.get("class") == "whisker"]
    assert len(whiskers) == 2 * 2 * 3  # two metrics, two variants, a stem and two caps each


def test_the_page_is_self_contained(markup):
    page = Page(markup)
    assert set(page.tags) <= ALLOWED_TAGS  # no script, link, img, iframe...
    without_namespace = markup.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?:|url\(|@import|<script", without_namespace, flags=re.I)


def test_no_phone_numbers_or_customer_ids_appear(markup, facts):
    assert facts[0].customer_id.startswith("138")
    assert not re.search(r"1[3-9]\d{9}", markup)
    assert not any(fact.customer_id in markup for fact in facts)


def test_text_is_escaped_everywhere():
    facts = [attempt("C1", variant="<b>", region='"&<i>四川', branch="<script>x</script>",
                     started_at=T0, **TRANSFERRED, first_claim_s=12.0),
             attempt("C2", variant="A", started_at=T0)]
    markup = render_html(campaign(["A", "<b>"], name="<img src=x onerror=alert(1)>"), facts,
                         GENERATED)
    page = Page(markup)
    assert set(page.tags) <= ALLOWED_TAGS
    assert "<b>" not in markup and "<script>" not in markup and "<img" not in markup
    assert "&lt;b&gt;" in markup
    assert '"&<i>四川' in page.all_text  # shown as text, unharmed
    for block in svg_blocks(markup):
        ET.fromstring(block)


def test_an_empty_campaign_renders():
    page = Page(render_html(campaign(), [], GENERATED))
    assert "暂无拨打 (no attempts yet)" in page.all_text
    assert "Not enough data: A has 0 customers" in page.all_text
    assert page.table("funnel")[1][1] == "0 (–)"


@pytest.mark.parametrize(("span", "size"), [
    (timedelta(minutes=5), timedelta(minutes=1)),
    (timedelta(hours=2), timedelta(minutes=5)),
    (timedelta(days=3), timedelta(hours=2)),
    (timedelta(days=30), timedelta(days=1)),
    (timedelta(days=400), timedelta(days=7)),
])
def test_the_time_bin_follows_the_span(span, size):
    assert choose_time_bin(span) == size


def test_attempts_over_time_keeps_empty_bins_and_every_attempt():
    facts = [attempt("C1", started_at=T0 + timedelta(seconds=30)),
             attempt("C2", started_at=T0 + timedelta(minutes=4, seconds=50), **TRANSFERRED),
             attempt("C3", started_at=T0 + timedelta(minutes=4, seconds=59), outcome="failed")]
    size, bins = attempts_over_time(facts)
    assert size == timedelta(minutes=1)
    assert [b.start.strftime("%H:%M") for b in bins] == ["09:00", "09:01", "09:02", "09:03",
                                                         "09:04"]
    assert [sum(b.counts.values()) for b in bins] == [1, 0, 0, 0, 2]
    assert bins[0].counts["not_reached"] == 1
    assert bins[-1].counts == {"transferred": 1, "answered": 0, "not_reached": 0, "failed": 1}


def test_claim_histogram_buckets():
    assert [n for _, n in claim_histogram([1, 9.99, 10, 45, 61, 299, 300, 3600])] == [
        2, 1, 1, 1, 1, 1, 1]


def test_regions_and_branches_are_tabulated(markup, facts):
    page = Page(markup)
    regions, branches = page.tables[-2], page.tables[-1]
    assert [row[0] for row in regions[1:]] == sorted(REGIONS)
    assert sum(int(row[1]) for row in regions[1:]) == funnel(facts)[ALL].customers
    assert "(none)" in [row[0] for row in branches[1:]]  # customers never answered


def test_attempts_csv_round_trips(tmp_path, facts):
    path = write_csv(facts, tmp_path / "attempts.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == len(facts)
    assert rows[0]["customer_id"] == facts[0].customer_id
    assert rows[0]["answered"] in ("true", "false")
    assert datetime.fromisoformat(rows[0]["started_at"]) == facts[0].started_at
    assert read_csv(path) == facts


def test_funnel_csv_has_a_row_per_variant_and_stage(tmp_path, facts):
    funnels = funnel(facts)
    path = write_funnel_csv(funnels, tmp_path / "funnel.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * len(STAGES)
    answered_b = next(r for r in rows if r["variant"] == "B" and r["stage"] == "answered")
    expected = funnels["B"].stages["answered"]
    assert int(answered_b["customers"]) == expected
    assert float(answered_b["pct_of_dialed"]) == round(100 * expected / funnels["B"].customers, 1)


def test_write_report_writes_three_files(tmp_path, facts):
    paths = write_report(tmp_path / "out", campaign(), iter(facts), GENERATED)
    assert {name: p.name for name, p in paths.items()} == {
        "html": "report.html", "attempts": "attempts.csv", "funnel": "funnel.csv"}
    assert paths["html"].read_text(encoding="utf-8") == render_html(campaign(), facts, GENERATED)
    assert len(read_csv(paths["attempts"])) == len(facts)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "attempts.csv", "funnel.csv", "report.html"]


@pytest.fixture
def browser_setup():
    """test_browser's Chromium, flags and artifacts folder (imported here: that module loads
    the whole app, which the other tests in this file do not need)."""
    from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM, CHROMIUM_ARGS, ARTIFACTS


@pytest.fixture
def report_file(tmp_path, facts) -> Path:
    """The simulated campaign's report on disk."""
    return write_report(tmp_path, campaign(), facts, GENERATED)["html"]


@pytest.mark.model
async def test_the_report_opens_offline_in_chromium(browser_setup, report_file):
    chromium, chromium_args, artifacts = browser_setup
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=chromium_args)
        page = await browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: r.url.startswith("file:") or problems.append(r.url))
        await page.goto(report_file.as_uri())
        sizes = await page.locator("svg").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect(); "
            "return [r.width, r.height]; })")
        headline = await page.locator("#verdict .headline").inner_text()
        await page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        await browser.close()
    assert problems == []
    assert len(sizes) == 5
    assert all(width > 100 and height > 100 for width, height in sizes)
    assert "B converts better than A" in headline


def _lead(branch: str, *, claimed=True, contacted=False, verified=False, outcome=None,
          rerouted=False) -> LeadFact:
    return LeadFact(branch, {"JT": "金堂县支行", "CD": "成都分行营业部"}[branch], claimed,
                    contacted, verified, outcome, rerouted)


def test_branch_leads_are_counted_per_branch_in_every_stage_they_reached():
    leads = [_lead("JT", claimed=False), _lead("JT", contacted=True, verified=True, outcome="applied"),
             _lead("JT", contacted=True, outcome="declined"), _lead("CD", outcome="unreachable"),
             _lead("CD", rerouted=True, contacted=True)]
    counts = {branch: c.counts for branch, c in leads_by_branch(leads).items()}
    assert list(counts) == ["CD", "JT", "all"]
    assert counts["JT"] == {"leads": 3, "claimed": 2, "contacted": 2, "verified": 1, "applied": 1,
                            "declined": 1, "unreachable": 0, "open": 1, "rerouted": 0}
    assert counts["CD"] == {"leads": 2, "claimed": 2, "contacted": 1, "verified": 0, "applied": 0,
                            "declined": 0, "unreachable": 1, "open": 1, "rerouted": 1}
    assert counts["all"] == {stage: counts["JT"][stage] + counts["CD"][stage] for stage in counts["JT"]}

    table = Page(render_html(campaign(), simulated_campaign(20, timedelta(hours=2)), GENERATED,
                             leads=leads)).table("leads")
    assert table[0][:3] == ["网点 (branch)", "线索 (leads)", "已认领 (claimed)"]
    assert [row[:2] for row in table[1:]] == [["成都分行营业部", "2"], ["金堂县支行", "3"],
                                              ["全部 (all)", "5"]]
    assert table[2][5] == "1"  # 金堂's one application
    assert "暂无支行线索" in Page(render_html(campaign(), [], GENERATED)).all_text
