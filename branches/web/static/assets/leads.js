// The leads list: the branch's leads (an account manager's own) by what is due soonest, with
// live countdowns; for a branch manager also the scorecard and who each lead is given to.
import { $, api, el, errorText, showMessage, when } from "/workspace/static/common.js";
import {
  LEAD_OUTCOMES, SOURCES, amount, branchName, countdown, deadline, leadBadge, rate, startLeads,
  syncClock,
} from "./leads_common.js";

const page = { me: null, leads: [], managers: new Map(), cells: [], branchesShown: false };

// ------------------------------------------------------------------ the scorecard
function scorecardBranch() {
  if (!page.me.can("manage_branch_leads")) return null;
  return $("branch-filter").value || page.me.branch_id || null;
}

async function loadScorecard() {
  const branch = scorecardBranch();
  $("scorecard-card").hidden = !branch;
  if (!branch) return;
  const result = await api("GET", `/api/branches/${encodeURIComponent(branch)}/scorecard`);
  if (!result.ok) {
    showMessage($("suspended"), errorText(result, "无法读取支行考核"));
    return;
  }
  const card = result.data;
  $("scorecard-title").firstChild.textContent = `${branchName(card.branch)} 考核 `;
  $("scorecard-window").textContent =
    `近 ${card.window_days} 天：${when(card.window_start)} 至 ${when(card.window_end)}`;
  $("claim-rate").textContent = rate(card.claimed_on_time_rate);
  $("claim-detail").textContent = `${card.claims_on_time} / ${card.claims_judged} 笔准时`;
  $("verify-rate").textContent = rate(card.verified_on_time_rate);
  $("verify-detail").textContent = `${card.verifications_on_time} / ${card.verifications_judged} 笔准时`;
  $("conversion-rate").textContent = rate(card.conversion_rate);
  $("conversion-detail").textContent = `${card.applied} / ${card.finished} 笔已申请`;
  $("card-leads").textContent = card.leads;
  $("card-rerouted").textContent = `其中 ${card.rerouted_away} 笔被改派`;
  const low = (value, minimum, judged) =>
    value !== null && judged >= card.min_judged && value < minimum;
  $("stat-claim").classList.toggle("bad", low(card.claimed_on_time_rate, card.min_claim_rate, card.claims_judged));
  $("stat-verify").classList.toggle("bad",
    low(card.verified_on_time_rate, card.min_verify_rate, card.verifications_judged));
  $("scorecard-rule").textContent = `准时认领率或准时核实率低于 ${rate(card.min_claim_rate)}` +
    `（至少 ${card.min_judged} 笔已考核）时暂停向本支行派发新线索，回升后自动恢复。`;
  showMessage($("suspended"), card.suspended ? "暂停派单：" + card.suspended : "");
}

// ------------------------------------------------------------------ giving leads out
async function managersOf(branchId) {
  if (!page.managers.has(branchId)) {
    const result = await api("GET", `/api/branches/${encodeURIComponent(branchId)}/managers`);
    page.managers.set(branchId, result.ok ? result.data.managers : null);
  }
  return page.managers.get(branchId);
}

function managerCell(lead, managers) {
  const td = el("td");
  const current = lead.manager ? lead.manager.name || "#" + lead.manager.id : "未分配";
  if (!lead.is_open || !managers) {
    td.append(el("span", lead.manager ? null : "muted", current));
    return td;
  }
  const select = el("select");
  select.dataset.testid = "assign";
  select.setAttribute("aria-label", `线索 ${lead.id} 的客户经理`);
  if (!lead.manager) {
    const none = el("option", null, "未分配");
    none.value = "";
    none.disabled = true;
    select.append(none);
  }
  for (const manager of managers) {
    const option = el("option", null, `${manager.name}（在办 ${manager.open_leads}）`);
    option.value = manager.id;
    select.append(option);
  }
  select.value = lead.manager ? String(lead.manager.id) : "";
  select.addEventListener("change", async () => {
    select.disabled = true;
    const result = await api("POST", `/api/leads/${lead.id}/assign`, { manager_id: Number(select.value) });
    select.disabled = false;
    if (!result.ok) {
      select.value = lead.manager ? String(lead.manager.id) : "";
      showMessage($("assign-error"), "分配未成功：" + errorText(result));
      return;
    }
    showMessage($("assign-error"), "");
    page.managers.clear();  // their loads changed
    load();
  });
  td.append(select);
  return td;
}

