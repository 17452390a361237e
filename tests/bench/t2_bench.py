"""The T2 stream benchmark of tests/bench/bench.py: `dd bs=1M` and `cat` of a Generated T2 file
on a twinfs mount against curl fetching the same request from the same twin.

    rows = T2Bench(mount, twin, size, rounds).run()

The machine may be shared, so the three run alternately (curl, dd, cat), several rounds, and
each round's ratio is curl's time over the reader's in that round: a round where the machine
was busy slows both sides alike. Reported per reader: the best and the median of the rounds'
ratios and rates, the daemon's CPU time per GiB (utime + stime of /proc/PID/stat, which load
hardly changes) and its peak RSS (sampled every 20 ms). The load average is noted before and
after.

Standalone (builds nothing; BUILD is a configured and built twinfs build dir):

    /usr/bin/python3 tests/bench/t2_bench.py --build BUILD [--size BYTES] [--rounds N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class T2Bench:
    def __init__(self, m, tw, size, rounds):
        self.m, self.tw, self.size, self.rounds = m, tw, size, rounds
        self.path = m.path("assets", "a", "t2", "Generated", str(size))
        self.peak = 0

    def sample(self, stop):
        while not stop.is_set():
            try:
                self.peak = max(self.peak, self.m.rss_kib())
            except OSError:
                pass
            time.sleep(0.02)

    def timed(self, argv):
        pid = self.m.proc.pid
        c0 = cpu_s(pid)
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError("%s: exit %d: %r" % (argv[0], p.returncode, p.stderr[:200]))
        return t, cpu_s(pid) - c0

    def run(self):
        """Returns {"load": (before, after), "curl": [s...], "dd"/"cat": [(s, cpu_s)...],
        "peak_rss_kib": n}."""
        url = self.tw.url + "/v1/assets/a/t2/Generated?timeout=30"
        argvs = {
            "curl": ["curl", "-sf", "-X", "POST", "--data-binary", str(self.size),
                     "-o", "/dev/null", url],
            "dd": ["dd", "if=" + self.path, "of=/dev/null", "bs=1M"],
            "cat": ["cat", self.path],
        }
        res = {k: [] for k in argvs}
        res["load"] = [os.getloadavg()[0]]
        stop = threading.Event()
        th = threading.Thread(target=self.sample, args=(stop,))
        th.start()
        try:
            for _ in range(self.rounds):
                for k, argv in argvs.items():
                    t, cpu = self.timed(argv)
                    res[k].append((t, cpu))
        finally:
            stop.set()
            th.join()
        res["load"].append(os.getloadavg()[0])
        res["peak_rss_kib"] = self.peak
        return res


def summary(res, size):
    """{reader: dict(best, median ratio; best, median MiB/s; CPU ms per GiB median)}."""
    mib = size / (1 << 20)
    out = {"curl_mibs": [mib / t for t, _ in res["curl"]]}
    for k in ("dd", "cat"):
        ratios = [c / t for (c, _), (t, _) in zip(res["curl"], res[k])]
        rates = [mib / t for t, _ in res[k]]
        cpu = [cpu * 1000 / (size / (1 << 30)) for _, cpu in res[k]]
        out[k] = {"ratio_best": max(ratios), "ratio_median": statistics.median(ratios),
                  "mibs_best": max(rates), "mibs_median": statistics.median(rates),
                  "cpu_ms_per_gib": statistics.median(cpu), "ratios": ratios}
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(1, os.path.dirname(here))
    from testlib.mount import Mount
    from testlib.twin import Twin

    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-o", "--opt", action="append", default=[],
                    help="mount option key=value (repeatable)")
    args = ap.parse_args()
    os.environ["TWINFS_BUILD"] = os.path.abspath(args.build)
    os.environ["TWINFS_SOURCE"] = os.path.dirname(os.path.dirname(here))
    opts = dict(o.split("=", 1) for o in args.opt)
    tmp = tempfile.mkdtemp(prefix="twinfs-t2bench-")
    tw = Twin(tmp)
    tw.start()
    m = None
    try:
        tw.create_asset("a")
        m = Mount(tw, tmp, **opts)
        m.start(timeout=60)
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a", "t2")), 30, "asset a")
        res = T2Bench(m, tw, args.size, args.rounds).run()
    finally:
        if m:
            m.stop()
        tw.stop()
    s = summary(res, args.size)
    print("load %.2f -> %.2f; peak RSS %.1f MiB" % (res["load"][0], res["load"][1],
                                                    res["peak_rss_kib"] / 1024))
    print("curl MiB/s: " + " ".join("%.0f" % x for x in s["curl_mibs"]))
    for k in ("dd", "cat"):
        d = s[k]
        print("%-3s ratio best %.2f median %.2f (%s); MiB/s best %.0f median %.0f; "
              "daemon CPU %.0f ms/GiB" % (k, d["ratio_best"], d["ratio_median"],
                                          " ".join("%.2f" % r for r in d["ratios"]),
                                          d["mibs_best"], d["mibs_median"], d["cpu_ms_per_gib"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
