// Statistics: violations by type / hour / day / camera / district, confirmation and plate read rates,
// traffic flow by vehicle class and hour; a CSV of everything shown, and the confirmed-violations
// export for supervisors.
import {
  api, el, fillPlaceSelects, flash, onFiltersReset, fmtNumber, fmtPercent, initPage, label, readFilters, readFiltersFromUrl,
  saveBlob, setText, syncCustomRange, t, writeFiltersToUrl,
} from "./common.js";

const user = initPage();
const Chart = window.Chart;
const charts = {};
let shown = null; // the data of the charts, for the CSV
const names = { district: {}, camera: {} }; // id → name, for the chart labels

// Colours with at least 3:1 contrast against the white page (WCAG non-text contrast).
const COLOURS = { new: "#b45309", confirmed: "#15803d", rejected: "#6b7280", total: "#1d4ed8", flow: "#7c3aed" };

if (user) main();

async function main() {
  const form = document.getElementById("filters");
  readFiltersFromUrl(form, { period: "30d" });
  try {
    const [{ districts }, cameras] = await Promise.all([fillPlaceSelects(form, user), api("/web/api/cameras")]);
    for (const d of districts) names.district[d.id] = d.name;
    for (const c of cameras) names.camera[c.id] = c.name;
  } catch (e) {
    flash(e.message, "error");
  }
  Chart.defaults.animation = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#1f2937";
  form.addEventListener("submit", (event) => { event.preventDefault(); load(form); });
  form.addEventListener("change", (event) => {
    if (event.target.name === "period") syncCustomRange(form);
    if (event.target.name !== "from" && event.target.name !== "to") load(form);
  });
  onFiltersReset(form, { period: "30d" }, user, () => load(form));
  document.getElementById("stats-csv").addEventListener("click", downloadCsv);
  const exportButton = document.getElementById("export-csv");
  exportButton.hidden = !(user.role === "supervisor" || user.role === "admin");
  exportButton.addEventListener("click", () => downloadExport(form));
  await load(form);
}

async function load(form) {
  const { values, range } = readFilters(form);
  writeFiltersToUrl(form);
  const common = { from: range.from, to: range.to, district: values.district, utc_offset_minutes: 420 };
  const vGroups = ["rule", "hour", "day", "camera", "district"];
  const fGroups = ["class", "hour"];
  let results;
  try {
    results = await Promise.all([
      ...vGroups.map((g) => api("/api/v1/stats/violations", { query: { ...common, group_by: g } })),
      ...fGroups.map((g) => api("/api/v1/stats/flows", { query: { ...common, group_by: g } })),
    ]);
  } catch (e) {
    flash(e.message, "error");
    return;
  }
  const v = Object.fromEntries(vGroups.map((g, i) => [g, results[i]]));
  const f = Object.fromEntries(fGroups.map((g, i) => [g, results[vGroups.length + i]]));
  shown = { v, f };
  setText("k-total", fmtNumber(v.rule.total));
  setText("k-conf", fmtPercent(v.rule.confirmation_rate));
  setText("k-read", fmtPercent(v.rule.plate_read_rate));
  setText("k-flow", fmtNumber(f.class.total));

  stacked("rule", v.rule.groups.map((g) => label("rule", g.key)), v.rule.groups);
  bars("hour", fullHours(v.hour.groups).map((g) => g.key + "h"), fullHours(v.hour.groups).map((g) => g.total), COLOURS.total);
  // Every day of the period, the empty ones with 0 (the API fills them): a camera down for a week is a
  // week at zero, not a shorter line.
  line("day", v.day.groups.map((g) => g.key), v.day.groups.map((g) => g.total));
  dayNote(range.from, v.day);
  stacked("camera", v.camera.groups.map((g) => names.camera[g.key] || g.key || "?"), v.camera.groups, true);
  stacked("district", v.district.groups.map((g) => names.district[g.key] || g.key || "?"), v.district.groups);
  bars("flow-class", f.class.groups.map((g) => label("vehicle", g.key)), f.class.groups.map((g) => g.count), COLOURS.flow);
  bars("flow-hour", fullHours(f.hour.groups, "count").map((g) => g.key + "h"), fullHours(f.hour.groups, "count").map((g) => g.count), COLOURS.flow);
}

