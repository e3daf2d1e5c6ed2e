// Login: the OAuth2 password flow of /api/v1/auth/token, then /api/v1/me; the token goes to
// sessionStorage and the officer back to the page they came from. `?expired=1`: sent here because the
// session expired (common.js `api`); the page says so.
import { api, ApiError, initPage, saveSession, clearSession, t } from "./common.js";

initPage();
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
document.getElementById("login-expired").hidden = new URLSearchParams(location.search).get("expired") !== "1";

function safeNext() {
  const next = new URLSearchParams(location.search).get("next") || "/map";
  // Only a path of this site (not "//other.host" nor "https://...").
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/map";
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
