// The post-loan alerts: an account manager's own customers' (a branch manager's whole branch,
// escalated ones highlighted first), each acknowledged here with a note.
import { $, api, el, errorText, showMessage, when } from "/workspace/static/common.js";
import { branchName, serverNow, span, startLeads, syncClock } from "/workspace/leads-assets/leads_common.js";

const STATUS = { open: "待确认", acknowledged: "已确认" };
const page = { me: null, alerts: [], cells: [], managers: new Map(), branchesShown: false };

function statusBadge(alert) {
  const badge = el("span", "badge alert-" + alert.status, STATUS[alert.status] || alert.status);
  badge.dataset.testid = "alert-status";
  badge.dataset.status = alert.status;
  return badge;
}

function person(account) {
  return account ? account.name || "#" + account.id : "—";
}

/** How long is left to acknowledge, or how late it is (on the server's clock). */
function deadline(alert) {
  if (!alert.is_open) return el("span", "muted", "—");
  const left = Date.parse(alert.due_at) - serverNow();
  const late = left < 0;
  const node = el("span", "due" + (late ? " overdue" : left < 6 * 3600 * 1000 ? " soon" : ""),
    late ? `逾期 ${span(left)}` : `剩余 ${span(left)}`);
  node.title = `确认截止 ${when(alert.due_at)}`;
  node.dataset.testid = "alert-deadline";
  return node;
}

// ------------------------------------------------------------------ giving alerts out
async function managersOf(branchId) {
  if (!page.managers.has(branchId)) {
    const result = await api("GET", `/api/branches/${encodeURIComponent(branchId)}/managers`);
    page.managers.set(branchId, result.ok ? result.data.managers : null);
  }
  return page.managers.get(branchId);
}

function ownerCell(alert, managers) {
  const td = el("td");
  td.append(el("div", null, branchName(alert.branch)));
  if (alert.is_open && managers) {
    const select = el("select");
    select.dataset.testid = "alert-assign";
    select.setAttribute("aria-label", `预警 ${alert.id} 的客户经理`);
    if (!alert.manager) {
      const none = el("option", null, "未分配");
      none.value = "";
      none.disabled = true;
      select.append(none);
    }
    for (const manager of managers) {
      const option = el("option", null, manager.name);
      option.value = manager.id;
      select.append(option);
    }
    select.value = alert.manager ? String(alert.manager.id) : "";
    select.addEventListener("change", async () => {
      select.disabled = true;
      const result = await api("POST", `/api/alerts/${alert.id}/assign`, { manager_id: Number(select.value) });
      select.disabled = false;
      if (!result.ok) {
        showMessage($("action-error"), "分配未成功：" + errorText(result));
        select.value = alert.manager ? String(alert.manager.id) : "";
        return;
      }
      showMessage($("action-error"), "");
      load();
    });
    td.append(select);
  } else {
    td.append(el("div", alert.manager ? "small" : "muted small", alert.manager ? "客户经理 " + person(alert.manager) : "未分配客户经理"));
  }
  const why = el("div", "muted small", alert.owner_reason);
  td.append(why);
  return td;
}

// ------------------------------------------------------------------ acknowledging
function ackForm(alert, tr) {
  const row = el("tr", "ack-row");
  row.dataset.testid = "ack-row";
  const td = el("td");
  td.colSpan = 5;
  const form = el("form", "ack-form");
  const label = el("label", null, "处理说明（必填：已联系客户、核实情况、后续安排等）");
  const note = el("textarea");
  note.rows = 3;
  note.maxLength = 2000;
  note.id = `ack-note-${alert.id}`;
  label.htmlFor = note.id;
  note.dataset.testid = "ack-note";
  const error = el("div", "error");
  error.setAttribute("role", "alert");
  error.dataset.testid = "ack-error";
  error.hidden = true;
  const submit = el("button", null, "提交确认");
  submit.type = "submit";
  submit.dataset.testid = "ack-submit";
  const cancel = el("button", "ghost", "取消");
  cancel.type = "button";
  cancel.addEventListener("click", () => row.remove());
  const buttons = el("div", "buttons");
  buttons.append(submit, cancel);
  form.append(label, note, error, buttons);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!note.value.trim()) {
      showMessage(error, "请填写处理说明后再确认");
      note.focus();
      return;
    }
    submit.disabled = true;
    const result = await api("POST", `/api/alerts/${alert.id}/acknowledge`, { note: note.value.trim() });
    submit.disabled = false;
    if (!result.ok) {
      const why = result.status === 409 ? "该预警已被确认" : errorText(result, "确认未成功");
      showMessage(error, why);
      return;
    }
    load();
  });
  td.append(form);
  row.append(td);
  tr.after(row);
  note.focus();
}

