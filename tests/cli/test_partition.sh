#!/usr/bin/env bash
# test_partition.sh: a real network partition (notes/faults.md §2 scenario 6,
# the leader half). Three `cadre node` voters, each in its own network
# namespace, joined by a bridge in a fourth namespace (nothing is created in
# the root namespace, so deleting the four namespaces removes every link).
# An on_one_server schedule fires every second (catchup = all); each run
# appends "SCHEDULE SLOT NODE MS" to one ledger file. After ~5 s the leader's
# bridge port goes down (a silent drop: the leader keeps running, alone) for
# ~5 s, then comes back up. Checks:
#   - the majority elects a new leader, which keeps firing during the cut;
#   - the isolated old leader stops leading and runs no slot during the cut
#     (0.5 s of grace for a slot released just before it);
#   - after the heal the old leader rejoins as a follower of the new leader;
#   - after a graceful stop, every slot from the first to the last full
#     second ran exactly once (0 missing, 0 twice).
# Needs root and `ip netns`: otherwise prints "SKIP: ..." and exits 77
# (SKIP_RETURN_CODE in tests/CMakeLists.txt). About 21 s.
set -uo pipefail
: "${CADRE_BIN:?ctest sets CADRE_BIN}"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need CAP_SYS_ADMIN)"
command -v ip >/dev/null 2>&1 || skip "no ip(8)"

now_ms() { date +%s%3N; }
t0=$(now_ms)
tmp=$(mktemp -d)
run="cadre-$$-part"
br_ns="$run-br"
ns=("$run-n1" "$run-n2" "$run-n3")
ids=(a b c)
made_ns=()  # namespaces this run created
pids=()     # node pids this run started (ip netns exec execs: same pid)
failed=0
passed=0

