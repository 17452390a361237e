"""The dispatch benchmark of tests/bench/bench.py: twinfs-dispatch against the bare inotifywait
loop of docs/handlers.md, both running the same handler (exit0, which only exits 0) over the
same backlog of pending events on a twinfs mount.

    rates = DispatchBench(bench, tw).run()

Each side gets a fresh backlog of N events (2 assets, interleaved: -j 2 has two assets to run
in parallel). The time is from the start of the program until it has acked the whole backlog
(the dispatcher with --once exits then; the loop exits once its listing is done and the
directory is empty). CPU times come from /proc/PID/stat of the exited (not yet reaped)
process: its own (utime + stime) and its reaped children's (cutime + cstime: the handlers,
and the loop's rm).

Each round also measures the floor of process starts (spawnloop: vfork, execve and wait of the
handler, with no FUSE and no dispatcher), alone and as two copies at once. Their ratio is the
most -j 2 can gain over -j 1 with this handler on this machine: where starting two processes at
once is no faster than one after the other, -j 2 cannot beat -j 1 either."""

import base64
import json
import os
import shutil
import subprocess
import time

from testlib.proc import progress

CLK_TCK = os.sysconf("SC_CLK_TCK")
PING_B64 = base64.b64encode(b"\x02").decode()  # Ping n=1

# The loop of docs/handlers.md, reduced to a backlog: watch first, then list and handle; the
# watch would then report what comes, and a backlog brings nothing more, so it ends there.
BARE_LOOP = r"""#!/bin/bash
set -u
export LC_ALL=C
dir=$1/events
handler=$2
exec 3< <(exec inotifywait -m -e close_write --format %f "$dir" 2>&1)
read -r _ <&3
read -r ready <&3
[ "$ready" = "Watches established." ] || { echo "$0: $ready" >&2; exit 1; }
for f in "$dir"/*; do
    [ -e "$f" ] && "$handler" "$f" && rm "$f"
done
"""


