// The review queue and the evidence viewer.
//
// The list pages through the API's keyset cursor ("load more" asks for the rows after the last one
// shown, never an OFFSET). Keys: c confirm, r reject, j/n next, k/p previous, / search plate.
// The open violation is kept in the URL (?id=); a decision cut off by an expired session is kept in
// sessionStorage until the officer is back from the login page, and put back on the screen to send again.
import {
  api, ApiError, el, fillPlaceSelects, onFiltersReset, flash, fmtNumber, fmtPercent, fmtTime, fmtVnd, getToken, initPage, isTyping,
  label, readFilters, readFiltersFromUrl, saveBlob, setText, syncCustomRange, t, translateError, writeFiltersToUrl,
} from "./common.js";

const user = initPage();
// Rows per page: 50, or `?limit=` (1..200, the API's range).
const PAGE_SIZE = Math.min(200, Math.max(1, Number(new URLSearchParams(location.search).get("limit")) || 50));
// A decision being sent ({id, user, at, payload}); left there when the session expired meanwhile.
const PENDING_KEY = "pn.pending_decision";
const PENDING_MAX_AGE_MS = 8 * 3600 * 1000; // a shift

const form = document.getElementById("filters");
const body = document.getElementById("queue-body");
const more = document.getElementById("queue-more");
const viewerBody = document.getElementById("viewer-body");
const viewerEmpty = document.getElementById("viewer-empty");
const plateEdit = document.getElementById("ev-plate-edit");
const classEdit = document.getElementById("ev-class-edit"); // the vehicle class the confirmation fines
const evError = document.getElementById("ev-error");

const state = {
  items: [],        // ViolationSummaryPublic rows shown, in order
  cursor: null,     // next_cursor of the last page
  query: null,      // the filters of the list shown
  selected: -1,     // index in items of the open violation (-1: none or not in the list)
  current: null,    // ViolationPublic of the open violation
  dialogFor: null,  // ViolationPublic the reject or reopen dialog was opened for
  extras: null,     // EvidenceExtras of the open violation
  notice: null,     // NoticePublic of the open violation (null: none yet)
  urls: [],         // object URLs to revoke when another violation opens
  loadSeq: 0,       // to drop answers of superseded list requests
  viewSeq: 0,       // the same for the viewer
  busy: false,
};

if (user) main();

async function main() {
  const params = new URLSearchParams(location.search);
  readFiltersFromUrl(form, { period: params.has("id") || params.has("camera") ? "all" : "7d", status: params.has("id") ? "" : "new" });
  try {
    await fillPlaceSelects(form, user);
  } catch (e) {
    flash(e.message, "error");
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); reload(); });
  form.addEventListener("change", (event) => {
    if (event.target.name === "period") syncCustomRange(form);
  });
  onFiltersReset(form, { period: "7d", status: "new" }, user, reload);
  more.addEventListener("click", () => loadPage(false));
  document.addEventListener("keydown", onKey);
  document.getElementById("ev-confirm").addEventListener("click", confirmCurrent);
  document.getElementById("ev-reject").addEventListener("click", openReject);
  document.getElementById("ev-reopen").addEventListener("click", openReopen);
  document.getElementById("reject-form").addEventListener("submit", submitReject);
  document.getElementById("reopen-form").addEventListener("submit", submitReopen);
  document.getElementById("notice-post").addEventListener("click", markPosted);
  document.getElementById("notice-pdf").addEventListener("click", noticePdf);
  document.getElementById("ev-package").addEventListener("click", evidencePackage);
  document.querySelectorAll(".still-open").forEach((b) => b.addEventListener("click", () => enlarge(b.querySelector("img"))));
  plateEdit.addEventListener("input", debounce(checkPlate, 250));
  plateEdit.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); confirmCurrent(); }
  });
  await loadPage(true);
  const wanted = Number(params.get("id"));
  if (wanted > 0) {
    const index = state.items.findIndex((i) => i.id === wanted);
    await (index >= 0 ? select(index) : openViolation(wanted, -1));
  } else if (state.items.length) {
    await select(0, { focusRow: false });
  }
  // (no token: a 401 meanwhile, on the way to the login page again; the decision waits there)
  const pending = getToken() ? takePending() : null;
  if (pending) restorePending(pending);
}

