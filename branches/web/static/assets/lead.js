// One lead: the customer (masked; the full number on request, audited), the offer and where
// the lead came from, its steps with a note, its history and each branch's time with it.
import { $, api, el, errorText, showMessage, when } from "/workspace/static/common.js";
import {
  END_REASONS, FINAL, LEAD_OUTCOMES, LEAD_STATUS, MISSED, SOURCES, amount, branchName, countdown,
  leadBadge, startLeads, syncClock,
} from "./leads_common.js";

const KINDS = {
  assigned: "分派至支行", manager: "交给客户经理", claimed: "认领", contacted: "已联系客户",
  visited: "已上门", verified: "完成核实", outcome: "结案", rerouted: "改派", note: "备注",
};
const CLAIMABLE = ["assigned", "rerouted"];
const WORKING = ["claimed", "contacted", "verified"];
const leadId = location.pathname.split("/").pop();
const path = "/api/leads/" + encodeURIComponent(leadId);
const page = { me: null, lead: null, busy: false };

function facts(node, rows) {
  node.replaceChildren(...rows.flatMap(([key, value]) => {
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value === null || value === undefined || value === "" ? "—" : value;
    return [el("dt", null, key), dd];
  }));
}

function person(account) {
  return account ? account.name || "#" + account.id : null;
}

// ------------------------------------------------------------------ the steps
function buttons() {
  const lead = page.lead;
  const claimable = CLAIMABLE.includes(lead.status);
  const working = WORKING.includes(lead.status);
  for (const button of $("steps").querySelectorAll("button")) {
    const step = button.dataset.step;
    button.hidden = step === "claim" ? !claimable : !working;
    button.disabled = page.busy || (step === "verified" && Boolean(lead.verified_at));
    button.title = step === "verified" && lead.verified_at ? "已核实" : "";
  }
  $("steps").hidden = !claimable && !working;
  $("step-note-field").hidden = !claimable && !working;
}

async function step(name) {
  if (FINAL.includes(name) &&
      !window.confirm(`确定记录为“${LEAD_OUTCOMES[name]}”并结案吗？结案后不能再办理。`)) return;
  const note = $("step-note").value.trim();
  page.busy = true;
  buttons();
  showMessage($("step-error"), "");
  let result = name === "claim"
    ? await api("POST", `${path}/claim`)
    : await api("POST", `${path}/steps`, { outcome: name, note });
  if (result.ok && name === "claim" && note) result = await api("POST", `${path}/notes`, { note });
  page.busy = false;
  if (result.ok) {
    $("step-note").value = "";
  } else {
    showMessage($("step-error"), "操作未完成：" + errorText(result));
  }
  await load();
}

// ------------------------------------------------------------------ the customer
async function showContact() {
  $("show-contact").disabled = true;
  const result = await api("GET", `${path}/contact`);
  $("show-contact").disabled = false;
  if (!result.ok) {
    showMessage($("contact-error"), errorText(result, "无法查看完整号码"));
    return;
  }
  showMessage($("contact-error"), "");
  const phone = el("a", null, result.data.phone);
  phone.href = "tel:" + result.data.phone;
  phone.dataset.testid = "full-phone";
  facts($("contact"), [["姓名", result.data.name], ["手机号", phone]]);
  $("contact-full").hidden = false;
  $("show-contact").hidden = true;
}

// ------------------------------------------------------------------ history
function eventTitle(event) {
  switch (event.kind) {
    case "assigned": return `分派至 ${branchName(event.to_branch)}`;
    case "manager": return `交给客户经理 ${person(event.manager) || "—"}`;
    case "claimed": return `${branchName(event.to_branch)} 认领`;
    case "outcome": return `结案：${LEAD_OUTCOMES[event.outcome] || event.outcome}`;
    case "rerouted":
      return `${MISSED[event.missed] || "改派"}：${branchName(event.from_branch)} → ${branchName(event.to_branch)}`;
    default: return KINDS[event.kind] || event.kind;
  }
}

function historyItem(event) {
  const li = el("li", "ev-" + event.kind);
  li.dataset.testid = "event";
  li.dataset.kind = event.kind;
  const by = event.by ? person(event.by) : event.actor.startsWith("system") ? "系统" : event.actor;
  li.append(el("div", "what", eventTitle(event)), el("div", "when", `${when(event.at)} · ${by}`));
  if (event.note) li.append(el("div", "note-text", event.note));
  else if (!["contacted", "visited", "verified", "claimed"].includes(event.kind)) {
    li.append(el("div", "muted small", event.reason));
  }
  return li;
}

