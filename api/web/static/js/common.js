// Shared helpers of the review app's pages: configuration and labels, the token, API calls, DOM
// building (never innerHTML with data), time and money formatting, the filter form.
//
// The officer's token lives in sessionStorage: it is gone when the tab closes, it is never sent as a
// cookie (so no page request carries a credential), and only this origin's scripts can read it.

const cfgNode = document.getElementById("pn-config");
export const config = JSON.parse(cfgNode ? cfgNode.textContent : "{}");
const LABELS = config.labels || {};
export const TZ = "Asia/Ho_Chi_Minh";
const VN_OFFSET_MS = 7 * 3600 * 1000;
const LOCALE = config.lang === "en" ? "en-GB" : "vi-VN";
const TOKEN_KEY = "pn.token";
const USER_KEY = "pn.user";

/** The label `key` in the page's language, with `{name}` placeholders filled from `params`. */
export function t(key, params) {
  let text = Object.prototype.hasOwnProperty.call(LABELS, key) ? LABELS[key] : key;
  for (const [name, value] of Object.entries(params || {})) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

/** A label if it exists (`prefix.value`), else the raw value (an unknown rule id still shows). */
export function label(prefix, value) {
  if (value === null || value === undefined || value === "") return t("common.none");
  const key = prefix + "." + value;
  return Object.prototype.hasOwnProperty.call(LABELS, key) ? LABELS[key] : String(value);
}

/** Build an element: el("a", {href: "/x", class: "y"}, "text", child). Text is always text. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setText(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text === null || text === undefined || text === "" ? t("common.none") : String(text);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Time, numbers
// ---------------------------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(LOCALE, {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** An ISO instant shown in Vietnam's time zone (the police's, whatever the browser's). */
export function fmtTime(iso) {
  if (!iso) return t("common.none");
  return timeFormat.format(new Date(iso));
}

export function fmtNumber(n, digits) {
  if (n === null || n === undefined) return t("common.none");
  return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits ?? 0 }).format(n);
}

export function fmtPercent(x) {
  if (x === null || x === undefined) return t("common.none");
  return new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 }).format(x);
}

export function fmtVnd(n) {
  return new Intl.NumberFormat("vi-VN").format(n) + " ₫";
}

/** Today's date in Vietnam as [year, monthIndex, day]. */
function vnToday() {
  const d = new Date(Date.now() + VN_OFFSET_MS);
  return [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
}

/** "YYYY-MM-DD" of the Vietnamese day `daysAgo` days before today. */
export function vnDate(daysAgo) {
  const [y, m, d] = vnToday();
  const day = new Date(Date.UTC(y, m, d - (daysAgo || 0)));
  return day.toISOString().slice(0, 10);
}

function nextDate(ymd) {
  const day = new Date(ymd + "T00:00:00Z");
  day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10);
}

/** The API's [from, to) for a period of the filter form (Vietnamese days, +07:00). */
export function periodRange(period, fromYmd, toYmd) {
  const start = (ymd) => ymd + "T00:00:00+07:00";
  switch (period) {
    case "today": return { from: start(vnDate(0)), to: null };
    case "7d": return { from: start(vnDate(6)), to: null };
    case "30d": return { from: start(vnDate(29)), to: null };
    case "custom": return {
      from: fromYmd ? start(fromYmd) : null,
      to: toYmd ? start(nextDate(toYmd)) : null,
    };
    default: return { from: null, to: null };
  }
}

// ---------------------------------------------------------------------------------------------
// Session and API
// ---------------------------------------------------------------------------------------------

export function getToken() { return sessionStorage.getItem(TOKEN_KEY); }
export function getUser() {
  try { return JSON.parse(sessionStorage.getItem(USER_KEY) || "null"); } catch { return null; }
}
export function saveSession(token, user) {
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(USER_KEY, JSON.stringify(user));
}
export function clearSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** To the login page, then back to this page (its URL). `expired`: the session ended; the page says so. */
export function goLogin(expired) {
  const next = location.pathname + location.search;
  location.assign("/login?" + (expired ? "expired=1&" : "") + "next=" + encodeURIComponent(next));
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || "HTTP " + status);
    this.status = status;
    this.detail = detail;
  }
}

