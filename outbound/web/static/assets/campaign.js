// A campaign's live page: status, counters and funnel PUSHED by /ws/campaigns/{id} (the page
// never polls), the lifecycle buttons the role may use, the settings and the audit trail.
import {
  $, ACTIONS, DROP_OFFS, OUTCOMES, ROLES, STAGES, STATUS, TRANSPORTS,
  api, duration, el, errorText, percent, showMessage, socketUrl, start, statusBadge, total, when,
} from "./common.js";
import { CHANNELS, PlanEditor, isPlanError, loadPlanOptions, planView } from "./plan_editor.js";

const COMMANDS = {
  start: { permission: "manage_campaigns", from: ["draft"], done: "已启动" },
  pause: { permission: "pause_campaigns", from: ["running"], done: "已暂停" },
  resume: { permission: "manage_campaigns", from: ["paused"], done: "已恢复" },
  stop: { permission: "manage_campaigns", from: ["draft", "running", "paused"], done: "已停止" },
};
const WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
const campaignId = decodeURIComponent(location.pathname.split("/").pop());
const path = "/api/campaigns/" + encodeURIComponent(campaignId);
const page = { me: null, status: null, socket: null, retries: 0, timer: null, busy: false };
/** The contact plan's card: its options, the draft's editor (and the plan as last saved, as
 * the editor gives it back), or the started campaign's view and when it was last read. */
const plan = {
  shown: false, options: null, editor: null, stored: null, baseline: null, planned: false,
  targets: null, timer: null, reading: false,
};

// ------------------------------------------------------------------ live status
function showStatus(status) {
  if (status === page.status) return;
  const first = page.status === null;
  page.status = status;
  $("status-badge").replaceChildren(statusBadge(status, true));
  buttons();
  if (!first) {
    loadAudit();  // somebody (maybe elsewhere) moved it: the trail has a new entry
    if (plan.shown) drawPlan(plan.stored);  // a draft no longer: its plan read-only, re-read
  }
}

function showCounters(counters, inFlight, agentsFree) {
  const targets = counters.targets || {};
  const finished = total(counters.outcomes);
  $("stat-targets").textContent = targets.total || 0;
  $("stat-pending").textContent = targets.pending || 0;
  $("stat-dialled").textContent = finished + inFlight;
  $("stat-in-flight").textContent = inFlight;
  $("stat-finished").textContent = finished;
  $("stat-done").textContent = targets.done || 0;
  $("stat-agents").textContent = agentsFree === null ? "—" : agentsFree;
  $("next-due").textContent = counters.next_due ? "下一次到期拨打：" + when(counters.next_due) : "";
  const outcomes = Object.entries(counters.outcomes || {}).filter(([, n]) => n > 0);
  $("outcomes").replaceChildren(...(outcomes.length
    ? outcomes.map(([name, n]) => chip(OUTCOMES[name] || name, n, "outcome-" + name))
    : [el("span", "muted", "暂无")]));
}

function chip(label, count, testid) {
  const node = el("span", "chip", `${label} ${count}`);
  node.dataset.testid = testid;
  return node;
}

const funnelRows = new Map();  // stage -> {bar, count, share, track}: reused so bars animate

function funnelRow(key, label, english) {
  const name = el("div", "label", label);
  name.append(el("span", "en", english));
  const track = el("div", "track");
  track.setAttribute("role", "img");
  const bar = el("div", "bar");
  bar.dataset.testid = "funnel-bar-" + key;
  track.append(bar);
  const value = el("div", "value");
  const count = el("span", null, "0");
  count.dataset.testid = "funnel-" + key;
  const share = el("span", "pct");
  value.append(count, share);
  $("funnel").append(name, track, value);
  funnelRows.set(key, { label, bar, count, share, track });
}

function showFunnel(funnel) {
  const all = funnel.all || { stages: {}, drop_offs: {} };
  const base = all.stages.dialed || 0;
  if (!funnelRows.size) for (const [key, label, english] of STAGES) funnelRow(key, label, english);
  for (const [key, row] of funnelRows) {
    const count = all.stages[key] || 0;
    row.bar.style.width = (base ? Math.min(100, (100 * count) / base) : 0) + "%";
    row.count.textContent = count;
    row.share.textContent = key === "dialed" ? "位客户" : percent(count, base);
    row.track.setAttribute("aria-label", `${row.label} ${count}`);
  }
  const drops = Object.entries(all.drop_offs || {}).filter(([, n]) => n > 0);
  $("drop-offs").replaceChildren(...(drops.length
    ? drops.map(([name, n]) => chip(DROP_OFFS[name] || name, n, "drop-" + name))
    : [el("span", "muted", "暂无")]));
  const variants = Object.keys(funnel).filter((name) => name !== "all").sort();
  $("variant-box").hidden = variants.length < 1;
  $("variants").replaceChildren(...variants.map((name) => {
    const counts = funnel[name].stages;
    const tr = el("tr");
    tr.append(el("td", null, "版本 " + name), el("td", "n", counts.dialed), el("td", "n", counts.answered),
      el("td", "n", counts.interested), el("td", "n", counts.transferred),
      el("td", "n", percent(counts.transferred, counts.dialed)));
    return tr;
  }));
}