function reload() { return loadPage(true); }

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------

async function loadPage(reset) {
  const seq = ++state.loadSeq;
  if (reset) {
    const { values, range } = readFilters(form);
    writeFiltersToUrl(form, { limit: PAGE_SIZE !== 50 ? PAGE_SIZE : null, id: state.current ? state.current.id : null });
    state.query = {
      status: values.status, rule: values.rule, camera: values.camera, district: values.district,
      from: range.from, to: range.to, plate: values.plate, fuzzy: values.plate ? values.fuzzy : null,
    };
    state.cursor = null;
  }
  let page;
  try {
    page = await api("/api/v1/violations", { query: { ...state.query, cursor: reset ? null : state.cursor, limit: PAGE_SIZE } });
  } catch (e) {
    if (seq === state.loadSeq) flash(e.message, "error");
    return;
  }
  if (seq !== state.loadSeq) return;
  if (reset) {
    state.items = [];
    body.replaceChildren();
    state.selected = -1;
  }
  const start = state.items.length;
  state.items.push(...page.items);
  body.append(...page.items.map((item, i) => row(item, start + i)));
  state.cursor = page.next_cursor;
  more.hidden = !page.next_cursor;
  document.getElementById("queue-end").hidden = !!page.next_cursor || state.items.length === 0;
  document.getElementById("queue-empty").hidden = state.items.length > 0 || !!page.next_cursor;
  document.getElementById("queue-bounded").hidden = !page.bounded_scan;
  document.getElementById("queue-count").textContent = t("review.loaded", { n: state.items.length });
  if (reset && state.current) {
    state.selected = state.items.findIndex((i) => i.id === state.current.id);
    markSelected();
  }
}

function row(item, index) {
  const open = (event) => { event.preventDefault(); select(index); };
  return el("tr", { dataset: { id: String(item.id), status: item.status }, "aria-selected": "false", onclick: open },
    el("td", {}, el("a", { href: "/review?id=" + item.id, class: "row-open", onclick: open }, fmtTime(item.occurred_at))),
    el("td", { class: "plate-text" }, item.plate_formatted && item.plate === compact(item.plate_formatted) ? item.plate_formatted : (item.plate || t("ev.plate_unread"))),
    el("td", {}, label("rule", item.rule)),
    el("td", {}, item.camera_id),
    el("td", {}, el("span", { class: "badge s-" + item.status }, label("status", item.status))),
  );
}

function compact(text) { return (text || "").toUpperCase().replace(/[\s.\-·:_]/g, ""); }

function markSelected() {
  body.querySelectorAll("tr").forEach((tr, i) => {
    const on = i === state.selected;
    tr.setAttribute("aria-selected", on ? "true" : "false");
    tr.classList.toggle("selected", on);
  });
}

function select(index, opts) {
  if (index < 0 || index >= state.items.length) return;
  state.selected = index;
  markSelected();
  const tr = body.children[index];
  if (tr) {
    tr.scrollIntoView({ block: "nearest" });
    if (!opts || opts.focusRow !== false) tr.querySelector("a.row-open")?.focus({ preventScroll: true });
  }
  return openViolation(state.items[index].id, index);
}

async function move(delta) {
  if (!state.items.length) return;
  let next = state.selected < 0 ? 0 : state.selected + delta;
  if (next >= state.items.length && state.cursor) {
    await loadPage(false);
  }
  next = Math.max(0, Math.min(next, state.items.length - 1));
  if (next !== state.selected) select(next);
}

