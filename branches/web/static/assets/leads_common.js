// What the branch pages share: the leads' Chinese names, deadline countdowns on the server's
// clock, and the 线索 link in the workspace header (which /workspace/static/common.js draws).
import { el, start, when } from "/workspace/static/common.js";

export const LEAD_STATUS = {
  assigned: "待认领", rerouted: "改派待认领", claimed: "已认领", contacted: "已联系",
  verified: "已核实", closed: "已结案",
};
export const LEAD_OUTCOMES = {
  contacted: "已联系", visited: "已上门", verified: "已核实", applied: "已申请", declined: "已拒绝",
  unreachable: "联系不上",
};
export const FINAL = ["applied", "declined", "unreachable"];
export const SOURCES = {
  bot_interested_not_connected: "有意向未接通人工", callback_task: "回电任务未处理",
  campaign_unreached: "外呼未触达", partner_intake: "合作方转介", contact_plan: "联络计划转网点",
};
export const MISSED = {
  claim_overdue: "认领超时", verify_overdue: "核实超时", branch_suspended: "支行暂停派单", manual: "人工改派",
};
export const END_REASONS = {
  closed: "在本支行结案", claim_overdue: "认领超时被改派", verify_overdue: "核实超时被改派",
  branch_suspended: "支行暂停派单被改派", manual: "人工改派",
};

const clock = { offset: 0 };

/** Counts down on the server's clock (its ``now`` in the last answer), not the browser's. */
export function syncClock(serverIso) {
  const at = Date.parse(serverIso);
  if (!Number.isNaN(at)) clock.offset = at - Date.now();
}

export function serverNow() {
  return Date.now() + clock.offset;
}

/** A span of milliseconds as the staff say it: 1天3小时, 5小时12分, 12分钟. */
export function span(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days) return `${days}天` + (hours ? `${hours}小时` : "");
  if (hours) return `${hours}小时` + (rest ? `${rest}分` : "");
  return rest ? `${rest}分钟` : "不到1分钟";
}

/** What an open lead owes its branch next: {label, due, left, overdue}, or null. */
export function deadline(lead) {
  if (!lead.is_open) return null;
  const [label, due] = lead.claim_due ? ["认领", lead.claim_due]
    : lead.verify_due ? ["核实", lead.verify_due] : [null, null];
  if (!due) return null;
  const left = Date.parse(due) - serverNow();
  return { label, due, left, overdue: left < 0 || Boolean(lead.overdue) };
}

/** The next deadline as a countdown: 认领剩余 1天3小时, or 逾期 2小时 (highlighted). */
export function countdown(lead) {
  const due = deadline(lead);
  if (!due) {
    const text = lead.is_open ? "已核实，待结案" : "已结案";
    return el("span", "muted", text);
  }
  const soon = due.left < 6 * 3600 * 1000;
  const node = el("span", "due" + (due.overdue ? " overdue" : soon ? " soon" : ""),
    due.overdue ? `逾期 ${span(due.left)}（${due.label}）` : `${due.label}剩余 ${span(due.left)}`);
  node.title = `${due.label}截止 ${when(due.due)}` + (lead.overdue ? "\n" + lead.overdue : "");
  node.dataset.testid = "deadline";
  node.dataset.overdue = due.overdue ? "1" : "0";
  return node;
}

export function leadBadge(status, big = false) {
  const badge = el("span", "badge lead-" + status + (big ? " big" : ""), LEAD_STATUS[status] || status);
  badge.title = status;
  badge.dataset.status = status;
  return badge;
}

/** 0.625 -> 62.5%; null (nothing judged yet) -> —. */
export function rate(value) {
  return value === null || value === undefined ? "—" : Math.round(value * 1000) / 10 + "%";
}

export function amount(yuan) {
  return yuan === null || yuan === undefined ? "—" : Number(yuan).toLocaleString("zh-CN") + " 元";
}

export function branchName(branch) {
  return branch ? branch.name || branch.id : "—";
}

/**
 * Loads the account and draws the shared header, whose navigation has 线索 for the roles that
 * work leads (an account manager has no campaign pages: their brand link leads here too).
 */
export async function startLeads(current) {
  const me = await start(current);
  if (!me) return null;
  const brand = document.querySelector("header.top .brand");
  if (brand && !me.can("view_campaigns")) {
    brand.href = "/workspace/leads";
    brand.firstChild.textContent = "支行线索工作台";
  }
  return me;
}
