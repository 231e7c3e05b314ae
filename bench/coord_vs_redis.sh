#!/usr/bin/env bash
# coord_vs_redis.sh: cadre's locks and throttles next to their Redis peers,
# in one run. Runs bench/coord.sh (3 voters on this machine, bench_coord),
# then starts redis-server twice on a free loopback port, each in its own
# dir under the temp dir: without persistence (--save '' --appendonly no),
# then with --appendonly yes --appendfsync always (an fsync per write, as
# cadre's commits), and runs bench/bench_redis (what Laravel's
# Cache::lock and Redis::throttle send) against each. Prints every raw
# line, then one table: figure | cadre | redis no fsync | redis fsync
# always | the ratios cadre/redis.
#
# Usage: bench/coord_vs_redis.sh     (after cmake --build build)
# Env:   BUILD=build  PAIRS=2000 (one-client pairs)  SECS=5 (as coord.sh)
# Without redis-server or bench_redis (libhiredis-dev missing at configure
# time; scripts/deps.sh installs both) it says so and prints cadre's
# figures only. Kills only the processes it started; removes its temp dir.
set -uo pipefail

BUILD=${BUILD:-build}
PAIRS=${PAIRS:-2000}
SECS=${SECS:-5}
BR="$BUILD/bench/bench_redis"
HERE=$(cd "$(dirname "$0")" && pwd)
export BUILD PAIRS SECS

TMP=$(mktemp -d /tmp/cadre-coord-redis.XXXXXX)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # cleanup, STARTED: PIDs this script started
bench_traps

DO_REDIS=1
if ! command -v redis-server >/dev/null; then
    echo "coord_vs_redis.sh: redis-server not installed (scripts/deps.sh):" \
        "cadre's figures only" >&2
    DO_REDIS=0
elif [ ! -x "$BR" ]; then
    echo "coord_vs_redis.sh: $BR not built (libhiredis-dev missing at" \
        "configure time?): cadre's figures only" >&2
    DO_REDIS=0
fi

# stop PID: SIGTERM one process we started, wait up to 10 s, then SIGKILL.
stop() {
    local pid=$1 i keep=()
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for i in "${STARTED[@]}"; do
        [ "$i" = "$pid" ] || keep+=("$i")
    done
    STARTED=("${keep[@]}")
}

# ---- cadre: coord.sh ------------------------------------------------------

echo "cadre: bench/coord.sh (3 voters, PAIRS=$PAIRS SECS=$SECS)..." >&2
"$HERE/coord.sh" >"$TMP/coord.out" &
CPID=$!
STARTED+=("$CPID")
wait "$CPID"
CRC=$?
STARTED=()
cat "$TMP/coord.out"
[ "$CRC" = 0 ] || { echo "coord_vs_redis.sh: coord.sh failed ($CRC)" >&2; exit 1; }

# ---- redis ----------------------------------------------------------------

free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

RS_PID='' RS_PORT=''
# start_redis NAME ARGS...: redis-server on a free loopback port with dir
# $TMP/NAME; sets RS_PID/RS_PORT.
start_redis() {
    local name=$1 i
    shift
    mkdir -p "$TMP/$name"
    for _ in 1 2 3; do
        RS_PORT=$(free_port) || return 1
        redis-server --bind 127.0.0.1 --port "$RS_PORT" --dir "$TMP/$name" \
            --daemonize no --logfile "$TMP/$name.log" "$@" &
        RS_PID=$!
        STARTED+=("$RS_PID")
        for i in $(seq 50); do
            if grep -q 'Ready to accept connections' "$TMP/$name.log" 2>/dev/null; then
                return 0
            fi
            kill -0 "$RS_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop "$RS_PID"
    done
    echo "coord_vs_redis.sh: redis-server $* did not start:" \
        "$(tail -n3 "$TMP/$name.log" 2>/dev/null)" >&2
    return 1
}