// ---------------------------------------------------------------------------------------------
// The evidence viewer
// ---------------------------------------------------------------------------------------------

async function openViolation(id, index) {
  const seq = ++state.viewSeq;
  evError.hidden = true;
  let v, extras;
  try {
    [v, extras] = await Promise.all([
      api("/api/v1/violations/" + id),
      api("/web/api/violations/" + id + "/evidence"),
    ]);
  } catch (e) {
    if (seq !== state.viewSeq) return;
    viewerBody.hidden = true;
    viewerEmpty.hidden = false;
    viewerEmpty.textContent = e instanceof ApiError && e.status === 404 ? t("common.not_found") + " (#" + id + ")" : e.message;
    return;
  }
  if (seq !== state.viewSeq) return;
  state.current = v;
  state.extras = extras;
  keepIdInUrl(v.id);
  if (index < 0) {
    state.selected = state.items.findIndex((i) => i.id === v.id);
    markSelected();
  }
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
  render(v, extras);
  viewerEmpty.hidden = true;
  viewerBody.hidden = false;
  loadImages(v, seq);
  loadNotice(v.id, seq);
}

/** The open violation in the page's URL: a reload, or the way back from the login page, reopens it. */
function keepIdInUrl(id) {
  const params = new URLSearchParams(location.search);
  params.set("id", String(id));
  history.replaceState(null, "", location.pathname + "?" + params.toString());
}

