#!/usr/bin/env bash
# test_lock.sh: `cadre lock`, `cadre throttle`, `cadre funnel` against one
# real node that leads alone (--voters with itself): usage errors exit 2;
# acquire prints "TOKEN OWNER", a second owner exits 1 naming the holder,
# release frees it and the next token is greater; --json is one JSON object;
# a throttle allows N per window then exits 1 with "limited"; a funnel holds
# at most --limit owners; `cadre dispatch` takes the job middleware flags.
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

# 1. usage: --help exits 0; missing or bad flags exit 2 with the usage.
for cmd in lock throttle funnel; do
  "$CADRE_BIN" $cmd --help >"$tmp/help" 2>&1 || fail "cadre $cmd --help exited $?"
  grep -q "usage: cadre $cmd" "$tmp/help" || fail "cadre $cmd --help prints no usage"
done
for args in "lock" "lock acquire" "lock acquire k" "lock acquire k --ttl" \
  "lock acquire k --ttl 5x" "lock grab k --ttl 1s" "lock release k" \
  "lock acquire k --ttl 1s extra" "throttle k --allow 5" \
  "throttle k --allow x --every 1s" "funnel acquire k --ttl 1s" \
  "lock acquire k --ttl 1s --bogus"; do
  set +e
  # shellcheck disable=SC2086
  "$CADRE_BIN" $args >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 2 ] || fail "cadre $args exited $code, not 2"
  grep -q "usage: cadre" "$tmp/err" || fail "cadre $args: no usage on stderr"
done
passed=$((passed + 1))

# 2. one node, a voter alone: it leads.
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$CADRE_BIN" node --data "$tmp/data" --listen tcp://127.0.0.1:0 --workers 0 \
  --node-id s --voters "s=127.0.0.1:$port" --raft-listen "127.0.0.1:$port" \
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
ok=
for _ in $(seq 100); do # until the leader is ready
  if "$CADRE_BIN" lock acquire k --ttl 30s --owner me "${conn[@]}" >"$tmp/out" 2>"$tmp/err"; then
    ok=1
    break
  fi
  sleep 0.05
done
[ -n "$ok" ] || fail "no lock: $(cat "$tmp/err")"
read -r tok1 owner <"$tmp/out"
[ "$owner" = me ] || fail "acquire printed '$(cat "$tmp/out")'"
passed=$((passed + 1))

# 3. another owner: exit 1 naming the holder; release; a greater token.
set +e
"$CADRE_BIN" lock acquire k --ttl 30s --owner you --block 200ms "${conn[@]}" >/dev/null 2>"$tmp/err"
code=$?
set -e
[ $code -eq 1 ] || fail "a held lock exited $code"
grep -q "held by me" "$tmp/err" || fail "no holder named: $(cat "$tmp/err")"
set +e
"$CADRE_BIN" lock release k --owner you "${conn[@]}" >/dev/null 2>&1
code=$?
set -e
[ $code -eq 1 ] || fail "release by a non-holder exited $code"
"$CADRE_BIN" lock release k --owner me "${conn[@]}" | grep -q released || fail "release"
"$CADRE_BIN" lock acquire k --ttl 1s --json "${conn[@]}" >"$tmp/json"
python3 - "$tmp/json" "$tok1" <<'EOF' || fail "bad json: $(cat "$tmp/json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True and d["key"] == "k", d
assert d["token"] > int(sys.argv[2]), d
assert len(d["owner"]) == 36, d  # a uuid made for us
EOF
passed=$((passed + 1))

# 4. throttle: 3 per minute, then limited (exit 1).
for _ in 1 2 3; do
  "$CADRE_BIN" throttle api --allow 3 --every 1m "${conn[@]}" | grep -q allowed ||
    fail "throttle refused too early"
done
set +e
"$CADRE_BIN" throttle api --allow 3 --every 1m "${conn[@]}" >/dev/null 2>"$tmp/err"
code=$?
set -e
[ $code -eq 1 ] || fail "a 4th use exited $code"
grep -q "limit 3 reached" "$tmp/err" || fail "not limited: $(cat "$tmp/err")"
passed=$((passed + 1))

# 5. funnel: two holders of a funnel of 2, a third waits.
"$CADRE_BIN" funnel acquire f --limit 2 --ttl 30s --owner x "${conn[@]}" >/dev/null
"$CADRE_BIN" funnel acquire f --limit 2 --ttl 30s --owner y "${conn[@]}" >/dev/null
set +e
"$CADRE_BIN" funnel acquire f --limit 2 --ttl 30s --owner z "${conn[@]}" >/dev/null 2>&1
code=$?
set -e
[ $code -eq 1 ] || fail "a third funnel holder exited $code"
"$CADRE_BIN" funnel release f --owner x "${conn[@]}" >/dev/null
"$CADRE_BIN" funnel acquire f --limit 2 --ttl 30s --owner z "${conn[@]}" | grep -q '^z$' ||
  fail "z did not get the freed slot"
passed=$((passed + 1))

# 6. dispatch declares job middleware: KEY:N/MS, KEY; malformed exits 2.
"$CADRE_BIN" dispatch echo hi --rate-limited api:2/1000 --without-overlapping rep \
  --throttles-exceptions mail:3/60000 "${conn[@]}" >"$tmp/id" ||
  fail "dispatch with middleware exited $?"
[ "$(wc -c <"$tmp/id")" -ge 36 ] || fail "no job id: $(cat "$tmp/id")"
for bad in "--rate-limited api" "--rate-limited api:0/1000" "--rate-limited :2/1000" \
  "--throttles-exceptions mail:3" "--without-overlapping"; do
  set +e
  # shellcheck disable=SC2086
  "$CADRE_BIN" dispatch echo hi $bad "${conn[@]}" >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 2 ] || fail "dispatch $bad exited $code, not 2"
done
passed=$((passed + 1))

echo "$passed passed, 0 failed"
