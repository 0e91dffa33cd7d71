#!/usr/bin/env bash
# docs/YOUR-DATA.md, run as written (issue 27): its ```sh walkthrough blocks, in order, as one bash script in APP (a
# folder where the packed tarball is installed; scripts/test-pack.sh calls this), then its ```sh walkthrough-view
# block (emseg view, a server) in the background until its page answers on loopback. The script reads the doc, so
# the doc and what CI runs cannot drift (test/docs.test.ts checks that every command block is one of these).
# STEPS=6 keeps the fine-tuning short (the doc's commands read STEPS). `--print` prints the extracted scripts only.
# Usage: test-walkthrough.sh APP | test-walkthrough.sh --print
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
doc="$root/docs/YOUR-DATA.md"
say() { echo "test-walkthrough: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# The lines of every block whose info string is exactly "sh $1", in order.
blocks() { awk -v want="\`\`\`sh $1" '$0 == want { on = 1; next } on && /^```/ { on = 0; next } on { print }' "$doc"; }

if [ "${1:-}" = "--print" ]; then
  blocks walkthrough
  echo "# walkthrough-view"
  blocks walkthrough-view
  exit 0
fi
app="${1:?usage: test-walkthrough.sh APP | --print}"
steps="$(blocks walkthrough)"
view="$(blocks walkthrough-view)"
[ -n "$steps" ] && [ -n "$view" ] || fail "$doc has no \`\`\`sh walkthrough / walkthrough-view blocks"

cd "$app"
say "running docs/YOUR-DATA.md's walkthrough in $app"
STEPS=6 bash -euo pipefail -x -c "$steps" >walkthrough.txt 2>&1 || fail "the walkthrough stopped: $(tail -n 20 walkthrough.txt)"
for f in runs/mine/weights.safetensors out/maps.tif out/cells.tif out/report.html; do
  [ -s "$f" ] || fail "the walkthrough did not write $f"
done

# Its own session (setsid), so that the server and npx's children stop together (kill of the process group).
setsid bash -c "$view" >view.txt 2>&1 &
server=$!
url=""
for _ in $(seq 1 120); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*/' view.txt | head -n 1 || true)"
  [ -n "$url" ] || ! kill -0 "$server" 2>/dev/null && break
  sleep 0.5
done
page="$( [ -n "$url" ] && node -e "fetch(process.argv[1]).then(async (r) => { process.stdout.write(String(r.status)); })" "$url" || true)"
kill -- -"$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
[ "$page" = "200" ] || fail "emseg view did not serve its page (${url:-no address}; status ${page:-none}): $(cat view.txt)"
say "ok: every command of docs/YOUR-DATA.md ran in $app"
