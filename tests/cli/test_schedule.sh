#!/usr/bin/env bash
# test_schedule.sh: `cadre schedule` against one real node with two local
# schedules: list (table and --json) shows both with where/next/state; run
# stores a job that an exec worker runs with CADRE_SCHEDULE and CADRE_SLOT
# set; pause skips a schedule's slots and resume brings them back; unknown
# names exit 1 with a message; usage errors exit 2; and a node refuses to
# start on a bad [schedule] section or on an on_one_server schedule in a
# cluster without --voters, saying why.
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

# 1. usage errors exit 2 with the usage on stderr.
"$CADRE_BIN" schedule --help | grep -q "usage: cadre schedule" || fail "no --help"
for args in "" "bogus" "list extra" "run" "pause" "list --no-such-flag"; do
  set +e
  # shellcheck disable=SC2086
  "$CADRE_BIN" schedule $args >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 2 ] || fail "cadre schedule $args exited $code, not 2"
  grep -q "usage: cadre schedule" "$tmp/err" || fail "cadre schedule $args: no usage"
done
passed=$((passed + 1))

# 2. a node with two local schedules: `hourly` (never due during the test)
# and `tick` every second, run by an exec handler that logs its env.
cat >"$tmp/cadre.conf" <<EOF
[node]
[schedule "hourly"]
cron = 0 * * * *
task = report
timezone = Europe/Paris
[schedule "tick"]
every = 1s
task = report
[schedule "all"]
every = 1s
task = report
catchup = all
EOF
start_node() {
  "$CADRE_BIN" node --config "$tmp/cadre.conf" --data "$tmp/data" \
    --listen tcp://127.0.0.1:0 --workers 1 \
    --exec "report=echo \"\$CADRE_SCHEDULE \$CADRE_SLOT\" >> $tmp/runs" \
    >"$tmp/node.out" 2>>"$tmp/node.log" &
  node=$!
  url=""
  for _ in $(seq 150); do
    url=$(sed -n 's/^cadre node ready api=\([^ ]*\).*/\1/p' "$tmp/node.out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || fail "node did not start: $(tail -3 "$tmp/node.log")"
}
start_node
conn=(--url "$url" --key-file "$tmp/data/cluster.key")
"$CADRE_BIN" schedule list "${conn[@]}" >"$tmp/table" || fail "list exited $?"
head -1 "$tmp/table" | grep -q "^NAME .*CRON .*TASK .*WHERE .*NEXT .*LAST .*STATE" ||
  fail "no header: $(cat "$tmp/table")"
grep -Eq "^hourly +0 \* \* \* \* +report +every node +[0-9T:-]+Z .* active$" "$tmp/table" ||
  fail "hourly not listed: $(cat "$tmp/table")"
"$CADRE_BIN" schedule list --json "${conn[@]}" >"$tmp/json" || fail "list --json exited $?"
python3 - "$tmp/json" <<'PY' || fail "bad JSON: $(cat "$tmp/json")"
import json, sys
v = json.load(open(sys.argv[1]))
names = {s["name"]: s for s in v}
assert set(names) == {"hourly", "tick", "all"}, names
h = names["hourly"]
assert h["timezone"] == "Europe/Paris" and h["on_one_server"] is False
assert h["next_s"] % 3600 == 0 and h["paused"] is False, h
assert names["tick"]["cron"] == "@every 1s"
PY
passed=$((passed + 1))

# 3. tick runs about once a second, with its name and slot.
sleep 2.5
n=$(grep -c "^tick [0-9]\{10\}$" "$tmp/runs" || true)
[ "$n" -ge 2 ] || fail "tick ran $n times in 2.5 s: $(cat "$tmp/runs" 2>/dev/null)"
passed=$((passed + 1))

# 4. pause skips, resume brings it back.
"$CADRE_BIN" schedule pause tick "${conn[@]}" | grep -q "tick paused" || fail "pause"
"$CADRE_BIN" schedule list "${conn[@]}" | grep -Eq "^tick .* paused$" || fail "not shown paused"
sleep 0.5
before=$(grep -c "^tick " "$tmp/runs")
sleep 2
after=$(grep -c "^tick " "$tmp/runs")
[ "$after" -eq "$before" ] || fail "a paused schedule ran ($before -> $after)"
"$CADRE_BIN" schedule resume tick "${conn[@]}" | grep -q "tick resumed" || fail "resume"
sleep 2
[ "$(grep -c "^tick " "$tmp/runs")" -gt "$after" ] || fail "a resumed schedule did not run"
passed=$((passed + 1))

# 5. run now: a job id, and the handler sees the schedule's name.
id=$("$CADRE_BIN" schedule run hourly "${conn[@]}") || fail "run exited $?"
[[ "$id" =~ ^[0-9a-f-]{36}$ ]] || fail "run printed '$id'"
for _ in $(seq 50); do
  grep -q "^hourly [0-9]\{10\}$" "$tmp/runs" && break
  sleep 0.1
done
grep -q "^hourly [0-9]\{10\}$" "$tmp/runs" || fail "hourly did not run: $(cat "$tmp/runs")"
passed=$((passed + 1))

# 6. unknown names exit 1 and say so.
for sub in run pause resume; do
  set +e
  "$CADRE_BIN" schedule $sub nope "${conn[@]}" >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 1 ] || fail "schedule $sub nope exited $code"
  grep -q "no schedule 'nope'" "$tmp/err" || fail "schedule $sub nope: $(cat "$tmp/err")"
