// The marketing map (营销地图): the branch's leads and the customers of its area on the
// county boundaries bundled with the app (/workspace/map-assets/counties.geojson), drawn by
// the vendored Apache ECharts (window.echarts, /workspace/map-assets/vendor/echarts). No tiles and no other server: the map
// works offline. Points are coloured by status and filtered by the checkboxes; a click on one
// opens the customer's panel (address, offer, history) from /api/map/customers/{id}.
import { $, OUTCOMES, api, el, errorText, showMessage, when } from "/workspace/static/common.js";
import { LEAD_OUTCOMES, LEAD_STATUS, MISSED, SOURCES, amount, branchName, leadBadge, startLeads } from "./leads_common.js";

const echarts = window.echarts;
const MAP_NAME = "branch-counties";
const GEOJSON = "/workspace/map-assets/counties.geojson";
/** Each status: its name on the page and its colour on the map (legend order). */
export const STATUSES = [
  ["customer", "可营销客户", "#7b8c9c"],
  ["assigned", LEAD_STATUS.assigned, "#f0a020"],
  ["rerouted", LEAD_STATUS.rerouted, "#c2571a"],
  ["claimed", LEAD_STATUS.claimed, "#2f6fd6"],
  ["contacted", LEAD_STATUS.contacted, "#8a4fc9"],
  ["verified", LEAD_STATUS.verified, "#1f9d55"],
  ["closed", LEAD_STATUS.closed, "#9aa0a6"],
];
const OVERDUE = "#c4281c";
const KINDS = {
  assigned: "分派至支行", manager: "交给客户经理", claimed: "认领", contacted: "已联系客户",
  visited: "已上门", verified: "完成核实", outcome: "结案", rerouted: "改派", note: "备注",
};
const CALL_STATUS = { dialing: "拨打中", done: "已结束", interrupted: "中断" };

const page = {
  me: null, chart: null, branch: null, points: [], area: [], byId: new Map(), counties: new Map(),
  hidden: new Set(), overdueOnly: false, bounds: null, open: null,
};
const label = (status) => (STATUSES.find(([s]) => s === status) || [status, status])[1];
const esc = (text) => echarts.format.encodeHTML(String(text ?? ""));

// ------------------------------------------------------------------ the map
function boundsOf(geojson) {
  let [west, south, east, north] = [180, 90, -180, -90];
  for (const feature of geojson.features) {
    page.counties.set(feature.properties.adcode, feature.properties.name);
    for (const polygon of feature.geometry.coordinates) {
      for (const [lon, lat] of polygon[0]) {
        west = Math.min(west, lon); east = Math.max(east, lon);
        south = Math.min(south, lat); north = Math.max(north, lat);
      }
    }
  }
  return { west, south, east, north };
}

/** Centre and zoom that frame the branch's points (the whole province with none). */
function framing(points) {
  const all = page.bounds;
  if (!points.length) return { center: [(all.west + all.east) / 2, (all.south + all.north) / 2], zoom: 1 };
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  const [w, e, s, n] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const spanLon = Math.max(e - w, 0.5) * 1.4;
  const spanLat = Math.max(n - s, 0.35) * 1.4;
  const zoom = Math.min((all.east - all.west) / spanLon, (all.north - all.south) / spanLat);
  return { center: [(w + e) / 2, (s + n) / 2], zoom: Math.max(1, Math.min(zoom, 14)) };
}

function shown(point) {
  return !page.hidden.has(point.status) && (!page.overdueOnly || point.overdue);
}

function series() {
  return STATUSES.map(([status, name, color]) => ({
    type: "scatter",
    id: status,
    name,
    coordinateSystem: "geo",
    geoIndex: 0,
    symbolSize: 11,
    itemStyle: { color, borderColor: "#fff", borderWidth: 1, opacity: 0.95 },
    emphasis: { scale: 1.5 },
    data: page.points.filter((p) => p.status === status && shown(p)).map((p) => ({
      name: p.name,
      value: [p.lon, p.lat],
      customer_id: p.customer_id,
      ...(p.overdue ? { symbolSize: 14, itemStyle: { borderColor: OVERDUE, borderWidth: 2.5 } } : {}),
    })),
  }));
}

function tooltip(params) {
  if (params.componentType === "series") {
    const point = page.byId.get(params.data.customer_id);
    if (!point) return "";
    const lines = [`<b>${esc(point.name)}</b> ${esc(point.phone)}`,
      `${esc(label(point.status))}${point.overdue ? ` · <span style="color:${OVERDUE}">${esc(MISSED[point.missed] || "逾期")}</span>` : ""}`,
      `${esc(point.county.city)}${esc(point.county.name)}` + (point.located_by === "region" ? "（按地区）" : "")];
    if (point.product) lines.push(`${esc(point.product)} ${esc(amount(point.amount_yuan))}`);
    return lines.join("<br>");
  }
  return esc(countyName(params));
}

function countyName(params) {
  return page.counties.get(params.name) || params.name;
}