// The API's English error messages in the page's language (api/web/i18n.py `_ERRORS_VI`).
const ERRORS = (config.errors || []).map(([pattern, template]) => [new RegExp(pattern), template]);

/** `message` in the page's language when the table knows it (its groups translated too), else as it is. */
export function translateError(message) {
  for (const [pattern, template] of ERRORS) {
    const m = pattern.exec(message);
    if (m) return template.replace(/\{(\d)\}/g, (_, k) => translateError(m[Number(k)] || ""));
  }
  return message;
}

function detailOf(body) {
  if (!body) return null;
  if (typeof body.detail === "string") return translateError(body.detail);
  if (Array.isArray(body.detail)) {
    return body.detail.map((d) => String(d.msg || "").replace(/^Value error, /, "")).join("; ");
  }
  return null;
}

/**
 * Call the API with the officer's token. `opts.query` (object; empty values left out), `opts.json`
 * (body), `opts.form` (URLSearchParams body), `opts.as` = "json" (default) | "blob" | "response".
 * A 401 ends the session and goes to the login page, which says the session expired.
 */
export async function api(path, opts) {
  opts = opts || {};
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token && !opts.anonymous) headers.Authorization = "Bearer " + token;
  let body;
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
  if (opts.form !== undefined) body = opts.form;
  let response;
  try {
    response = await fetch(url, { method: opts.method || (body ? "POST" : "GET"), headers, body, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, t("common.offline"));
  }
  if (response.status === 401 && !opts.anonymous) {
    clearSession();
    goLogin(true);
    throw new ApiError(401, t("common.session_expired"));
  }
  if (!response.ok) {
    let detail = null;
    try { detail = detailOf(await response.json()); } catch { /* not JSON */ }
    throw new ApiError(response.status, detail || (response.status === 403 ? t("common.forbidden") : response.statusText));
  }
  if (opts.as === "blob") return response.blob();
  if (opts.as === "response") return response;
  return response.json();
}

/** Save a Blob as a file (through a temporary object URL). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------------------------------------
// Page chrome
// ---------------------------------------------------------------------------------------------

let flashTimer = null;
/** A short message at the top of the page, read out by screen readers. */
export function flash(message, kind) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = message;
  box.className = "flash " + (kind || "ok");
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function setupLanguageSwitch() {
  const button = document.getElementById("lang-switch");
  if (!button) return;
  button.addEventListener("click", () => {
    document.cookie = "pn_lang=" + button.dataset.lang + "; path=/; max-age=31536000; SameSite=Strict";
    location.reload();
  });
}

/** Header, language switch; on officer pages also the session check. Returns the user (or null). */
export function initPage() {
  setupLanguageSwitch();
  if (config.public) return null;
  const user = getUser();
  if (!getToken() || !user) {
    goLogin();
    return null;
  }
  const who = document.getElementById("who");
  if (who) {
    const role = label("role", user.role);
    who.textContent = t("user.signed_in_as") + " " + user.username + " (" + role + (user.district_id ? " · " + user.district_id : "") + ")";
  }
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", () => { clearSession(); location.assign("/login"); });
  return user;
}

// ---------------------------------------------------------------------------------------------
// The filter form
// ---------------------------------------------------------------------------------------------

const FILTER_FIELDS = ["period", "from", "to", "rule", "status", "camera", "district", "plate", "fuzzy"];

/** Fill the form from the page URL (`?rule=red_light&period=7d`), with `defaults` for the rest. */
export function readFiltersFromUrl(form, defaults) {
  const params = new URLSearchParams(location.search);
  for (const name of FILTER_FIELDS) {
    const input = form.elements.namedItem(name);
    if (!input) continue;
    const value = params.has(name) ? params.get(name) : (defaults || {})[name];
    if (value !== undefined && value !== null) {
      if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === value)) {
        input.append(el("option", { value }, value)); // a camera or district not (yet) in the list
      }
      input.value = value;
    }
  }
  syncCustomRange(form);
}