# Leftovers of runs of this test that were SIGKILLed (their trap never ran):
# namespaces named cadre-PID-part-* whose PID is gone and that hold no
# process any more.
for stale in $(ip netns list 2>/dev/null | awk '{print $1}' |
  grep -E '^cadre-[0-9]+-part-(br|n[123])$'); do
  opid=${stale#cadre-}
  opid=${opid%%-*}
  if [ ! -e "/proc/$opid" ] && [ -z "$(ip netns pids "$stale" 2>/dev/null)" ]; then
    ip netns del "$stale" 2>/dev/null || true
  fi
done

cleanup() {
  local p k kids deadline
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  deadline=$(($(now_ms) + 8000))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
      sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
      # Stuck: SIGKILL it, and the workers it started (they would outlive
      # it and keep the namespace alive).
      kids=$(cat "/proc/$p/task/$p/children" 2>/dev/null)
      kill -KILL "$p" 2>/dev/null
      for k in $kids; do kill -KILL "$k" 2>/dev/null; done
    fi
    wait "$p" 2>/dev/null
  done
  for n in "${made_ns[@]}"; do
    ip netns del "$n" 2>/dev/null
  done
  if [ "$failed" -ne 0 ] || [ -n "${CADRE_KEEP_TMP:-}" ]; then
    echo "# kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted"; failed=1; exit 1' INT TERM HUP

dump_logs() {
  local i
  for i in 0 1 2; do
    echo "# --- node ${ids[$i]} (tail) ---"
    tail -15 "$tmp/${ids[$i]}.log" 2>/dev/null | sed 's/^/# /'
  done
}
fail() {
  echo "FAIL: $*"
  failed=1
  dump_logs
  echo "$passed passed, 1 failed"
  exit 1
}
check() { # check DESCRIPTION CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then
    echo "ok - $1"
    passed=$((passed + 1))
  else
    echo "not ok - $1"
    failed=$((failed + 1))
  fi
}

# 1. the namespaces: n1..n3, each with eth0 (10.77.X.i/24) whose peer vb_i
# is a port of br0 in the bridge namespace.
ip netns add "$br_ns" 2>"$tmp/err" || skip "ip netns add failed: $(cat "$tmp/err")"
made_ns+=("$br_ns")
net="10.77.$((RANDOM % 250 + 1))"
ips=("$net.1" "$net.2" "$net.3")
ip -n "$br_ns" link set lo up || fail "lo up in $br_ns"
ip -n "$br_ns" link add br0 type bridge || skip "no bridge support"
ip -n "$br_ns" link set br0 up || fail "br0 up"
for i in 0 1 2; do
  ip netns add "${ns[$i]}" 2>"$tmp/err" || skip "ip netns add failed: $(cat "$tmp/err")"
  made_ns+=("${ns[$i]}")
  ip -n "$br_ns" link add "vb$i" type veth peer name eth0 netns "${ns[$i]}" ||
    skip "no veth support"
  ip -n "$br_ns" link set "vb$i" master br0 up || fail "vb$i into br0"
  ip -n "${ns[$i]}" link set lo up || fail "lo up in ${ns[$i]}"
  ip -n "${ns[$i]}" addr add "${ips[$i]}/24" dev eth0 || fail "addr ${ips[$i]}"
  ip -n "${ns[$i]}" link set eth0 up || fail "eth0 up in ${ns[$i]}"
done
echo "# namespaces ${ns[*]} + $br_ns, net $net.0/24"

# 2. the cluster.
key="$tmp/cluster.key"
ledger="$tmp/ledger.txt"
conf="$tmp/cadre.conf"
"$CADRE_BIN" keygen >"$key" 2>"$tmp/err" || fail "keygen: $(cat "$tmp/err")"
chmod 600 "$key"
: >"$ledger"
cat >"$conf" <<'EOF'
[node]
[schedule "one"]
every = 1s
task = tick
on_one_server = true
catchup = all
EOF
voters="a=${ips[0]}:7703,b=${ips[1]}:7703,c=${ips[2]}:7703"
for i in 0 1 2; do
  id=${ids[$i]}
  ip=${ips[$i]}
  seeds=()
  for k in 0 1 2; do
    [ "$k" -ne "$i" ] && seeds+=(--peer "tcp://${ips[$k]}:7701")
  done
  # One line per run; O_APPEND writes of a short line do not interleave.
  exec_cmd="tick=echo \"\$CADRE_SCHEDULE \$CADRE_SLOT $id \$(date +%s%3N)\" >> $ledger"
  ip netns exec "${ns[$i]}" "$CADRE_BIN" node --data "$tmp/$id" --node-id "$id" \
    --listen "tcp://$ip:7700" --peer-listen "tcp://$ip:7701" \
    --events-listen "tcp://$ip:7702" --raft-listen "$ip:7703" \
    --key-file "$key" --voters "$voters" "${seeds[@]}" \
    --election-ms 300 --raft-heartbeat-ms 30 \
    --heartbeat-ms 100 --suspect-ms 300 --dead-ms 1000 \
    --config "$conf" --workers 1 --exec "$exec_cmd" --shutdown-grace 5000 \
    >"$tmp/$id.out" 2>"$tmp/$id.log" &
  pids+=($!)
done
for i in 0 1 2; do
  line=
  for _ in $(seq 100); do
    line=$(grep -m1 '^cadre node ready ' "$tmp/${ids[$i]}.out")
    [ -n "$line" ] && break
    kill -0 "${pids[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$line" ] || fail "node ${ids[$i]} did not start"
  case "$line" in
  *" pid=${pids[$i]} "*) ;;
  *) fail "node ${ids[$i]}: readiness pid is not the started pid ${pids[$i]}: $line" ;;
  esac
done

# leader_of I: "LEADER|ROLE|READY" as node I sees it (from its namespace;
# LEADER may be empty).
leader_of() {
  ip netns exec "${ns[$1]}" "$CADRE_BIN" cluster leader --json \
    --url "tcp://${ips[$1]}:7700" --key-file "$key" --request-timeout 400 \
    2>/dev/null |
    sed -n 's/.*"leader":"\([^"]*\)".*"role":"\([^"]*\)","ready":\([a-z]*\).*/\1|\2|\3/p'
}
nm() { if [ "$1" -ge 0 ]; then echo "${ids[$1]}"; else echo none; fi; }
idx_of() { case "$1" in a) echo 0 ;; b) echo 1 ;; c) echo 2 ;; *) echo -1 ;; esac; }
# agreed I...: the index of the ready leader nodes I... agree on, or -1.
agreed() {
  local i who="" l r d
  for i in "$@"; do
    IFS="|" read -r l r d <<<"$(leader_of "$i")"
    [ -n "$l" ] || { echo -1; return; }
    [ -z "$who" ] || [ "$who" = "$l" ] || { echo -1; return; }
    who=$l
  done
  i=$(idx_of "$who")
  [ "$i" -ge 0 ] || { echo -1; return; }
  IFS="|" read -r l r d <<<"$(leader_of "$i")"
  if [ "$r" = leader ] && [ "$d" = true ]; then echo "$i"; else echo -1; fi
}
# wait_agreed MS I...: agreed, polled for up to MS.
wait_agreed() {
  local end=$(($(now_ms) + $1)) who=-1
  shift
  while :; do
    who=$(agreed "$@")
    [ "$who" -ge 0 ] || [ "$(now_ms)" -ge "$end" ] && break
    sleep 0.05
  done
  echo "$who"
}
# sleep_to_half MS: until the wall clock is half-way into a second, at least
# MS from now (faults between slots, as in test_schedule.c).
sleep_to_half() {
  local at=$(($(now_ms) + $1))
  at=$((at - at % 1000 + 500 + (at % 1000 > 500 ? 1000 : 0)))
  while [ "$(now_ms)" -lt "$at" ]; do sleep 0.02; done
}