def run_measured(argv, timeout=900):
    """Runs argv; returns (seconds, exit status, own CPU s, children's CPU s, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        # wait for the exit but leave the zombie: its stat holds the final CPU times
        waited = _waitid_nowait(p.pid, timeout)
        t = time.monotonic() - t0
        with open("/proc/%d/stat" % p.pid) as f:
            fields = f.read().rpartition(")")[2].split()
        own = (int(fields[11]) + int(fields[12])) / CLK_TCK
        kids = (int(fields[13]) + int(fields[14])) / CLK_TCK
        if not waited:
            raise RuntimeError("%s did not end in %ss" % (argv[0], timeout))
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait()
        return t, rc, own, kids, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass
        p.stderr.close()


def _waitid_nowait(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if r is not None:
            return True
        time.sleep(0.002)
    return False


class DispatchBench:
    def __init__(self, bench, tw, count):
        self.b = bench
        self.tw = tw
        self.n = count
        self.dir = os.path.join(bench.tmp, "dispatch")
        os.makedirs(self.dir, exist_ok=True)
        self.handlers = os.path.join(self.dir, "handlers")
        os.mkdir(self.handlers)
        self.handler = os.path.join(self.handlers, "do_Ping")
        shutil.copy(os.path.join(bench.helpers, "exit0"), self.handler)
        self.loop = os.path.join(self.dir, "bare-loop")
        with open(self.loop, "w") as f:
            f.write(BARE_LOOP)
        self.binary = os.path.join(bench.args.build, "dispatch", "twinfs-dispatch")
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("twinfs-dispatch is not built: no " + self.binary)
        self.tw.create_asset("d1")
        self.tw.create_asset("d2")
        self.m = bench.mount(tw, max_pending=count + 100)
        self.evdir = self.m.path("events")

    def backlog(self):
        """Publishes N events (d1, d2, d1, d2, ...) and waits until all are visible."""
        lines = ["".join(json.dumps({"asset": a, "name": "Ping", "version": 1,
                                     "source": "bench", "data_b64": PING_B64}) + "\n"
                         for a in ("d1", "d2")) for _ in range(self.n // 2)]
        for i in range(0, len(lines), 5000):
            status, _, data = self.tw.request("POST", "/v1/events:batch",
                                              "".join(lines[i:i + 5000]), timeout=120)
            if status != 200:
                raise RuntimeError("batch publish: %d %r" % (status, data[:200]))
        n = 2 * len(lines)
        self.m.wait_for(lambda: len(os.listdir(self.evdir)) == n, 600,
                        "the dispatch backlog to be visible")
        return n

    def measure(self, what, argv):
        n = self.backlog()
        t, rc, own, kids, err = run_measured(argv)
        left = len(os.listdir(self.evdir))
        if rc != 0 or left:
            raise RuntimeError("%s: exit %d, %d events left: %s" % (what, rc, left, err[-500:]))
        progress("bench", "dispatch %s: %d events in %.2f s, own CPU %.2f s, children %.2f s"
                 % (what, n, t, own, kids))
        return {"rate": n / t, "own_us": own * 1e6 / n, "kids_us": kids * 1e6 / n,
                "wall_us": t * 1e6 / n, "n": n}

    def spawn_floor(self, starts):
        """Handler starts per second the machine allows: spawnloop alone, then two spawnloops at
        once (their summed rate). No FUSE, no dispatcher: only vfork, execve and wait."""
        loop = os.path.join(self.b.helpers, "spawnloop")
        argv = [loop, str(starts), self.handler]

        def rates(copies):
            ps = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(copies)]
            outs = [p.communicate(timeout=600)[0] for p in ps]
            if any(p.returncode != 0 for p in ps):
                raise RuntimeError("spawnloop failed")
            return sum(float(o) for o in outs)
        one, two = rates(1), rates(2)
        progress("bench", "dispatch spawn floor: %.0f starts/s alone, %.0f with two at once"
                 % (one, two))
        return {"one": one, "two": two}

    def run(self, rounds):
        """rounds rounds of bare loop, -j 1, -j 2, spawn floor; returns {side: [measures...]}."""
        out = {"bare": [], "j1": [], "j2": [], "floor": []}
        for r in range(rounds):
            progress("bench", "dispatch round %d of %d" % (r + 1, rounds))
            out["bare"].append(self.measure("bare loop", ["bash", self.loop, self.m.mnt,
                                                          self.handler]))
            for j in (1, 2):
                out["j%d" % j].append(self.measure(
                    "-j %d" % j, [self.binary, "-j", str(j), "--once", self.m.mnt,
                                  self.handlers]))
            out["floor"].append(self.spawn_floor(max(self.n, 1000)))
        self.m.stop()
        return out


def bench_dispatch(bench):
    """Adds the dispatch rows to bench (a bench.Bench)."""
    count = bench.n["dispatch"]
    tw = bench.twin()
    res = DispatchBench(bench, tw, count).run(bench.n["dispatch_rounds"])
    tw.stop()

    def best(side):
        return max(res[side], key=lambda x: x["rate"])
    bare, j1, j2 = best("bare"), best("j1"), best("j2")
    bench.row("dispatch", "events/s, twinfs-dispatch -j 1 --once (%d events, handler exit0)"
              % j1["n"], "%.0f" % j1["rate"], "%.0f (bare inotifywait loop)" % bare["rate"],
              j1["rate"] / bare["rate"], "≥ 0.9×", j1["rate"] >= 0.9 * bare["rate"])
    bench.row("dispatch", "events/s, -j 2 vs -j 1", "%.0f" % j2["rate"],
              "%.0f (-j 1)" % j1["rate"], j2["rate"] / j1["rate"], "> 1.0×",
              j2["rate"] > j1["rate"])
    floor = max(res["floor"], key=lambda x: x["two"] / x["one"])
    bench.row("dispatch", "process starts/s of exit0, no FUSE: two loops at once vs one "
              "(the ceiling of -j 2 vs -j 1)", "%.0f" % floor["two"], "%.0f (one loop)"
              % floor["one"], floor["two"] / floor["one"], "(information)", True)
    bench.row("dispatch", "dispatcher's own CPU per event (-j 1), µs; the handler's (children)",
              "%.0f; %.0f" % (j1["own_us"], j1["kids_us"]),
              "bare loop's bash: %.0f; children %.0f" % (bare["own_us"], bare["kids_us"]),
              None, "(information)", True)
    bench.row("dispatch", "wall time per event, µs (-j 1 / -j 2)",
              "%.0f / %.0f" % (j1["wall_us"], j2["wall_us"]),
              "%.0f (bare loop)" % bare["wall_us"], None, "(information)", True)
    bench.raw["dispatch"] = res
