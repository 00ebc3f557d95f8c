// The new-campaign form: reads the fields into the API's request, and shows the API's
// refusal (its {"error"} text) beside the form and under the field it names.
import { $, api, duration, el, errorText, showMessage, start } from "./common.js";
import { PlanEditor, isPlanError, loadPlanOptions } from "./plan_editor.js";

let planEditor = null;  // once the plan's options are read

class FormProblem extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

/** The API's setting (or field) names and the inputs that hold them. */
const FIELDS = {
  id: "c-id", name: "c-name", transport: "c-transport", product: "c-product", segment: "c-segment",
  customer_ids: "c-customers", window_start: "c-window-start", window_end: "c-window-end",
  timezone: "c-timezone", weekdays: "c-weekdays", holidays: "c-holidays",
  max_concurrency: "c-concurrency", max_attempts: "c-max-attempts",
  max_attempts_per_week: "c-per-week", min_gap_s: "c-min-gap", retry_backoff_s: "c-backoff",
  agent_gated: "c-agent-gated", detect_machine: "c-detect-machine", speed: "c-speed",
  variants: "variants", customers: "c-customers", calling: "c-window-start", window: "c-window-start",
  concurrency: "c-concurrency", lines: "c-concurrency",
};

function list(text) {
  return text.split(/[\s,，、;；]+/).map((item) => item.trim()).filter(Boolean);
}

function whole(id, field, min) {
  const text = $(id).value.trim();
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new FormProblem(field, `请填写不小于 ${min} 的整数`);
  }
  return Number(text);
}

function seconds(text, field) {
  const items = list(text);
  if (!items.length || !items.every((item) => /^\d+$/.test(item))) {
    throw new FormProblem(field, "请填写以逗号分隔的秒数，如 1800, 7200");
  }
  return items.map(Number);
}

function clock(id, field) {
  const value = $(id).value.trim();
  if (!/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/.test(value)) {
    throw new FormProblem(field, "请按 24 小时制填写时间，如 09:00 或 23:59:59");
  }
  return value;
}

// ------------------------------------------------------------------ variants
function variantRow(name, weight) {
  const tr = el("tr");
  tr.dataset.testid = "variant-row";
  const nameCell = el("td");
  const nameInput = el("input");
  nameInput.value = name;
  nameInput.maxLength = 20;
  nameInput.className = "variant-name";
  nameInput.setAttribute("aria-label", "话术版本");
  nameCell.append(nameInput);
  const weightCell = el("td");
  const weightInput = el("input");
  weightInput.type = "number";
  weightInput.min = "0";
  weightInput.step = "any";
  weightInput.value = weight;
  weightInput.className = "variant-weight";
  weightInput.setAttribute("aria-label", "权重");
  weightCell.append(weightInput);
  const share = el("td");
  share.append(el("span", "share"));
  const remove = el("button", "link", "删除");
  remove.type = "button";
  remove.setAttribute("aria-label", "删除该版本");
  remove.addEventListener("click", () => { tr.remove(); shares(); });
  const removeCell = el("td");
  removeCell.append(remove);
  tr.append(nameCell, weightCell, share, removeCell);
  weightInput.addEventListener("input", shares);
  return tr;
}

function variantRows() {
  return [...$("variants").querySelectorAll("tr")].map((tr) => ({
    tr, name: tr.querySelector(".variant-name").value.trim(),
    weight: Number(tr.querySelector(".variant-weight").value),
  }));
}

function shares() {
  const rows = variantRows();
  const sum = rows.reduce((all, row) => all + (row.weight > 0 ? row.weight : 0), 0);
  for (const row of rows) {
    row.tr.querySelector(".share").textContent =
      sum && row.weight > 0 ? Math.round((1000 * row.weight) / sum) / 10 + "%" : "—";
  }
}

function variants() {
  const chosen = {};
  for (const row of variantRows()) {
    if (!row.name) continue;
    if (!(row.weight > 0)) throw new FormProblem("variants", `版本 ${row.name} 的权重须大于 0`);
    if (row.name in chosen) throw new FormProblem("variants", `版本 ${row.name} 重复`);
    chosen[row.name] = row.weight;
  }
  if (!Object.keys(chosen).length) throw new FormProblem("variants", "至少需要一个话术版本");
  return chosen;
}

