// Supervisors' list of due notice actions: find the owner / send the notice (10 days after the
// violation), warn the registration bodies (20 days after posting), soonest first, overdue marked.
import { api, el, flash, fmtTime, initPage, label, t } from "./common.js";

const user = initPage();
if (user) main();

async function main() {
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
    el("td", {}, label("action", d.action)),
    el("td", {}, el("span", { class: "badge n-" + d.status }, label("nstate", d.status))),
    el("td", { class: "plate-text" }, d.plate || t("ev.plate_unread")),
    el("td", {}, fmtTime(d.occurred_at)),
    el("td", {}, el("a", { href: "/review?id=" + d.violation_id }, "#" + d.violation_id + " " + label("rule", d.rule))),
  )));
  document.getElementById("due-empty").hidden = due.length > 0;
  document.getElementById("due-count").textContent = t("due.count", { n: due.length });
}
