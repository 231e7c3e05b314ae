#!/usr/bin/env bash
# coord.sh: the cluster primitives' cost. Starts 3 voters on this machine
# (one cluster key, each listing the first as a peer, no workers), waits for
# a ready leader, then runs bench/bench_coord: one client's lock
# acquire+release latency through the leader and through each follower
# (one forward hop more), 8 clients' pairs on their own locks, and 8
# clients' throttle decisions per second on one key.
#
# Usage: bench/coord.sh             (after cmake --build build)
# Env:   BUILD=build  PAIRS=2000 (one-client pairs per node)  SECS=5
# Kills only the processes it started; removes its temp dir.
set -uo pipefail

BUILD=${BUILD:-build}
PAIRS=${PAIRS:-2000}
SECS=${SECS:-5}
CADRE="$BUILD/cadre"
BC="$BUILD/bench/bench_coord"
HERE=$(cd "$(dirname "$0")" && pwd)

for f in "$CADRE" "$BC"; do
    [ -e "$f" ] || { echo "coord.sh: $f not built" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/cadre-coord-bench.XXXXXX)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # cleanup, STARTED: PIDs this script started
bench_traps

KEY="$TMP/cluster.key"
"$CADRE" keygen >"$KEY" || exit 1
NAMES=(a b c)
declare -A API PEER RAFT

# A free loopback port (bound and released: racy, like the tests' helper).
free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

VOTERS=""
for n in "${NAMES[@]}"; do
    RAFT[$n]="127.0.0.1:$(free_port)"
    VOTERS="${VOTERS:+$VOTERS,}$n=${RAFT[$n]}"
done

# start NAME [SEED_PEER_URL]: a voter on api port 0; API[NAME], PEER[NAME].
start() {
    local name=$1 seed=${2:-} line args=()
    [ -n "$seed" ] && args=(--peer "$seed")
    "$CADRE" node --data "$TMP/$name" --node-id "$name" --key-file "$KEY" \
        --listen tcp://127.0.0.1:0 --workers 0 --voters "$VOTERS" \
        --raft-listen "${RAFT[$name]}" "${args[@]}" \
        >"$TMP/$name.out" 2>"$TMP/$name.log" &
    STARTED+=("$!")
    for _ in $(seq 100); do
        line=$(grep -m1 '^cadre node ready ' "$TMP/$name.out")
        if [ -n "$line" ]; then
            API[$name]=$(sed -n 's/.* api=\([^ ]*\).*/\1/p' <<<"$line")
            PEER[$name]=$(sed -n 's/.* peer=\([^ ]*\).*/\1/p' <<<"$line")
            return 0
        fi
        sleep 0.1
    done
    echo "coord.sh: node $name did not start" >&2
    tail -n5 "$TMP/$name.log" >&2
    exit 1
}

start a
start b "${PEER[a]}"
start c "${PEER[a]}"

# Until every node can take a lock (a ready leader, known to all).
for n in "${NAMES[@]}"; do
    ok=
    for _ in $(seq 200); do
        if "$CADRE" lock acquire warmup --ttl 1s --url "${API[$n]}" \
            --key-file "$KEY" >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.05
    done
    [ -n "$ok" ] || { echo "coord.sh: $n cannot take a lock" >&2; exit 1; }
done
LEADER=$("$CADRE" cluster leader --json --url "${API[a]}" --key-file "$KEY" |
    sed -n 's/.*"leader":"\([^"]*\)".*/\1/p')
ARGS=("$LEADER=${API[$LEADER]}")
for n in "${NAMES[@]}"; do
    [ "$n" = "$LEADER" ] || ARGS+=("$n=${API[$n]}")
done
echo "# 3 voters on $(nproc) CPUs, leader $LEADER; lock1 via=$LEADER has no forward hop"
"$BC" "$KEY" "$PAIRS" "$SECS" "${ARGS[@]}"
