#!/usr/bin/env bash
# The README's demo: installs, builds, starts the reference twin with demo data on loopback and
# mounts it at ./mnt.  `bash tests/demo.sh stop` unmounts and stops the twin.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.demo
mnt=$root/mnt
port=${TWINFS_DEMO_PORT:-8765}
url=http://127.0.0.1:$port

stop() {
  if grep -qs " $mnt fuse" /proc/mounts; then fusermount3 -u "$mnt" || fusermount3 -u -z "$mnt"; fi
  if [ -f "$state/twin.pid" ]; then
    kill "$(cat "$state/twin.pid")" 2>/dev/null || true
    rm -f "$state/twin.pid"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  echo "demo stopped (its data stays in $state; remove it to start afresh)"
  exit 0
fi

bash tests/install_deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
stop
mkdir -p "$state" "$mnt"

# The twin prints one line when it serves; wait for it.
/usr/bin/python3 tests/twin/twin.py --listen "127.0.0.1:$port" --state "$state/twin" --demo \
  >"$state/twin.log" 2>&1 &
echo $! >"$state/twin.pid"
for _ in $(seq 100); do
  grep -q 'listening' "$state/twin.log" && break
  kill -0 "$(cat "$state/twin.pid")" 2>/dev/null || { cat "$state/twin.log"; exit 1; }
  sleep 0.1
done
echo "twin: $url (log: $state/twin.log)"

if [ -x build/mount/twinfs ]; then
  build/mount/twinfs "$url" "$mnt" -o "tracker=$state/tracker.journal"
  cat <<MSG
twinfs: the demo twin is mounted at ./mnt. Try:
  ls mnt/assets
  ls mnt/assets/acme-pump-01/events
  cat mnt/assets/acme-pump-01/events/*-NewDocSet.json
  rm mnt/assets/acme-pump-01/events/<one of them>      # acknowledges it
  inotifywait -m -e close_write mnt/events &            # then publish: see docs/protocol.md
  cat mnt/assets/acme-pump-01/t2/AcmecorpExampleReq/manual.pdf > manual.pdf
  cat mnt/.twinfs/status
Stop: bash tests/demo.sh stop
MSG
else
  echo "twinfs is not built yet; the twin alone is running. Stop: bash tests/demo.sh stop"
fi
