#!/usr/bin/env bash
# compare.sh: cadre against beanstalkd on this machine, same workloads, same
# run. Starts beanstalkd (in memory; with its binlog and default lazy fsync;
# with its binlog and -f 0 = fsync every write) and `cadre node` (sync=full,
# sync=normal; 2 supervised demo-plugin workers for end to end), each on a
# free loopback port and a temp dir, runs bench_beanstalk and bench_cadre,
# and prints one table: workload | cadre | peer | ratio, then the raw figures.
# Then run(): gearmand (-t GEARMAND_THREADS, builtin queue) with 2 echo
# workers (bench_gearman workers) and a `cadre node --workers 2 --plugin
# demo.so`, both up at once; each workload runs on gearmand then on cadre
# (bench_gearman / bench_cadre run1, runN, runs8: foreground tasks against
# cadre_run), and a second table "run(): cadre vs gearmand" follows.
#
# Usage: bench/compare.sh            (after cmake --build build)
# Env:   BUILD=build   build dir holding cadre, demo.so, bench/*
#        N=20000       jobs per dispatch and end-to-end run
#        NBULK=100000  jobs per bulk run
#        NSLOW=N/4     jobs per run bound by one fsync per job (1 client or
#                      1 producer;
#                      beanstalkd -f 0), to keep the total near 1-2 minutes
#        REPEAT=1      runs per figure; the best is kept (the machine may be
#                      busy: 2 CPUs shared with the clients)
#        ONLY=beanstalk|cadre   run one side only (cadre: its side of
#                      both tables)
#        ONLY=run      only the run() section, both sides (~40 s)
#        ONLY=gearman  only gearmand's side of the run() section
#        RUN1_N=10000  sequential one-task runs (p50, p99)
#        RUN_SECS=5    seconds of the 8-thread runs workload
#        GEARMAND_THREADS=0   gearmand -t (0: gearmand picks; on 2 CPUs it
#                      did best of 0, 1, 2, 4)
# Kills only the processes it started (trap); removes its temp dir.
set -uo pipefail

BUILD=${BUILD:-build}
N=${N:-20000}
NBULK=${NBULK:-100000}
NSLOW=${NSLOW:-$((N / 4))}
ONLY=${ONLY:-}
REPEAT=${REPEAT:-1}
CADRE="$BUILD/cadre"
DEMO="$BUILD/demo.so"
BB="$BUILD/bench/bench_beanstalk"
BC="$BUILD/bench/bench_cadre"
FSYNC_RATE="$BUILD/bench/fsync_rate"
BG="$BUILD/bench/bench_gearman"
RUN_TIMEOUT=120
RUN1_N=${RUN1_N:-10000}
RUN_SECS=${RUN_SECS:-5}
GEARMAND_THREADS=${GEARMAND_THREADS:-0}

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

# Which sides run: beanstalkd, cadre (first table), gearmand, cadre (run()).
DO_BS=0 DO_CADRE=0 DO_GEAR=0 DO_CRUN=0
case $ONLY in
"") DO_BS=1 DO_CADRE=1 DO_GEAR=1 DO_CRUN=1 ;;
beanstalk) DO_BS=1 ;;
cadre) DO_CADRE=1 DO_CRUN=1 ;;
run) DO_GEAR=1 DO_CRUN=1 ;;
gearman) DO_GEAR=1 ;;
*) die "ONLY=$ONLY: one of beanstalk, cadre, run, gearman" ;;
esac

for f in "$BB" "$FSYNC_RATE"; do
    [ -x "$f" ] || die "$f not built (cmake -B $BUILD && cmake --build $BUILD)"
done
if [ "$DO_BS" = 1 ]; then
    command -v beanstalkd >/dev/null || die "beanstalkd not installed (apt-get install beanstalkd)"
fi
if [ "$DO_CADRE" = 1 ] || [ "$DO_CRUN" = 1 ]; then
    for f in "$CADRE" "$DEMO" "$BC"; do
        [ -e "$f" ] || die "$f not built (or run with ONLY=beanstalk)"
    done
fi
if [ "$DO_GEAR" = 1 ]; then
    if ! command -v gearmand >/dev/null; then
        echo "compare.sh: gearmand not installed (scripts/deps.sh): run() rows without it" >&2
        DO_GEAR=0
    elif [ ! -x "$BG" ]; then
        echo "compare.sh: $BG not built (libgearman-dev missing?): run() rows without gearmand" >&2
        DO_GEAR=0
    fi
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cadre-bench-XXXXXX") || die "mktemp failed"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh" # cleanup, STARTED: PIDs this script started
bench_traps

