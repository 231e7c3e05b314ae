#!/usr/bin/env bash
# test_node_listen_key.sh: a node that would listen beyond loopback (api,
# peer or events socket) with no key configured refuses to start with a
# clear error and writes no key; with --key-file it starts; a bad
# heartbeat/suspect/dead order is a usage error.
set -euo pipefail
: "${CADRE_BIN:?ctest sets CADRE_BIN}"
tmp=$(mktemp -d)
node=
cleanup() {
  if [ -n "$node" ]; then
    kill "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }

# refused ARGS...: the node exits 1 naming the address and `cadre keygen`.
refused() {
  local dir="$tmp/d$passed" code
  set +e
  timeout 20 "$CADRE_BIN" node --data "$dir" "$@" >"$tmp/out" 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 1 ] || fail "node $* exited $code, not 1: $(cat "$tmp/err")"
  grep -q "is not loopback and no key is configured" "$tmp/err" ||
    fail "node $*: unclear error: $(cat "$tmp/err")"
  grep -q "cadre keygen" "$tmp/err" || fail "node $*: no hint: $(cat "$tmp/err")"
  [ ! -e "$dir/cluster.key" ] || fail "node $* wrote a key"
  grep -q "ready" "$tmp/out" && fail "node $* said ready"
  passed=$((passed + 1))
}

refused --listen tcp://0.0.0.0:0
refused --listen tcp://127.0.0.1:0 --peer-listen tcp://0.0.0.0:0
refused --listen tcp://127.0.0.1:0 --events-listen tcp://0.0.0.0:0

# With a key it starts on the same addresses.
"$CADRE_BIN" keygen >"$tmp/key"
"$CADRE_BIN" node --data "$tmp/ok" --key-file "$tmp/key" --listen tcp://127.0.0.1:0 \
  --peer-listen tcp://0.0.0.0:0 >"$tmp/node.out" 2>"$tmp/node.log" &
node=$!
line=
for _ in $(seq 150); do
  line=$(grep -m1 '^cadre node ready' "$tmp/node.out" || true)
  [ -n "$line" ] && break
  sleep 0.1
done
[ -n "$line" ] || fail "node with a key did not start: $(tail -3 "$tmp/node.log")"
grep -q ' peer=tcp://0.0.0.0:[1-9]' <<<"$line" || fail "no peer url in: $line"
kill "$node"
wait "$node" || fail "node exited $? on SIGTERM"
node=
passed=$((passed + 1))

# heartbeat < suspect < dead, or a usage error (exit 2).
set +e
"$CADRE_BIN" node --data "$tmp/bad" --listen tcp://127.0.0.1:0 --suspect-ms 6000 \
  >/dev/null 2>"$tmp/err"
code=$?
set -e
[ $code -eq 2 ] || fail "suspect-ms > dead-ms exited $code, not 2"
grep -q "suspect-ms" "$tmp/err" || fail "unclear: $(cat "$tmp/err")"
passed=$((passed + 1))

echo "$passed passed, 0 failed"
