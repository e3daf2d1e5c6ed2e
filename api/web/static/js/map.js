// The map: cameras (online / stale / never heard from) and the period's violations, clustered.
// Tiles only when a tile server is configured; otherwise the markers lie on a blank background.
import {
  api, config, el, fillPlaceSelects, onFiltersReset, flash, fmtTime, initPage, label, readFilters, readFiltersFromUrl,
  syncCustomRange, t, writeFiltersToUrl,
} from "./common.js";

const user = initPage();
const L = window.L;

if (user) main();

async function main() {
  const form = document.getElementById("filters");
  readFiltersFromUrl(form, { period: "today" });
  const map = L.map("map", {
    zoomControl: false, attributionControl: true, minZoom: 3, maxZoom: 19,
    // No animations: markers stay put (old police PCs, and tests that click them).
    zoomAnimation: false, markerZoomAnimation: false, fadeAnimation: false,
  })
    .setView(config.map.center, config.map.zoom);
  // Leaflet's controls speak English: their names in the page's language.
  L.control.zoom({ zoomInTitle: t("map.zoom_in"), zoomOutTitle: t("map.zoom_out") }).addTo(map);
  map.on("popupopen", (event) => {
    event.popup.getElement()?.querySelector(".leaflet-popup-close-button")?.setAttribute("aria-label", t("common.close"));
  });
  if (config.map.tileUrl) {
    L.tileLayer(config.map.tileUrl, { maxZoom: 19, attribution: config.map.attribution || "" }).addTo(map);
  }
  map.attributionControl.setPrefix(false);
  const cameraLayer = L.layerGroup().addTo(map);
  const violationLayer = L.markerClusterGroup({
    showCoverageOnHover: false,
    animate: false,
    maxClusterRadius: 50,
    spiderfyOnMaxZoom: true,
    iconCreateFunction: (cluster) => L.divIcon({
      html: "<span>" + cluster.getChildCount() + "</span>",
      className: "v-cluster",
      iconSize: L.point(36, 36),
    }),
  }).addTo(map);
  const layers = L.control.layers(null, { [t("map.cameras")]: cameraLayer, [t("map.violations")]: violationLayer }, { collapsed: false }).addTo(map);
  const layersToggle = layers.getContainer().querySelector(".leaflet-control-layers-toggle");
  if (layersToggle) layersToggle.title = t("map.layers");

  try {
    await fillPlaceSelects(form, user);
  } catch (e) {
    flash(e.message, "error");
  }
  let fitted = false;

  async function load() {
    const { values, range } = readFilters(form);
    writeFiltersToUrl(form);
    const district = values.district || null;
    let cameras, violations;
    try {
      [cameras, violations] = await Promise.all([
        api("/api/v1/map/cameras.geojson", { query: { district } }),
        api("/api/v1/map/violations.geojson", {
          query: { from: range.from, to: range.to, rule: values.rule, status: values.status, district, limit: 5000 },
        }),
      ]);
    } catch (e) {
      flash(e.message, "error");
      return;
    }
    cameraLayer.clearLayers();
    for (const f of cameras.features) cameraLayer.addLayer(cameraMarker(f));
    violationLayer.clearLayers();
    violationLayer.addLayers(violations.features.map(violationMarker));
    const count = violations.features.length;
    document.getElementById("map-count").textContent = t("map.count", { n: count });
    const truncated = document.getElementById("map-truncated");
    truncated.hidden = !violations.truncated;
    truncated.textContent = t("map.truncated", { n: count });
    if (!fitted) {
      const points = [...cameras.features, ...violations.features].map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
      if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 16 });
      fitted = true;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  form.addEventListener("change", (event) => {
    if (event.target.name === "period") syncCustomRange(form);
    if (event.target.name !== "from" && event.target.name !== "to") load();
  });
  onFiltersReset(form, { period: "today" }, user, load);
  await load();
}

function latLng(feature) {
  return [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
}

function cameraMarker(feature) {
  const p = feature.properties;
  const status = label("camera", p.status);
  const marker = L.marker(latLng(feature), {
    // Drawn as a pin above its position: the camera's violations cluster on the position itself.
    icon: L.divIcon({ className: "cam-marker cam-" + p.status, iconSize: [22, 22], iconAnchor: [11, 46], popupAnchor: [0, -44], html: "" }),
    title: p.name + " — " + status,
    alt: t("map.cameras") + ": " + p.name + " — " + status,
    keyboard: true,
    riseOnHover: true,
    zIndexOffset: 1000,
  });
  marker.on("add", () => {
    const node = marker.getElement();
    if (node) { node.dataset.camera = p.id; node.dataset.status = p.status; }
  });
  // Names always shown: on a map without tiles they are the only landmarks.
  marker.bindTooltip(el("span", {}, p.name), { permanent: true, direction: "right", offset: [14, -34], className: "cam-label" });
  marker.bindPopup(() => el("div", { class: "popup", dataset: { camera: p.id } },
    el("strong", {}, p.name),
    el("p", {}, el("span", { class: "badge cam-" + p.status }, status)),
    el("p", { class: "muted" }, t("camera.last_seen") + " " + fmtTime(p.last_seen)),
    el("a", { href: "/review?camera=" + encodeURIComponent(p.id) + "&period=all", class: "button primary" }, t("camera.open_queue")),
  ));
  return marker;
}

function violationMarker(feature) {
  const p = feature.properties;
  const marker = L.marker(latLng(feature), {
    icon: L.divIcon({ className: "v-marker v-" + p.status, iconSize: [16, 16], html: "" }),
    title: label("rule", p.rule) + " — " + fmtTime(p.occurred_at),
    alt: t("map.violations") + " #" + p.id,
    keyboard: true,
  });
  marker.on("add", () => {
    const node = marker.getElement();
    if (node) node.dataset.violation = String(p.id);
  });
  marker.bindPopup(() => el("div", { class: "popup", dataset: { violation: String(p.id) } },
    el("strong", {}, label("rule", p.rule)),
    el("p", {}, fmtTime(p.occurred_at)),
    el("p", {}, el("span", { class: "badge s-" + p.status }, label("status", p.status)), " · ", p.camera_id),
    el("a", { href: "/review?id=" + p.id + "&period=all", class: "button primary" }, t("map.open_violation")),
  ));
  return marker;
}
