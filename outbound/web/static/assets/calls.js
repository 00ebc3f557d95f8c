// The call log: find calls by customer id or a fragment of the masked phone, then read a
// call's transcript (with the intents the bot heard) and play its two-channel recording.
import { $, OUTCOMES, api, el, errorText, showMessage, start, when } from "./common.js";

const SPEAKERS = { customer: "客户", bot: "智能助手", agent: "坐席", event: "事件", system: "系统" };
const SPOKEN = { speech: "", greeting: "接听问候", backchannel: "附和", dtmf: "按键", noise: "噪声" };
const EVENTS = {
  amd: "应答检测", hangup: "挂断", transfer: "转接人工", silence: "静默", barge_in: "客户插话",
  error: "错误", hold: "等待", agent_joined: "坐席接入", callback: "约定回电",
  unspoken: "未播出",
};
const INTENTS = {
  affirm: "肯定", deny: "否定", greet: "问候", goodbye: "再见", request_handoff: "要求人工",
  not_interested: "不感兴趣", opt_out: "拒绝再联系", busy_callback: "稍后回电",
  ask_interest_rate: "问利率", ask_amount: "问额度", ask_repayment: "问还款", ask_requirements: "问条件",
  ask_fees: "问费用", ask_disbursement_time: "问放款时间", suspect_fraud: "怀疑诈骗",
  ask_how_got_number: "问号码来源", wrong_person: "非本人", ask_is_robot: "问是否机器人",
  ask_repeat: "请重复", already_has_loan: "已有贷款", out_of_scope: "其他问题",
};
const page = { selected: null };

function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.round(value);
  return s >= 60 ? `${Math.floor(s / 60)}分${String(s % 60).padStart(2, "0")}秒` : `${s}秒`;
}

function row(call) {
  const tr = el("tr", "clickable");
  tr.dataset.testid = "call-row";
  tr.dataset.callId = call.call_id;
  tr.tabIndex = 0;
  const customer = el("td", null, `${call.customer.name || "—"} ${call.customer.phone || ""}`);
  customer.append(el("div", "muted small", call.customer.id));
  tr.append(el("td", "num", when(call.started_at)), customer,
    el("td", null, call.campaign ? call.campaign.name : "—"),
    el("td", null, call.outcome ? OUTCOMES[call.outcome] || call.outcome : "进行中"),
    el("td", "n", seconds(call.duration_s)));
  const open = () => show(call.call_id, tr);
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return tr;
}

async function search(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  const customer = $("q-customer").value.trim();
  const campaign = $("q-campaign").value.trim();
  if (customer) query.set("customer", customer);
  if (campaign) query.set("campaign", campaign);
  history.replaceState(null, "", query.toString() ? "?" + query : location.pathname);
  const result = await api("GET", "/api/calls?" + query);
  if (!result.ok) {
    showMessage($("search-error"), errorText(result, "查询失败"));
    return;
  }
  showMessage($("search-error"), "");
  const calls = result.data.calls;
  $("calls").replaceChildren(...calls.map(row));
  $("no-calls").hidden = calls.length > 0;
  $("list-count").textContent = `${calls.length} 通 · newest first`;
}

function turn(entry) {
  const speaker = entry.speaker || "event";
  const kind = entry.kind || "speech";
  const spoken = speaker !== "event" && kind in SPOKEN;
  const line = el("div", "turn " + (spoken ? speaker : "event"));
  line.dataset.testid = "turn";
  const bubble = el("div", "bubble");
  if (!spoken) {
    bubble.textContent = `—— ${EVENTS[kind] || kind}：${entry.text} ——`;
  } else {
    const who = (SPEAKERS[speaker] || speaker) + (SPOKEN[kind] ? " · " + SPOKEN[kind] : "");
    bubble.append(el("div", "who", who), document.createTextNode(entry.text));
    for (const intent of entry.intents || []) {
      const tag = el("span", "intent",
        `${INTENTS[intent.name] || intent.name}` + (intent.confidence ? ` ${Math.round(intent.confidence * 100)}%` : ""));
      tag.dataset.testid = "intent";
      tag.title = "意图 intent: " + intent.name;
      bubble.append(document.createElement("br"), tag);
    }
  }
  line.append(bubble);
  return line;
}

async function show(callId, tr) {
  for (const other of $("calls").querySelectorAll("tr.selected")) other.classList.remove("selected");
  tr.classList.add("selected");
  page.selected = callId;
  const result = await api("GET", "/api/calls/" + encodeURIComponent(callId));
  if (page.selected !== callId) return;
  if (!result.ok) {
    showMessage($("detail-error"), errorText(result, "无法读取通话"));
    return;
  }
  showMessage($("detail-error"), "");
  const call = result.data;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  const facts = [
    ["通话编号", call.call_id],
    ["客户", `${call.customer.name || "—"}（${call.customer.id}）${call.customer.phone || ""}`],
    ["地区", call.customer.region || "—"],
    ["活动", call.campaign ? `${call.campaign.name}（${call.campaign.id}）` : "—"],
    ["话术版本", call.variant || "—"],
    ["开始时间", when(call.started_at)],
    ["时长", seconds(call.duration_s)],
    ["结果", OUTCOMES[call.outcome] || call.outcome || "—"],
  ];
  $("call-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
  const audio = $("recording");
  audio.hidden = !call.has_recording;
  $("no-recording").hidden = call.has_recording;
  if (call.has_recording) audio.src = `/api/calls/${encodeURIComponent(callId)}/recording`;
  else audio.removeAttribute("src");
  $("transcript").replaceChildren(...(call.transcript.length
    ? call.transcript.map(turn) : [el("p", "muted", "没有转写内容")]));
}

const me = await start("/workspace/calls");
if (me) {
  const query = new URLSearchParams(location.search);
  $("q-customer").value = query.get("customer") || "";
  $("q-campaign").value = query.get("campaign") || "";
  $("search-form").addEventListener("submit", search);
  search();
}