function periodRow(period) {
  const tr = el("tr");
  const ended = period.ended_at
    ? `${when(period.ended_at)} ${END_REASONS[period.end_reason] || period.end_reason}`
      + (period.outcome && period.end_reason === "closed" ? `（${LEAD_OUTCOMES[period.outcome]}）` : "")
    : "办理中";
  tr.append(el("td", null, branchName(period.branch) + (period.fallback ? "（兜底）" : "")),
    el("td", "n", period.distance_km === null ? "—" : period.distance_km + " km"),
    el("td", "num", when(period.assigned_at)), el("td", "num", when(period.claimed_at)),
    el("td", "num", when(period.verified_at)), el("td", null, ended));
  return tr;
}

// ------------------------------------------------------------------ the page
function show(lead) {
  page.lead = lead;
  syncClock(lead.now);
  document.title = `线索 #${lead.id} · 支行线索工作台`;
  $("crumb").textContent = `#${lead.id}`;
  $("lead-title").textContent = `${lead.customer.name} · ${lead.product || "线索"} #${lead.id}`;
  $("lead-sub").textContent = `${branchName(lead.branch)} · 客户经理 ${person(lead.manager) || "未分配"}`;
  $("status-badge").replaceChildren(leadBadge(lead.status, true));
  $("deadline").replaceChildren(countdown(lead));
  $("closed-line").hidden = lead.is_open;
  $("closed-line").textContent = lead.is_open ? "" :
    `${when(lead.closed_at)} 结案：${LEAD_OUTCOMES[lead.outcome] || lead.outcome || "—"}`;
  buttons();

  facts($("customer"), [["客户", lead.customer.name], ["手机号", lead.customer.phone],
    ["地区", lead.customer.region], ["客户编号", lead.customer.id]]);
  $("show-contact").hidden = !page.me.can("view_unmasked") || !$("contact-full").hidden;

  const source = el("span", null, SOURCES[lead.source] || lead.source);
  source.append(el("div", "muted small", lead.source_ref));
  facts($("offer"), [
    ["产品", lead.product], ["额度", amount(lead.amount_yuan)], ["来源", source],
    ["状态", LEAD_STATUS[lead.status] || lead.status], ["支行", branchName(lead.branch)],
    ["客户经理", person(lead.manager) || "未分配"], ["分派时间", when(lead.assigned_at)],
    ["认领时间", when(lead.claimed_at)], ["联系时间", when(lead.contacted_at)],
    ["核实时间", when(lead.verified_at)], ["结案时间", when(lead.closed_at)],
    ["改派次数", lead.reroutes], ...(lead.overdue ? [["逾期", lead.overdue]] : []),
  ]);

  $("history").replaceChildren(...lead.events.map(historyItem));
  $("periods").replaceChildren(...lead.periods.map(periodRow));
  const notes = lead.events.filter((event) => event.note).reverse();
  $("notes").replaceChildren(...(notes.length ? notes.map((event) => {
    const li = el("li");
    li.dataset.testid = "note";
    li.append(el("div", "muted small", `${when(event.at)} · ${person(event.by) || event.actor}`),
      el("div", "note-text", event.note));
    return li;
  }) : [el("li", "muted", "暂无备注")]));
}

// ------------------------------------------------------------------ one-click calls (一键外呼)
const CALL_STATES = {
  requested: "正在发起…", ringing_manager: "正在呼叫您的手机，请接听", ringing_customer: "已接通您，正在呼叫客户",
  bridged: "通话中（录音）", ended: "通话已结束", failed: "未能接通",
};
const CALL_FAILURES = {
  manager_no_answer: "您的手机无人接听", manager_busy: "您的手机占线", manager_hung_up: "您已挂断",
  customer_no_answer: "客户无人接听", customer_busy: "客户占线", customer_failed: "客户号码无法接通",
  manager_failed: "您的号码无法接通", no_line: "外呼线路不可用", not_placed: "外呼线路繁忙，未能发起",
  interrupted: "通话中断", do_not_contact: "客户已要求不再联系", outside_window: "不在外呼时段",
};

