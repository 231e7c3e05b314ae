#!/usr/bin/env bash
# Installs the Debian packages cadre builds, tests and benchmarks with.
# Only apt-get; nothing else is downloaded. Packages already present are skipped.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libnng-dev libuv1-dev liblmdb-dev lmdb-utils libsodium-dev
  libprotobuf-c-dev protobuf-c-compiler libinih-dev libraft-dev
  openssl tzdata
  beanstalkd gearman-job-server libgearman-dev
  redis-server libhiredis-dev
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