# stop PID: SIGTERM one process we started, wait up to 10 s, then SIGKILL.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local keep=()
    for i in "${STARTED[@]}"; do
        [ "$i" = "$pid" ] || keep+=("$i")
    done
    STARTED=("${keep[@]}")
}

declare -A RATE # "<system> <config> <workload>" -> jobs/s
RAW=()

# record SYSTEM CONFIG WORKLOAD CMD...: runs a bench program REPEAT times
# and keeps the best rate of its result line.
record() {
    local sys=$1 cfg=$2 wl=$3 out rate best= best_out= r
    shift 3
    for r in $(seq "$REPEAT"); do
        out=$(timeout "$RUN_TIMEOUT" "$@" 2>"$TMP/last.err")
        rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$out" | tail -n1)
        if [ -z "$rate" ]; then
            echo "  $sys $cfg $wl: FAILED: $(tail -n3 "$TMP/last.err")" >&2
            continue
        fi
        echo "  $sys $cfg: $out" >&2
        if [ -z "$best" ] || [ "$rate" -gt "$best" ]; then
            best=$rate best_out=$out
        fi
    done
    if [ -n "$best" ]; then
        RATE["$sys $cfg $wl"]=$best
        RAW+=("$(printf '%-10s %-12s %s' "$sys" "$cfg" "$best_out")")
    else
        RAW+=("$(printf '%-10s %-12s %s: FAILED %s' "$sys" "$cfg" "$wl" \
            "$(tail -n1 "$TMP/last.err")")")
    fi
}

# ---- beanstalkd -----------------------------------------------------------

BS_PID= BS_PORT=
# start_beanstalkd NAME ARGS...: on a free loopback port; sets BS_PID/BS_PORT.
start_beanstalkd() {
    local name=$1 try i
    shift
    for try in 1 2 3; do
        BS_PORT=$("$BB" freeport) || return 1
        beanstalkd -l 127.0.0.1 -p "$BS_PORT" "$@" >"$TMP/$name.log" 2>&1 &
        BS_PID=$!
        STARTED+=("$BS_PID")
        for i in $(seq 50); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$BS_PORT") 2>/dev/null; then
                return 0
            fi
            kill -0 "$BS_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop "$BS_PID"
    done
    echo "compare.sh: beanstalkd $* did not start: $(tail -n3 "$TMP/$name.log")" >&2
    return 1
}

# run_beanstalk CONFIG FSYNC_EACH ARGS...
run_beanstalk() {
    local cfg=$1 slow=$2 n=$N nbulk=$NBULK
    shift 2
    echo "beanstalkd ($cfg)..." >&2
    start_beanstalkd "beanstalkd-$cfg" "$@" || return
    if [ "$slow" = 1 ]; then
        n=$NSLOW nbulk=$NSLOW
    fi
    record beanstalk "$cfg" put1 "$BB" 127.0.0.1 "$BS_PORT" "$NSLOW" put 1
    record beanstalk "$cfg" put8 "$BB" 127.0.0.1 "$BS_PORT" "$n" put 8
    record beanstalk "$cfg" bulk "$BB" 127.0.0.1 "$BS_PORT" "$nbulk" pipeline
    record beanstalk "$cfg" e2e1 "$BB" 127.0.0.1 "$BS_PORT" "$NSLOW" e2e 1 2
    record beanstalk "$cfg" e2e8 "$BB" 127.0.0.1 "$BS_PORT" "$n" e2e 8 2
    stop "$BS_PID"
}

# ---- cadre ----------------------------------------------------------------

NODE_PID= NODE_URL= NODE_KEY=
# start_node NAME ARGS...: `cadre node` on port 0; parses the readiness line
#   cadre node ready api=tcp://127.0.0.1:PORT data=DIR pid=PID
start_node() {
    local name=$1 dir="$TMP/$1" i line
    shift
    mkdir -p "$dir"
    "$CADRE" node --data "$dir" --listen tcp://127.0.0.1:0 "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.log" &
    NODE_PID=$!
    STARTED+=("$NODE_PID")
    for i in $(seq 150); do
        line=$(grep -m1 '^cadre node ready ' "$TMP/$name.out")
        if [ -n "$line" ]; then
            NODE_URL=$(sed -n 's/.* api=\([^ ]*\).*/\1/p' <<<"$line")
            NODE_KEY="$dir/cluster.key"
            [ -n "$NODE_URL" ] && return 0
            break
        fi
        kill -0 "$NODE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare.sh: cadre node $* did not become ready:" >&2
    tail -n5 "$TMP/$name.out" "$TMP/$name.log" >&2
    stop "$NODE_PID"
    return 1
}