done
passed=$((passed + 1))

# 6b. a restart keeps a local schedule's place and pause: the slots missed
# while the node was down follow catchup = last (the latest runs, once).
"$CADRE_BIN" schedule pause hourly "${conn[@]}" >/dev/null || fail "pause hourly"
kill "$node"
wait "$node" || true
node=
down=$(date +%s)
sleep 3.2
: >"$tmp/runs"
start_node
up=$(date +%s)
conn=(--url "$url" --key-file "$tmp/data/cluster.key")
sleep 0.5
# tick (catchup = last): one run for all the slots of (down, up].
n=$(awk -v a="$down" -v b="$up" '$1 == "tick" && $2 > a && $2 <= b' "$tmp/runs" | wc -l)
[ "$n" -eq 1 ] || fail "tick: $n runs for the slots of ($down, $up], not 1: $(cat "$tmp/runs")"
# all (catchup = all): each slot of (down, up) once.
for s in $(seq $((down + 1)) $((up - 1))); do
  n=$(grep -c "^all $s$" "$tmp/runs" || true)
  [ "$n" -eq 1 ] || fail "all: slot $s ran $n times after the restart: $(cat "$tmp/runs")"
done
"$CADRE_BIN" schedule list "${conn[@]}" | grep -Eq "^hourly .* paused$" ||
  fail "hourly's pause did not survive the restart"
kill "$node"
wait "$node" || true
node=
passed=$((passed + 1))

# 7. a node refuses a bad schedule and an unguarded on_one_server one.
check_refused() { # config-text expected-message
  printf '%s\n' "$1" >"$tmp/bad.conf"
  set +e
  timeout 10 "$CADRE_BIN" node --config "$tmp/bad.conf" --data "$tmp/bad" \
    --listen tcp://127.0.0.1:0 --workers 0 >/dev/null 2>"$tmp/bad.err"
  code=$?
  set -e
  [ $code -ne 0 ] && [ $code -ne 124 ] || fail "node started (exit $code) with: $1"
  grep -q "$2" "$tmp/bad.err" || fail "no '$2' in: $(cat "$tmp/bad.err")"
}
check_refused $'[schedule "x"]\nevery = 1s' "schedule 'x'.*task"
check_refused $'[schedule "x"]\ncron = 61 * * * *\ntask = t' "schedule 'x'"
check_refused $'[schedule "x"]\nevery = 1s\ntask = t\ncolour = red' "colour"
check_refused $'[node]\npeer = tcp://127.0.0.1:9\n[schedule "x"]\nevery = 1s\ntask = t\non_one_server = true' \
  "needs --voters"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