old=$(wait_agreed 10000 0 1 2)
[ "$old" -ge 0 ] || fail "no agreed ready leader within 10 s"
t_lead=$(now_ms)
echo "# $((t_lead - t0)) ms: leader ${ids[$old]} (cluster up)"
maj=()
for i in 0 1 2; do [ "$i" -ne "$old" ] && maj+=("$i"); done

# 3. ~5 s of firing, then the leader's bridge port goes down.
sleep_to_half 5000
cut_at=$(now_ms)
ip -n "$br_ns" link set "vb$old" down || fail "cannot take vb$old down"
echo "# $((cut_at - t0)) ms: cut ${ids[$old]} off (vb$old down)"
new=-1
stepped=""
failover_ms=""
while [ "$(now_ms)" -lt $((cut_at + 4000)) ]; do
  if [ "$new" -lt 0 ]; then
    w=$(agreed "${maj[@]}")
    if [ "$w" -ge 0 ] && [ "$w" -ne "$old" ]; then
      new=$w
      failover_ms=$(($(now_ms) - cut_at))
    fi
  fi
  if [ -z "$stepped" ]; then
    IFS="|" read -r l r d <<<"$(leader_of "$old")"
    [ -n "$r" ] && [ "$r" != leader ] && stepped="$(($(now_ms) - cut_at)) ms (role ${r:-?}, sees leader '${l}')"
  fi
  [ "$new" -ge 0 ] && [ -n "$stepped" ] && break
  sleep 0.05
done
check "the majority elects a new ready leader ($(nm "$new") after ${failover_ms:-?} ms)" \
  "$([ "$new" -ge 0 ] && echo 0 || echo 1)"
check "the isolated old leader ${ids[$old]} steps down (after ${stepped:-never})" \
  "$([ -n "$stepped" ] && echo 0 || echo 1)"
kill -0 "${pids[$old]}" 2>/dev/null
check "the isolated old leader keeps running" $?
# The same, from the nodes' own logs (to the ms, without the polling).
log_ms() { # log_ms I PATTERN: the time of node I's last log line with PATTERN
  local ts
  ts=$(grep -- "$2" "$tmp/${ids[$1]}.log" | tail -1 | cut -d' ' -f1)
  [ -n "$ts" ] && date -d "$ts" +%s%3N
}
elected=$(log_ms "$new" LEADER-ELECTED)
lost=$(log_ms "$old" LEADER-LOST)
echo "# logs: ${ids[$old]} LEADER-LOST at cut+$((${lost:-0} - cut_at)) ms," \
  "$(nm "$new") LEADER-ELECTED at cut+$((${elected:-0} - cut_at)) ms"

[ "$new" -ge 0 ] || fail "no leader in the majority"

# 4. heal after ~5 s.
while [ "$(now_ms)" -lt $((cut_at + 5000)) ]; do sleep 0.02; done
heal_at=$(now_ms)
ip -n "$br_ns" link set "vb$old" up || fail "cannot bring vb$old back up"
echo "# $((heal_at - t0)) ms: healed (cut lasted $((heal_at - cut_at)) ms)"
back=-1
end=$((heal_at + 10000)) # raft and nng redial with backoff: 2-4 s seen
while [ "$(now_ms)" -lt "$end" ]; do
  back=$(agreed 0 1 2)
  if [ "$back" -ge 0 ]; then
    IFS="|" read -r l r d <<<"$(leader_of "$old")"
    [ "$r" = follower ] && break
  fi
  back=-1
  sleep 0.05
done
rejoin_ms=$(($(now_ms) - heal_at))
check "the old leader rejoins as a follower of $(nm "$back") (after $rejoin_ms ms)" \
  "$([ "$back" -ge 0 ] && [ "$back" -ne "$old" ] && echo 0 || echo 1)"
