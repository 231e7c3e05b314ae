#!/usr/bin/env bash
# test_install.sh: libcadre as an outside program sees it. Installs the build
# into a temp prefix, compiles a small client with `pkg-config cadre`, and
# runs it against a real node: dispatch, wait, result. Also checks that every
# command answers --help with exit 0 and a bad flag with exit 2.
set -euo pipefail
: "${CADRE_BIN:?ctest sets CADRE_BIN}" "${CADRE_BUILD_DIR:?}" "${CADRE_DEMO_PLUGIN:?}"
tmp=$(mktemp -d)
node=
cleanup() {
  if [ -n "$node" ]; then
    kill "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
passed=0

# 1. --help and usage errors on every command.
for cmd in node worker dispatch status keygen; do
  "$CADRE_BIN" $cmd --help >"$tmp/help" 2>&1 || fail "cadre $cmd --help exited $?"
  grep -q "usage: cadre $cmd" "$tmp/help" || fail "cadre $cmd --help prints no usage"
  set +e
  "$CADRE_BIN" $cmd --no-such-flag >/dev/null 2>"$tmp/err"
  code=$?
  set -e
  [ $code -eq 2 ] || fail "cadre $cmd --no-such-flag exited $code, not 2"
  grep -q "usage: cadre $cmd" "$tmp/err" || fail "cadre $cmd: no usage on stderr"
done
passed=$((passed + 1))

# 2. install + pkg-config + a program using the installed header and library.
cmake --install "$CADRE_BUILD_DIR" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pkg-config --exists cadre || fail "pkg-config does not find cadre"
cat >"$tmp/hello.c" <<'C'
#include <cadre/cadre.h>
#include <stdio.h>
int main(int argc, char **argv) {
    cadre_client_opts o = {.url = argv[1], .key_file = argv[2]};
    cadre_client *c; char err[256]; cadre_job_id id; cadre_outcome out;
    (void)argc;
    if (cadre_client_open(&o, &c, err, sizeof err) != CADRE_OK) { fprintf(stderr, "%s\n", err); return 1; }
    if (cadre_dispatch(c, "echo", "installed", 9, NULL, &id) != CADRE_OK) { fprintf(stderr, "%s\n", cadre_client_errmsg(c)); return 1; }
    if (cadre_wait(c, &id, 1, 10000, &out) != CADRE_OK) { fprintf(stderr, "%s\n", cadre_client_errmsg(c)); return 1; }
    printf("%.*s\n", (int)out.result_len, (const char *)out.result);
    cadre_outcome_fini(&out); cadre_client_close(c); return 0;
}
C
san=""
[ "${CADRE_SANITIZE:-OFF}" = ON ] && san="-fsanitize=address,undefined"
cc $san -Wall -Werror -o "$tmp/hello" "$tmp/hello.c" $(pkg-config --cflags --libs cadre) \
  -Wl,-rpath,"$tmp/prefix/lib" || fail "cannot build against the installed libcadre"
passed=$((passed + 1))

# 3. it runs against a real node.
"$CADRE_BIN" node --data "$tmp/data" --listen tcp://127.0.0.1:0 --workers 1 \
  --plugin "$CADRE_DEMO_PLUGIN" >"$tmp/node.out" 2>"$tmp/node.log" &
node=$!
url=""
for _ in $(seq 150); do
  url=$(sed -n 's/^cadre node ready api=\([^ ]*\).*/\1/p' "$tmp/node.out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || fail "node did not start: $(tail -3 "$tmp/node.log")"
out=$("$tmp/hello" "$url" "$tmp/data/cluster.key") || fail "hello failed"
[ "$out" = installed ] || fail "hello printed '$out'"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