# run_cadre SYNC E2E: the dispatch workloads on a node with --sync SYNC, and
# if E2E is 1 the end-to-end ones on a node with 2 supervised workers.
run_cadre() {
    local sync=$1 e2e=$2 cfg="sync=$1"
    echo "cadre ($cfg)..." >&2
    if start_node "node-$sync" --sync "$sync"; then
        record cadre "$cfg" put1 "$BC" "$NODE_URL" "$NODE_KEY" "$NSLOW" dispatch 1
        record cadre "$cfg" put8 "$BC" "$NODE_URL" "$NODE_KEY" "$N" dispatch 8
        record cadre "$cfg" async1 "$BC" "$NODE_URL" "$NODE_KEY" "$NBULK" async 1
        record cadre "$cfg" async8 "$BC" "$NODE_URL" "$NODE_KEY" "$NBULK" async 8
        record cadre "$cfg" bulk "$BC" "$NODE_URL" "$NODE_KEY" "$NBULK" bulk 1
        stop "$NODE_PID"
    fi
    [ "$e2e" = 1 ] || return
    echo "cadre ($cfg, 2 workers)..." >&2
    if start_node "node-$sync-e2e" --sync "$sync" --workers 2 --plugin "$DEMO"; then
        record cadre "$cfg" e2e1 "$BC" "$NODE_URL" "$NODE_KEY" "$NSLOW" e2e 1 2
        record cadre "$cfg" e2e8 "$BC" "$NODE_URL" "$NODE_KEY" "$N" e2e 8 2
        record cadre "$cfg" e2ea1 "$BC" "$NODE_URL" "$NODE_KEY" "$NBULK" e2e-async 1 2
        stop "$NODE_PID"
    fi
}

# ---- run ------------------------------------------------------------------

T0=$SECONDS
if [ "$DO_BS" = 1 ] || [ "$DO_CADRE" = 1 ]; then
    FSYNC_LINE=$("$FSYNC_RATE" "$TMP" 2) || FSYNC_LINE="fsync rate=n/a"
    echo "$FSYNC_LINE" >&2
fi
if [ "$DO_BS" = 1 ]; then
    mkdir -p "$TMP/binlog-lazy" "$TMP/binlog-fsync"
    run_beanstalk memory 0
    run_beanstalk binlog 0 -b "$TMP/binlog-lazy"
    run_beanstalk binlog-f0 1 -b "$TMP/binlog-fsync" -f 0
fi
if [ "$DO_CADRE" = 1 ]; then
    run_cadre full 1
    run_cadre normal 0
    run_cadre off 1
fi

# ---- table ----------------------------------------------------------------

# row LABEL CADRE_CFG PEER_CFG WORKLOAD
row() {
    local label=$1 ccfg=$2 pcfg=$3 wl=$4 c p ratio
    local pwl=$wl
    case $wl in # the peer's best producer for the async rows
    async*) pwl=bulk ;;
    e2ea1) pwl=e2e8 ;;
    esac
    c=${RATE["cadre $ccfg $wl"]:-}
    p=${RATE["beanstalk $pcfg $pwl"]:-}
    if [ -n "$c" ] && [ -n "$p" ] && [ "$p" -gt 0 ]; then
        ratio=$(awk -v c="$c" -v p="$p" 'BEGIN { printf "%.2fx", c / p }')
    else
        ratio=n/a
    fi
    printf '%-52s | %-20s | %-24s | %s\n' "$label" \
        "${c:-n/a} ($ccfg)" "${p:-n/a} ($pcfg)" "$ratio"
}

