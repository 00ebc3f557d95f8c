// A campaign's contact plan (联系计划): the editor a draft's plan is built in, and the read-only
// view of a started one. The editor only collects what the manager chose, as the API reads it:
// {"steps": [{"channel", "wait_hours", "template"?}, …], "stop_on": […]}, or null for calls
// only. The server checks the plan when the campaign is saved; its reason is shown beside the
// editor and nothing the manager typed is touched.
import { api, el, errorText } from "./common.js";

export const CHANNELS = { sms: "短信", popup: "App弹窗", call: "外呼", branch_lead: "网点线索" };
const CHANNELS_EN = { sms: "SMS", popup: "app pop-up", call: "call", branch_lead: "branch lead" };
export const STOPS = {
  opt_out: "客户退订或拒绝再联系", applied: "客户已申请（要求转人工或申请贷款）",
  refused: "客户明确拒绝（不感兴趣、已有贷款）",
};
const TEMPLATE_NAMES = { offer: "额度邀请", reminder: "到期提醒" };

/** What a plan may hold (GET /api/plan-options): {ok, options} or {ok: false, message}. */
export async function loadPlanOptions() {
  const result = await api("GET", "/api/plan-options");
  return result.ok ? { ok: true, options: result.data }
    : { ok: false, message: "无法读取联系计划选项：" + errorText(result) };
}

function templateName(name) {
  return TEMPLATE_NAMES[name] ? `${TEMPLATE_NAMES[name]}（${name}）` : name;
}

/** A template's text as the customer would read it, the placeholders named. */
function templateText(options, name) {
  const text = (options.templates || {})[name];
  return text ? text.replace("{bank}", "本行").replace("{link}", "〔专属链接〕") : "";
}

/** Hours as the staff say them: 立即, 4小时, 1天, 2天6小时. */
export function waitText(hours) {
  if (!(hours > 0)) return "立即";
  const days = Math.floor(hours / 24);
  const rest = Math.round((hours - days * 24) * 100) / 100;
  return (days ? days + "天" : "") + (rest ? rest + "小时" : "");
}

function whenText(index, hours) {
  const wait = waitText(hours);
  if (index === 0) return hours > 0 ? `活动启动后 ${wait}` : "活动启动时立即";
  return hours > 0 ? `上一步后 ${wait}` : "上一步后立即";
}

function numberInput(cls, step) {
  const input = el("input", cls);
  input.type = "number";
  input.min = "0";
  input.step = step;
  return input;
}

function small(label, cls) {
  const button = el("button", "link " + cls, label);
  button.type = "button";
  return button;
}

/** The editor of a plan, drawn into ``root`` with the choices of ``options``. */
export class PlanEditor {
  constructor(root, options) {
    this.root = root;
    this.options = options;
    this.listeners = [];
    this.calls = this.modeChoice("calls", "仅外呼（不使用联系计划，按拨打设置直接外呼）");
    this.planned = this.modeChoice("plan", "多渠道联系计划（短信、App弹窗、外呼、网点线索）");
    const modes = el("div", "plan-modes");
    modes.setAttribute("role", "radiogroup");
    modes.setAttribute("aria-label", "触达方式");
    modes.append(this.calls.label, this.planned.label);

    this.steps = el("ol", "plan-steps");
    this.steps.dataset.testid = "plan-steps";
    this.add = el("button", "ghost", "添加步骤");
    this.add.type = "button";
    this.add.dataset.testid = "add-step";
    this.add.addEventListener("click", () => {
      const last = this.rows().at(-1);
      this.steps.append(this.row({ channel: last ? "call" : "sms", wait_hours: last ? 24 : 0 }));
      this.changed();
    });
    this.limit = el("span", "muted small");

    this.stops = el("div", "plan-stops");
    this.stops.setAttribute("role", "group");
    this.stops.setAttribute("aria-label", "停止条件");
    this.stops.dataset.testid = "plan-stops";
    const always = new Set(options.always_stop_on || ["opt_out"]);
    for (const reason of options.stop_on) {
      const label = el("label", "check");
      const box = el("input");
      box.type = "checkbox";
      box.value = reason;
      box.checked = true;
      box.disabled = always.has(reason);
      label.append(box, el("span", null, (STOPS[reason] || reason) + (box.disabled ? "（始终停止，不可取消）" : "")));
      this.stops.append(label);
    }

    this.body = el("div", "plan-body");
    const adding = el("div", "plan-adding");
    adding.append(this.add, this.limit);
    const stopTitle = el("div", "plan-subtitle", "停止条件");
    stopTitle.append(el("span", "en", "stop the plan when"));
    this.body.append(this.steps, adding, stopTitle, this.stops);

    this.error = el("div", "error plan-error");
    this.error.dataset.testid = "plan-error";
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;
    root.replaceChildren(modes, this.body, this.error);
    root.addEventListener("input", () => this.changed());
    root.addEventListener("change", () => this.changed());
    this.set(null);
  }

