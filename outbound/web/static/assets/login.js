// The staff login form: any role may log in; the pages then check what it may see.
import { $, api, showMessage } from "./common.js";

/**
 * Where to go after logging in: a workspace page named by ?next=, else the campaign list (the
 * branch's leads for an account manager, who has no campaign pages).
 */
function nextPage(permissions) {
  const wanted = new URLSearchParams(location.search).get("next") || "";
  const inside = /^\/workspace(?:[/?#]|$)/.test(wanted) && !wanted.startsWith("/workspace/login");
  if (inside) return wanted;
  return permissions.includes("view_campaigns") ? "/workspace" : "/workspace/leads";
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  if (!username || !password) {
    showMessage($("login-error"), "请输入用户名和密码");
    return;
  }
  $("login-submit").disabled = true;
  const result = await api("POST", "/api/staff/login", { username, password });
  $("login-submit").disabled = false;
  if (result.ok) {
    const me = await api("GET", "/api/staff/me");
    location.assign(nextPage(me.ok ? me.data.permissions : []));
  } else if (result.status === 401) {
    showMessage($("login-error"), "用户名或密码错误");
  } else {
    showMessage($("login-error"), (result.data && result.data.error) || `登录失败（HTTP ${result.status}）`);
  }
});
$("login-username").focus();
