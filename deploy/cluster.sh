#!/usr/bin/env bash
# A local cadre cluster on loopback, for trying things out, demos and tests.
#
#   deploy/cluster.sh start [-n 3] [-w 2] [-d DIR] [--cadre PATH] [--plugin PATH]
#                           [--voters] [--config FILE] [--base-port PORT]
#                           [--timeout S] [-- extra node flags]
#   deploy/cluster.sh start --node K [-d DIR] [--timeout S]
#   deploy/cluster.sh status [-d DIR]
#   deploy/cluster.sh stop   [-d DIR] [--node K] [--timeout S]
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
# With --voters (1, 3 or 5 nodes) they also elect a Raft leader: each node
# gets a raft port (+3 with --base-port; else a free one below the kernel's
# ephemeral range, kept in DIR/raft.ports for restarts, since the raft log
# remembers the addresses), all get the same --voters list, and start returns
# once every node names the same ready leader. --config FILE goes to every
# node (schedules, for instance). start --node K starts node K of a cluster
# again (after stop --node K) with the command line it had (DIR/nodeK.cmd),
# joining through a running node; its log is appended to.
# They run detached (setsid) and keep running after this script returns.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<EOF
usage: $prog start [-n NODES] [-w WORKERS] [-d DIR] [--cadre PATH] [--plugin PATH]
                   [--voters] [--config FILE] [--base-port PORT] [--timeout S]
                   [-- extra cadre node flags]
       $prog start --node K [-d DIR] [--timeout S]
       $prog status [-d DIR]
       $prog stop [-d DIR] [--node K] [--timeout S]

  -n NODES         nodes to start (default 3)
  -w WORKERS       supervised workers per node (default 2)
  -d DIR           cluster dir: key, data dirs, logs, pids (default ./var/cluster)
  --cadre PATH     the cadre binary (default \$CADRE_BIN, ./build/cadre, cadre on PATH)
  --plugin PATH    plugin for the workers (default demo.so beside the binary, if any)
  --voters         elect a Raft leader (1, 3 or 5 nodes): a raft port per node,
                   the same --voters list on all, --election-ms 300
                   --raft-heartbeat-ms 30; start waits for a ready leader
  --config FILE    an INI config file for every node (\`cadre node --config\`)
  --base-port P    fixed ports: node K api P+10*(K-1), peer +1, events +2,
                   raft +3 (default: free ports)
  --node K         stop: only node K (SIGTERM; a leader hands over); start: node K
                   again, with the flags it was started with, once it stopped
  --timeout S      start: seconds to wait for readiness, membership and the
                   leader (default 20); stop: seconds to wait for the nodes to
                   exit (default 40)
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
voters=0
config=""
only=""
extra=()
while [ $# -gt 0 ]; do
    case $1 in
    -n | -w | -d | --cadre | --plugin | --base-port | --timeout | --config | --node)
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
    --voters)
        voters=1
        shift
        ;;
    --config)
        config=$2
        shift 2
        ;;
    --node)
        need_uint "$1" "$2"
        only=$2
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
if [ "$cmd" != start ] && { [ "$voters" -eq 1 ] || [ -n "$config" ]; }; then
    usage_error "--voters and --config are for start only"
fi
if [ "$cmd" = status ] && [ -n "$only" ]; then
    usage_error "--node is for start and stop"
fi
if [ -n "$only" ] && { [ "$voters" -eq 1 ] || [ -n "$config" ] || [ ${#extra[@]} -gt 0 ]; }; then
    usage_error "start --node K starts node K with the flags it had: no --voters, --config or --"
fi
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 99 ]; then
    usage_error "-n: 1 to 99 nodes"
fi
if [ "$voters" -eq 1 ] && [ "$nodes" -ne 1 ] && [ "$nodes" -ne 3 ] && [ "$nodes" -ne 5 ]; then
    usage_error "--voters: 1, 3 or 5 nodes (a majority must survive a lost node), not $nodes"
fi
if [ -n "$base_port" ]; then
    if [ "$base_port" -lt 1 ] || [ $((base_port + 10 * (nodes - 1) + 3)) -gt 65535 ]; then
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

# TCP ports in use on this host (any state, IPv4 and IPv6), one a line.
used_ports() {
    local f addr
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] || continue
        while read -r _ addr _; do
            if [[ $addr =~ :([0-9A-Fa-f]{4})$ ]]; then echo $((16#${BASH_REMATCH[1]})); fi
        done <"$f"
    done
    return 0
}

# raft_ports: fills raft_port[1..nodes]. With --base-port: +3. Else the ports
# kept in DIR/raft.ports when a node's raft dir holds state (the raft log keeps
# the voters' addresses, so they must not change), or new free ones below the
# kernel's ephemeral range (ports 0 binds, ours included, never take them).
raft_ports() {
    local k p lo hi span used line
    raft_port=()
    if [ -n "$base_port" ]; then
        for k in $(seq 1 "$nodes"); do raft_port[k]=$((base_port + 10 * (k - 1) + 3)); done
        if compgen -G "$dir/node*/raft" >/dev/null && [ -f "$dir/raft.ports" ] &&
            [ "$(cat "$dir/raft.ports")" != "$(for k in $(seq 1 "$nodes"); do echo "node$k=${raft_port[k]}"; done)" ]; then
            die "the raft state in $dir was made with other raft ports ($dir/raft.ports) than --base-port $base_port gives; use another -d or remove $dir/node*/raft"
        fi
        return 0
    fi
    for k in $(seq 1 "$nodes"); do
        if [ -d "$dir/node$k/raft" ]; then
            [ -f "$dir/raft.ports" ] || die "$dir/node$k/raft holds raft state but $dir/raft.ports is gone: remove the raft dirs (or the whole $dir) to start afresh"
            while read -r line; do
                [[ $line =~ ^node([0-9]+)=([0-9]+)$ ]] || continue
                raft_port[BASH_REMATCH[1]]=${BASH_REMATCH[2]}
            done <"$dir/raft.ports"
            for p in $(seq 1 "$nodes"); do
                [ -n "${raft_port[p]:-}" ] || die "$dir/raft.ports has no port for node$p: the raft state in $dir is for other voters; use another -d or remove $dir/node*/raft"
            done
            [ "$(grep -c '^node[0-9]*=' "$dir/raft.ports")" -eq "$nodes" ] ||
                die "$dir/raft.ports is for another number of voters than -n $nodes; use another -d or remove $dir/node*/raft"
            return 0
        fi
    done
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || {
        lo=32768
        hi=60999
    }
    if [ "$lo" -ge 12000 ]; then # up to 20,000 ports just below the range
        hi=$((lo - 1))
        lo=$((lo > 21024 ? lo - 20000 : 1024))
    elif [ "$hi" -lt 64000 ]; then
        lo=$((hi + 1))
        hi=65535
    else
        lo=10000 # no room outside the range: a racy choice, checked below
        hi=65535
    fi
    span=$((hi - lo + 1))
    used=" $(used_ports | sort -n -u | tr '\n' ' ') "
    for k in $(seq 1 "$nodes"); do
        for _ in $(seq 1 200); do
            p=$((lo + (RANDOM * 32768 + RANDOM) % span))
            [[ $used == *" $p "* ]] && continue
            raft_port[k]=$p
            used+="$p "
            break
        done
        [ -n "${raft_port[k]:-}" ] || die "no free port for node$k's raft socket in $lo-$hi"
    done
}

log_tail() {
    local k=$1
    echo "--- $dir/node$k.log (last lines, usage text left out):" >&2
    grep -v '^  ' "$dir/node$k.log" 2>/dev/null | tail -n 12 >&2 || true
}

# --- start -------------------------------------------------------------------

started=()      # pids this run started
started_k=()    # and their node numbers
start_done=0

# On a failed or interrupted start: stop what this run started, keep the
# logs. Runs at exit.
abort_start() {
    local pid k
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
    # Only theirs: start --node K must not orphan the running nodes.
    for k in "${started_k[@]}"; do rm -f "$dir/node$k.pid"; done
}

start_node() {
    local k=$1 listen=$2 peer=$3 args pid
    args=(node --node-id "node$k" --data "$dir/node$k" --listen "$listen"
        --key-file "$key" --workers "$workers")
    [ -n "$config" ] && args+=(--config "$config")
    [ -n "$plugin" ] && args+=(--plugin "$plugin")
    if [ "$voters" -eq 1 ]; then
        args+=(--voters "$voters_spec" --raft-listen "127.0.0.1:${raft_port[k]}"
            --election-ms 300 --raft-heartbeat-ms 30)
    fi
    [ -n "$peer" ] && args+=(--peer "$peer")
    args+=("${extra[@]}")
    # The command line, for start --node K (a restart with the same flags).
    printf '%s\0' "$cadre" "${args[@]}" >"$dir/node$k.cmd"
    rm -f "$dir/node$k.log"
    launch_node "$k" "${args[@]}"
}

# launch_node K ARGS...: cadre ARGS, detached, its log appended to.
launch_node() {
    local k=$1 pid
    shift
    rm -f "$dir/node$k.out"
    # setsid: the node outlives this script and ignores the terminal's ^C.
    setsid "$cadre" "$@" </dev/null >"$dir/node$k.out" 2>>"$dir/node$k.log" &
    pid=$!
    started+=("$pid")
    started_k+=("$k")
    echo "$pid" >"$dir/node$k.pid"
}

# cmd_flag K FLAG: the value that follows FLAG in node K's command line.
cmd_flag() {
    local -a argv=()
    local i
    [ -f "$dir/node$1.cmd" ] || return 0
    mapfile -d '' argv <"$dir/node$1.cmd"
    for ((i = 1; i + 1 < ${#argv[@]}; i++)); do
        if [ "${argv[i]}" = "$2" ]; then
            echo "${argv[i + 1]}"
            return 0
        fi
    done
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

# leader_of API: "LEADER READY" as node API sees it ("- false" if it names none).
leader_of() {
    local json leader ready
    json=$("$cadre" cluster leader --json --url "$1" --key-file "$key" \
        --request-timeout 2000 2>/dev/null) || json=""
    leader=$(sed -n 's/^{"leader":"\([^"]*\)".*/\1/p' <<<"$json")
    ready=$(grep -o '"ready":[a-z]*' <<<"$json" | cut -d: -f2)
    echo "${leader:--} ${ready:-false}"
}

# Waits until every node names the same leader and the leader says it is
# ready (its barrier committed: schedules and locks work).
wait_leader() {
    local deadline=$1 k api first lead ready views
    shift
    while :; do
        first=""
        views=""
        for k in "$@"; do
            api=$(field api "$dir/node$k.out")
            read -r lead ready <<<"$(leader_of "$api")"
            views+=" node$k->$lead"
            if [ "$lead" = - ] || { [ -n "$first" ] && [ "$lead" != "$first" ]; }; then
                first=""
                break
            fi
            first=$lead
        done
        if [ -n "$first" ]; then
            api=$(field api "$dir/${first}.out" 2>/dev/null) || api=""
            if [ -n "$api" ]; then
                read -r lead ready <<<"$(leader_of "$api")"
                [ "$lead" = "$first" ] && [ "$ready" = true ] && return 0
                views+=" ($first not ready)"
            fi
        fi
        if [ "$(now_ms)" -gt "$deadline" ]; then
            echo "$prog: no ready leader that all nodes name after ${timeout}s:$views" >&2
            for k in "$@"; do log_tail "$k"; done
            return 1
        fi
        sleep 0.1
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

# DIR/cluster.env from the nodes' readiness lines and command lines.
write_env() {
    local k all v
    all=$(known_nodes | tr '\n' ' ')
    {
        echo "# cadre local cluster: . $envfile, then run cadre commands"
        printf 'export CADRE_URL=%q\n' "$(field api "$dir/node1.out")"
        printf 'export CADRE_KEY_FILE=%q\n' "$key"
        printf 'export CADRE_EVENTS_URL=%q\n' "$(field events "$dir/node1.out")"
        printf 'export CADRE_CLUSTER_DIR=%q\n' "$dir"
        printf 'export CADRE_CLUSTER_NODES=%q\n' "$(wc -w <<<"$all")"
        for k in $all; do
            printf 'export CADRE_NODE%d_URL=%q\n' "$k" "$(field api "$dir/node$k.out")"
            printf 'export CADRE_NODE%d_PEER=%q\n' "$k" "$(field peer "$dir/node$k.out")"
            printf 'export CADRE_NODE%d_EVENTS=%q\n' "$k" "$(field events "$dir/node$k.out")"
            printf 'export CADRE_NODE%d_PID=%q\n' "$k" "$(field pid "$dir/node$k.out")"
            v=$(cmd_flag "$k" --raft-listen)
            [ -z "$v" ] || printf 'export CADRE_NODE%d_RAFT=%q\n' "$k" "$v"
        done
        v=$(cmd_flag 1 --voters)
        [ -z "$v" ] || printf 'export CADRE_CLUSTER_VOTERS=%q\n' "$v"
    } >"$envfile.tmp"
    mv "$envfile.tmp" "$envfile"
}

# start --node K: node K again, with the command line it was started with,
# joining through a running node; waits as start does (ready, members alive,
# and with --voters a leader all running nodes name), rewrites cluster.env.
cmd_start_one() {
    local k=$only j pid peer="" deadline n api running=() argv=() args=() i
    [ -f "$dir/node$k.cmd" ] ||
        die "--node $k: node$k was not started in $dir (no $dir/node$k.cmd)"
    if pid=$(node_pid "$k"); then
        die "node$k is already running in $dir (pid $pid)"
    fi
    timeout=${timeout:-20}
    for j in $(known_nodes); do
        [ "$j" -ne "$k" ] || continue
        if node_pid "$j" >/dev/null; then
            running+=("$j")
            [ -n "$peer" ] || peer=$(field peer "$dir/node$j.out")
        fi
    done
    mapfile -d '' argv <"$dir/node$k.cmd"
    cadre=${argv[0]}
    [ -x "$cadre" ] || die "node$k's binary $cadre is gone"
    # Its flags, with a running node's peer url instead of the one it had.
    for ((i = 1; i < ${#argv[@]}; i++)); do
        if [ "${argv[i]}" = --peer ]; then
            i=$((i + 1))
            continue
        fi
        args+=("${argv[i]}")
    done
    [ -z "$peer" ] || args+=(--peer "$peer")

    trap 'abort_start' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    deadline=$(($(now_ms) + timeout * 1000))
    launch_node "$k" "${args[@]}"
    wait_ready "$k" "$deadline" || exit 1
    pid=$(field pid "$dir/node$k.out")
    [ -n "$pid" ] && echo "$pid" >"$dir/node$k.pid"
    # Membership: node K and the running nodes all see each other alive.
    for j in "$k" "${running[@]}"; do
        api=$(field api "$dir/node$j.out")
        while n=$(alive_peers "$api") && [ "$n" -lt ${#running[@]} ]; do
            if [ "$(now_ms)" -gt "$deadline" ]; then
                echo "$prog: node$j sees $n of ${#running[@]} peers alive after ${timeout}s" >&2
                log_tail "$j"
                exit 1
            fi
            sleep 0.1
        done
    done
    if [ -n "$(cmd_flag "$k" --voters)" ]; then
        wait_leader "$deadline" "$k" "${running[@]}" || exit 1
    fi
    write_env
    start_done=1
    trap - EXIT INT TERM
    echo "node$k up again in $dir: pid $pid, api $(field api "$dir/node$k.out")${peer:+, joined through $peer}"
    if [ -n "$(cmd_flag "$k" --voters)" ]; then
        read -r n _ <<<"$(leader_of "$(field api "$dir/node$k.out")")"
        echo "  leader $n"
    fi
}

cmd_start() {
    local k pid listen peer1="" deadline ok api n voters_spec="" fmt
    local -a raft_port=()
    find_cadre || exit 1
    if [ -z "$plugin" ] && [ -f "$(dirname "$cadre")/demo.so" ]; then
        plugin="$(dirname "$cadre")/demo.so"
    fi
    if [ -n "$plugin" ]; then
        [ -f "$plugin" ] || die "--plugin $plugin: no such file"
        plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")
    fi
    if [ -n "$config" ]; then
        if [ ! -f "$config" ] || [ ! -r "$config" ]; then
            die "--config $config: no such readable file"
        fi
        config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
    fi
    timeout=${timeout:-20}

    for k in $(known_nodes); do
        if pid=$(node_pid "$k"); then
            die "node$k is already running in $dir (pid $pid): $prog stop -d $dir first"
        fi
    done
    rm -f "$dir"/node*.pid "$dir"/node*.out "$envfile"
    if [ "$voters" -eq 1 ]; then
        raft_ports
        for k in $(seq 1 "$nodes"); do
            voters_spec+="${voters_spec:+,}node$k=127.0.0.1:${raft_port[k]}"
        done
        for k in $(seq 1 "$nodes"); do echo "node$k=${raft_port[k]}"; done >"$dir/raft.ports"
    fi

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
    if [ "$voters" -eq 1 ]; then
        wait_leader "$deadline" $(seq 1 "$nodes") || exit 1
    fi

    write_env
    # Up: from here on an interrupted or failed print leaves the nodes running.
    start_done=1
    trap - EXIT INT TERM

    echo "cluster of $nodes nodes up in $dir ($workers workers each${plugin:+, plugin ${plugin##*/}}${config:+, config ${config##*/}})"
    fmt='  %-7s %-8s %-24s %-24s %s%s\n'
    [ "$voters" -eq 1 ] && fmt='  %-7s %-8s %-24s %-24s %-24s %s\n'
    # shellcheck disable=SC2059 # one of two fixed formats
    printf "$fmt" NODE PID API PEER EVENTS "$([ "$voters" -eq 0 ] || echo RAFT)"
    for k in $(seq 1 "$nodes"); do
        # shellcheck disable=SC2059
        printf "$fmt" "node$k" "$(cat "$dir/node$k.pid")" \
            "$(field api "$dir/node$k.out")" "$(field peer "$dir/node$k.out")" \
            "$(field events "$dir/node$k.out")" \
            "$([ "$voters" -eq 0 ] || echo "127.0.0.1:${raft_port[k]}")"
    done
    if [ "$voters" -eq 1 ]; then
        read -r n _ <<<"$(leader_of "$(field api "$dir/node1.out")")"
        echo "  leader $n (raft: election 300 ms, heartbeat 30 ms)"
    fi
    echo "  key $key, logs $dir/nodeK.log"
    echo "  use it:  . $envfile && $cadre cluster members"
    echo "  stop it: $0 stop -d $dir"
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
        if [ -f "$dir/raft.ports" ]; then
            "$cadre" cluster leader --url "$api" --key-file "$key" || true
        fi
    fi
    [ "$up" -eq "$total" ]
}

# --- stop --------------------------------------------------------------------

cmd_stop() {
    local k pid pids=() names=() deadline left i
    timeout=${timeout:-40}
    if [ -n "$only" ] && ! known_nodes | grep -qx "$only"; then
        die "--node $only: no node$only in $dir"
    fi
    for k in $(known_nodes); do
        [ -z "$only" ] || [ "$k" -eq "$only" ] || continue
        if pid=$(node_pid "$k"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("node$k")
        else
            rm -f "$dir/node$k.pid"
        fi
    done
    if [ ${#pids[@]} -eq 0 ]; then
        echo "no node${only:+ $only} running in $dir"
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
    echo "stopped ${#pids[@]} node$([ ${#pids[@]} -eq 1 ] || echo s) (${names[*]}) in $dir"
}

case $cmd in
start) if [ -n "$only" ]; then cmd_start_one; else cmd_start; fi ;;
status) cmd_status ;;
stop) cmd_stop ;;
esac
