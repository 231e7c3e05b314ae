#!/usr/bin/env bash
# make demo: a node on loopback with its embedded defaults (data dir under
# ./var/demo, a generated key, two supervised workers running the demo
# plugin), 1,000 jobs through the real client, a summary, a clean stop.
set -euo pipefail
build=${1:-build}
cadre="$build/cadre"
plugin="$build/demo.so"
data="$PWD/var/demo"
log="$PWD/var/demo-node.log"
mkdir -p "$data"

out=$(mktemp)
"$cadre" node --data "$data" --listen tcp://127.0.0.1:0 --workers 2 \
  --plugin "$plugin" >"$out" 2>"$log" &
node=$!
trap 'kill $node 2>/dev/null || true; rm -f "$out"' EXIT

url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^cadre node ready api=\([^ ]*\).*/\1/p' "$out")
  [ -n "$url" ] && break
  kill -0 $node 2>/dev/null || { echo "node failed to start:"; cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "node did not report ready"; cat "$log"; exit 1; }
export CADRE_URL="$url" CADRE_DATA="$data"

echo "== node up at $url (data $data, log $log)"
echo "== one job, waited for:"
echo -n "   sha256(hello) = "; "$cadre" dispatch sha256 hello --wait; echo
echo "== a job whose handler fails:"
"$cadre" dispatch fail "card declined" --wait || true
echo "== 1,000 sha256 jobs dispatched in bulk, then waited for:"
"$cadre" dispatch sha256 "demo payload" --count 1000 --wait
echo "== status:"
"$cadre" status
echo "== stopping the node (SIGTERM: running jobs finish, exit 0)"
kill -TERM $node
wait $node && echo "node exited cleanly"
trap - EXIT
rm -f "$out"