function drawMap() {
  const frame = framing(page.points);
  page.chart.setOption({
    animation: false,
    tooltip: { trigger: "item", formatter: tooltip, confine: true },
    geo: {
      map: MAP_NAME,
      nameProperty: "adcode",
      roam: true,
      center: frame.center,
      zoom: frame.zoom,
      scaleLimit: { min: 1, max: 40 },
      selectedMode: false,
      tooltip: { show: true, formatter: (p) => esc(countyName(p)) },
      label: { show: false, color: "#3d5a47", fontSize: 11, formatter: countyName },
      itemStyle: { areaColor: "#fbfcfb", borderColor: "#a7b8ae", borderWidth: 0.7 },
      emphasis: {
        itemStyle: { areaColor: "#e6f3ec" },
        label: { show: true, color: "#005a30", formatter: countyName },
      },
      // The branch's own area (the counties its leads are routed from first): tinted, named.
      regions: page.area.map((county) => ({
        name: county.adcode,
        itemStyle: { areaColor: "#edf6f0", borderColor: "#7fa88f" },
        label: { show: true },
      })),
    },
    series: series(),
  }, { notMerge: true });
  markReady();
}

function redraw() {
  page.chart.setOption({ series: series() });
  markReady();
}

function markReady() {
  const plotted = page.points.filter(shown).length;
  $("map").dataset.state = "ready";
  $("map").dataset.points = String(plotted);
  $("map-summary").textContent = `地图上 ${plotted} 位 / 共 ${page.points.length} 位` +
    ` · ${branchName(page.branch)}`;
}

// ------------------------------------------------------------------ filters
function drawFilters() {
  const counts = new Map(STATUSES.map(([s]) => [s, 0]));
  for (const point of page.points) counts.set(point.status, (counts.get(point.status) || 0) + 1);
  $("status-filters").replaceChildren(...STATUSES.map(([status, name, color]) => {
    const box = el("input");
    box.type = "checkbox";
    box.checked = !page.hidden.has(status);
    box.dataset.testid = "status-" + status;
    box.addEventListener("change", () => {
      if (box.checked) page.hidden.delete(status); else page.hidden.add(status);
      redraw();
    });
    const swatch = el("span", "swatch");
    swatch.style.background = color;
    const row = el("label");
    row.append(box, swatch, el("span", null, name), el("span", "count", counts.get(status)));
    return row;
  }));
  const overdue = page.points.filter((p) => p.overdue).length;
  const mark = document.querySelector(".overdue-only span");
  mark.textContent = `只看逾期（${overdue}）`;
  if (!mark.previousElementSibling.classList.contains("swatch")) mark.before(el("span", "swatch"));
}

// ------------------------------------------------------------------ the panel
function facts(node, rows) {
  node.replaceChildren(...rows.filter(([, value]) => value !== undefined).flatMap(([key, value]) => {
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value === null || value === "" ? "—" : value;
    return [el("dt", null, key), dd];
  }));
}

function statusBadge(status) {
  if (status !== "customer") return leadBadge(status);
  const badge = el("span", "badge lead-customer", "可营销客户");
  badge.dataset.status = status;
  return badge;
}

function historyRow(row) {
  const li = el("li", row.source === "call" ? "ev-call" : "ev-" + row.kind);
  li.dataset.testid = "panel-event";
  if (row.source === "call") {
    const outcome = row.outcome ? OUTCOMES[row.outcome] || row.outcome : CALL_STATUS[row.status] || row.status;
    li.append(el("div", "what", `外呼 第${row.attempt_no}次 · ${outcome}`),
      el("div", "when", `${when(row.at)} · 活动 ${row.campaign_id}`));
    return li;
  }
  let what = KINDS[row.kind] || row.kind;
  if (row.outcome) what += ` · ${LEAD_OUTCOMES[row.outcome] || row.outcome}`;
  if (row.to_branch && row.kind !== "manager") what += ` → ${branchName(row.to_branch)}`;
  if (row.manager) what += ` · ${row.manager.name || "#" + row.manager.id}`;
  li.append(el("div", "what", what), el("div", "when", `${when(row.at)} · 线索 #${row.lead_id}`));
  if (row.note) li.append(el("div", "note-text", row.note));
  return li;
}

