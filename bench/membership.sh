#!/usr/bin/env bash
# membership.sh: what membership and stealing cost per node. Starts an
# N-node cluster on loopback (no workers but on node 1's peers: see below),
# lets heartbeats run for SECS seconds, and prints per node the heartbeat
# bytes published and received per second (a published frame goes to each
# of the N-1 subscribers, so bytes on the wire out = published x (N-1)).
# Then it dispatches JOBS noop jobs to node 1, which has no workers, while
# every other node has 1 worker: all of them move by stealing; it prints
# the jobs each node stole and the time it took.
#
# Usage: bench/membership.sh [N=3] [SECS=10] [JOBS=20000]   (BUILD=build)
# Kills only the processes it started; removes its temp dir.
set -uo pipefail

N=${1:-3}
SECS=${2:-10}
JOBS=${3:-20000}
BUILD=${BUILD:-build}
CADRE="$BUILD/cadre"
DEMO="$BUILD/demo.so"
TMP=$(mktemp -d /tmp/cadre-membership.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$CADRE" keygen >"$TMP/key" || exit 1
API=() SEED=
for i in $(seq 1 "$N"); do
    workers=1
    [ "$i" = 1 ] && workers=0
    "$CADRE" node --data "$TMP/n$i" --node-id "n$i" --key-file "$TMP/key" \
        --listen tcp://127.0.0.1:0 --workers "$workers" --plugin "$DEMO" \
        ${SEED:+--peer "$SEED"} >"$TMP/n$i.out" 2>"$TMP/n$i.log" &
    PIDS+=("$!")
    for _ in $(seq 100); do
        grep -q '^cadre node ready' "$TMP/n$i.out" && break
        sleep 0.1
    done
    line=$(grep -m1 '^cadre node ready' "$TMP/n$i.out") || {
        echo "membership.sh: node $i did not start" >&2
        exit 1
    }
    API+=("$(sed -n 's/.* api=\([^ ]*\).*/\1/p' <<<"$line")")
    [ -z "$SEED" ] && SEED=$(sed -n 's/.* peer=\([^ ]*\).*/\1/p' <<<"$line")
done

# field NODE_INDEX NAME: a number from the node's status --json.
field() {
    "$CADRE" status --url "${API[$1]}" --key-file "$TMP/key" --json |
        sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

for _ in $(seq 100); do
    [ "$(field 0 alive)" = $((N - 1)) ] && break
    sleep 0.1
done
declare -a OUT0 IN0
for i in $(seq 0 $((N - 1))); do
    OUT0[i]=$(field "$i" heartbeat_bytes_out)
    IN0[i]=$(field "$i" heartbeat_bytes_in)
done
sleep "$SECS"
echo "membership: $N nodes, heartbeat every 500 ms, $SECS s"
printf '%-5s %14s %18s %14s\n' node "published B/s" "on the wire out B/s" "received B/s"
for i in $(seq 0 $((N - 1))); do
    out=$((($(field "$i" heartbeat_bytes_out) - OUT0[i]) / SECS))
    in=$((($(field "$i" heartbeat_bytes_in) - IN0[i]) / SECS))
    printf '%-5s %14d %18d %14d\n' "n$((i + 1))" "$out" $((out * (N - 1))) "$in"
done

t0=$(date +%s.%N)
"$CADRE" dispatch noop --count "$JOBS" --url "${API[0]}" --key-file "$TMP/key" >/dev/null
for _ in $(seq 600); do
    done_n=0
    for i in $(seq 0 $((N - 1))); do
        d=$("$CADRE" status --url "${API[$i]}" --key-file "$TMP/key" --json |
            sed -n 's/.*"done":\([0-9]*\).*/\1/p')
        done_n=$((done_n + ${d:-0}))
    done
    [ "$done_n" -ge "$JOBS" ] && break
    sleep 0.1
done
t1=$(date +%s.%N)
echo "stealing: $JOBS noop jobs on n1 (no workers), 1 worker on each other node:" \
    "all done in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
printf '%-5s %12s %10s %10s\n' node stolen lent settled
for i in $(seq 0 $((N - 1))); do
    printf '%-5s %12s %10s %10s\n' "n$((i + 1))" "$(field "$i" jobs_stolen)" \
        "$(field "$i" jobs_lent)" "$(field "$i" jobs_settled)"
done
