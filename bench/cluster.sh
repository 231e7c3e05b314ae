#!/usr/bin/env bash
# cluster.sh: what a cluster costs. The same workloads on 1 node and on 3
# nodes of one cluster (all on this machine: with 2 CPUs, 3 nodes and 6
# workers share what 1 node and 2 workers had, so this shows overhead, not
# speed-up), then the one-task run() latency through a node with no workers
# (its tasks go to a peer: two more hops) next to one through a node with
# workers, and gearmand's figure from the same run (bench/compare.sh
# ONLY=gearman) for reference. Clients always talk to node 1; with 3 nodes
# the jobs are stolen by the others and done counts are summed over all.
#
# Usage: bench/cluster.sh             (after cmake --build build)
# Env:   BUILD=build  N=20000 (dispatch, e2e)  NBULK=100000 (async)
#        RUN1_N=5000 (one-task runs)  RUN_SECS=5  GEARMAN=1 (0: skip it)
# Kills only the processes it started; removes its temp dir.
set -uo pipefail

BUILD=${BUILD:-build}
N=${N:-20000}
NBULK=${NBULK:-100000}
RUN1_N=${RUN1_N:-5000}
RUN_SECS=${RUN_SECS:-5}
GEARMAN=${GEARMAN:-1}
CADRE="$BUILD/cadre"
DEMO="$BUILD/demo.so"
BC="$BUILD/bench/bench_cadre"
HERE=$(cd "$(dirname "$0")" && pwd)

for f in "$CADRE" "$DEMO" "$BC"; do
    [ -e "$f" ] || { echo "cluster.sh: $f not built" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/cadre-cluster-bench.XXXXXX)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # cleanup, STARTED: PIDs this script started
bench_traps

KEY="$TMP/cluster.key"
"$CADRE" keygen >"$KEY" || exit 1
declare -A API PEER

# start NAME WORKERS [SEED_PEER_URL]: a node on port 0; API[NAME], PEER[NAME].
start() {
    local name=$1 workers=$2 seed=${3:-} line i args=()
    [ -n "$seed" ] && args=(--peer "$seed")
    "$CADRE" node --data "$TMP/$name" --node-id "$name" --key-file "$KEY" \
        --listen tcp://127.0.0.1:0 --workers "$workers" --plugin "$DEMO" \
        "${args[@]}" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    STARTED+=("$!")
    for i in $(seq 100); do
        line=$(grep -m1 '^cadre node ready ' "$TMP/$name.out")
        if [ -n "$line" ]; then
            API[$name]=$(sed -n 's/.* api=\([^ ]*\).*/\1/p' <<<"$line")
            PEER[$name]=$(sed -n 's/.* peer=\([^ ]*\).*/\1/p' <<<"$line")
            return 0
        fi
        sleep 0.1
    done
    echo "cluster.sh: node $name did not start" >&2
    tail -n5 "$TMP/$name.log" >&2
    exit 1
}

# stop_all: SIGTERM every node started so far, wait for them.
stop_all() {
    local pid
    for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null; done
    STARTED=()
}

# wait_members NAME COUNT: until NAME sees COUNT alive peers (heartbeats).
wait_members() {
    for _ in $(seq 100); do
        [ "$("$CADRE" status --url "${API[$1]}" --key-file "$KEY" --json |
            sed -n 's/.*"alive":\([0-9]*\).*/\1/p')" = "$2" ] && return 0
        sleep 0.1
    done
    echo "cluster.sh: $1 does not see $2 peers" >&2
    exit 1
}

declare -A FIG
RAW=()
# bench CONFIG WORKLOAD KEY [env...] -- ARGS: runs bench_cadre on node 1.
bench() {
    local cfg=$1 wl=$2 key=$3 out
    shift 3
    out=$(env "$@" 2>&1) || { echo "cluster.sh: $cfg $wl: $out" >&2; return; }
    RAW+=("$cfg: $out")
    FIG["$cfg $wl"]=$(sed -n "s/.* $key=\([0-9.]*\).*/\1/p" <<<"$out" | tail -1)
}

