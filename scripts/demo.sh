#!/usr/bin/env bash
# make demo: a 3-node cluster on loopback (deploy/cluster.sh: one shared key,
# two supervised workers per node running the demo plugin, data under
# ./var/demo-cluster, cleaned first). 3,000 jobs are dispatched to node1
# only; node2 and node3 steal from it, so all three run them. Then a run()
# of 30 tasks through node2, which spreads them over the cluster. It prints
# who ran what, the members table, and stops the cluster (exit 0), or says
# what failed (exit 1).
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

# A cluster left by an interrupted demo is stopped before its dir is wiped.
if [ -d "$dir" ]; then
    "$cluster" stop -d "$dir" --timeout 20 >/dev/null ||
        fail "a cluster from an earlier demo is still running in $dir"
    rm -rf "$dir"
fi
mkdir -p "$dir"

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
echo "== starting $nodes nodes on loopback, 2 workers each (deploy/cluster.sh)"
started=1
"$cluster" start -n "$nodes" -w 2 -d "$dir" --cadre "$cadre" --plugin "$plugin" ||
    fail "the cluster did not start"
# CADRE_URL (node1), CADRE_KEY_FILE, CADRE_NODEk_URL for each node.
# shellcheck source=/dev/null
. "$dir/cluster.env"

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
echo "== stopping the cluster (SIGTERM: running jobs finish, then each node exits)"
"$cluster" stop -d "$dir" || fail "the cluster did not stop cleanly"
started=0
echo "demo done in $(secs $(($(now_ms) - t0))) s; data and logs in $dir"
