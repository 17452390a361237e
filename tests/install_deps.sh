#!/usr/bin/env bash
# Installs what twinfs needs to build, run and test on Debian 12 (run as root).
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config
  libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libavro-dev avro-bin
  python3 python3-pytest python3-avro python3-watchdog inotify-tools incron curl openssl rsync
  clang clang-format clang-tidy cppcheck shellcheck valgrind
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