[ "$back" -eq "$new" ] ||
  echo "# note: the leader after the heal is $(nm "$back"), not ${ids[$new]}"

# 5. ~5 s more, then a graceful stop of every node.
sleep_to_half 4500
t_end=$(now_ms)
sleep 1.5 # the last slots' runs land
for i in 0 1 2; do kill -TERM "${pids[$i]}" 2>/dev/null; done
codes=()
for i in 0 1 2; do
  wait "${pids[$i]}"
  codes+=($?)
done
pids=()
stop_ms=$(($(now_ms) - t_end - 1500))
check "every node stops gracefully on SIGTERM (exit codes ${codes[*]}, $stop_ms ms)" \
  "$([ "${codes[*]}" = "0 0 0" ] && echo 0 || echo 1)"

# 6. the ledger.
end_s=$((t_end / 1000 - 1))
# Per slot of "one" from the first slot to end_s: counts, and where it ran.
read -r first nruns missing twice <<<"$(awk -v end="$end_s" '
  $1 == "one" { n[$2]++; runs++; if (first == "" || $2 < first) first = $2 }
  END {
    m = 0; t = 0
    for (s = first; s <= end; s++) {
      if (n[s] == 0) { m++; print "# slot " s " ran 0 times" > "/dev/stderr" }
      if (n[s] > 1) { t++; print "# slot " s " ran " n[s] " times" > "/dev/stderr" }
    }
    print first, runs + 0, m, t
  }' "$ledger")"
[ -n "$first" ] || fail "the ledger has no run of schedule one"
nslots=$((end_s - first + 1))
echo "# slots $first..$end_s: $nslots slots, $nruns runs in the ledger, $missing missing, $twice twice"
check "every slot ran exactly once ($nslots slots: $missing missing, $twice twice)" \
  "$([ "$missing" -eq 0 ] && [ "$twice" -eq 0 ] && [ "$nslots" -ge 14 ] && echo 0 || echo 1)"
# The old leader ran nothing during the cut, after 0.5 s of grace.
old_during=$(awk -v n="${ids[$old]}" -v a=$((cut_at + 500)) -v b="$heal_at" \
  '$1 == "one" && $3 == n && $4 > a && $4 < b' "$ledger" | wc -l)
old_grace=$(awk -v n="${ids[$old]}" -v a="$cut_at" -v b=$((cut_at + 500)) \
  '$1 == "one" && $3 == n && $4 >= a && $4 <= b' "$ledger" | wc -l)
check "the isolated old leader ran no slot during the cut ($old_during; $old_grace in the first 0.5 s)" \
  "$([ "$old_during" -eq 0 ] && echo 0 || echo 1)"
# The majority kept firing: slots of the cut ran, during the cut.
cut_runs=$(awk -v a=$((cut_at / 1000 + 1)) -v b=$((heal_at / 1000 - 1)) -v h="$heal_at" \
  -v n="${ids[$old]}" '$1 == "one" && $2 >= a && $2 <= b && $4 < h && $3 != n' \
  "$ledger" | wc -l)
cut_slots=$((heal_at / 1000 - 1 - cut_at / 1000))
check "the majority kept firing: $cut_runs of the cut's $cut_slots slots ran during it" \
  "$([ "$cut_runs" -ge $((cut_slots - 2)) ] && [ "$cut_runs" -ge 2 ] && echo 0 || echo 1)"
# The old leader's runs after the heal (a slot it held, released once it
# learnt its DONE; or a job it took from a peer), for the log.
awk -v n="${ids[$old]}" -v h="$heal_at" -v c="$cut_at" '$1 == "one" && $3 == n && $4 >= h {
    printf "# %s ran slot %d at heal+%d ms (slot at cut%+d ms)\n", n, $2, $4 - h, $2 * 1000 - c }' "$ledger"
# Where the slots ran, for the log.
awk -v a="$cut_at" -v b="$heal_at" '$1 == "one" {
    w = $4 < a ? "before" : ($4 < b ? "during" : "after"); c[w " " $3]++ }
  END { for (k in c) print "# runs " k ": " c[k] }' "$ledger" | sort

echo "# total $(($(now_ms) - t0)) ms"
if [ "$failed" -ne 0 ]; then
  dump_logs
  echo "$passed passed, $failed failed"
  exit 1
fi
echo "$passed passed, 0 failed"