  modeChoice(value, text) {
    const label = el("label", "check");
    const input = el("input");
    input.type = "radio";
    input.name = "plan-mode";
    input.value = value;
    input.dataset.testid = "plan-mode-" + value;
    input.addEventListener("change", () => this.layout());
    label.append(input, el("span", null, text));
    return { label, input };
  }

  /** One step's row: channel, wait (days and hours), the text's template, and its moves. */
  row(step) {
    const li = el("li", "plan-step");
    li.dataset.testid = "plan-step";
    const number = el("span", "step-no");
    const channel = el("select", "step-channel");
    for (const name of this.options.channels) {
      const option = el("option", null, `${CHANNELS[name] || name}（${CHANNELS_EN[name] || name}）`);
      option.value = name;
      channel.append(option);
    }
    channel.value = this.options.channels.includes(step.channel) ? step.channel : this.options.channels[0];
    const hours = Number(step.wait_hours) || 0;
    const days = numberInput("step-days", "1");
    days.value = String(Math.floor(hours / 24));
    const rest = numberInput("step-hours", "any");
    rest.value = String(Math.round((hours - 24 * Math.floor(hours / 24)) * 100) / 100);
    const since = el("span", "muted small step-since");
    const wait = el("span", "step-wait");
    wait.append(el("span", "muted", "等待"), days, el("span", null, "天"), rest, el("span", null, "小时"), since);

    const template = el("select", "step-template");
    for (const name of Object.keys(this.options.templates)) {
      const option = el("option", null, templateName(name));
      option.value = name;
      template.append(option);
    }
    template.value = step.template && step.template in this.options.templates
      ? step.template : Object.keys(this.options.templates)[0];
    const preview = el("span", "muted small step-preview");
    const texting = el("span", "step-texting");
    texting.append(el("span", "muted", "模板"), template, preview);

    const up = small("上移", "step-up");
    const down = small("下移", "step-down");
    const remove = small("删除", "step-remove");
    up.addEventListener("click", () => { if (li.previousElementSibling) li.after(li.previousElementSibling); this.changed(); });
    down.addEventListener("click", () => { if (li.nextElementSibling) li.before(li.nextElementSibling); this.changed(); });
    remove.addEventListener("click", () => { li.remove(); this.changed(); });
    const moves = el("span", "step-moves");
    moves.append(up, down, remove);
    li.append(number, channel, wait, texting, moves);
    return li;
  }

  rows() {
    return [...this.steps.children];
  }

  /** Numbers the steps, names their inputs after them, shows what each channel needs. */
  layout() {
    const plan = this.planned.input.checked;
    this.body.hidden = !plan;
    const rows = this.rows();
    rows.forEach((li, index) => {
      const n = index + 1;
      const channel = li.querySelector(".step-channel");
      li.dataset.channel = channel.value;
      li.querySelector(".step-no").textContent = `第 ${n} 步`;
      channel.setAttribute("aria-label", `第 ${n} 步渠道`);
      li.querySelector(".step-days").setAttribute("aria-label", `第 ${n} 步等待天数`);
      li.querySelector(".step-hours").setAttribute("aria-label", `第 ${n} 步等待小时数`);
      li.querySelector(".step-template").setAttribute("aria-label", `第 ${n} 步短信模板`);
      li.querySelector(".step-since").textContent = index === 0 ? "（自活动启动起）" : "（自上一步起）";
      li.querySelector(".step-texting").hidden = channel.value !== "sms";
      li.querySelector(".step-preview").textContent =
        templateText(this.options, li.querySelector(".step-template").value);
      li.querySelector(".step-up").setAttribute("aria-label", `上移第 ${n} 步`);
      li.querySelector(".step-down").setAttribute("aria-label", `下移第 ${n} 步`);
      li.querySelector(".step-remove").setAttribute("aria-label", `删除第 ${n} 步`);
      li.querySelector(".step-up").disabled = index === 0;
      li.querySelector(".step-down").disabled = index === rows.length - 1;
    });
    const max = this.options.max_steps;
    this.add.disabled = rows.length >= max;
    this.limit.textContent = `最多 ${max} 步，每步等待 0–${waitText(this.options.max_wait_hours)}`;
  }

  changed() {
    this.layout();
    for (const listener of this.listeners) listener();
  }

  /** Calls ``listener`` whenever the manager changes anything. */
  onChange(listener) {
    this.listeners.push(listener);
  }

