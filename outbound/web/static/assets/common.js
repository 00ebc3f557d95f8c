// What every workspace page shares: the API helper, the logged-in account, the header,
// the Chinese names of statuses and outcomes, and small DOM helpers.

export const $ = (id) => document.getElementById(id);

export const STATUS = {
  draft: "草稿", running: "进行中", paused: "已暂停", stopped: "已停止", done: "已完成",
};
export const STATUS_EN = {
  draft: "draft", running: "running", paused: "paused", stopped: "stopped", done: "done",
};
export const ROLES = {
  admin: "系统管理员", campaign_manager: "营销活动经理", supervisor: "坐席主管",
  branch_manager: "支行经理", account_manager: "客户经理", agent: "坐席",
};
export const OUTCOMES = {
  transferred: "转人工", callback: "约定回电", not_interested: "不感兴趣", opt_out: "拒绝再联系",
  wrong_person: "非本人", already_has_loan: "已有贷款", no_response: "无应答", ended: "正常结束",
  no_answer: "未接听", busy: "占线", declined: "拒接", unreachable: "无法接通",
  invalid_number: "空号", voicemail: "语音信箱", dropped: "通话中断", failed: "失败",
  do_not_contact: "免打扰名单", hung_up: "客户挂断", max_duration: "超时结束", error: "系统错误",
  interrupted: "通话中断",
};
export const TARGETS = { pending: "待拨打", dialing: "拨打中", done: "已完成" };
export const STAGES = [
  ["dialed", "已拨打完成", "dialled, call ended"], ["answered", "接听", "answered"],
  ["right_person", "本人确认", "right person"], ["disclosure_played", "已播报声明", "disclosure"],
  ["offer_heard", "听完介绍", "offer heard"], ["interested", "有意向", "interested"],
  ["transferred", "转人工", "transferred"], ["agent_connected", "坐席接通", "agent connected"],
  ["applied", "已申请", "applied"],
];
export const DROP_OFFS = {
  not_interested: "不感兴趣", already_has_loan: "已有贷款", opt_out: "拒绝再联系",
  busy_callback: "约定回电", wrong_person: "非本人", voicemail: "语音信箱",
  no_answer: "未接/占线", hung_up_mid_offer: "介绍中挂断", other: "其他",
};
export const ACTIONS = {
  campaign_created: "创建活动", campaign_changed: "修改设置", campaign_started: "启动",
  campaign_paused: "暂停", campaign_resumed: "恢复", campaign_stopped: "停止",
  whitelist_imported: "导入白名单", unmasked_viewed: "查看完整信息",
};
export const TRANSPORTS = { simulated: "模拟线路", sip: "SIP 电话线路" };

/** A new element with a class and text. */
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Shows ``text`` in ``node`` (hides it when empty). */
export function showMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

export function statusBadge(status, big = false) {
  const badge = el("span", "badge " + status + (big ? " big" : ""), STATUS[status] || status);
  badge.title = STATUS_EN[status] || status;
  badge.dataset.status = status;
  return badge;
}

/** An ISO instant as the bank's staff read it: 2026-11-23 10:05:07 (the browser's zone). */
export function when(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

/** Seconds as the staff say them: 30分钟, 2小时, 1天 (or 95秒). */
export function duration(seconds) {
  if (seconds === 0) return "0秒";
  for (const [size, name] of [[86400, "天"], [3600, "小时"], [60, "分钟"], [1, "秒"]]) {
    if (seconds >= size && seconds % size === 0) return seconds / size + name;
  }
  return seconds + "秒";
}

export function percent(part, whole) {
  return whole ? Math.round((part / whole) * 1000) / 10 + "%" : "—";
}

/** The sum of an object's numbers. */
export function total(counts) {
  return Object.values(counts || {}).reduce((sum, n) => sum + (Number(n) || 0), 0);
}

/** Calls the JSON API: {ok, status, data}; an expired session goes back to the login page. */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (_) {
    return { ok: false, status: 0, data: { error: "网络异常，请稍后重试 (network error)" } };
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401 && !path.startsWith("/api/staff/login")) toLogin();
  return { ok: response.ok, status: response.status, data };
}

/** The API's reason for a refusal, as the page shows it. */
export function errorText(result, fallback = "操作失败") {
  const reason = result.data && result.data.error;
  if (result.status === 0) return reason;
  if (result.status === 403) return "无权限 (forbidden)" + (reason ? "：" + reason : "");
  return reason ? reason : `${fallback}（HTTP ${result.status}）`;
}

export function toLogin() {
  const here = location.pathname + location.search;
  location.assign("/workspace/login?next=" + encodeURIComponent(here));
}

/** A websocket URL on this server. */
export function socketUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

const NAV = [
  ["/workspace", "营销活动", "view_campaigns"],
  ["/workspace/whitelists/new", "导入白名单", "import_whitelist"],
  ["/workspace/campaigns/new", "新建活动", "manage_campaigns"],
  ["/workspace/calls", "通话记录", "view_call_log"],
  ["/workspace/leads", "线索", "work_leads"],
  ["/workspace/alerts", "贷后预警", "work_alerts"],
];

/**
 * Loads the logged-in account (to the login page without one), draws the header and
 * returns the account with ``can(permission)``.
 */
export async function start(current) {
  const result = await api("GET", "/api/staff/me");
  if (!result.ok) {
    if (result.status !== 401) document.body.textContent = errorText(result, "无法读取登录信息");
    return null;
  }
  const me = result.data;
  const granted = new Set(me.permissions);
  me.can = (permission) => granted.has(permission);
  drawHeader(me, current);
  return me;
}

function drawHeader(me, current) {
  const header = el("header", "top");
  const brand = el("a", "brand", "营销活动工作台");
  brand.href = "/workspace";
  brand.append(el("small", null, "智能外呼 · 预授信"));
  const nav = el("nav");
  nav.setAttribute("aria-label", "工作台导航");
  for (const [href, label, permission] of NAV) {
    if (!me.can(permission)) continue;
    const link = el("a", null, label);
    link.href = href;
    if (href === current) link.setAttribute("aria-current", "page");
    nav.append(link);
  }
  const who = el("span", "who", `${me.name || me.username}（${ROLES[me.role] || me.role}）`);
  who.dataset.testid = "who";
  if (me.branch_id) who.textContent += " · " + me.branch_id;
  const out = el("button", null, "退出");
  out.type = "button";
  out.dataset.testid = "logout";
  out.addEventListener("click", async () => {
    await api("POST", "/api/staff/logout");
    location.assign("/workspace/login");
  });
  header.append(brand, nav, el("span", "spacer"), who, out);
  document.body.prepend(header);
}
