#!/usr/bin/env bash
# Copy the Data Docs' scripts, stylesheets and fonts from the npm registry into static/vendor/
# (run by hand when a version changes; the copies are committed, so builds and NHS laptops
# without internet never fetch them). The versions are those Great Expectations' templates
# load from public CDNs; vega, vega-lite and vega-embed are the newest 5.x/5.x/6.x, which the
# CDN's "@5"/"@6" tags resolved to. Each package's licence is copied beside its files.
set -euo pipefail
cd "$(dirname "$0")"
out=static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package@version  files to copy (paths inside the package)
packages=(
  "bootstrap@4.3.1 dist/css/bootstrap.min.css dist/js/bootstrap.min.js"
  "bootstrap-table@1.19.1 dist/bootstrap-table.min.css dist/bootstrap-table.min.js dist/extensions/filter-control/bootstrap-table-filter-control.min.css dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
  "bootstrap-datepicker@1.9.0 dist/css/bootstrap-datepicker.min.css dist/js/bootstrap-datepicker.min.js"
  "@forevolve/bootstrap-dark@1.1.0 dist/css/bootstrap-prefers-dark.css"
  "jquery@3.7.1 dist/jquery.min.js"
  "popper.js@1.12.9 dist/umd/popper.min.js"
  "@fortawesome/fontawesome-free@6.6.0 css/all.min.css webfonts"
  "vega@5.33.1 build/vega.min.js"
  "vega-lite@5.23.0 build/vega-lite.min.js"
  "vega-embed@6.29.0 build/vega-embed.min.js"
)

rm -rf "$out"
mkdir -p "$out"
{
  echo "Third-party files served with the Data Docs, copied from the npm registry by vendor.sh."
  echo "Each folder holds one package's files as published, with its licence."
  echo
} >"$out/README"
for entry in "${packages[@]}"; do
  read -r spec files <<<"$entry"
  name=${spec%@*}
  name=${name#@}
  folder=$out/${name//\//-}
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  mkdir -p "$work/x" "$folder"
  tar -xzf "$tarball" -C "$work/x"
  for file in $files; do
    mkdir -p "$folder/$(dirname "$file")"
    cp -R "$work/x/package/$file" "$folder/$file"
  done
  licence=$(ls "$work/x/package" | grep -iE '^licen[cs]e' | head -1 || true)
  [ -n "$licence" ] && cp "$work/x/package/$licence" "$folder/LICENSE"
  echo "$spec ($(node -p "require('$work/x/package/package.json').license || ''"))" >>"$out/README"
  rm -rf "$work/x" "$tarball"
done
