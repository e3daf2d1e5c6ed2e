#!/bin/sh
# Copies the built files of the pinned npm packages (package.json + package-lock.json) into
# static/vendor/ (served by the app) and axe-core into tests/web/vendor/ (browser accessibility test).
# The copies are committed: neither the app nor CI needs npm. To update a library:
#   cd api/web && npm install <pkg>@<version> && npm run vendor   (then review and commit the diff)
set -eu
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund
nm=node_modules
out=static/vendor
rm -rf "$out"
mkdir -p "$out/leaflet/images" "$out/leaflet.markercluster" "$out/chart.js"
cp "$nm/leaflet/dist/leaflet.js" "$nm/leaflet/dist/leaflet.css" "$nm/leaflet/LICENSE" "$out/leaflet/"
cp "$nm/leaflet/dist/images/layers.png" "$nm/leaflet/dist/images/layers-2x.png" "$out/leaflet/images/"
cp "$nm/leaflet.markercluster/dist/leaflet.markercluster.js" \
   "$nm/leaflet.markercluster/dist/MarkerCluster.css" \
   "$nm/leaflet.markercluster/dist/MarkerCluster.Default.css" \
   "$nm/leaflet.markercluster/MIT-LICENCE.txt" "$out/leaflet.markercluster/"
cp "$nm/chart.js/dist/chart.umd.min.js" "$nm/chart.js/LICENSE.md" "$out/chart.js/"
# Source-map comments would make the browser ask for .map files that are not shipped.
for f in "$out/leaflet/leaflet.js" "$out/leaflet.markercluster/leaflet.markercluster.js" \
         "$out/chart.js/chart.umd.min.js"; do
    sed -i -e '/^\/\/# sourceMappingURL=/d' "$f"
done
tests=../../tests/web/vendor
mkdir -p "$tests"
cp "$nm/axe-core/axe.min.js" "$nm/axe-core/LICENSE" "$tests/"
# Record what was copied, from which version, with checksums.
{
    for p in leaflet leaflet.markercluster chart.js axe-core; do
        printf '%s %s\n' "$p" "$(node -p "require('./$nm/$p/package.json').version")"
    done
    (cd "$out" && find . -type f ! -name VERSIONS.txt | sort | xargs sha256sum)
} > "$out/VERSIONS.txt"
echo "vendored into $out and $tests"