function render(v, extras) {
  setText("ev-rule", label("rule", v.rule));
  const status = document.getElementById("ev-status");
  status.textContent = label("status", v.status);
  status.className = "badge s-" + v.status;
  setText("ev-id", "#" + v.id);
  document.getElementById("ev-decided").textContent = v.reviewed_at
    ? t("ev.decided", { status: label("status", v.status), by: v.reviewed_by_name || "#" + v.reviewed_by, at: fmtTime(v.reviewed_at) })
      + (v.decision_reason ? " — " + label("reason", v.decision_reason) : "") + (v.decision_note ? ": " + v.decision_note : "")
    : "";
  document.getElementById("ev-purged").hidden = !v.evidence_purged_at;
  document.getElementById("ev-pending").hidden = true;

  const plate = v.plate;
  const reading = plate ? (plate.formatted || plate.text || plate.compact) : null;
  setText("ev-plate-text", reading || t("ev.plate_unread"));
  const valid = document.getElementById("ev-plate-valid");
  // `valid` is the server's own grammar check of the reading, never the device's word
  valid.textContent = plate ? (plate.valid ? t("ev.plate_valid") : t("ev.plate_invalid")) : "";
  valid.className = "badge " + (plate && plate.valid ? "ok" : "warn");
  valid.title = plate && !plate.valid && plate.problem ? translateError(plate.problem) : "";
  valid.hidden = !plate;
  setText("ev-plate-conf", plate && plate.confidence !== null ? fmtPercent(plate.confidence) : null);
  const alts = (extras.plate_alternatives || []).filter(([text]) => text !== reading);
  const altsNode = document.getElementById("ev-plate-alts");
  altsNode.replaceChildren(...(alts.length ? alts.map(([text, p]) => el("span", { class: "alt" }, el("span", { class: "plate-text" }, text), " (" + fmtPercent(p) + ")")) : [t("common.none")]));
  setText("ev-plate-colour", plate ? label("colour", plate.colour) : null);
  setText("ev-plate-lines", plate ? plate.lines : null);
  const corrected = plate && plate.corrected ? plate.corrected : null;
  // A reading that is not a plate is no default: the officer types the plate (the server refuses it too).
  plateEdit.value = corrected || (plate && plate.valid ? reading : "") || "";
  plateEdit.dataset.initial = plateEdit.value;
  plateEdit.disabled = v.status !== "new";
  document.getElementById("ev-plate-check").textContent = corrected ? t("ev.plate_corrected") + " " + corrected : "";

  setText("ev-time", fmtTime(v.occurred_at));
  setText("ev-camera", (extras.camera_name ? extras.camera_name + " " : "") + "(" + v.camera_id + ")");
  setText("ev-district", extras.district_name || v.district_id);
  setText("ev-vehicle", label("vehicle", v.vehicle_class)
    + (v.vehicle_class_corrected ? " (" + t("ev.class_corrected", { d: label("vehicle", v.vehicle_class_detected) }) + ")" : ""));
  classEdit.value = v.vehicle_class; // "" for a class the catalogue does not fine (no option)
  classEdit.dataset.initial = classEdit.value;
  classEdit.disabled = v.status !== "new";
  setText("ev-signal", v.signal_state
    ? label("signal", v.signal_state) + (v.red_for_s !== null && v.signal_state === "red" ? " — " + t("ev.red_for", { s: fmtNumber(v.red_for_s, 1) }) : "")
    : null);
  setText("ev-speed", v.speed_kmh !== null ? fmtNumber(v.speed_kmh, 1) + " km/h" + (v.speed_limit_kmh !== null ? " / " + fmtNumber(v.speed_limit_kmh) + " km/h" : "") : null);
  // What the owner's notice will state (the legal catalogue's basis for the rule, the class as
  // corrected and the day), never the figures the device wrote (its `details.legal`): a device with a
  // wrong decree table would have the officer confirm a motorbike on the car's fine.
  const basis = v.legal_basis;
  const note = citationNote(v);
  // (replaceChildren writes a null as the text "null": leave out what there is not)
  document.getElementById("ev-legal").replaceChildren(
    el("span", { id: "ev-legal-citation" }, basis.citation),
    ...(basis.summary ? [el("br"), el("span", { class: "muted" }, basis.summary)] : []),
    ...(note ? [note] : []));
  setText("ev-fine", basis.fine_min_vnd !== null && basis.fine_max_vnd !== null ? fmtVnd(basis.fine_min_vnd) + " – " + fmtVnd(basis.fine_max_vnd) : null);
  setText("ev-points", basis.licence_points !== null ? String(basis.licence_points) : null);
  const integrity = document.getElementById("ev-integrity");
  // Every failure, by name (a file, a column recorded otherwise than the device signed it, ...).
  const problems = extras.check.problems && extras.check.problems.length ? extras.check.problems : [extras.check.problem || "?"];
  integrity.textContent = extras.check.ok ? t("ev.sig_ok", { d: extras.check.device_id }) : t("ev.sig_bad", { why: problems.join("; ") });
  integrity.className = extras.check.ok ? "ok-text" : "error";
  document.getElementById("ev-package").disabled = !!v.evidence_purged_at; // deleted: nothing to verify

  const decided = v.status !== "new";
  document.getElementById("ev-confirm").disabled = decided || !!v.evidence_purged_at;
  document.getElementById("ev-reject").disabled = decided; // no evidence left: it can still be rejected
  // A purged violation cannot be reviewed again (nothing left to decide on): no reopening.
  document.getElementById("ev-reopen").hidden =
    !(decided && !v.evidence_purged_at && (user.role === "supervisor" || user.role === "admin"));

  const clip = v.files.find((f) => f.kind === "clip" && !f.deleted);
  const clipBox = document.getElementById("ev-clip");
  clipBox.replaceChildren(clip
    ? el("button", { type: "button", class: "secondary", id: "ev-clip-download", onclick: () => downloadFile(v.id, clip.name, v.event_id + ".mp4") }, t("ev.clip_download"))
    : el("p", { class: "muted" }, t("ev.no_clip")));
  document.getElementById("ev-clip-note").hidden = !clip;
  renderPenalty(v.penalty_messages || []);
}