if [ "$DO_BS" = 1 ] || [ "$DO_CADRE" = 1 ]; then
    echo
    echo "jobs/s; N=$N per run (1 client, 1 producer, fsync-each peer: $NSLOW; bulk: $NBULK);" \
        "$(nproc) CPUs; disk: $FSYNC_LINE"
    printf '%-52s | %-20s | %-24s | %s\n' workload cadre "peer (beanstalkd)" ratio
    printf '%s\n' "-----------------------------------------------------+----------------------+--------------------------+------"
    row "dispatch, 1 client, fsync each" sync=full binlog-f0 put1
    row "dispatch, 1 client, sync=normal vs lazy" sync=normal binlog put1
    row "dispatch, 1 client, lazy (both flush every 50 ms)" sync=off binlog put1
    row "dispatch, 8 clients, fsync each" sync=full binlog-f0 put8
    row "dispatch, 8 clients, sync=normal vs lazy" sync=normal binlog put8
    row "dispatch, 8 clients, lazy (both flush every 50 ms)" sync=off binlog put8
    row "async dispatch, 1 client, fsync (peer: pipelined)" sync=full binlog-f0 async1
    row "async dispatch, 1 client, lazy (peer: pipelined)" sync=off binlog async1
    row "async dispatch, 8 clients, fsync (peer: pipelined)" sync=full binlog-f0 async8
    row "bulk dispatch (cadre 100/batch; peer pipelined 100)" sync=full binlog-f0 bulk
    row "bulk dispatch, lazy" sync=off binlog bulk
    row "end to end, 2 workers, 1 producer, fsync each" sync=full binlog-f0 e2e1
    row "end to end, 2 workers, 1 producer, lazy" sync=off binlog e2e1
    row "end to end, 2 workers, 8 producers, fsync each" sync=full binlog-f0 e2e8
    row "end to end, 2 workers, 8 producers, lazy" sync=off binlog e2e8
    row "end to end, 2 workers, 8 producers, peer in memory" sync=off memory e2e8
    row "end to end, 1 async producer, fsync (peer: 8 producers)" sync=full binlog-f0 e2ea1
    row "end to end, 1 async producer, lazy (peer: 8 producers)" sync=off binlog e2ea1
    echo
    echo "raw:"
    printf '  %s\n' "${RAW[@]}"
fi

# ---- run(): cadre vs gearmand ---------------------------------------------

declare -A RUNF # "<system> <workload> <field>" -> value of its result line
RUN_RAW=()

# record_run SYSTEM WORKLOAD KEY lo|hi CMD...: runs a bench program REPEAT
# times and keeps the result line whose KEY is best (lo: lowest).
record_run() {
    local sys=$1 wl=$2 key=$3 dir=$4 out v best= best_out= r f
    shift 4
    for r in $(seq "$REPEAT"); do
        out=$(timeout "$RUN_TIMEOUT" "$@" 2>"$TMP/last.err")
        v=$(sed -n "s/.* $key=\([0-9.]*\).*/\1/p" <<<"$out" | tail -n1)
        if [ -z "$v" ]; then
            echo "  $sys $wl: FAILED: $(tail -n3 "$TMP/last.err")" >&2
            continue
        fi
        echo "  $out" >&2
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" -v d="$dir" \
            'BEGIN { exit !(d == "lo" ? a < b : a > b) }'; then
            best=$v best_out=$out
        fi
    done
    if [ -n "$best" ]; then
        for f in $best_out; do
            case $f in *=*) RUNF["$sys $wl ${f%%=*}"]=${f#*=} ;; esac
        done
        RUN_RAW+=("$best_out")
    else
        RUN_RAW+=("$sys $wl: FAILED $(tail -n1 "$TMP/last.err")")
    fi
}

GM_PID= GM_PORT= GW_PID=
# start_gearmand: gearmand on a free loopback port, then bench_gearman's 2
# echo workers (the run modes wait until gearmand reports both).
start_gearmand() {
    local try i
    for try in 1 2 3; do
        GM_PORT=$("$BB" freeport) || return 1
        gearmand -L 127.0.0.1 -p "$GM_PORT" -t "$GEARMAND_THREADS" \
            --queue-type builtin --log-file "$TMP/gearmand.log" \
            --pid-file "$TMP/gearmand.pid" --verbose WARNING \
            >"$TMP/gearmand.out" 2>&1 &
        GM_PID=$!
        STARTED+=("$GM_PID")
        for i in $(seq 50); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$GM_PORT") 2>/dev/null; then
                "$BG" 127.0.0.1 "$GM_PORT" 2 workers \
                    >"$TMP/gearman-workers.out" 2>&1 &
                GW_PID=$!
                STARTED+=("$GW_PID")
                return 0
            fi
            kill -0 "$GM_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop "$GM_PID"
    done
    echo "compare.sh: gearmand did not start:" \
        "$(tail -n3 "$TMP/gearmand.out" "$TMP/gearmand.log" 2>/dev/null)" >&2
    return 1
}

