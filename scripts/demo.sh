#!/usr/bin/env bash
# make demo: a 3-node cluster on loopback (deploy/cluster.sh: one shared key,
# two supervised workers per node running the demo plugin, data under
# ./var/demo-cluster, cleaned first). 3,000 jobs are dispatched to node1
# only; node2 and node3 steal from it, so all three run them. Then a run()
# of 30 tasks through node2, which spreads them over the cluster. It prints
# who ran what and the members table. The nodes are Raft voters (--voters):
# it shows the leader each node names; a schedule firing every second on one
# server (on_one_server), each slot run exactly once, also across a SIGTERM
# of the leader (it hands over) and its restart; a cluster-wide lock and its
# fencing token.
# Then it stops the cluster (exit 0), or says what failed (exit 1).
set -euo pipefail
build=${1:-build}
[ -x "$build/cadre" ] || {
    echo "demo: $build/cadre not found: build first (make build)" >&2
    exit 1
}
cadre="$(cd "$build" && pwd)/cadre"
plugin="$(cd "$build" && pwd)/demo.so"
cluster="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/cluster.sh"
dir="$PWD/var/demo-cluster"
nodes=3
jobs=3000
job_ms=2         # each job is `sleep 2`: 2 ms of work, so stealing pays off
run_tasks=30
run_ms=50
wait_s=40        # for the 3,000 jobs; they take a second or two
sched_watch_s=4  # the schedule runs this long before the first check
slot_wait_s=15   # most seconds a due slot may take to show up as run

fail() {
    echo "demo: FAILED: $*" >&2
    echo "demo: node logs are in $dir/node{1..$nodes}.log" >&2
    exit 1
}

now_ms() { date +%s%3N; }

# seconds with 2 decimals from a number of ms
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }

# status_json K: node K's `cadre status --json`.
status_json() {
    local url_var="CADRE_NODE$1_URL"
    "$cadre" status --json --url "${!url_var}" --request-timeout 3000
}