/**
 * Why the legal basis shown is not the citation the device signed, or null when it is: the catalogue
 * has no such citation for the class the camera saw (a wrong decree table on the device: flagged at
 * ingest), the class was corrected on review, or the decree was amended; or the catalogue has no
 * entry at all (the notice then states the device's citation and no fine).
 */
function citationNote(v) {
  const basis = v.legal_basis;
  const detected = label("vehicle", v.vehicle_class_detected);
  let text;
  if (!basis.in_catalogue) {
    text = t("ev.legal_none");
  } else if (v.legal_reference_signed !== basis.citation) {
    const why = v.citation_mismatch ? t("ev.legal_device_wrong", { d: detected })
      : v.vehicle_class_corrected ? t("ev.legal_device_class", { d: detected })
        : t("ev.legal_device_amended");
    text = t("ev.legal_device", { c: v.legal_reference_signed }) + " " + why + " " + t("ev.legal_stated");
  } else {
    return null;
  }
  return el("p", { id: "ev-legal-note", class: "warning" }, text);
}

/**
 * The violation's messages to the penalty system, oldest first: each confirmation ("Chuyển xử phạt")
 * and, when it was reopened, the withdrawal of it ("Thu hồi"), with their delivery state.
 */
function renderPenalty(messages) {
  document.getElementById("penalty-none").hidden = messages.length > 0;
  document.getElementById("penalty-table").hidden = messages.length === 0;
  document.getElementById("penalty-body").replaceChildren(...messages.map((m) => el("tr", { dataset: { kind: m.kind, status: m.status } },
    el("td", {}, label("pkind", m.kind)),
    el("td", {}, el("span", { class: "badge p-" + m.status }, label("pstatus", m.status))),
    el("td", {}, fmtTime(m.created_at),
      m.delivered_at ? el("span", { class: "muted sms-line" }, t("penalty.delivered_at", { t: fmtTime(m.delivered_at) })) : null),
    el("td", {}, String(m.attempts),
      m.status === "pending" && m.last_error && m.next_attempt_at
        ? el("span", { class: "muted sms-line" }, t("penalty.retry_at", { t: fmtTime(m.next_attempt_at) })) : null,
      m.last_error ? el("span", { class: "muted sms-line" }, t("penalty.error", { e: m.last_error })) : null),
  )));
}

// ---------------------------------------------------------------------------------------------
// The owner notice (state, lookup code, the 10- and 20-day clocks, SMS delivery)
// ---------------------------------------------------------------------------------------------

async function loadNotice(id, seq) {
  let notice = null;
  try {
    notice = await api("/api/v1/violations/" + id + "/notice");
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) flash(e.message, "error");
  }
  if (seq !== state.viewSeq) return;
  renderNotice(notice);
}

function renderNotice(notice) {
  state.notice = notice;
  document.getElementById("notice-none").hidden = !!notice;
  document.getElementById("notice-body").hidden = !notice;
  if (!notice) return;
  const badge = document.getElementById("notice-state");
  badge.textContent = label("nstate", notice.status);
  const hold = document.getElementById("notice-hold"); // held for a supervisor: why (Vietnamese, from the server)
  hold.textContent = notice.hold_reason || "";
  hold.hidden = !notice.hold_reason;
  badge.className = "badge n-" + notice.status;
  document.getElementById("notice-overdue").hidden = !notice.overdue;
  setText("notice-code", notice.lookup_code || t("notice.code_unknown"));
  setText("notice-next", notice.next_action ? label("action", notice.next_action) : null);
  setText("notice-due", fmtTime(notice.notice_due_at));
  setText("notice-posted", notice.posted_at ? fmtTime(notice.posted_at) : null);
  setText("notice-escalate", notice.escalate_due_at ? fmtTime(notice.escalate_due_at) : t("notice.escalate_pending"));
  const sms = document.getElementById("notice-sms");
  sms.replaceChildren(...(notice.sms.length ? notice.sms.map((m) => el("span", { class: "sms-line", dataset: { status: m.status } },
    el("span", { class: "badge sms-" + m.status }, label("sms", m.status)), " ",
    (m.delivered_at || m.sent_at ? fmtTime(m.delivered_at || m.sent_at) + " · " : "") + t("notice.sms_attempts", { n: m.attempts }),
    m.last_error ? el("span", { class: "muted" }, " " + t("notice.sms_error", { e: m.last_error })) : null))
    : [el("span", { class: "muted" }, t("notice.sms_none"))]));
  document.getElementById("notice-post").hidden = !["created", "sms_sent"].includes(notice.status);
  // Printed only for a confirmed violation whose notice has an owner and is not closed (the server's
  // PRINTABLE_STATES, api/routes/notices.py): never a fine that was withdrawn on review.
  const printable = state.current && state.current.status === "confirmed"
    && ["created", "sms_sent", "posted", "escalated_20d", "responded"].includes(notice.status);
  document.getElementById("notice-pdf").hidden = !printable || !(user.role === "supervisor" || user.role === "admin");
}

