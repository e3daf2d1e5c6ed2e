// Login: the OAuth2 password flow of /api/v1/auth/token, then /api/v1/me; the token goes to
// sessionStorage and the officer back to the page they came from. `?expired=1`: sent here because the
// session expired (common.js `api`); the page says so.
import { api, ApiError, initPage, saveSession, clearSession, t } from "./common.js";

initPage();
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
document.getElementById("login-expired").hidden = new URLSearchParams(location.search).get("expired") !== "1";

/**
 * Where to go after logging in: `?next=` when it is a page of this site, else the map. Decided on the
 * URL as the browser parses it (it drops tabs and newlines and reads "\\" as "/": "/\t/host" is
 * "//host", another site), not on the raw string; and the parsed, absolute URL is what is opened. A
 * path starting "//" ("/.//host" parses to one) is no page of ours, and opened as a path it would be
 * another site: the map instead.
 */
function safeNext() {
  const next = new URLSearchParams(location.search).get("next");
  if (!next) return "/map";
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return "/map";
  }
  return url.origin === location.origin && !url.pathname.startsWith("//") ? url.href : "/map";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const username = form.elements.namedItem("username").value.trim();
  const password = form.elements.namedItem("password").value;
  if (!username || !password) {
    error.textContent = t("login.failed");
    error.hidden = false;
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const body = new URLSearchParams({ username, password, grant_type: "password" });
    const token = await api("/api/v1/auth/token", { form: body, anonymous: true });
    clearSession();
    sessionStorage.setItem("pn.token", token.access_token);
    const me = await api("/api/v1/me");
    saveSession(token.access_token, me);
    location.assign(safeNext());
  } catch (e) {
    const status = e instanceof ApiError ? e.status : 0;
    error.textContent = status === 401 ? t("login.failed") : status === 429 ? t("login.too_many") : e.message;
    error.hidden = false;
    form.elements.namedItem("password").select();
  } finally {
    submit.disabled = false;
  }
});