# workloads CONFIG WORKERS OTHERS: the jobs workloads against node "a".
workloads() {
    local cfg=$1 w=$2 others=$3 u=${API[a]}
    echo "$cfg..." >&2
    bench "$cfg" put8 rate "$BC" "$u" "$KEY" "$N" dispatch 8
    bench "$cfg" async8 rate "$BC" "$u" "$KEY" "$NBULK" async 8
    bench "$cfg" e2e8 rate BENCH_CLUSTER_URLS="$others" BENCH_TASK=noop \
        "$BC" "$u" "$KEY" "$N" e2e 8 "$w"
    bench "$cfg" e2ea1 rate BENCH_CLUSTER_URLS="$others" BENCH_TASK=noop \
        "$BC" "$u" "$KEY" "$NBULK" e2e-async 1 "$w"
    bench "$cfg" run1 p50_us BENCH_CLUSTER_URLS="$others" \
        "$BC" "$u" "$KEY" "$RUN1_N" run1 1 "$w"
    FIG["$cfg run1p99"]=$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"${RAW[-1]}")
    bench "$cfg" run1000 wall_ms BENCH_CLUSTER_URLS="$others" BENCH_REPS=5 \
        "$BC" "$u" "$KEY" 1000 runN 1 "$w"
    bench "$cfg" runs8 runs_per_s BENCH_CLUSTER_URLS="$others" \
        BENCH_SECONDS="$RUN_SECS" "$BC" "$u" "$KEY" 100 runs8 8 "$w"
}

T0=$SECONDS
start a 2
workloads "1 node" 2 ""
stop_all

start a 2
start b 2 "${PEER[a]}"
start c 2 "${PEER[a]}"
wait_members a 2
workloads "3 nodes" 6 "${API[b]} ${API[c]}"
for n in a b c; do
    RAW+=("3 nodes, $n: $("$CADRE" status --url "${API[$n]}" --key-file "$KEY" \
        --json | sed -n 's/.*\("cluster":{[^}]*}\).*/\1/p')")
done
stop_all

# Through a node with no workers: client -> b -> a (sub-run) -> worker.
start a 2
start b 0 "${PEER[a]}"
wait_members b 1
echo "run through a node with no workers..." >&2
bench "non-owning" run1 p50_us BENCH_CLUSTER_URLS="${API[a]}" \
    "$BC" "${API[b]}" "$KEY" "$RUN1_N" run1 1 2
FIG["non-owning run1p99"]=$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"${RAW[-1]}")
stop_all

GEAR_LINE=
if [ "$GEARMAN" = 1 ] && command -v gearmand >/dev/null; then
    echo "gearmand (bench/compare.sh ONLY=gearman)..." >&2
    GEAR_LINE=$(BUILD=$BUILD RUN1_N=$RUN1_N RUN_SECS=$RUN_SECS ONLY=gearman \
        "$HERE/compare.sh" 2>/dev/null | grep -E '^(one-task|run of 1,000|8 threads)')
fi

# ---- table ----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN {
    if (a == "" || b == "" || a + 0 == 0 || b + 0 == 0) { print "n/a"; exit }
    printf "%.2fx", d == "hi" ? b / a : a / b }'; }
row() {
    local label=$1 wl=$2 dir=$3 one=${FIG["1 node $2"]:-} three=${FIG["3 nodes $2"]:-}
    printf '%-44s | %-9s | %-9s | %s\n' "$label" "${one:-n/a}" "${three:-n/a}" \
        "$(ratio "$one" "$three" "$dir")"
}
echo
echo "cadre: 1 node vs a 3-node cluster on one $(nproc)-CPU machine; sync=full;"
echo "2 workers per node; clients on node 1 (ratio: 3 nodes relative to 1,"
echo "> 1 is better; with 3x the processes on the same CPUs, < 1 is overhead)"
printf '%-44s | %-9s | %-9s | %s\n' workload "1 node" "3 nodes" ratio
printf '%s\n' "---------------------------------------------+-----------+-----------+------"
row "dispatch, 8 clients, durable (jobs/s)" put8 hi
row "async dispatch, 8 clients (jobs/s)" async8 hi
row "end to end, 8 producers, noop (jobs/s)" e2e8 hi
row "end to end, 1 async producer, noop (jobs/s)" e2ea1 hi
row "one-task run, p50 (us)" run1 lo
row "one-task run, p99 (us)" run1p99 lo
row "run of 1,000 tasks, wall (ms, median of 5)" run1000 lo
row "8 threads x runs of 100 (runs/s)" runs8 hi
echo
echo "one-task run through a node with no workers (client -> b -> a):" \
    "p50 ${FIG["non-owning run1"]:-n/a} us, p99 ${FIG["non-owning run1p99"]:-n/a} us"
[ -n "$GEAR_LINE" ] && printf 'gearmand, same run (cadre column: 1 node):\n%s\n' "$GEAR_LINE"
echo
echo "raw:"
printf '  %s\n' "${RAW[@]}"
echo "total $((SECONDS - T0))s"
