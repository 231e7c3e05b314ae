#!/usr/bin/env bash
# test_cluster_members.sh: `cadre cluster members` against one real node: it
# lists itself (state self) with its own api url; --json is one valid JSON
# array with every field; usage errors exit 2; `cluster leader` against a
# node without --voters exits 1 and says so (role "off" in --json), and that
# node made no raft dir.
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
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
passed=0

# 1. usage: --help exits 0, no or an unknown command and bad flags exit 2.
for args in "--help" "members --help" "leader --help"; do
  # shellcheck disable=SC2086
  "$CADRE_BIN" cluster $args >"$tmp/help" 2>&1 || fail "cadre cluster $args exited $?"
  grep -q "usage: cadre cluster" "$tmp/help" || fail "cadre cluster $args prints no usage"
done
for args in "" "bogus" "members --no-such-flag" "members extra" "members --url"; do
  set +e
  # shellcheck disable=SC2086
  "$CADRE_BIN" cluster $args >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 2 ] || fail "cadre cluster $args exited $code, not 2"
  grep -q "usage: cadre cluster" "$tmp/err" || fail "cadre cluster $args: no usage on stderr"
done
passed=$((passed + 1))

# 2. one node lists itself.
"$CADRE_BIN" node --data "$tmp/data" --listen tcp://127.0.0.1:0 \
  >"$tmp/node.out" 2>"$tmp/node.log" &
node=$!
url=""
for _ in $(seq 150); do
  url=$(sed -n 's/^cadre node ready api=\([^ ]*\).*/\1/p' "$tmp/node.out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || fail "node did not start: $(tail -3 "$tmp/node.log")"
conn=(--url "$url" --key-file "$tmp/data/cluster.key")
"$CADRE_BIN" cluster members "${conn[@]}" >"$tmp/table" 2>"$tmp/err" ||
  fail "cluster members exited $?: $(cat "$tmp/err")"
head -1 "$tmp/table" | grep -q "^ID .*STATE .*ADDRESS .*LAST HEARD .*WORKERS .*FREE .*READY" ||
  fail "no table header: $(cat "$tmp/table")"
[ "$(wc -l <"$tmp/table")" -eq 2 ] || fail "not one member: $(cat "$tmp/table")"
sed -n 2p "$tmp/table" | grep -Eq "^[^ ]+ +self +[^ ]+ +- +" ||
  fail "the node is not listed as self: $(cat "$tmp/table")"
passed=$((passed + 1))

# 2b. no --voters: no leader, no raft dir.
set +e
"$CADRE_BIN" cluster leader "${conn[@]}" >/dev/null 2>"$tmp/err"
code=$?
set -e
[ $code -eq 1 ] || fail "cadre cluster leader exited $code, not 1"
grep -q "without --voters" "$tmp/err" || fail "cadre cluster leader: $(cat "$tmp/err")"
set +e
"$CADRE_BIN" cluster leader --json "${conn[@]}" >"$tmp/json" 2>"$tmp/err"
code=$?
set -e
[ $code -eq 1 ] || fail "cadre cluster leader --json exited $code, not 1"
python3 -c 'import json, sys
l = json.load(open(sys.argv[1]))
assert l["role"] == "off" and l["leader"] == "" and l["ready"] is False, l' \
  "$tmp/json" || fail "bad leader JSON: $(cat "$tmp/json")"
"$CADRE_BIN" status --json "${conn[@]}" >"$tmp/json" 2>"$tmp/err" ||
  fail "status --json exited $?: $(cat "$tmp/err")"
python3 -c 'import json, sys
l = json.load(open(sys.argv[1]))["leader"]
assert l == {"leader": "", "term": 0, "role": "off", "ready": False,
             "not_committing": False}, l' "$tmp/json" ||
  fail "bad status leader JSON: $(cat "$tmp/json")"
[ ! -e "$tmp/data/raft" ] || fail "a node without --voters made $tmp/data/raft"
passed=$((passed + 1))

# 3. --json: valid JSON, itself first with every field.
"$CADRE_BIN" cluster members --json "${conn[@]}" >"$tmp/json" 2>"$tmp/err" ||
  fail "cluster members --json exited $?: $(cat "$tmp/err")"
python3 -m json.tool "$tmp/json" >/dev/null || fail "not JSON: $(cat "$tmp/json")"
python3 - "$tmp/json" "$url" <<'PY' || fail "bad members JSON: $(cat "$tmp/json")"
import json, sys
ms = json.load(open(sys.argv[1]))
assert isinstance(ms, list) and len(ms) == 1, ms
m = ms[0]
keys = {"node_id", "state", "peer_url", "api_url", "events_url",
        "last_heard_ms", "workers", "free_slots", "ready", "queues",
        "version", "leader", "boot_id"}
assert keys <= set(m), set(m) ^ keys
assert m["state"] == "self", m
assert m["node_id"], m
assert m["api_url"] == sys.argv[2], (m["api_url"], sys.argv[2])
assert isinstance(m["queues"], dict), m
PY
passed=$((passed + 1))

# 4. a job waiting in queue q1 shows in its ready count (no workers here).
"$CADRE_BIN" dispatch echo hi --queue q1 "${conn[@]}" >/dev/null ||
  fail "dispatch failed"
ok=
for _ in $(seq 50); do
  "$CADRE_BIN" cluster members --json "${conn[@]}" >"$tmp/json" 2>"$tmp/err" ||
    fail "cluster members --json exited $?: $(cat "$tmp/err")"
  if python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))[0]
sys.exit(0 if m["ready"] == 1 and m["queues"] == {"q1": 1} else 1)' "$tmp/json"; then
    ok=1
    break
  fi
  sleep 0.1
done
[ -n "$ok" ] || fail "the ready job is not counted: $(cat "$tmp/json")"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