function actionCell(alert, tr) {
  const td = el("td");
  td.append(statusBadge(alert));
  if (alert.escalated_at) {
    const up = el("span", "badge escalated", "已升级");
    up.dataset.testid = "escalated";
    up.title = `逾期未确认，${when(alert.escalated_at)} 升级至支行经理` +
      (alert.escalated_to.length ? "：" + alert.escalated_to.map(person).join("、") : "");
    td.append(" ", up);
  }
  if (alert.is_open) {
    const open = el("button", "ghost", "确认");
    open.type = "button";
    open.dataset.testid = "ack-open";
    open.style.marginLeft = "8px";
    open.addEventListener("click", () => {
      if (tr.nextElementSibling && tr.nextElementSibling.classList.contains("ack-row")) return;
      ackForm(alert, tr);
    });
    td.append(open);
  } else {
    const done = el("div", "ack-done small");
    done.dataset.testid = "alert-ack";
    done.append(el("div", "muted", `${person(alert.acknowledged_by)} 于 ${when(alert.acknowledged_at)} 确认`),
      el("div", "note-text", alert.note || ""));
    td.append(done);
  }
  return td;
}

// ------------------------------------------------------------------ the list
function row(alert, managers) {
  const tr = el("tr", alert.is_open && alert.escalated_at ? "escalated" : null);
  tr.dataset.testid = "alert-row";
  tr.dataset.alertId = alert.id;
  const customer = el("td");
  customer.append(el("div", null, `${alert.customer.name} ${alert.customer.phone}`),
    el("div", "muted small", `${alert.customer.region} · ${alert.customer.id}`));
  const summary = el("td", "summary");
  const rule = el("span", "badge rule", alert.rule_name);
  rule.dataset.testid = "alert-rule";
  rule.dataset.rule = alert.rule;
  const text = el("div", "text", alert.summary);
  text.dataset.testid = "alert-summary";
  summary.append(rule, " ", el("span", "muted small", alert.period), text,
    el("div", "muted small", `${when(alert.raised_at)} 触发`));
  const due = el("td");
  tr.append(customer, summary, ownerCell(alert, managers), due, actionCell(alert, tr));
  page.cells.push({ alert, due });
  return tr;
}

function tick() {
  for (const { alert, due } of page.cells) due.replaceChildren(deadline(alert));
}

function showBranches(branches) {
  if (page.branchesShown || branches.length < 2) return;
  page.branchesShown = true;
  const select = $("branch-filter");
  const all = el("option", null, "全部支行");
  all.value = "";
  select.replaceChildren(all, ...branches.map((branch) => {
    const option = el("option", null, `${branch.name}（${branch.id}）`);
    option.value = branch.id;
    return option;
  }));
  $("branch-field").hidden = false;
}

async function load() {
  const query = new URLSearchParams({ status: $("status-filter").value });
  if ($("branch-filter").value) query.set("branch", $("branch-filter").value);
  history.replaceState(null, "", "?" + query);
  const result = await api("GET", "/api/alerts?" + query);
  if (!result.ok) {
    showMessage($("list-error"), errorText(result, "无法读取预警"));
    return;
  }
  showMessage($("list-error"), "");
  syncClock(result.data.now);
  showBranches(result.data.branches);
  const alerts = result.data.alerts;
  const manage = page.me.can("manage_branch_alerts") && page.me.can("manage_branch_leads");
  const branches = [...new Set(alerts.filter((a) => a.is_open && a.branch).map((a) => a.branch.id))];
  const managers = new Map(manage
    ? await Promise.all(branches.map(async (id) => [id, await managersOf(id)])) : []);
  page.cells = [];
  $("alerts").replaceChildren(...alerts.map((alert) => row(alert, alert.branch && managers.get(alert.branch.id))));
  tick();
  $("no-alerts").hidden = alerts.length > 0;
  const counts = result.data.counts;
  $("list-count").textContent = `${counts.shown} 条` + (counts.overdue ? ` · ${counts.overdue} 条逾期` : "") +
    " · escalated and soonest due first";
  showMessage($("escalated-note"), counts.escalated && page.me.can("manage_branch_alerts")
    ? `有 ${counts.escalated} 条预警逾期未确认，已升级给您，请督促处理或直接确认。` : "");
}

const me = await startLeads("/workspace/alerts");
if (me) {
  page.me = me;
  if (me.role === "account_manager") $("scope").textContent = "我名下客户的贷后预警，请在时限内确认并填写处理说明 · My customers' alerts";
  const query = new URLSearchParams(location.search);
  if (["open", "acknowledged", "all"].includes(query.get("status"))) $("status-filter").value = query.get("status");
  if (query.get("branch")) {
    const asked = el("option", null, query.get("branch"));
    asked.value = query.get("branch");
    $("branch-filter").append(asked);
    $("branch-filter").value = asked.value;
  }
  $("status-filter").addEventListener("change", load);
  $("branch-filter").addEventListener("change", load);
  setInterval(tick, 30 * 1000);
  load();
}
