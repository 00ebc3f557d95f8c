// The campaign list: every campaign with its status and counters, newest first.
import { $, api, el, errorText, showMessage, start, statusBadge, total, when, TRANSPORTS } from "./common.js";

function row(campaign) {
  const counters = campaign.counters;
  const targets = counters.targets;
  const tr = el("tr");
  tr.dataset.testid = "campaign-row";
  tr.dataset.campaignId = campaign.id;
  const name = el("td");
  const link = el("a", null, campaign.name);
  link.href = "/workspace/campaigns/" + encodeURIComponent(campaign.id);
  name.append(link, el("div", "muted small", campaign.id));
  const status = el("td");
  status.append(statusBadge(campaign.status));
  const chosen = [campaign.product, campaign.segment].filter(Boolean).join(" / ") || "指定客户";
  tr.append(
    name, status, el("td", null, chosen), el("td", null, TRANSPORTS[campaign.transport] || campaign.transport),
    el("td", "n", targets.total || 0), el("td", "n", targets.pending || 0), el("td", "n", targets.done || 0),
    el("td", "n", total(counters.outcomes)), el("td", "n", counters.in_flight || 0),
    el("td", "muted", when(campaign.created_at)),
  );
  return tr;
}

function exportLink() {
  const query = new URLSearchParams();
  if ($("export-from").value) query.set("from", $("export-from").value);
  if ($("export-to").value) query.set("to", $("export-to").value);
  const text = query.toString();
  $("export-link").href = "/api/exports/attempts.csv" + (text ? "?" + text : "");
}

const me = await start("/workspace");
if (me) {
  $("new-link").hidden = !me.can("manage_campaigns");
  $("import-link").hidden = !me.can("import_whitelist");
  $("export-from").addEventListener("change", exportLink);
  $("export-to").addEventListener("change", exportLink);
  const result = await api("GET", "/api/campaigns");
  if (!result.ok) {
    showMessage($("list-error"), errorText(result, "无法读取活动列表"));
  } else {
    const campaigns = result.data.campaigns;
    $("campaigns").replaceChildren(...campaigns.map(row));
    $("no-campaigns").hidden = campaigns.length > 0;
  }
}