export function syncCustomRange(form) {
  const custom = form.elements.namedItem("period").value === "custom";
  form.querySelectorAll(".custom-range").forEach((n) => { n.hidden = !custom; });
}

/** The form's values (empty ones left out) and the API's [from, to). */
export function readFilters(form) {
  const values = {};
  for (const name of FILTER_FIELDS) {
    const input = form.elements.namedItem(name);
    if (input && input.value !== "") values[name] = input.value.trim();
  }
  const range = periodRange(values.period || "all", values.from, values.to);
  return { values, range };
}

/**
 * Put the form's values in the URL (so a reload or a shared link shows the same list). A select left
 * at "all" is written as empty (`status=`), so that it is not replaced by the page's default again.
 */
export function writeFiltersToUrl(form, extra) {
  const params = new URLSearchParams();
  const custom = form.elements.namedItem("period")?.value === "custom";
  for (const name of FILTER_FIELDS) {
    const input = form.elements.namedItem(name);
    if (!input || input.disabled) continue;
    if ((name === "from" || name === "to") && !custom) continue;
    const value = input.value.trim();
    if (value === "" && input.tagName !== "SELECT") continue;
    if (name === "fuzzy" && !form.elements.namedItem("plate")?.value.trim()) continue;
    params.set(name, value);
  }
  for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined && v !== "") params.set(k, v);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
}

/**
 * Handle the form's reset button: put every field back to `defaults` (else empty) at once — not after
 * the browser's own reset, which would race with what the user does next — then call `then`.
 */
export function onFiltersReset(form, defaults, user, then) {
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    for (const name of FILTER_FIELDS) {
      const input = form.elements.namedItem(name);
      if (input) input.value = defaults[name] ?? (name === "fuzzy" ? "0" : "");
    }
    const district = form.elements.namedItem("district");
    if (district && user.role === "officer") district.value = user.district_id;
    syncCustomRange(form);
    then();
  });
}

/**
 * Fill the district select (officers: only their own, fixed) and the camera select if present (every
 * camera the user may see, with a position on the map or not).
 */
export async function fillPlaceSelects(form, user) {
  const district = form.elements.namedItem("district");
  const camera = form.elements.namedItem("camera");
  const [districts, cameras] = await Promise.all([
    api("/web/api/districts"),
    camera ? api("/web/api/cameras") : Promise.resolve(null),
  ]);
  if (district) {
    const current = district.value;
    district.replaceChildren();
    if (user.role !== "officer") district.append(el("option", { value: "" }, t("common.all")));
    for (const d of districts) district.append(el("option", { value: d.id }, d.name));
    district.value = user.role === "officer" ? user.district_id : current;
    district.disabled = user.role === "officer";
  }
  if (camera && cameras) {
    const current = camera.value;
    camera.replaceChildren(el("option", { value: "" }, t("common.all")));
    for (const c of cameras) camera.append(el("option", { value: c.id }, c.name));
    if (current && ![...camera.options].some((o) => o.value === current)) camera.append(el("option", { value: current }, current));
    camera.value = current;
  }
  return { districts, cameras };
}

/**
 * Whether a key event should be left to the control it happened in (typing, dialogs, modifiers). While
 * a dialog is open no key is a page shortcut, whatever has the focus: a note typed while a reason's
 * radio button is focused must not confirm ("c") or move on ("n") behind the dialog.
 */
export function isTyping(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return true;
  if (document.querySelector("dialog[open]") !== null) return true;
  const target = event.target;
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") {
    const type = (target.getAttribute("type") || "text").toLowerCase();
    return !["button", "submit", "checkbox", "radio", "reset"].includes(type);
  }
  return false;
}
