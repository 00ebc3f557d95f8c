// Whitelist upload: send the file, watch it being checked (pushed over a websocket), list
// the rejected rows, then confirm to load the good ones and show what was loaded.
import { $, api, el, errorText, showMessage, socketUrl, start } from "./common.js";

const FINISHED = new Set(["loaded", "failed"]);
const STATE_TEXT = {
  parsing: "正在校验文件…",
  parsed: "校验完成，请检查问题行后确认导入。合格行在确认后才会写入客户名单。",
  loading: "正在导入合格行…",
  loaded: "导入完成。",
  failed: "文件无法导入。",
};

const page = { me: null, upload: null, socket: null, retry: null };

function progressOf(view) {
  if (view.state === "parsing") {
    return view.rows_total ? Math.min(100, (100 * view.rows_read) / view.rows_total) : 5;
  }
  return 100;
}

function render(view) {
  page.upload = view;
  $("progress-card").hidden = false;
  $("file-name").textContent = `${view.filename}（${(view.size / 1024).toFixed(1)} KB）`;
  const done = progressOf(view);
  $("progress-bar").style.width = done + "%";
  $("progress").setAttribute("aria-valuenow", String(Math.round(done)));
  $("progress-text").textContent = view.rows_total
    ? `${view.rows_read} / ${view.rows_total} 行` : `${view.rows_read} 行`;
  $("state").textContent = STATE_TEXT[view.state] || view.state;
  $("state").dataset.state = view.state;
  $("rows-read").textContent = view.rows_read;
  $("good").textContent = view.good;
  $("bad").textContent = view.bad;
  showMessage($("parse-error"), view.state === "failed" ? "原因：" + (view.error || "未知") : "");

  const checked = view.state !== "parsing" && !(view.state === "failed" && view.rows_total === null);
  $("bad-card").hidden = !checked || view.bad === 0;
  $("errors-link").href = `/api/whitelists/${encodeURIComponent(view.id)}/errors.csv`;
  const rows = view.bad_rows.map((bad) => {
    const tr = el("tr");
    tr.dataset.testid = "bad-row";
    tr.dataset.line = bad.line;
    tr.append(el("td", "n", bad.line), el("td", null, bad.customer_id || "—"), el("td", null, bad.reason));
    return tr;
  });
  $("bad-rows").replaceChildren(...rows);
  const more = view.bad - view.bad_rows.length;
  showMessage($("more-bad"), more > 0 ? `另有 ${more} 行问题未列出，请下载 errors.csv 查看全部。` : "");

  const confirmable = ["parsed", "loading", "loaded"].includes(view.state);
  $("confirm-card").hidden = !confirmable;
  $("confirm-text").textContent = view.state === "parsed"
    ? `确认后将导入 ${view.good} 行合格客户，${view.bad} 行问题行不导入。` : "";
  $("confirm").hidden = view.state === "loaded";
  $("confirm").disabled = view.state !== "parsed" || !view.good || !page.me.can("import_whitelist");
  $("confirm").textContent = view.state === "loading" ? "正在导入…" : "确认导入";
  if (view.state === "loaded" && view.loaded) {
    const n = view.loaded;
    const by = view.confirmed_by ? `（确认人：${view.confirmed_by.name}）` : "";
    showMessage($("loaded"), `已导入：新增 ${n.inserted} 位，更新 ${n.updated} 位，无变化 ${n.unchanged} 位；` +
      `未导入 ${n.rejected} 行（问题行及免打扰名单）${by}`);
    $("again").hidden = false;
    $("to-campaign").hidden = !page.me.can("manage_campaigns");
  }
}

function watch(uploadId) {
  clearTimeout(page.retry);
  if (page.socket) page.socket.close();
  const socket = new WebSocket(socketUrl(`/ws/whitelists/${encodeURIComponent(uploadId)}`));
  page.socket = socket;
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "upload") render(frame);
  });
  socket.addEventListener("close", () => {
    if (page.socket !== socket) return;
    page.socket = null;
    if (page.upload && !FINISHED.has(page.upload.state)) {
      page.retry = setTimeout(() => watch(uploadId), 1000);  // the connection dropped: reconnect
    }
  });
}

function chosen() {
  const file = $("file").files[0];
  $("file-chosen").textContent = file ? `${file.name}（${(file.size / 1024).toFixed(1)} KB）` : "未选择文件";
  $("file-chosen").classList.toggle("picked", Boolean(file));
}

async function upload(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) {
    showMessage($("upload-error"), "请选择要上传的白名单文件");
    return;
  }
  showMessage($("upload-error"), "");
  const form = new FormData();
  form.append("file", file, file.name);
  $("upload-button").disabled = true;
  const result = await api("POST", "/api/whitelists", form);
  $("upload-button").disabled = false;
  if (!result.ok) {
    showMessage($("upload-error"), errorText(result, "上传失败"));
    return;
  }
  history.replaceState(null, "", "?upload=" + encodeURIComponent(result.data.id));
  $("loaded").hidden = true;
  render(result.data);
  watch(result.data.id);
}

async function confirmUpload() {
  $("confirm").disabled = true;
  showMessage($("confirm-error"), "");
  const result = await api("POST", `/api/whitelists/${encodeURIComponent(page.upload.id)}/confirm`);
  if (!result.ok) {
    showMessage($("confirm-error"), errorText(result, "确认导入失败"));
    $("confirm").disabled = false;
    return;
  }
  render(result.data);
  if (!page.socket) watch(result.data.id);
}

page.me = await start("/workspace/whitelists/new");
if (page.me) {
  const allowed = page.me.can("import_whitelist");
  $("not-allowed").hidden = allowed;
  $("file").disabled = $("upload-button").disabled = !allowed;
  $("upload-form").addEventListener("submit", upload);
  $("file").addEventListener("change", chosen);
  if ($("file").files.length) chosen();  // picked while the page was still starting
  $("confirm").addEventListener("click", confirmUpload);
  const zone = $("dropzone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length && allowed) {
      $("file").files = event.dataTransfer.files;
      chosen();
    }
  });
  const earlier = new URLSearchParams(location.search).get("upload");
  if (earlier && page.me.can("view_whitelist")) {  // a reload: show the same upload again
    const result = await api("GET", `/api/whitelists/${encodeURIComponent(earlier)}`);
    if (result.ok) {
      render(result.data);
      watch(earlier);
    } else {
      showMessage($("upload-error"), errorText(result, "无法读取该次上传"));
    }
  }
}