/** 24 hourly groups (the API leaves out hours without any). */
function fullHours(groups, field) {
  const byKey = Object.fromEntries(groups.map((g) => [String(Number(g.key)), g]));
  return Array.from({ length: 24 }, (_, h) => byKey[String(h)] || { key: String(h), total: 0, [field || "total"]: 0 });
}

function figure(key) { return document.querySelector(`figure[data-chart="${key}"]`); }

function draw(key, spec, empty) {
  const fig = figure(key);
  fig.querySelector(".no-data").hidden = !empty;
  fig.querySelector(".chart-box").hidden = empty;
  fig.dataset.points = String(spec.data.labels.length);
  if (charts[key]) charts[key].destroy();
  if (empty) { delete charts[key]; return; }
  charts[key] = new Chart(document.getElementById("chart-" + key), {
    ...spec,
    options: {
      responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: spec.data.datasets.length > 1, position: "bottom" } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      ...(spec.options || {}),
    },
  });
}

function stacked(key, labels, groups, horizontal) {
  const datasets = ["new", "confirmed", "rejected"].map((s) => ({
    label: label("status", s), data: groups.map((g) => g[s]), backgroundColor: COLOURS[s], stack: "s",
  }));
  const axis = horizontal ? { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } }
    : { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } };
  draw(key, { type: "bar", data: { labels, datasets }, options: { ...axis, plugins: { legend: { display: true, position: "bottom" } } } }, groups.length === 0);
}

function bars(key, labels, values, colour) {
  const empty = values.every((x) => !x);
  draw(key, { type: "bar", data: { labels, datasets: [{ label: t("stats.count"), data: values, backgroundColor: colour }] } }, empty);
}

function line(key, labels, values) {
  if (labels.length < 3) { bars(key, labels, values, COLOURS.total); return; }
  // Straight segments: a smoothed curve dips below 0 next to an empty day.
  draw(key, {
    type: "line",
    data: { labels, datasets: [{ label: t("stats.count"), data: values, borderColor: COLOURS.total, backgroundColor: COLOURS.total, tension: 0 }] },
  }, values.every((x) => !x));
}

/** The API counts at most the last days of a long period by day (its `from` is then later than ours): say so. */
function dayNote(requestedFrom, day) {
  const fig = figure("day");
  let note = fig.querySelector(".chart-note");
  if (!note) {
    note = el("p", { class: "muted chart-note" });
    fig.querySelector("figcaption").after(note);
  }
  const cut = day.from !== null && (requestedFrom === null || Date.parse(day.from) > Date.parse(requestedFrom));
  note.hidden = !cut;
  note.textContent = cut ? t("stats.day_recent", { n: day.groups.length }) : "";
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  // Quote everything that needs it; a leading = + - @ would be a formula in a spreadsheet.
  const safe = /^[=+\-@]/.test(text) ? "'" + text : text;
  return /[",\r\n']/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
}

function downloadCsv() {
  if (!shown) return;
  const lines = [["table", "group", "total", "new", "confirmed", "rejected", "plate_read", "count"]];
  for (const [group, data] of Object.entries(shown.v)) {
    for (const g of data.groups) lines.push(["violations_by_" + group, g.key, g.total, g.new, g.confirmed, g.rejected, g.plate_read, ""]);
  }
  for (const [group, data] of Object.entries(shown.f)) {
    for (const g of data.groups) lines.push(["flow_by_" + group, g.key, "", "", "", "", "", g.count]);
  }
  const text = "\ufeff" + lines.map((l) => l.map(csvCell).join(",")).join("\r\n") + "\r\n";
  saveBlob(new Blob([text], { type: "text/csv;charset=utf-8" }), "thong-ke-vi-pham.csv");
}

async function downloadExport(form) {
  const { values, range } = readFilters(form);
  try {
    const blob = await api("/api/v1/exports/confirmed.csv", { query: { from: range.from, to: range.to, district: values.district }, as: "blob" });
    saveBlob(blob, "vi-pham-da-xac-nhan.csv");
  } catch (e) {
    flash(e.message, "error");
  }
}