# run_redis LABEL ARGS...: one server, bench_redis against it, stopped.
run_redis() {
    local label=$1
    shift
    echo "redis ($label): redis-server $(printf '%q ' "$@")..." >&2
    start_redis "redis-$label" "$@" || return 1
    timeout 300 "$BR" 127.0.0.1 "$RS_PORT" "$label" "$PAIRS" "$SECS" \
        >>"$TMP/redis.out" || echo "coord_vs_redis.sh: bench_redis ($label) failed" >&2
    stop "$RS_PID"
}

: >"$TMP/redis.out"
if [ "$DO_REDIS" = 1 ]; then
    echo "# $(redis-server --version | cut -d' ' -f1-3), same $(nproc) CPUs"
    run_redis nofsync --save '' --appendonly no
    run_redis fsync --save '' --appendonly yes --appendfsync always
    cat "$TMP/redis.out"
fi

# ---- table ----------------------------------------------------------------

# field FILE PATTERN NTH KEY: KEY's value on the NTH line of FILE that
# matches PATTERN (empty if none).
field() {
    grep -E "$2" "$1" | sed -n "$3p" | sed -n "s/.* $4=\([0-9.]*\).*/\1/p"
}

# ratio C R: C/R to 2 decimals, n/a if either is missing or R is 0.
ratio() {
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v c="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2fx", c / r; else print "n/a" }'
    else
        echo n/a
    fi
}

C="$TMP/coord.out" R="$TMP/redis.out"
# row LABEL CADRE_PATTERN NTH REDIS_WORKLOAD KEY
row() {
    local c n f
    c=$(field "$C" "$2" "$3" "$5")
    n=$(field "$R" "^redis $4 via=nofsync " 1 "$5")
    f=$(field "$R" "^redis $4 via=fsync " 1 "$5")
    printf '%-44s | %9s | %9s | %9s | %12s | %12s\n' "$1" "${c:-n/a}" \
        "${n:-n/a}" "${f:-n/a}" "$(ratio "$c" "$n")" "$(ratio "$c" "$f")"
}

LEADER=$(grep -E '^coord lock1 ' "$C" | sed -n '1s/.* via=\([^ ]*\).*/\1/p')
echo
echo "cadre (3 voters, fsync, leader $LEADER) vs Redis (1 node; Laravel's" \
    "Cache::lock, Redis::throttle); $(nproc) CPUs"
echo "ratio = cadre/redis: latency rows >1 and rate rows <1 mean cadre is slower"
printf '%-44s | %9s | %9s | %9s | %12s | %12s\n' figure cadre "redis" \
    "redis" "cadre/redis" "cadre/redis"
printf '%-44s | %9s | %9s | %9s | %12s | %12s\n' "" "" "no fsync" \
    "fsync" "no fsync" "fsync"
printf '%s\n' "---------------------------------------------+-----------+-----------+-----------+--------------+-------------"
for k in pair_p50_us pair_p99_us acquire_p50_us acquire_p99_us; do
    row "lock 1 client, leader: $k" '^coord lock1 ' 1 lock1 "$k"
done
NF=$(grep -cE '^coord lock1 ' "$C")
for i in $(seq 2 "$NF"); do
    via=$(grep -E '^coord lock1 ' "$C" | sed -n "${i}s/.* via=\([^ ]*\).*/\1/p")
    for k in pair_p50_us pair_p99_us acquire_p50_us acquire_p99_us; do
        row "lock 1 client, follower $via: $k" '^coord lock1 ' "$i" lock1 "$k"
    done
done
row "lock 1 client, leader: pairs/s" '^coord lock1 ' 1 lock1 pairs_per_s
row "lock 8 clients: pairs/s" '^coord lock8 ' 1 lock8 pairs_per_s
row "lock 8 clients: acquire_p50_us" '^coord lock8 ' 1 lock8 acquire_p50_us
row "lock 8 clients: acquire_p99_us" '^coord lock8 ' 1 lock8 acquire_p99_us
row "throttle 8 clients, 1 key: decisions/s" '^coord throttle8 ' 1 throttle8 per_s
