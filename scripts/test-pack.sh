#!/usr/bin/env bash
# The package as a user gets it (issue 27): `npm pack`, install the tarball into an empty folder, then run `npx emseg`
# there (version, the shipped models by name, the demo on the oneDNN backend, docs/YOUR-DATA.md's walkthrough through
# scripts/test-walkthrough.sh). `make test` runs it after the suite.
#
# Offline, and without the npm cache: installing a tarball makes npm resolve its dependencies' version ranges, which
# needs the registry's package documents, and `npm ci` (how CI installs the repository) never caches those; so
# `npm install --offline` fails on a clean machine (ENOTCACHED). Instead the empty folder gets a copy of the
# repository's installed production dependencies (`npm ls --omit=dev`), which satisfy the package's ranges, and npm is
# given an empty cache of its own so that nothing on this machine can hide a missing piece.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/emseg-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
say() { echo "test-pack: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
# dist/ is built by `make setup`; --ignore-scripts skips prepack's rebuild of it.
[ -f "$root/dist/src/cli/main.js" ] && [ -f "$root/dist/viewer/index.html" ] || fail "dist/ is not built (make build)"

cd "$root"
tarball="$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)"
size=$(stat -c %s "$work/$tarball")
say "$tarball: $((size / 1024)) KiB"
[ "$size" -lt $((20 * 1024 * 1024)) ] || fail "$tarball is $size bytes (more than 20 MiB): check \"files\" in package.json"
listing="$(tar tzf "$work/$tarball")"
for f in package/bin/emseg.js package/dist/src/cli/main.js package/dist/viewer/index.html package/native/binding.gyp \
  package/scripts/install-native.mjs package/models/emseg-isbi/ensemble.json package/samples/isbi2012/images/23.png; do
  grep -qx "$f" <<<"$listing" || fail "$tarball lacks $f"
done
! grep -qE '^package/(dist/test/|native/build/|node_modules/|src/.*\.ts$)' <<<"$listing" || fail "$tarball holds build or test files"

app="$work/app"
mkdir -p "$app/node_modules"
# allowScripts: npm 11 may block dependencies' install scripts (strict-allow-scripts), and emseg's builds the addon; a
# tarball's key is its file: spec, as `npm install-scripts approve emseg` writes it.
echo "{ \"name\": \"emseg-pack-test\", \"private\": true, \"allowScripts\": { \"file:$work/$tarball\": true } }" >"$app/package.json"
deps="$(npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 || true)"
[ -n "$deps" ] || fail "npm ls found no installed dependencies in $root/node_modules (make setup)"
while IFS= read -r dir; do
  rel="${dir#"$root"/node_modules/}"
  [ -e "$app/node_modules/$rel" ] && continue
  mkdir -p "$app/node_modules/$(dirname "$rel")"
  cp -a "$dir" "$app/node_modules/$rel"
done <<<"$deps"

cd "$app"
say "npm install ./$tarball (builds the oneDNN addon)"
npm install --offline --cache "$work/npm-cache" --no-audit --no-fund "$work/$tarball" >&2
[ -f node_modules/emseg/native/build/Release/emseg_native.node ] || fail "the install did not build the native addon"
version="$(npx --offline emseg --version)"
[ "$version" = "$(node -p "require('$root/package.json').version")" ] || fail "npx emseg --version printed '$version'"
shipped="$(npx --offline emseg models --shipped)" # captured: grep -q would close the pipe under emseg (EPIPE)
grep -q '^emseg-isbi (ensemble)' <<<"$shipped" || fail "emseg models --shipped does not list emseg-isbi: $shipped"
npx --offline emseg demo --backend onednn --quiet >demo.txt
grep -q '^done in' demo.txt && [ -f out/demo/report.html ] || fail "the demo did not finish: $(cat demo.txt)"
# docs/YOUR-DATA.md's walkthrough, its commands as written, in this folder (the installed package).
bash "$root/scripts/test-walkthrough.sh" "$app"
say "ok: installed from $tarball into an empty folder; npx emseg demo and the YOUR-DATA walkthrough ran there"