async function markPosted() {
  const v = state.current;
  if (!v || !state.notice || state.busy) return;
  state.busy = true;
  try {
    const notice = await api("/api/v1/violations/" + v.id + "/notice/posted", { json: {} });
    renderNotice(notice);
    flash(t("notice.posted_ok", { id: notice.id }));
  } catch (e) {
    flash(e.message, "error");
  } finally {
    state.busy = false;
  }
}

async function noticePdf() {
  const v = state.current;
  if (!v) return;
  try {
    saveBlob(await api("/api/v1/violations/" + v.id + "/notice.pdf", { as: "blob" }), "thong-bao-" + v.id + ".pdf");
  } catch (e) {
    flash(e.message, "error");
  }
}

/** The signed evidence package (zip) for checking without trusting the server (`phatnguoi evidence verify`). */
async function evidencePackage() {
  const v = state.current;
  if (!v) return;
  try {
    saveBlob(await api("/api/v1/violations/" + v.id + "/package", { as: "blob" }), v.event_id + ".zip");
  } catch (e) {
    flash(e.message, "error");
  }
}

async function loadImages(v, seq) {
  const byKind = Object.fromEntries(v.files.filter((f) => !f.deleted).map((f) => [f.kind, f]));
  const targets = [...document.querySelectorAll(".stills img[data-kind]"), document.getElementById("ev-plate-img")];
  await Promise.all(targets.map(async (img) => {
    const kind = img.dataset.kind || "plate";
    img.removeAttribute("src");
    img.closest("figure").classList.toggle("missing", !byKind[kind]);
    if (!byKind[kind]) return;
    try {
      const blob = await api("/api/v1/violations/" + v.id + "/files/" + encodeURIComponent(byKind[kind].name), { as: "blob" });
      if (seq !== state.viewSeq) return;
      const url = URL.createObjectURL(blob);
      state.urls.push(url);
      img.src = url;
    } catch (e) {
      img.closest("figure").classList.add("missing");
    }
  }));
}

async function downloadFile(id, name, filename) {
  try {
    saveBlob(await api("/api/v1/violations/" + id + "/files/" + encodeURIComponent(name), { as: "blob" }), filename);
  } catch (e) {
    flash(e.message, "error");
  }
}

function enlarge(img) {
  if (!img.src) return;
  const large = document.getElementById("still-large");
  large.src = img.src;
  large.alt = img.alt;
  document.getElementById("still-dialog").showModal();
}

