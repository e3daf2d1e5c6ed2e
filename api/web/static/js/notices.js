// Supervisors' list of due notice actions: find the owner / send the notice (10 days after the
// violation), warn the registration bodies (20 days after posting), soonest first, overdue marked. A
// notice held for a supervisor (its registered vehicle is of another class) shows why and what to do.
// Admins also import the vehicle registry here (a CSV file): the rows it refused are listed with their
// reasons in the page's language (the API's English reasons through `translateError`).
import { api, el, flash, fmtTime, initPage, label, t, translateError } from "./common.js";

const user = initPage();
if (user) main();

async function main() {
  if (user.role === "admin") setupImport();
  let due;
  try {
    due = await api("/api/v1/notices/due");
  } catch (e) {
    flash(e.message, "error");
    return;
  }
  const body = document.getElementById("due-body");
  body.replaceChildren(...due.map((d) => el("tr", { class: d.overdue ? "overdue" : "", dataset: { notice: String(d.notice_id) } },
    el("td", {}, fmtTime(d.due_at), d.overdue ? el("span", { class: "badge warn" }, " " + t("notice.overdue")) : null),
    // A held notice (the registry's vehicle class disagrees): the server's reason says why and what to do.
    el("td", {}, d.hold_reason ? t("due.held_action") : label("action", d.action),
      d.hold_reason ? el("p", { class: "warning hold-reason" }, el("strong", {}, t("due.held")), " " + d.hold_reason + " " + t("due.held_registry")) : null),
    el("td", {}, el("span", { class: "badge n-" + d.status }, label("nstate", d.status))),
    el("td", { class: "plate-text" }, d.plate || t("ev.plate_unread")),
    el("td", {}, fmtTime(d.occurred_at)),
    el("td", {}, el("a", { href: "/review?id=" + d.violation_id }, "#" + d.violation_id + " " + label("rule", d.rule))),
  )));
  document.getElementById("due-empty").hidden = due.length > 0;
  document.getElementById("due-count").textContent = t("due.count", { n: due.length });
}

// ---------------------------------------------------------------------------------------------
// Registry import (admins)
// ---------------------------------------------------------------------------------------------

function setupImport() {
  document.getElementById("import-card").hidden = false;
  const form = document.getElementById("import-form");
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("import-file").files[0];
    if (!file || busy) return;
    busy = true;
    const error = document.getElementById("import-error");
    error.hidden = true;
    try {
      showReport(await api("/api/v1/registry/import", { json: { csv: await file.text() } }));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      busy = false;
    }
  });
}

function showReport(report) {
  document.getElementById("import-summary").textContent = t("import.summary", {
    created: report.created, updated: report.updated, rejected: report.rejected.length,
  });
  document.getElementById("import-notices").textContent = t("import.notices", {
    found: report.owners_found, made: report.notices_created,
  });
  document.getElementById("import-rejected").hidden = report.rejected.length === 0;
  document.getElementById("import-body").replaceChildren(...report.rejected.map((r) => el("tr", { dataset: { line: String(r.line) } },
    el("td", {}, String(r.line)),
    el("td", { class: "plate-text" }, r.plate || t("common.none")),
    el("td", {}, translateError(r.reason)),
  )));
  document.getElementById("import-result").hidden = false;
}