function callText(call) {
  let text = CALL_STATES[call.status] || call.status;
  if (call.status === "ended" && call.duration_s !== null) text += `，通话 ${Math.round(call.duration_s)} 秒`;
  if (call.failure) text += `：${CALL_FAILURES[call.failure] || call.failure}`;
  return text;
}

async function followCall(callId) {
  for (;;) {
    const result = await api("GET", `/api/click-calls/${callId}`);
    if (!result.ok) {
      $("click-call-state").textContent = errorText(result, "无法读取通话状态");
      break;
    }
    $("click-call-state").textContent = callText(result.data);
    if (!result.data.live) break;
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  $("click-call").disabled = false;
  await load();
}

async function clickCall() {
  $("click-call").disabled = true;
  $("click-call-state").textContent = "";
  const result = await api("POST", `${path}/call`);
  if (!result.ok) {
    $("click-call").disabled = false;
    $("click-call-state").textContent = "未能发起外呼：" + errorText(result);
    return;
  }
  $("click-call-state").textContent = callText(result.data);
  await followCall(result.data.id);
}

// ------------------------------------------------------------------ moving the lead
function showReroute(lead) {
  const open = !["closed"].includes(lead.status) && Array.isArray(lead.reroute_to);
  $("reroute-card").hidden = !open;
  if (!open) return;
  const select = $("reroute-branch");
  const chosen = select.value;
  select.replaceChildren(el("option", null, "就近支行（系统按距离选择）"),
    ...lead.reroute_to.map((branch) => {
      const option = el("option", null, branch.name);
      option.value = branch.id;
      return option;
    }));
  select.firstChild.value = "";
  select.value = lead.reroute_to.some((branch) => branch.id === chosen) ? chosen : "";
}

async function reroute(event) {
  event.preventDefault();
  const reason = $("reroute-reason").value.trim();
  if (!reason) {
    showMessage($("reroute-error"), "请填写改派原因");
    return;
  }
  const branch = $("reroute-branch").value || null;
  const target = branch ? $("reroute-branch").selectedOptions[0].textContent : "就近支行";
  if (!window.confirm(`确定将此线索改派至${target}吗？本支行将不再跟进。`)) return;
  $("reroute-submit").disabled = true;
  const result = await api("POST", `${path}/reroute`, { reason, branch });
  $("reroute-submit").disabled = false;
  if (!result.ok) {
    showMessage($("reroute-error"), "未能改派：" + errorText(result));
    return;
  }
  showMessage($("reroute-error"), "");
  $("reroute-reason").value = "";
  await load();
  if ($("lead-body").hidden) {  // no longer within this manager's reach
    const to = result.data.branch ? result.data.branch.name || result.data.branch.id : "其他支行";
    showMessage($("load-error"), `线索已改派至${to}，本支行不再跟进。`);
  }
}

async function load() {
  const result = await api("GET", path);
  if (!result.ok) {
    const text = result.status === 404 ? "没有这条线索" : errorText(result, "无法读取线索");
    showMessage($("load-error"), text);
    $("lead-body").hidden = true;
    return;
  }
  showMessage($("load-error"), "");
  $("lead-body").hidden = false;
  show(result.data);
  showReroute(result.data);
  $("click-call-row").hidden = !WORKING.includes(result.data.status);
}

const me = await startLeads("/workspace/leads");
if (me) {
  page.me = me;
  for (const button of $("steps").querySelectorAll("button")) {
    button.addEventListener("click", () => step(button.dataset.step));
  }
  $("show-contact").addEventListener("click", showContact);
  $("reroute-form").addEventListener("submit", reroute);
  $("click-call").addEventListener("click", clickCall);
  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const note = $("note-text").value.trim();
    if (!note) {
      showMessage($("note-error"), "请输入备注内容");
      return;
    }
    $("note-submit").disabled = true;
    const result = await api("POST", `${path}/notes`, { note });
    $("note-submit").disabled = false;
    if (!result.ok) {
      showMessage($("note-error"), "备注未保存：" + errorText(result));
      return;
    }
    showMessage($("note-error"), "");
    $("note-text").value = "";
    await load();
  });
  setInterval(() => { if (page.lead) $("deadline").replaceChildren(countdown(page.lead)); }, 30 * 1000);
  await load();
}