async function checkPlate() {
  const text = plateEdit.value.trim();
  const out = document.getElementById("ev-plate-check");
  if (!text || text === plateEdit.dataset.initial) { out.textContent = ""; out.className = "hint"; return; }
  try {
    const r = await api("/web/api/plate-check", { query: { text } });
    if (plateEdit.value.trim() !== text) return;
    out.textContent = r.valid ? t("ev.plate_ok") + " " + r.formatted : translateError(r.problem);
    out.className = r.valid ? "hint ok-text" : "hint error";
  } catch (e) {
    out.textContent = e.message;
    out.className = "hint error";
  }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

/**
 * Send a decision on violation `v` (the one the officer decided on, whatever the viewer shows by the
 * time the answer comes). Until the server answers, the decision is kept in sessionStorage: when the
 * session expired (401, and common.js goes to the login page) the page puts it back after the login
 * (`restorePending`). A 409 (decided by someone else meanwhile) shows the violation as it is now.
 */
async function decide(v, payload) {
  if (!v || state.busy) return null;
  state.busy = true;
  evError.hidden = true;
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ id: v.id, user: user.username, at: Date.now(), payload }));
  try {
    const updated = await api("/api/v1/violations/" + v.id + "/decision", { json: payload });
    sessionStorage.removeItem(PENDING_KEY);
    afterChange(updated);
    return updated;
  } catch (e) {
    const status = e instanceof ApiError ? e.status : 0;
    if (status !== 401) sessionStorage.removeItem(PENDING_KEY);
    evError.textContent = e.message;
    evError.hidden = false;
    if (status === 409) {
      document.getElementById("reject-dialog").close();
      await refresh(v.id);
      document.getElementById("viewer").focus({ preventScroll: true });
    } else if (payload.plate || (status === 422 && !(v.plate && v.plate.valid))) {
      plateEdit.focus();
    } else if (payload.vehicle_class) {
      classEdit.focus();
    }
    return null;
  } finally {
    state.busy = false;
  }
}

/** Fetch violation `id` again and show it as it is now, when it was decided meanwhile (a 409). */
async function refresh(id) {
  let fresh;
  try {
    fresh = await api("/api/v1/violations/" + id);
  } catch (e) {
    return; // the 409's message is shown already
  }
  // Still to decide (refused for another reason): keep what the officer typed.
  if (fresh.status !== "new") afterChange(fresh);
}

/** Show a changed violation: its row in the list, and the viewer when it still shows it. */
function afterChange(updated) {
  const index = state.items.findIndex((i) => i.id === updated.id);
  if (index >= 0) {
    const item = state.items[index];
    item.status = updated.status;
    if (updated.plate) item.plate = updated.plate.key;
    const tr = row(item, index);
    body.children[index].replaceWith(tr);
    markSelected();
  }
  if (!state.current || state.current.id !== updated.id) return;
  state.current = updated;
  render(updated, state.extras);
  loadNotice(updated.id, state.viewSeq);
}

function showing(v) { return !!state.current && state.current.id === v.id; }

async function confirmCurrent() {
  const v = state.current;
  if (!v || v.status !== "new") return;
  const edited = plateEdit.value.trim();
  const payload = { decision: "confirm" };
  if (edited && edited !== plateEdit.dataset.initial) payload.plate = edited;
  if (classEdit.value !== classEdit.dataset.initial) payload.vehicle_class = classEdit.value;
  const updated = await decide(v, payload);
  if (updated) {
    flash(t("ev.confirmed_ok", { id: updated.id }));
    if (showing(updated)) advance();
  }
}

function openReject() {
  const v = state.current;
  if (!v || v.status !== "new") return;
  state.dialogFor = v; // the rejection goes to this one, whatever the viewer shows meanwhile
  document.getElementById("reject-for").textContent = t("ev.reject_for", { id: v.id });
  document.getElementById("reject-error").hidden = true;
  document.getElementById("reject-pending").hidden = true;
  document.getElementById("reject-note").value = "";
  const dialog = document.getElementById("reject-dialog");
  dialog.showModal();
  dialog.querySelector("input[name=reason]:checked")?.focus();
}