// ------------------------------------------------------------------ the request
function request() {
  const text = (id) => $(id).value.trim();
  const id = text("c-id");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new FormProblem("id", "活动编号须为 1–64 位字母、数字、. _ -，以字母或数字开头");
  }
  if (!text("c-name")) throw new FormProblem("name", "请填写活动名称");
  const weekdays = [...$("c-weekdays").querySelectorAll("input:checked")].map((box) => Number(box.value));
  if (!weekdays.length) throw new FormProblem("weekdays", "至少选择一个拨打日");
  const holidays = list($("c-holidays").value);
  const badDay = holidays.find((day) => !/^\d{4}-\d{2}-\d{2}$/.test(day));
  if (badDay) throw new FormProblem("holidays", `日期格式应为 YYYY-MM-DD：${badDay}`);
  const config = {
    window_start: clock("c-window-start", "window_start"),
    window_end: clock("c-window-end", "window_end"),
    timezone: text("c-timezone"),
    weekdays, holidays,
    max_concurrency: whole("c-concurrency", "max_concurrency", 1),
    max_attempts: whole("c-max-attempts", "max_attempts", 1),
    max_attempts_per_week: whole("c-per-week", "max_attempts_per_week", 1),
    min_gap_s: whole("c-min-gap", "min_gap_s", 0),
    retry_backoff_s: seconds($("c-backoff").value, "retry_backoff_s"),
    agent_gated: $("c-agent-gated").checked,
    detect_machine: $("c-detect-machine").checked,
    variants: variants(),
  };
  const transport = $("c-transport").value;
  if (transport === "simulated") {
    const speed = Number($("c-speed").value);
    if (!(speed > 0)) throw new FormProblem("speed", "语速倍数须大于 0");
    config.speed = speed;
  }
  const body = { id, name: text("c-name"), transport, product: text("c-product") || null,
                 segment: text("c-segment") || null, config };
  const plan = planEditor ? planEditor.value() : null;
  if (plan) config.plan = plan;
  const customers = list($("c-customers").value);
  if (customers.length) body.customer_ids = customers;
  return body;
}

// ------------------------------------------------------------------ errors beside the fields
function clearProblems() {
  for (const node of document.querySelectorAll(".field-error")) node.remove();
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  showMessage($("form-error"), "");
  if (planEditor) planEditor.showError("");
}

function markField(field, message) {
  const input = $(FIELDS[field]);
  if (!input) return;
  input.setAttribute("aria-invalid", "true");
  const note = el("span", "field-error error small", message);
  note.dataset.testid = "field-error";
  const holder = input.closest(".field") || input.closest("fieldset");
  holder.append(note);
}

/** The settings a server error names (its text is English: "max_concurrency 5 is more…"). */
function namedFields(message) {
  return Object.keys(FIELDS).filter((key) => new RegExp(`\\b${key}\\b`).test(message));
}

async function submit(event) {
  event.preventDefault();
  clearProblems();
  let body;
  try {
    body = request();
  } catch (problem) {
    if (!(problem instanceof FormProblem)) throw problem;
    markField(problem.field, problem.message);
    showMessage($("form-error"), "请修正标出的字段：" + problem.message);
    return;
  }
  $("create").disabled = true;
  const result = await api("POST", "/api/campaigns", body);
  $("create").disabled = false;
  if (result.ok) {
    location.assign("/workspace/campaigns/" + encodeURIComponent(result.data.id));
    return;
  }
  const message = errorText(result, "创建失败");
  showMessage($("form-error"), "未能创建活动：" + message);
  if (planEditor && isPlanError(message)) {  // beside the editor; the steps stay as they are
    planEditor.showError("联系计划未通过校验：" + message);
    return;
  }
  const inputs = new Map(namedFields(message).map((field) => [FIELDS[field], field]));
  for (const field of [...inputs.values()].slice(0, 2)) markField(field, message);
}

function hints() {
  const gap = Number($("c-min-gap").value);
  $("c-min-gap-hint").textContent = Number.isFinite(gap) && gap >= 0 ? "= " + duration(gap) : "";
  const items = list($("c-backoff").value);
  $("c-backoff-hint").textContent = items.every((item) => /^\d+$/.test(item))
    ? "= " + items.map((item) => duration(Number(item))).join("、") : "";
  $("speed-field").hidden = $("c-transport").value !== "simulated";
}

const me = await start("/workspace/campaigns/new");
if (me) {
  const allowed = me.can("manage_campaigns");
  $("not-allowed").hidden = allowed;
  $("create").disabled = !allowed;
  $("variants").append(variantRow("A", 1), variantRow("B", 1));
  shares();
  $("add-variant").addEventListener("click", () => {
    const taken = new Set(variantRows().map((row) => row.name));
    const next = [..."ABCDEFGHIJ"].find((letter) => !taken.has(letter)) || "";
    $("variants").append(variantRow(next, 1));
    shares();
  });
  for (const id of ["c-min-gap", "c-backoff", "c-transport"]) {
    $(id).addEventListener("input", hints);
  }
  hints();
  $("campaign-form").addEventListener("submit", submit);
  const loaded = await loadPlanOptions();
  if (loaded.ok) {
    planEditor = new PlanEditor($("plan-editor"), loaded.options);
  } else {
    $("plan-editor").replaceChildren(el("span", "error", loaded.message + "（仅外呼）"));
  }
}