// ------------------------------------------------------------------ the list
function row(lead, managers) {
  const tr = el("tr");
  tr.dataset.testid = "lead-row";
  tr.dataset.leadId = lead.id;
  const customer = el("td");
  const link = el("a", null, `${lead.customer.name} ${lead.customer.phone}`);
  link.href = "/workspace/leads/" + lead.id;
  customer.append(link, el("div", "muted small", `${lead.customer.region} · ${lead.customer.id}`));
  const product = el("td", null, lead.product || "—");
  product.append(el("div", "muted small", amount(lead.amount_yuan)));
  const status = el("td");
  status.append(leadBadge(lead.status));
  if (lead.outcome && !lead.is_open) status.append(" ", el("span", "small", LEAD_OUTCOMES[lead.outcome] || lead.outcome));
  const due = el("td");
  const assigned = el("td", "num", when(lead.assigned_at));
  if (lead.reroutes) assigned.append(el("div", "muted small", `改派 ${lead.reroutes} 次 · ${branchName(lead.branch)}`));
  else if (page.branchesShown) assigned.append(el("div", "muted small", branchName(lead.branch)));
  tr.append(customer, product, el("td", null, SOURCES[lead.source] || lead.source), status,
    managerCell(lead, managers), due, assigned);
  page.cells.push({ lead, tr, due });
  return tr;
}

function tick() {
  for (const { lead, tr, due } of page.cells) {
    due.replaceChildren(countdown(lead));
    const next = deadline(lead);
    tr.classList.toggle("overdue", Boolean(next && next.overdue));
  }
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
  select.value = new URLSearchParams(location.search).get("branch") || "";
  $("branch-field").hidden = false;
}

async function load() {
  const query = new URLSearchParams({ status: $("status-filter").value });
  if ($("branch-filter").value) query.set("branch", $("branch-filter").value);
  history.replaceState(null, "", "?" + query);
  const result = await api("GET", "/api/leads?" + query);
  if (!result.ok) {
    showMessage($("list-error"), errorText(result, "无法读取线索"));
    return;
  }
  showMessage($("list-error"), "");
  syncClock(result.data.now);
  showBranches(result.data.branches);
  const leads = result.data.leads;
  const manage = page.me.can("manage_branch_leads");
  const branches = [...new Set(leads.filter((lead) => lead.is_open).map((lead) => lead.branch.id))];
  const managers = new Map(manage
    ? await Promise.all(branches.map(async (id) => [id, await managersOf(id)])) : []);
  page.cells = [];
  $("leads").replaceChildren(...leads.map((lead) => row(lead, managers.get(lead.branch.id))));
  tick();
  $("no-leads").hidden = leads.length > 0;
  const overdue = leads.filter((lead) => lead.overdue).length;
  $("list-count").textContent = `${leads.length} 条` + (overdue ? ` · ${overdue} 条逾期` : "") + " · soonest due first";
  loadScorecard();
}

const me = await startLeads("/workspace/leads");
if (me) {
  page.me = me;
  if (me.role === "account_manager") $("scope").textContent = "分配给我的线索及办理时限 · My leads";
  const query = new URLSearchParams(location.search);
  if (["open", "closed", "all"].includes(query.get("status"))) $("status-filter").value = query.get("status");
  if (query.get("branch")) {  // before the list names the branches: keep the one asked for
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