async function submitReject(event) {
  const dialog = document.getElementById("reject-dialog");
  if (event.submitter && event.submitter.value === "cancel") return;
  event.preventDefault();
  const reason = dialog.querySelector("input[name=reason]:checked").value;
  const note = document.getElementById("reject-note").value.trim();
  const error = document.getElementById("reject-error");
  if (reason === "other" && !note) {
    error.textContent = t("ev.note_required");
    error.hidden = false;
    document.getElementById("reject-note").focus();
    return;
  }
  const updated = await decide(state.dialogFor, { decision: "reject", reason, note: note || null });
  if (updated) {
    dialog.close();
    flash(t("ev.rejected_ok", { id: updated.id }));
    if (showing(updated)) advance();
  } else if (dialog.open) {
    error.textContent = evError.textContent;
    error.hidden = false;
  }
}

function openReopen() {
  state.dialogFor = state.current;
  document.getElementById("reopen-note").value = "";
  document.getElementById("reopen-dialog").showModal();
}

async function submitReopen(event) {
  if (event.submitter && event.submitter.value === "cancel") return;
  event.preventDefault();
  const note = document.getElementById("reopen-note").value.trim();
  if (!note) { document.getElementById("reopen-note").reportValidity(); return; }
  const v = state.dialogFor;
  try {
    const updated = await api("/api/v1/violations/" + v.id + "/reopen", { json: { note } });
    document.getElementById("reopen-dialog").close();
    afterChange(updated);
    flash(t("ev.reopened_ok", { id: updated.id }));
  } catch (e) {
    document.getElementById("reopen-dialog").close();
    flash(e.message, "error");
  }
}

/**
 * After a decision, open the next violation of the list that is still to review. When none follows,
 * the focus goes to the viewer (the button pressed is disabled now: the focus would drop to the page).
 */
function advance() {
  for (let i = state.selected + 1; i < state.items.length; i++) {
    if (state.items[i].status === "new") { select(i); return; }
  }
  if (state.selected >= 0 && state.selected + 1 < state.items.length) { select(state.selected + 1); return; }
  document.getElementById("viewer").focus({ preventScroll: true });
}

/** The decision left unsent when the session expired, if it is this officer's and recent; then forgotten. */
function takePending() {
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  } catch (e) {
    pending = null;
  }
  sessionStorage.removeItem(PENDING_KEY);
  if (!pending || !pending.payload || pending.user !== user.username) return null;
  return Date.now() - pending.at < PENDING_MAX_AGE_MS ? pending : null;
}

/** Put a decision left unsent back on the screen, said so, to be checked and sent again (never by itself). */
function restorePending(pending) {
  const v = state.current;
  if (!v || v.id !== pending.id || v.status !== "new") return;
  const p = pending.payload;
  if (p.decision === "confirm") {
    if (p.plate) {
      plateEdit.value = p.plate;
      checkPlate();
    }
    if (p.vehicle_class) classEdit.value = p.vehicle_class;
    document.getElementById("ev-pending").hidden = false;
    document.getElementById("ev-confirm").focus();
  } else if (p.decision === "reject") {
    openReject();
    const dialog = document.getElementById("reject-dialog");
    const radio = [...dialog.querySelectorAll("input[name=reason]")].find((r) => r.value === p.reason);
    if (radio) {
      radio.checked = true;
      radio.focus();
    }
    document.getElementById("reject-note").value = p.note || "";
    document.getElementById("reject-pending").hidden = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Keyboard
// ---------------------------------------------------------------------------------------------

function onKey(event) {
  if (event.key === "/" && !isTyping(event)) {
    event.preventDefault();
    const plate = form.elements.namedItem("plate");
    plate.focus();
    plate.select();
    return;
  }
  if (isTyping(event)) return;
  switch (event.key) {
    case "j": case "n": event.preventDefault(); move(1); break;
    case "k": case "p": event.preventDefault(); move(-1); break;
    case "c": event.preventDefault(); confirmCurrent(); break;
    case "r": event.preventDefault(); openReject(); break;
    default: break;
  }
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