function apply(frame) {
  showStatus(frame.status);
  showCounters(frame.counters, frame.in_flight, frame.agents_free);
  showFunnel(frame.funnel);
  planMoved(frame.counters.targets);
}

function connect() {
  clearTimeout(page.timer);
  const socket = new WebSocket(socketUrl("/ws/campaigns/" + encodeURIComponent(campaignId)));
  page.socket = socket;
  socket.addEventListener("open", () => {
    page.retries = 0;
    $("conn").textContent = "● 实时 live";
    $("conn").className = "conn live";
  });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "status") apply(frame);
  });
  socket.addEventListener("close", () => {
    if (page.socket !== socket) return;
    $("conn").textContent = "连接中断，正在重连…";
    $("conn").className = "conn down";
    page.retries += 1;
    if (page.retries === 3) api("GET", "/api/staff/me");  // a lapsed session goes to the login page
    page.timer = setTimeout(connect, Math.min(10000, 1000 * page.retries));
  });
}

// ------------------------------------------------------------------ commands
function buttons() {
  for (const [command, rule] of Object.entries(COMMANDS)) {
    const button = $("cmd-" + command);
    button.hidden = !page.me.can(rule.permission);
    button.disabled = page.busy || !rule.from.includes(page.status);
    button.title = button.disabled && !page.busy ? `当前状态（${STATUS[page.status] || page.status}）不能执行此操作` : "";
  }
}

async function command(name) {
  if (name === "stop" && !window.confirm("停止后该活动不再拨打，且不能恢复。确定停止吗？")) return;
  if (name === "start" && planDirty()
      && !window.confirm("联系计划有未保存的修改，启动后按已保存的计划执行。仍要启动吗？")) return;
  page.busy = true;
  buttons();
  showMessage($("command-error"), "");
  const result = await api("POST", `${path}/${name}`);
  page.busy = false;
  if (result.ok) {
    showStatus(result.data.status);
  } else {
    showMessage($("command-error"), "操作未执行：" + errorText(result));
  }
  buttons();
}

// ------------------------------------------------------------------ contact plan
function planEditable() {
  return (page.status === "draft" || page.status === "paused") && page.me.can("manage_campaigns");
}

function planDirty() {
  return Boolean(plan.editor && planEditable() && JSON.stringify(plan.editor.value()) !== plan.baseline);
}

function planState(text, cls) {
  const state = $("plan-state");
  state.textContent = text;
  state.className = "small " + (cls || "muted");
}

/** The editor for a draft (to a manager), else the plan read-only with who is where. */
async function drawPlan(stored) {
  plan.stored = stored;
  plan.planned = Boolean(stored);
  const editing = planEditable();
  $("plan-edit").hidden = !editing;
  $("plan-view").hidden = editing;
  if (editing) {
    $("plan-mode-note").textContent = "草稿：可修改，保存后生效";
    if (!plan.editor) {
      plan.editor = new PlanEditor($("plan-editor"), plan.options);
      plan.editor.onChange(() => {
        if (planDirty()) planState("有未保存的修改", "warn-text");
        else planState("");
      });
    }
    plan.editor.set(stored);
    plan.baseline = JSON.stringify(plan.editor.value());
    return;
  }
  $("plan-mode-note").textContent = page.status === "draft" ? "只读"
    : page.status === "stopped" ? "活动已停止，后续步骤不再执行（只读）" : "活动已启动，计划只读";
  await readPlan();
}

/** Reads the plan and where the customers stand (GET …/plan) into the read-only view. */
async function readPlan() {
  if (plan.reading) return;
  plan.reading = true;
  const result = await api("GET", `${path}/plan`);
  plan.reading = false;
  showMessage($("plan-load-error"), result.ok ? "" : "无法读取联系计划：" + errorText(result));
  if (!result.ok) return;
  plan.planned = Boolean(result.data.plan);
  $("plan-view").replaceChildren(...planView(result.data, plan.options));
}

/** Pushed counters moved: the customers' places in the plan may have too (re-read, at most
 * once a second and a half). */
function planMoved(targets) {
  const seen = JSON.stringify(targets || {});
  if (seen === plan.targets) return;
  const first = plan.targets === null;
  plan.targets = seen;
  if (first || !plan.shown || !plan.planned || planEditable()) return;
  clearTimeout(plan.timer);
  plan.timer = setTimeout(readPlan, 1500);
}

async function savePlan() {
  const value = plan.editor.value();
  plan.editor.showError("");
  $("plan-save").disabled = true;
  planState("正在保存…");
  const result = await api("PATCH", path, { config: { plan: value } });
  $("plan-save").disabled = false;
  if (!result.ok) {  // the reason beside the editor; what the manager chose stays
    const message = errorText(result, "保存失败");
    plan.editor.showError((isPlanError(message) ? "联系计划未通过校验：" : "未能保存：") + message);
    planState("未保存", "warn-text");
    return;
  }
  plan.stored = result.data.config.plan;
  plan.editor.set(plan.stored);
  plan.baseline = JSON.stringify(plan.editor.value());
  planState(plan.stored ? "已保存" : "已保存：仅外呼", "ok-text");
  showSettings(result.data);
  loadAudit();
}

