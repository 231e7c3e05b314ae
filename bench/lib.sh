# lib.sh: what the bench scripts share (sourced, not run). The caller sets
# TMP (its temp dir) and puts every PID it starts in STARTED; nothing else is
# ever signalled.

STARTED=()

# cleanup: SIGTERM every process we started, SIGKILL what is left after
# 10 s, remove TMP. Installed as the EXIT trap by bench_traps.
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    STARTED=()
    rm -rf "$TMP"
}

bench_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
