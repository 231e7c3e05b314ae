#!/usr/bin/env bash
# A local cadre cluster on loopback, for trying things out, demos and tests.
#
#   deploy/cluster.sh start [-n 3] [-w 2] [-d DIR] [--cadre PATH] [--plugin PATH]
#                           [--base-port PORT] [--timeout S] [-- extra node flags]
#   deploy/cluster.sh status [-d DIR]
#   deploy/cluster.sh stop   [-d DIR] [--timeout S]
#
# start makes one cluster key in DIR (kept if it exists), starts node1, reads
# its readiness line, starts node2..nodeN with --peer <node1's peer url>,
# waits until every node sees all the others alive, and writes:
#   DIR/cluster.key     the master key all nodes share (mode 0600)
#   DIR/nodeK/          node K's data dir (LMDB)
#   DIR/nodeK.out       its readiness line;  DIR/nodeK.log  its log (stderr)
#   DIR/nodeK.pid       its pid (stop signals only these)
#   DIR/cluster.env     CADRE_URL (node1's api), CADRE_KEY_FILE, and every
#                       node's urls: `. DIR/cluster.env` and run cadre commands
# Nodes listen on tcp://127.0.0.1 with free ports (port 0), or, with
# --base-port P, node K's api on P+10*(K-1), its peer socket on +1, events +2.
# They run detached (setsid) and keep running after this script returns.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<EOF
usage: $prog start [-n NODES] [-w WORKERS] [-d DIR] [--cadre PATH] [--plugin PATH]
                   [--base-port PORT] [--timeout S] [-- extra cadre node flags]
       $prog status [-d DIR]
       $prog stop [-d DIR] [--timeout S]

  -n NODES         nodes to start (default 3)
  -w WORKERS       supervised workers per node (default 2)
  -d DIR           cluster dir: key, data dirs, logs, pids (default ./var/cluster)
  --cadre PATH     the cadre binary (default \$CADRE_BIN, ./build/cadre, cadre on PATH)
  --plugin PATH    plugin for the workers (default demo.so beside the binary, if any)
  --base-port P    fixed ports: node K api P+10*(K-1), peer +1, events +2
                   (default: free ports)
  --timeout S      start: seconds to wait for readiness and membership (default 20)
                   stop: seconds to wait for the nodes to exit (default 40)
  -- FLAGS         passed to every \`cadre node\` (e.g. -- --sync normal)
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage_error() {
    echo "$prog: $*" >&2
    usage >&2
    exit 2
}

# Numbers only: flags that take counts, ports and seconds.
need_uint() {
    [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 needs a number, not '$2'"
}

# --- options -----------------------------------------------------------------

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start | stop | status) ;;
-h | --help | help)
    usage
    exit 0
    ;;
"") usage_error "a command is needed: start, stop or status" ;;
*) usage_error "unknown command '$cmd'" ;;
esac

nodes=3
workers=2
dir=${CADRE_CLUSTER_DIR:-./var/cluster}
cadre=${CADRE_BIN:-}
plugin=""
base_port=""
timeout=""
extra=()
while [ $# -gt 0 ]; do
    case $1 in
    -n | -w | -d | --cadre | --plugin | --base-port | --timeout)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        ;;
    esac
    case $1 in
    -n)
        need_uint "$1" "$2"
        nodes=$2
        shift 2
        ;;
    -w)
        need_uint "$1" "$2"
        workers=$2
        shift 2
        ;;
    -d)
        dir=$2
        shift 2
        ;;
    --cadre)
        cadre=$2
        shift 2
        ;;
    --plugin)
        plugin=$2
        shift 2
        ;;
    --base-port)
        need_uint "$1" "$2"
        base_port=$2
        shift 2
        ;;
    --timeout)
        need_uint "$1" "$2"
        timeout=$2
        shift 2
        ;;
    --)
        shift
        extra=("$@")
        break
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown option '$1'" ;;
    esac
done
if [ "$cmd" != start ] && [ ${#extra[@]} -gt 0 ]; then
    usage_error "'--' is for start only"
fi
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 99 ]; then
    usage_error "-n: 1 to 99 nodes"
fi
if [ -n "$base_port" ]; then
    if [ "$base_port" -lt 1 ] || [ $((base_port + 10 * (nodes - 1) + 2)) -gt 65535 ]; then
        usage_error "--base-port $base_port: ports out of range for $nodes nodes"
    fi
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
key="$dir/cluster.key"
envfile="$dir/cluster.env"

# --- helpers -----------------------------------------------------------------

find_cadre() {
    if [ -z "$cadre" ]; then
        if [ -x "$here/../build/cadre" ]; then
            cadre="$here/../build/cadre"
        elif command -v cadre >/dev/null 2>&1; then
            cadre=$(command -v cadre)
        else
            echo "$prog: no cadre binary: build it (make build) or pass --cadre PATH" >&2
            return 1
        fi
    fi
    if [ ! -x "$cadre" ] || [ -d "$cadre" ]; then
        echo "$prog: --cadre $cadre: not an executable file" >&2
        return 1
    fi
    cadre=$(cd "$(dirname "$cadre")" && pwd)/$(basename "$cadre")
}

# The pid in DIR/nodeK.pid if that process is alive and is still the
# `cadre node` of DIR/nodeK (a recycled pid is never signalled).
node_pid() {
    local k=$1 pid cmdline
    [ -f "$dir/node$k.pid" ] || return 1
    pid=$(cat "$dir/node$k.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/cmdline" ]; then
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ $cmdline == *" node "*"--data $dir/node$k "* ]] || return 1
    fi
    echo "$pid"
}

# Node numbers started in DIR (a pid file or a readiness file), in order.
known_nodes() {
    local f k
    for f in "$dir"/node*.pid "$dir"/node*.out; do
        [ -e "$f" ] || continue
        k=${f##*/node}
        k=${k%.*}
        if [[ $k =~ ^[0-9]+$ ]]; then echo "$k"; fi
    done | sort -n -u
}

# field NAME FILE: NAME=VALUE from a readiness line.
field() {
    sed -n "/^cadre node ready /{s/.* $1=\\([^ ]*\\).*/\\1/p;q}" "$2"
}

now_ms() {
    date +%s%3N
}

log_tail() {
    local k=$1
    echo "--- $dir/node$k.log (last lines, usage text left out):" >&2
    grep -v '^  ' "$dir/node$k.log" 2>/dev/null | tail -n 12 >&2 || true
}

# --- start -------------------------------------------------------------------

started=()
start_done=0

# On a failed or interrupted start: stop what this run started, keep the
# logs. Runs at exit.
abort_start() {
    local pid
    if [ "$start_done" -ne 0 ] || [ ${#started[@]} -eq 0 ]; then
        return 0
    fi
    echo "$prog: start failed: stopping the nodes it started (logs stay in $dir)" >&2
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$dir"/node*.pid
}

start_node() {
    local k=$1 listen=$2 peer=$3 args pid
    args=(node --node-id "node$k" --data "$dir/node$k" --listen "$listen"
        --key-file "$key" --workers "$workers")
    [ -n "$plugin" ] && args+=(--plugin "$plugin")
    [ -n "$peer" ] && args+=(--peer "$peer")
    args+=("${extra[@]}")
    rm -f "$dir/node$k.out"
    # setsid: the node outlives this script and ignores the terminal's ^C.
    setsid "$cadre" "${args[@]}" </dev/null >"$dir/node$k.out" 2>"$dir/node$k.log" &
    pid=$!
    started+=("$pid")
    echo "$pid" >"$dir/node$k.pid"
}

# Waits for node K's readiness line (or its death, or the deadline).
wait_ready() {
    local k=$1 deadline=$2 pid
    pid=$(cat "$dir/node$k.pid")
    while ! grep -q '^cadre node ready ' "$dir/node$k.out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$prog: node$k exited before it was ready" >&2
            log_tail "$k"
            return 1
        fi
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "$prog: node$k not ready after ${timeout}s" >&2
            log_tail "$k"
            return 1
        fi
        sleep 0.05
    done
}

# Alive peers node K reports (states other than self/alive do not count).
alive_peers() {
    local api=$1 json
    json=$("$cadre" cluster members --json --url "$api" --key-file "$key" \
        --request-timeout 2000 2>/dev/null) || {
        echo 0
        return
    }
    grep -o '"state":"alive"' <<<"$json" | wc -l
}

cmd_start() {
    local k pid listen peer1="" deadline ok api n
    find_cadre || exit 1
    if [ -z "$plugin" ] && [ -f "$(dirname "$cadre")/demo.so" ]; then
        plugin="$(dirname "$cadre")/demo.so"
    fi
    if [ -n "$plugin" ]; then
        [ -f "$plugin" ] || die "--plugin $plugin: no such file"
        plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")
    fi
    timeout=${timeout:-20}

    for k in $(known_nodes); do
        if pid=$(node_pid "$k"); then
            die "node$k is already running in $dir (pid $pid): $prog stop -d $dir first"
        fi
    done
    rm -f "$dir"/node*.pid "$dir"/node*.out "$envfile"

    if [ ! -s "$key" ]; then
        (
            umask 077
            "$cadre" keygen >"$key.tmp"
        ) || die "cadre keygen failed"
        mv "$key.tmp" "$key"
        chmod 600 "$key"
    fi

    trap 'abort_start' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    deadline=$(($(now_ms) + timeout * 1000))
    for k in $(seq 1 "$nodes"); do
        mkdir -p "$dir/node$k"
        if [ -n "$base_port" ]; then
            listen="tcp://127.0.0.1:$((base_port + 10 * (k - 1)))"
        else
            listen="tcp://127.0.0.1:0"
        fi
        start_node "$k" "$listen" "$peer1"
        if [ "$k" -eq 1 ]; then
            # The others join through node1's peer socket: its url (and
            # port) is known only once it is ready.
            wait_ready 1 "$deadline" || exit 1
            peer1=$(field peer "$dir/node1.out")
            [ -n "$peer1" ] || {
                echo "$prog: node1's readiness line has no peer= url:" >&2
                cat "$dir/node1.out" >&2
                exit 1
            }
        fi
    done
    for k in $(seq 2 "$nodes"); do
        wait_ready "$k" "$deadline" || exit 1
    done
    # The pid files hold what the nodes say about themselves.
    for k in $(seq 1 "$nodes"); do
        pid=$(field pid "$dir/node$k.out")
        [ -n "$pid" ] && echo "$pid" >"$dir/node$k.pid"
    done

    # Membership: every node lists all the others alive.
    while :; do
        ok=1
        for k in $(seq 1 "$nodes"); do
            api=$(field api "$dir/node$k.out")
            n=$(alive_peers "$api")
            if [ "$n" -lt $((nodes - 1)) ]; then
                ok=0
                break
            fi
        done
        [ "$ok" -eq 1 ] && break
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "$prog: node$k sees $n of $((nodes - 1)) peers alive after ${timeout}s" >&2
            "$cadre" cluster members --url "$api" --key-file "$key" >&2 || true
            log_tail "$k"
            exit 1
        fi
        sleep 0.1
    done

    {
        echo "# cadre local cluster: . $envfile, then run cadre commands"
        printf 'export CADRE_URL=%q\n' "$(field api "$dir/node1.out")"
        printf 'export CADRE_KEY_FILE=%q\n' "$key"
        printf 'export CADRE_EVENTS_URL=%q\n' "$(field events "$dir/node1.out")"
        printf 'export CADRE_CLUSTER_DIR=%q\n' "$dir"
        printf 'export CADRE_CLUSTER_NODES=%q\n' "$nodes"
        for k in $(seq 1 "$nodes"); do
            printf 'export CADRE_NODE%d_URL=%q\n' "$k" "$(field api "$dir/node$k.out")"
            printf 'export CADRE_NODE%d_PEER=%q\n' "$k" "$(field peer "$dir/node$k.out")"
            printf 'export CADRE_NODE%d_EVENTS=%q\n' "$k" "$(field events "$dir/node$k.out")"
        done
    } >"$envfile"

    echo "cluster of $nodes nodes up in $dir ($workers workers each${plugin:+, plugin ${plugin##*/}})"
    printf '  %-7s %-8s %-24s %-24s %s\n' NODE PID API PEER EVENTS
    for k in $(seq 1 "$nodes"); do
        printf '  %-7s %-8s %-24s %-24s %s\n' "node$k" "$(cat "$dir/node$k.pid")" \
            "$(field api "$dir/node$k.out")" "$(field peer "$dir/node$k.out")" \
            "$(field events "$dir/node$k.out")"
    done
    echo "  key $key, logs $dir/nodeK.log"
    echo "  use it:  . $envfile && $cadre cluster members"
    echo "  stop it: $0 stop -d $dir"
    start_done=1
    trap - EXIT INT TERM
}

# --- status ------------------------------------------------------------------

cmd_status() {
    local k pid up=0 total=0 api="" state
    find_cadre 2>/dev/null || cadre=""
    for k in $(known_nodes); do
        total=$((total + 1))
        if pid=$(node_pid "$k"); then
            up=$((up + 1))
            state="running pid $pid"
            [ -n "$api" ] || api=$(field api "$dir/node$k.out")
        else
            state="stopped"
        fi
        printf '  node%-3s %-18s %s\n' "$k" "$state" "$(field api "$dir/node$k.out" 2>/dev/null)"
    done
    if [ "$total" -eq 0 ]; then
        echo "no cluster in $dir"
        return 1
    fi
    echo "$up of $total nodes running in $dir"
    if [ -n "$api" ] && [ -n "$cadre" ]; then
        "$cadre" cluster members --url "$api" --key-file "$key" || true
    fi
    [ "$up" -eq "$total" ]
}

# --- stop --------------------------------------------------------------------

cmd_stop() {
    local k pid pids=() names=() deadline left i
    timeout=${timeout:-40}
    for k in $(known_nodes); do
        if pid=$(node_pid "$k"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("node$k")
        else
            rm -f "$dir/node$k.pid"
        fi
    done
    if [ ${#pids[@]} -eq 0 ]; then
        echo "no node running in $dir"
        return 0
    fi
    # SIGTERM: each node lets running jobs finish (up to its shutdown-grace)
    # and gives back what its workers held.
    deadline=$(($(now_ms) + timeout * 1000))
    while :; do
        left=()
        for i in "${!pids[@]}"; do
            kill -0 "${pids[$i]}" 2>/dev/null && left+=("${names[$i]} (pid ${pids[$i]})")
        done
        [ ${#left[@]} -eq 0 ] && break
        if [ "$(now_ms)" -gt "$deadline" ]; then
            die "still running after ${timeout}s: ${left[*]} (kill -KILL them if you must)"
        fi
        sleep 0.1
    done
    for k in $(known_nodes); do
        node_pid "$k" >/dev/null || rm -f "$dir/node$k.pid"
    done
    echo "stopped ${#pids[@]} nodes (${names[*]}) in $dir"
}

case $cmd in
start) cmd_start ;;
status) cmd_status ;;
stop) cmd_stop ;;
esac