async function showPlan(campaign) {
  if (!campaign.config) return;  // a role that may not see the settings
  $("plan-card").hidden = false;
  const loaded = await loadPlanOptions();
  if (!loaded.ok) {
    showMessage($("plan-load-error"), loaded.message);
    return;
  }
  plan.options = loaded.options;
  plan.shown = true;
  $("plan-save").addEventListener("click", savePlan);
  $("plan-reset").addEventListener("click", () => {
    plan.editor.set(plan.stored);
    planState("");
  });
  await drawPlan(campaign.config.plan || null);
}

// ------------------------------------------------------------------ settings and audit
function showSettings(campaign) {
  const config = campaign.config;
  $("settings-card").hidden = !config;
  if (!config) return;
  const weights = Object.values(config.variants).reduce((a, b) => a + b, 0);
  const rows = [
    ["拨打时间", `${config.window_start} – ${config.window_end}（${config.timezone}）`],
    ["拨打日", config.weekdays.length === 7 ? "每天" : config.weekdays.map((d) => WEEKDAYS[d]).join("、")],
    ["节假日", config.holidays.length ? config.holidays.join("、") : "无"],
    ["最大并发", config.max_concurrency + " 路"],
    ["最多拨打", `每位客户 ${config.max_attempts} 次，每周最多 ${config.max_attempts_per_week} 次`],
    ["最短间隔", duration(config.min_gap_s)],
    ["重试间隔", config.retry_backoff_s.map(duration).join("、")],
    ["话术分流", Object.entries(config.variants)
      .map(([name, w]) => `${name} ${Math.round((1000 * w) / weights) / 10}%`).join("，")],
    ["坐席联动", config.agent_gated ? "是（有空闲坐席才拨打）" : "否"],
    ["语音信箱识别", config.detect_machine ? "开启" : "关闭"],
    ["联系计划", config.plan && Array.isArray(config.plan.steps)
      ? `${config.plan.steps.length} 步：` + config.plan.steps.map((step) => CHANNELS[step.channel] || step.channel).join(" → ")
      : "仅外呼"],
  ];
  if (campaign.transport === "simulated") rows.push(["模拟语速", "× " + config.speed]);
  $("settings").replaceChildren(...rows.flatMap(([key, value]) => [el("dt", null, key), el("dd", null, value)]));
}

function auditDetail(entry) {
  const detail = entry.detail || {};
  if (detail.changes) return "：" + Object.keys(detail.changes).join("、");
  return "";
}

async function loadAudit() {
  if (!page.me.can("view_audit")) return;
  const result = await api("GET", `${path}/audit`);
  if (!result.ok) return;
  $("audit-card").hidden = false;
  $("audit").replaceChildren(...result.data.entries.map((entry) => {
    const tr = el("tr");
    tr.dataset.testid = "audit-row";
    tr.dataset.action = entry.action;
    tr.append(el("td", "muted num", when(entry.at)), el("td", null, entry.actor),
      el("td", null, ROLES[entry.actor_role] || entry.actor_role),
      el("td", null, (ACTIONS[entry.action] || entry.action) + auditDetail(entry)));
    return tr;
  }));
}

function exportLink() {
  const query = new URLSearchParams();
  if ($("export-from").value) query.set("from", $("export-from").value);
  if ($("export-to").value) query.set("to", $("export-to").value);
  const text = query.toString();
  $("export-link").href = `${path}/attempts.csv` + (text ? "?" + text : "");
}

// ------------------------------------------------------------------ start
page.me = await start("/workspace");
if (page.me) {
  const result = await api("GET", path);
  if (!result.ok) {
    showMessage($("load-error"), result.status === 404 ? `没有编号为 ${campaignId} 的活动` : errorText(result));
  } else {
    const campaign = result.data;
    document.title = `${campaign.name} · 营销活动工作台`;
    $("campaign-name").textContent = campaign.name;
    $("crumb").textContent = campaign.name;
    const chosen = [campaign.product, campaign.segment].filter(Boolean).join(" / ") || "指定客户";
    $("campaign-sub").textContent =
      `编号 ${campaign.id} · ${TRANSPORTS[campaign.transport] || campaign.transport} · ${chosen} · 创建于 ${when(campaign.created_at)}`;
    $("report-link").href = `${path}/report`;
    exportLink();
    $("export-from").addEventListener("change", exportLink);
    $("export-to").addEventListener("change", exportLink);
    for (const name of Object.keys(COMMANDS)) {
      $("cmd-" + name).addEventListener("click", () => command(name));
    }
    showSettings(campaign);
    apply({ ...campaign, in_flight: campaign.counters.in_flight, agents_free: null });
    $("campaign-body").hidden = false;
    loadAudit();
    connect();
    showPlan(campaign);
  }
}