# run_section: gearmand and a cadre node up at once (idle servers cost next
# to nothing), each workload on one then the other, so that both see the
# same moment of a machine that may be busy.
run_section() {
    local gm=0 cn=0 wl
    echo "run(): gearmand (-t $GEARMAND_THREADS) and cadre, 2 echo workers each..." >&2
    if [ "$DO_GEAR" = 1 ] && start_gearmand; then
        gm=1
    fi
    if [ "$DO_CRUN" = 1 ] && start_node node-run --workers 2 --plugin "$DEMO"; then
        cn=1
    fi
    for wl in run1 run1000 run10000 runs8; do
        if [ "$gm" = 1 ]; then
            run_one gearman "$wl" "$BG" 127.0.0.1 "$GM_PORT"
        fi
        if [ "$cn" = 1 ]; then
            run_one cadre "$wl" "$BC" "$NODE_URL" "$NODE_KEY"
        fi
    done
    if [ "$gm" = 1 ]; then
        stop "$GW_PID"
        stop "$GM_PID"
    fi
    if [ "$cn" = 1 ]; then
        stop "$NODE_PID"
    fi
}

# run_one SYSTEM WORKLOAD PROGRAM ADDR...: one workload on one side.
run_one() {
    local sys=$1 wl=$2 prog=$3 a1=$4 a2=$5
    case $wl in
    run1) record_run "$sys" "$wl" p50_us lo "$prog" "$a1" "$a2" "$RUN1_N" run1 1 2 ;;
    run1000) record_run "$sys" "$wl" wall_ms lo \
        env BENCH_REPS=5 "$prog" "$a1" "$a2" 1000 runN 1 2 ;;
    run10000) record_run "$sys" "$wl" wall_ms lo \
        env BENCH_REPS=3 "$prog" "$a1" "$a2" 10000 runN 1 2 ;;
    runs8) record_run "$sys" "$wl" runs_per_s hi \
        env BENCH_SECONDS="$RUN_SECS" "$prog" "$a1" "$a2" 100 runs8 8 2 ;;
    esac
}

# run_row LABEL WORKLOAD KEY lo|hi: ratio > 1 means cadre ahead.
run_row() {
    local label=$1 wl=$2 key=$3 dir=$4 c p ratio
    c=${RUNF["cadre $wl $key"]:-}
    p=${RUNF["gearman $wl $key"]:-}
    if [ -n "$c" ] && [ -n "$p" ]; then
        ratio=$(awk -v c="$c" -v p="$p" -v d="$dir" 'BEGIN {
            r = d == "lo" ? (c > 0 ? p / c : 0) : (p > 0 ? c / p : 0)
            if (r > 0) printf "%.2fx", r; else printf "n/a" }')
    else
        ratio=n/a
    fi
    printf '%-46s | %-10s | %-10s | %s\n' "$label" "${c:-n/a}" "${p:-n/a}" "$ratio"
}

if [ "$DO_GEAR" = 1 ] || [ "$DO_CRUN" = 1 ]; then
    T1=$SECONDS
    run_section
    echo
    echo "run(): cadre vs gearmand; echo task, 16-byte payload, 2 workers each;" \
        "gearmand -t $GEARMAND_THREADS, foreground tasks; $(nproc) CPUs"
    echo "ratio > 1: cadre ahead (latency and wall, lower is better:" \
        "gearmand/cadre; runs/s: cadre/gearmand)"
    printf '%-46s | %-10s | %-10s | %s\n' workload cadre gearmand ratio
    printf '%s\n' "-----------------------------------------------+------------+------------+------"
    run_row "one-task run, p50 latency (us)" run1 p50_us lo
    run_row "one-task run, p99 latency (us)" run1 p99_us lo
    run_row "run of 1,000 tasks, wall (ms, median of 5)" run1000 wall_ms lo
    run_row "run of 10,000 tasks, wall (ms, median of 3)" run10000 wall_ms lo
    run_row "8 threads x runs of 100 tasks (runs/s)" runs8 runs_per_s hi
    echo
    echo "raw:"
    printf '  %s\n' "${RUN_RAW[@]}"
    echo "run() section $((SECONDS - T1))s"
fi
echo "total ${SECONDS}s (runs $((SECONDS - T0))s)"