function drawPanel(detail) {
  const customer = detail.customer;
  $("panel-name").textContent = `${customer.name} ${customer.phone}`;
  const status = [statusBadge(detail.status)];
  const open = detail.leads.find((lead) => lead.overdue);
  if (open) status.push(el("span", "badge overdue", MISSED[open.missed] || "逾期"));
  $("panel-status").replaceChildren(...status);
  const county = detail.county ? `${detail.county.city}${detail.county.name}` : "未能定位";
  facts($("panel-customer"), [
    ["客户编号", customer.id],
    ["客群", customer.segment],
    ["地址", customer.address || customer.region],
    ["所在县区", county + (detail.located_by === "region" ? "（按地区）" : "")],
    ...(customer.org_name ? [["单位", customer.org_name], ["单位地址", customer.org_address]] : []),
  ]);
  const offer = detail.offer;
  facts($("panel-offer"), offer ? [
    ["产品", offer.product],
    ["额度", amount(offer.amount_yuan)],
    ["年利率", `${offer.rate_min}% – ${offer.rate_max}%`],
    ["期限", `${offer.term_months} 个月`],
    ["有效期至", offer.valid_until],
  ] : [["产品", "暂无有效额度"]]);
  $("panel-offer").dataset.product = offer ? offer.product : "";
  $("panel-leads").replaceChildren(...detail.leads.map((lead) => {
    const link = el("a", "button ghost", `打开线索 #${lead.id} · ${LEAD_STATUS[lead.status] || lead.status}`);
    link.href = lead.url;
    link.dataset.testid = "panel-lead-link";
    const line = el("div");
    line.append(link, el("div", "muted small",
      `${branchName(lead.branch)} · ${SOURCES[lead.source] || lead.source}` +
      (lead.manager ? ` · ${lead.manager.name || "#" + lead.manager.id}` : " · 未分配")));
    return line;
  }));
  $("panel-history").replaceChildren(...detail.history.map(historyRow));
  $("no-history").hidden = detail.history.length > 0;
  $("panel-body").hidden = false;
  $("panel-empty").hidden = true;
  $("panel").dataset.customer = customer.id;
}

async function openCustomer(customerId) {
  page.open = customerId;
  $("panel").dataset.state = "loading";
  const result = await api("GET", "/api/map/customers/" + encodeURIComponent(customerId));
  if (page.open !== customerId) return;  // another point was clicked meanwhile
  $("panel").dataset.state = result.ok ? "ready" : "error";
  if (!result.ok) {
    showMessage($("panel-error"), errorText(result, "无法读取客户信息"));
    return;
  }
  showMessage($("panel-error"), "");
  drawPanel(result.data);
}

function closePanel() {
  page.open = null;
  $("panel-body").hidden = true;
  $("panel-empty").hidden = false;
  delete $("panel").dataset.customer;
}

// ------------------------------------------------------------------ loading
function showBranches(branches, current) {
  if (branches.length < 2) return;
  const select = $("branch-picker");
  if (!select.options.length) {
    select.replaceChildren(...branches.map((branch) => {
      const option = el("option", null, `${branch.name}（${branch.id}）`);
      option.value = branch.id;
      return option;
    }));
    select.addEventListener("change", () => load(select.value));
  }
  select.value = current;
  $("branch-field").hidden = false;
}

async function load(branch) {
  $("map").dataset.state = "loading";
  const query = branch ? "?" + new URLSearchParams({ branch }) : "";
  const result = await api("GET", "/api/map" + query);
  if (!result.ok) {
    $("map").dataset.state = "error";
    showMessage($("map-error"), errorText(result, "无法读取地图数据"));
    return;
  }
  showMessage($("map-error"), "");
  const data = result.data;
  page.branch = data.branch;
  page.points = data.points;
  page.area = data.area;
  page.byId = new Map(data.points.map((p) => [p.customer_id, p]));
  if (branch) history.replaceState(null, "", "?" + new URLSearchParams({ branch }));
  showBranches(data.branches, data.branch.id);
  if (data.scope === "mine") $("scope").textContent = "分配给我的线索，按县区分布 · My leads on the map";
  const unplaced = data.unplaced.length;
  $("unplaced").hidden = !unplaced;
  $("unplaced").textContent = unplaced
    ? `另有 ${unplaced} 位客户的地址和地区无法定位到县区：` + data.unplaced.map((u) => u.name).join("、") : "";
  const area = data.area_customers;
  $("area-capped").hidden = !(area && area.total > area.shown);
  $("area-capped").textContent = area && area.total > area.shown
    ? `本区域共有 ${area.total.toLocaleString("zh-CN")} 位可营销客户，地图只显示其中 ${area.shown.toLocaleString("zh-CN")} 位（线索全部显示）。`
    : "";
  closePanel();
  drawFilters();
  drawMap();
}

function addNavLink() {
  const nav = document.querySelector("header.top nav");
  if (!nav) return;
  for (const link of nav.querySelectorAll("a")) link.removeAttribute("aria-current");
  const link = el("a", null, "营销地图");
  link.href = "/workspace/map";
  link.setAttribute("aria-current", "page");
  nav.append(link);
}

const me = await startLeads("/workspace/map");
if (me) {
  page.me = me;
  addNavLink();
  try {
    const response = await fetch(GEOJSON, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const geojson = await response.json();
    page.bounds = boundsOf(geojson);
    echarts.registerMap(MAP_NAME, geojson);
    page.chart = echarts.init($("map"), null, { renderer: "canvas" });
    page.chart.on("click", (params) => {
      if (params.componentType === "series" && params.data) openCustomer(params.data.customer_id);
    });
    window.addEventListener("resize", () => page.chart.resize());
    $("overdue-only").addEventListener("change", () => {
      page.overdueOnly = $("overdue-only").checked;
      redraw();
    });
    $("panel-close").addEventListener("click", closePanel);
    load(new URLSearchParams(location.search).get("branch"));
  } catch (error) {
    $("map").dataset.state = "error";
    showMessage($("map-error"), `无法加载县区边界（${error.message}）`);
  }
}