# done_of JSON: jobs this node finished, summed over its queues.
done_of() {
    local queues=${1#*\"queues\":[}
    { grep -o '"done":[0-9]*' <<<"$queues" || true; } |
        awk -F: '{ s += $2 } END { print s + 0 }'
}

# counter_of JSON NAME: a number from the status's "cluster" object.
counter_of() {
    local n
    n=$({ grep -o "\"$2\":[0-9]*" <<<"$1" || true; } | head -n 1 | cut -d: -f2)
    echo "${n:-0}"
}

# url_of K: node K's api url.
url_of() {
    local v="CADRE_NODE$1_URL"
    echo "${!v}"
}

# ms_of_log_time 2026-01-02T03:04:05.678Z: Unix ms.
ms_of_log_time() { date -u -d "$1" +%s%3N; }

# ledger_rows FROM TO: a line per slot in FROM..TO: the slot, its time, how
# many times it ran and on which node(s) ("-": not run, or not yet).
ledger_rows() {
    local map="" p
    for p in "${!node_of_pid[@]}"; do map+="$p=${node_of_pid[$p]} "; done
    awk -v from="$1" -v to="$2" -v map="$map" '
        BEGIN {
            n = split(map, m, " ")
            for (i = 1; i <= n; i++) { split(m[i], kv, "="); name[kv[1]] = kv[2] }
        }
        {
            c[$1]++
            w = ($2 in name) ? name[$2] : "pid " $2
            on[$1] = on[$1] (on[$1] == "" ? "" : ",") w
        }
        END {
            for (s = from; s <= to; s++) {
                t = s % 86400
                printf "%d %02d:%02d:%02dZ %d %s\n", s, int(t / 3600),
                    int(t % 3600 / 60), t % 60, c[s] + 0, (s in on) ? on[s] : "-"
            }
        }' "$ledger"
}

# wait_slots FROM TO: until every slot in FROM..TO is in the ledger (or
# slot_wait_s passed); then fails unless each ran exactly once, and unless
# no slot at all in the ledger ran twice.
wait_slots() {
    local from=$1 to=$2 deadline missing bad twice
    deadline=$(($(now_ms) + slot_wait_s * 1000))
    while :; do
        missing=$(ledger_rows "$from" "$to" | awk '$3 == 0' | wc -l)
        [ "$missing" -eq 0 ] && break
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.2
    done
    bad=$(ledger_rows "$from" "$to" | awk '$3 != 1 { printf " %s:%dx", $2, $3 }')
    twice=$(awk '{ c[$1]++ } END { for (s in c) if (c[s] > 1) printf " %d:%dx", s, c[s] }' "$ledger")
    [ -z "$bad$twice" ] ||
        fail "schedule tick: slots not run exactly once (slot:runs):$bad$twice; ledger $ledger"
}

# show_slots FROM TO [NOTES]: the ledger's rows, indented; NOTES is
# "SLOT=TEXT|SLOT=TEXT...", each TEXT after the row of its SLOT.
show_slots() {
    printf '   %-10s %5s  %s\n' SLOT RUNS "RAN ON"
    ledger_rows "$1" "$2" | awk -v notes="${3:-}" '
        BEGIN {
            n = split(notes, v, "|")
            for (i = 1; i <= n; i++) {
                j = index(v[i], "=")
                if (j == 0) continue
                sl = substr(v[i], 1, j - 1)
                if (sl in note) note[sl] = note[sl] "; " substr(v[i], j + 1)
                else note[sl] = substr(v[i], j + 1)
            }
        }
        { printf "   %-10s %5d  %s\n", $2, $3, ($1 in note) ? sprintf("%-8s <- %s", $4, note[$1]) : $4 }'
}

# ran_where FROM TO: "3 on node1, 4 on node2" over the slots FROM..TO.
ran_where() {
    ledger_rows "$1" "$2" | awk '{ n[$4]++ } END { for (w in n) printf "%s %d\n", w, n[w] }' |
        sort | awk '{ printf "%s%d on %s", (NR > 1 ? ", " : ""), $2, $1 }'
}

# agreed_leader K...: waits until nodes K... all name one leader that says it is
# ready; prints its id and term ("node2 5"). Fails after 10 s.
agreed_leader() {
    local deadline k json lead term first="" views
    deadline=$(($(now_ms) + 10000))
    while :; do
        first=""
        views=""
        for k in "$@"; do
            json=$("$cadre" cluster leader --json --url "$(url_of "$k")" \
                --request-timeout 2000 2>/dev/null) || json=""
            lead=$(sed -n 's/^{"leader":"\([^"]*\)".*/\1/p' <<<"$json")
            term=$({ grep -o '"term":[0-9]*' <<<"$json" || true; } | cut -d: -f2)
            views+=" node$k:${lead:--}"
            if [ -z "$lead" ] || { [ -n "$first" ] && [ "$lead $term" != "$first" ]; }; then
                first=""
                break
            fi
            first="$lead $term"
        done
        if [ -n "$first" ]; then
            lead=${first%% *}
            json=$("$cadre" cluster leader --json --url "$(url_of "${lead#node}")" \
                --request-timeout 2000 2>/dev/null) || json=""
            if grep -q '"ready":true' <<<"$json"; then
                echo "$first"
                return 0
            fi
        fi
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "no ready leader that nodes $* all name after 10 s:$views"
        sleep 0.1
    done
}

# A cluster left by an interrupted demo is stopped before its dir is wiped.
if [ -d "$dir" ]; then
    "$cluster" stop -d "$dir" --timeout 20 >/dev/null ||
        fail "a cluster from an earlier demo is still running in $dir"
    rm -rf "$dir"
fi
mkdir -p "$dir"
: >"$dir/ticks.ledger"

started=0
cleanup() {
    [ "$started" -eq 1 ] || return 0
    echo "demo: stopping the cluster" >&2
    "$cluster" stop -d "$dir" --timeout 20 >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(now_ms)
# The schedule: one slot a second, run once in the cluster. Its task "tick"
# is an exec handler that appends what ran to a ledger: the slot
# (CADRE_SLOT), the pid of the node whose worker ran it (CADRE_SUPERVISED)
# and the attempt. The ledger, not a log line, is what the checks count.
ledger="$dir/ticks.ledger"
cat >"$dir/demo.ini" <<'EOF'
; scripts/demo.sh: a schedule run exactly once per slot in the whole cluster
[schedule "tick"]
every = 1s
task = tick
on_one_server = true
overlap = allow
catchup = all
EOF
tick_cmd="printf '%s %s %s\\n' \"\$CADRE_SLOT\" \"\$CADRE_SUPERVISED\" \"\$CADRE_ATTEMPT\" >>$(printf %q "$ledger")"

echo "== starting $nodes nodes on loopback, 2 workers each, Raft voters (deploy/cluster.sh --voters)"
started=1
"$cluster" start -n "$nodes" -w 2 -d "$dir" --cadre "$cadre" --plugin "$plugin" \
    --voters --config "$dir/demo.ini" -- --exec "tick=$tick_cmd" ||
    fail "the cluster did not start"
t_up=$(now_ms)
# CADRE_URL (node1), CADRE_KEY_FILE, CADRE_NODEk_URL and _PID for each node.
# shellcheck source=/dev/null
. "$dir/cluster.env"
declare -A node_of_pid=()
for k in $(seq 1 "$nodes"); do
    pid_var="CADRE_NODE${k}_PID"
    node_of_pid[${!pid_var}]="node$k"
done

echo
echo "== one job through node3, waited for:"
echo -n "   sha256(hello) = "
"$cadre" dispatch sha256 hello --wait --wait-timeout 10000 --url "$CADRE_NODE3_URL" ||
    fail "dispatch to node3"
echo
echo "== a job whose handler fails:"
if "$cadre" dispatch fail "card declined" --wait --wait-timeout 10000 2>&1 | sed 's/^/   /'; then
    fail "the failing job succeeded"
fi

declare -a before
for k in $(seq 1 "$nodes"); do
    s=$(status_json "$k") || fail "status of node$k"
    before[k]=$(done_of "$s")
done
total_before=0
for k in $(seq 1 "$nodes"); do total_before=$((total_before + before[k])); done

echo
echo "== $jobs jobs (sleep $job_ms ms each) dispatched in bulk to node1 only:"
echo -n "   "
"$cadre" dispatch sleep "$job_ms" --count "$jobs" || fail "bulk dispatch to node1"
t_jobs=$(now_ms)
echo "   jobs done per node while node2 and node3 steal from node1:"
deadline=$((t_jobs + wait_s * 1000))
last_print=0
while :; do
    sum=0
    line=""
    for k in $(seq 1 "$nodes"); do
        s=$(status_json "$k") || fail "status of node$k"
        d=$(($(done_of "$s") - before[k]))
        sum=$((sum + d))
        line+=$(printf '  node%d %5d' "$k" "$d")
    done
    now=$(now_ms)
    if [ "$sum" -ge "$jobs" ] || [ $((now - last_print)) -ge 400 ]; then
        printf '   %5s s:%s   (%d/%d)\n' "$(secs $((now - t_jobs)))" "$line" "$sum" "$jobs"
        last_print=$now
    fi
    [ "$sum" -ge "$jobs" ] && break
    [ "$now" -lt "$deadline" ] ||
        fail "only $sum of $jobs jobs done after ${wait_s}s"
    sleep 0.2
done
el=$((now - t_jobs))
echo "   all $jobs done in $(secs "$el") s:" \
    "$(awk -v n="$jobs" -v ms="$el" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }') jobs/s" \
    "on $((nodes * 2)) workers (node1's 2 workers alone need >= $(secs $((jobs * job_ms / 2))) s of sleeping)"

echo
echo "== cadre run: $run_tasks tasks (sleep $run_ms ms each) through node2, which spreads them:"
s=$(status_json 2) || fail "status of node2"
sub_before=$(counter_of "$s" subrun_tasks)
tasks=()
for _ in $(seq 1 "$run_tasks"); do tasks+=("sleep:$run_ms"); done
t_run=$(now_ms)
out=$("$cadre" run "${tasks[@]}" --timeout 10s --url "$CADRE_NODE2_URL") ||
    fail "cadre run through node2: $(sort <<<"$out" | uniq -c | tr '\n' ';')"
el=$(($(now_ms) - t_run))
ok=$(grep -c '^ok ' <<<"$out" || true)
[ "$ok" -eq "$run_tasks" ] || fail "cadre run: $ok of $run_tasks tasks ok"
s=$(status_json 2) || fail "status of node2"
sub_after=$(counter_of "$s" subrun_tasks)
echo "   $ok of $run_tasks ok, in order, in $(secs "$el") s" \
    "($(secs $((run_tasks * run_ms))) s of work; node2 sent $((sub_after - sub_before)) tasks to its peers)"

echo
echo "== who ran what (the $jobs jobs; stolen = taken from a peer, lent = given to one):"
printf '   %-6s %8s %8s %8s %16s\n' NODE RAN STOLEN LENT "RUN TASKS SENT"
for k in $(seq 1 "$nodes"); do
    s=$(status_json "$k") || fail "status of node$k"
    printf '   %-6s %8d %8d %8d %16d\n' "node$k" $(($(done_of "$s") - before[k])) \
        "$(counter_of "$s" jobs_stolen)" "$(counter_of "$s" jobs_lent)" \
        "$(counter_of "$s" subrun_tasks)"
done
echo
echo "== cadre cluster members (node1's view):"
"$cadre" cluster members || fail "cadre cluster members"

echo
echo "== the leader (cadre cluster leader at each node):"
read -r lead term <<<"$(agreed_leader $(seq 1 "$nodes"))" || exit 1
[ -n "$lead" ] || exit 1
for k in $(seq 1 "$nodes"); do
    out=$("$cadre" cluster leader --url "$(url_of "$k")") || fail "cadre cluster leader at node$k"
    printf '   node%d: %s\n' "$k" "$out"
done
echo "   all $nodes name $lead (term $term)"

echo
echo "== a schedule on one server: \"tick\" every 1 s, on_one_server, catchup = all"
echo "   (demo.ini; its exec handler appends each run to the ledger: slot, node that ran it)"
sleep "$sched_watch_s"
expect_from=$((t_up / 1000 + 1)) # the leader was ready before: due from here on
from=$(awk 'NR == 1 || $1 < m { m = $1 } END { print m + 0 }' "$ledger")
[ "$from" -gt 0 ] && [ "$from" -le "$expect_from" ] || from=$expect_from
to=$(($(now_ms) / 1000 - 1))
wait_slots "$from" "$to"
show_slots $((to - sched_watch_s + 1)) "$to"
echo "   every slot since the cluster was up ran exactly once: $((to - from + 1)) slots," \
    "$(ran_where "$from" "$to")"
echo "   (the leader $lead stores each slot's job; an idle worker of any node may steal it)"

# The leader now (an election under load may have moved it).
read -r lead term <<<"$(agreed_leader $(seq 1 "$nodes"))" || exit 1
[ -n "$lead" ] || exit 1
k_lead=${lead#node}
echo
echo "   SIGTERM to the leader $lead only (deploy/cluster.sh stop --node $k_lead):"
t_term=$(now_ms)
"$cluster" stop -d "$dir" --node "$k_lead" --timeout 20 | sed 's/^/   /' ||
    fail "$lead did not stop"
survivors=()
for k in $(seq 1 "$nodes"); do [ "$k" -eq "$k_lead" ] || survivors+=("$k"); done
read -r new_lead new_term <<<"$(agreed_leader "${survivors[@]}")" || exit 1
[ -n "$new_lead" ] || exit 1
[ "$new_lead" != "$lead" ] || fail "the stopped $lead is still named leader"
for k in "${survivors[@]}"; do
    out=$("$cadre" cluster leader --url "$(url_of "$k")") || fail "cadre cluster leader at node$k"
    printf '   node%d: %s\n' "$k" "$out"
done
# The hand-over, from the nodes' logs: the new leader's LEADER-READY (its
# barrier committed: it acts from then on) after our SIGTERM.
ready_line=$(grep "LEADER-READY id=$new_lead .* term=$new_term " "$dir/$new_lead.log" | tail -n 1 || true)
xfer_line=$(grep "LEADER-TRANSFERRED id=$lead " "$dir/$lead.log" | tail -n 1 || true)
ready_ms=$t_term
if [ -n "$ready_line" ]; then
    ready_ms=$(ms_of_log_time "${ready_line%% *}")
    echo -n "   new leader $new_lead (term $new_term) ready $((ready_ms - t_term)) ms after the SIGTERM"
else
    echo -n "   new leader $new_lead (term $new_term)"
fi
if [[ $xfer_line =~ to=([^ ]+)\ ms=([0-9]+) ]]; then
    echo " ($lead handed over to ${BASH_REMATCH[1]} in ${BASH_REMATCH[2]} ms: raft_transfer, no election)"
else
    echo " (by an election: no hand-over in $lead's log)"
fi

# 3 more slots. Those after the new leader was ready are its own: they must
# all run now. One the old leader fired as it stopped (claimed and done in the
# log, its job held in its own store) waits there until it is back.
to2=$(($(now_ms) / 1000 + 3))
while [ "$(now_ms)" -lt $(((to2 + 1) * 1000)) ]; do sleep 0.2; done
wait_slots $((ready_ms / 1000 + 1)) "$to2"
stranded=$(ledger_rows "$from" "$to2" | awk '$3 == 0 { print $1 }' | tr '\n' ' ')
echo "   3 more slots passed; $lead again (deploy/cluster.sh start --node $k_lead: its flags, data and raft log):"
"$cluster" start -d "$dir" --node "$k_lead" --timeout 30 | sed 's/^/   /' ||
    fail "$lead did not start again"
# shellcheck source=/dev/null
. "$dir/cluster.env"
pid_var="CADRE_NODE${k_lead}_PID"
node_of_pid[${!pid_var}]=$lead
out=$("$cadre" cluster leader --url "$(url_of "$k_lead")") || fail "cadre cluster leader at $lead"
echo "   $lead: $out"
wait_slots "$from" "$to2"
notes="$((t_term / 1000))=SIGTERM to $lead in this second"
for sl in $stranded; do
    notes+="|$sl=ran late: its job waited in $lead's store till it was back"
done
show_slots $((t_term / 1000 - 1)) "$to2" "$notes"
echo "   every slot since the cluster was up ran exactly once, across the hand-over and the restart:" \
    "$((to2 - from + 1)) slots, none lost, none twice"
if [ -n "$stranded" ]; then
    echo "   (a slot $lead fired in its last moment as leader ran only once $lead was back:" \
        "a node that never comes back takes such a slot with it)"
fi

a=${survivors[0]}
b=${survivors[1]}
echo
echo "== a lock: cadre lock acquire demo --ttl 5s (the leader's replicated state):"
out=$("$cadre" lock acquire demo --ttl 5s --url "$(url_of "$a")") || fail "lock acquire through node$a"
token1=${out%% *}
owner=${out#* }
echo "   through node$a: acquired, fencing token $token1, owner $owner"
if out=$("$cadre" lock acquire demo --ttl 5s --url "$(url_of "$b")" 2>&1); then
    fail "a second acquire through node$b got the held lock: $out"
else
    rc=$?
fi
[ "$rc" -eq 1 ] || fail "a second acquire through node$b: exit $rc (not 1, held): $out"
echo "   through node$b: refused, exit 1: ${out#cadre lock: }"
"$cadre" lock release demo --owner "$owner" --url "$(url_of "$b")" >/dev/null ||
    fail "lock release through node$b"
echo "   released by its owner (through node$b)"
out=$("$cadre" lock acquire demo --ttl 5s --url "$(url_of "$b")") || fail "lock acquire again through node$b"
token2=${out%% *}
[ "$token2" -gt "$token1" ] || fail "the fencing token went from $token1 to $token2"
echo "   through node$b: acquired again, fencing token $token2 > $token1 (it only grows)"
"$cadre" lock release demo --owner "${out#* }" --url "$(url_of "$b")" >/dev/null ||
    fail "lock release through node$b"

echo
echo "== cadre schedule list (node$a's view):"
"$cadre" schedule list --url "$(url_of "$a")" || fail "cadre schedule list"

echo
to3=$(($(now_ms) / 1000 - 1))
wait_slots "$from" "$to3"
echo "== the schedule, all along: $((to3 - from + 1)) slots, each ran exactly once" \
    "($(ran_where "$from" "$to3"))"

echo
echo "== stopping the cluster (SIGTERM: running jobs finish, then each node exits)"
"$cluster" stop -d "$dir" || fail "the cluster did not stop cleanly"
started=0
echo "demo done in $(secs $(($(now_ms) - t0))) s; data and logs in $dir"
