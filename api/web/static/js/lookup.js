// Public lookup: plate + notice code → that violation's time, place, type, stills and status.
import { api, ApiError, el, fmtTime, initPage, label, setText, t } from "./common.js";

initPage();
const form = document.getElementById("lookup-form");
const error = document.getElementById("lookup-error");
const result = document.getElementById("lookup-result");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  result.hidden = true;
  if (!form.reportValidity()) return;
  const plate = form.elements.namedItem("plate").value.trim();
  const code = form.elements.namedItem("code").value.trim();
  let found;
  try {
    found = await api("/api/v1/lookup", { query: { plate, code }, anonymous: true });
  } catch (e) {
    const status = e instanceof ApiError ? e.status : 0;
    error.textContent = status === 404 || status === 422 ? t("lookup.not_found")
      : status === 410 ? t("lookup.withdrawn")
      : status === 429 ? t("lookup.rate_limited") : e.message;
    error.hidden = false;
    return;
  }
  setText("lr-plate", found.plate);
  const corrected = document.getElementById("lr-corrected");
  corrected.textContent = found.corrected_from ? t("lookup.corrected", { from: found.corrected_from, to: found.plate }) : "";
  corrected.hidden = !found.corrected_from;
  setText("lr-time", fmtTime(found.occurred_at));
  setText("lr-place", found.district ? found.place + " (" + found.district + ")" : found.place);
  setText("lr-type", label("rule", found.rule) + " — " + found.legal_reference);
  setText("lr-status", label("status", found.status));
  setText("lr-notice", found.notice_status ? label("nstate", found.notice_status) : null);
  const stills = document.getElementById("lr-stills");
  stills.replaceChildren(...found.stills.map((s) => el("figure", { class: "still" },
    el("img", { src: s.data_url, alt: label("ev", s.kind) }),
    el("figcaption", {}, label("ev", s.kind)))));
  result.hidden = false;
  result.scrollIntoView({ block: "start" });
});