  /** Shows ``plan`` (null: calls only; a plan's missing settings read as the server's defaults). */
  set(plan) {
    (plan ? this.planned : this.calls).input.checked = true;
    const steps = plan && Array.isArray(plan.steps) && plan.steps.length
      ? plan.steps : [{ channel: "sms", wait_hours: 0, template: "offer" }];
    this.steps.replaceChildren(...steps.map((step) => this.row(step)));
    const stopOn = new Set(plan && Array.isArray(plan.stop_on) ? plan.stop_on : this.options.stop_on);
    for (const box of this.stops.querySelectorAll("input")) box.checked = box.disabled || stopOn.has(box.value);
    this.showError("");
    this.layout();
  }

  /** The plan as the API takes it; null for calls only. A wait that is not a number is sent
   * as null, for the server to name. */
  value() {
    if (!this.planned.input.checked) return null;
    const steps = this.rows().map((li) => {
      const channel = li.querySelector(".step-channel").value;
      const number = (input) => (input.validity.badInput ? NaN
        : input.value.trim() === "" ? 0 : Number(input.value));
      const hours = number(li.querySelector(".step-days")) * 24 + number(li.querySelector(".step-hours"));
      const step = { channel, wait_hours: Number.isFinite(hours) ? hours : null };
      if (channel === "sms") step.template = li.querySelector(".step-template").value;
      return step;
    });
    const stopOn = [...this.stops.querySelectorAll("input:checked")].map((box) => box.value);
    return { steps, stop_on: stopOn };
  }

  /** The server's reason beside the editor, the step it names marked (empty: clears it). */
  showError(message) {
    this.error.textContent = message || "";
    this.error.hidden = !message;
    for (const li of this.rows()) li.classList.remove("invalid");
    for (const node of this.root.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    if (!message) return;
    const named = /\bstep (\d+)\b/.exec(message);
    const li = named && this.rows()[Number(named[1]) - 1];
    if (li) {
      li.classList.add("invalid");
      for (const input of li.querySelectorAll("select, input")) input.setAttribute("aria-invalid", "true");
    } else if (/stop/.test(message)) {
      this.stops.setAttribute("aria-invalid", "true");
    }
  }
}

/** Whether a server refusal is about the contact plan. */
export function isPlanError(message) {
  return /contact plan/.test(message || "");
}

function count(n, testid) {
  const cell = el("td", "n", n ? `${n} 位` : "—");
  cell.dataset.testid = testid;
  return cell;
}

/**
 * The plan read-only (GET /api/campaigns/{id}/plan's answer): its steps with channel, wait and
 * template, how many customers wait for each or are in its call, and its stop conditions.
 */
export function planView(answer, options) {
  const plan = answer.plan;
  if (!plan) {
    const note = el("p", "muted", "仅外呼：本活动不使用联系计划，按拨打设置直接外呼。");
    note.dataset.testid = "plan-calls-only";
    return [note];
  }
  const positions = answer.positions || [];
  const table = el("table", "data plan-view");
  table.dataset.testid = "plan-view";
  const head = el("tr");
  for (const [text, cls] of [["步骤"], ["渠道"], ["等待"], ["内容"], ["等待此步", "n"], ["外呼中", "n"]]) {
    const th = el("th", cls, text);
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  plan.steps.forEach((step, index) => {
    const tr = el("tr");
    tr.dataset.testid = "plan-view-step";
    tr.dataset.channel = step.channel;
    const content = step.channel === "sms"
      ? `${templateName(step.template || "offer")}：${templateText(options || { templates: {} }, step.template || "offer")}` : "";
    const at = positions[index] || {};
    tr.append(el("td", "num", `第 ${index + 1} 步`), el("td", null, CHANNELS[step.channel] || step.channel),
      el("td", null, whenText(index, step.wait_hours)), el("td", "small", content),
      count(at.waiting, "plan-waiting"), count(at.dialling, "plan-dialling"));
    tbody.append(tr);
  });
  table.append(thead, tbody);
  const stops = el("p", "small plan-stop-line");
  stops.dataset.testid = "plan-view-stops";
  const order = (options && options.stop_on) || Object.keys(STOPS);
  const stopOn = [...plan.stop_on].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  stops.textContent = "停止条件：" + stopOn.map((reason) => STOPS[reason] || reason).join("；");
  const summary = el("p", "muted small plan-summary");
  summary.dataset.testid = "plan-finished";
  summary.textContent = `计划已结束（停止或全部步骤完成）：${answer.finished || 0} 位客户` +
    (answer.elsewhere ? `；不在任一步骤（计划修改后）：${answer.elsewhere} 位` : "");
  return [table, stops, summary];
}
