"""The T2 stream benchmark of tests/bench/bench.py: `dd bs=1M` and `cat` of a Generated T2 file
on a twinfs mount against curl fetching the same request from the same twin.

    res = T2Bench({"": mount}, twin, size, rounds).run()
    s = summary(res, size)            # s["dd"], s["cat"]

The machine may be shared, so the readers run alternately (curl, then dd and cat, dd first in
even rounds and cat first in odd ones), several rounds, and each round's ratio is curl's time over the reader's in that round: a round where
the machine was busy slows both sides alike. Reported per reader: the best, the quartiles and
the median of the rounds' ratios, the rates, the daemon's CPU time per GiB (utime + stime of
/proc/PID/stat, which load hardly changes) and its peak RSS (sampled every 20 ms). The load
average is noted before and after.

With several mounts (one per build, on the same twin) every round runs each mount's dd and
cat after the one curl, the mounts in a rotating order: a paired comparison of two versions of
the data path, which is how a change to it is measured (docs/performance.md). On this kind of
machine one round can differ from the next by 2x, so a comparison wants 16 rounds or more.

Standalone (builds nothing; BUILD is a configured and built twinfs build dir):

    /usr/bin/python3 tests/bench/t2_bench.py --build BUILD [--against BUILD2 ...]
                     [--size BYTES] [--rounds N] [-o key=value ...]
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
READERS = ("dd", "cat")


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reader_key(reader, label):
    """The result key of reader on the mount labelled label ("" when there is one)."""
    return reader if not label else "%s %s" % (reader, label)


class T2Bench:
    def __init__(self, mounts, tw, size, rounds):
        """mounts: {label: Mount}, all following tw."""
        self.mounts, self.tw, self.size, self.rounds = mounts, tw, size, rounds
        self.peak = {label: 0 for label in mounts}

    def path(self, m):
        return m.path("assets", "a", "t2", "Generated", str(self.size))

    def sample(self, stop):
        while not stop.is_set():
            for label, m in self.mounts.items():
                try:
                    self.peak[label] = max(self.peak[label], m.rss_kib())
                except OSError:
                    pass
            time.sleep(0.02)

    @staticmethod
    def wall_s(argv):
        """Runs argv to the end; its wall time in seconds."""
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError("%s: exit %d: %r" % (argv[0], p.returncode, p.stderr[:200]))
        return t

    @classmethod
    def wall_and_daemon_cpu_s(cls, argv, pid):
        """Runs argv to the end; its wall time and the CPU time process pid spent meanwhile."""
        c0 = cpu_s(pid)
        t = cls.wall_s(argv)
        return t, cpu_s(pid) - c0

    def run(self):
        """Returns {"load": (before, after), "curl": [s...], KEY: [(s, cpu_s)...] for
        every reader_key, "peak_rss_kib": {label: n}}."""
        url = self.tw.url + "/v1/assets/a/t2/Generated?timeout=30"
        curl = ["curl", "-sf", "-X", "POST", "--data-binary", str(self.size), "-o", "/dev/null",
                url]
        labels = list(self.mounts)
        res = {"curl": [], "load": [os.getloadavg()[0]]}
        stop = threading.Event()
        th = threading.Thread(target=self.sample, args=(stop,))
        th.start()
        try:
            for i in range(self.rounds):
                res["curl"].append(self.wall_s(curl))
                for label in labels[i % len(labels):] + labels[:i % len(labels)]:
                    m = self.mounts[label]
                    argvs = {"dd": ["dd", "if=" + self.path(m), "of=/dev/null", "bs=1M"],
                             "cat": ["cat", self.path(m)]}
                    # dd first in even rounds, cat first in odd ones: neither always
                    # comes right after the other's stream.
                    for r in READERS if i % 2 == 0 else READERS[::-1]:
                        res.setdefault(reader_key(r, label), []).append(
                            self.wall_and_daemon_cpu_s(argvs[r], m.proc.pid))
        finally:
            stop.set()
            th.join()
        res["load"].append(os.getloadavg()[0])
        res["peak_rss_kib"] = dict(self.peak)
        return res


def quartiles(xs):
    """(first quartile, median, third quartile) of xs."""
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def summary(res, size):
    """{"curl_mibs": [...], KEY: dict(ratio best, median, q1, q3; MiB/s best, median; CPU ms
    per GiB median; ratios)} for every reader key of res."""
    mib = size / (1 << 20)
    out = {"curl_mibs": [mib / t for t in res["curl"]]}
    for k, runs in res.items():
        if k in ("curl", "load", "peak_rss_kib"):
            continue
        ratios = [c / t for c, (t, _) in zip(res["curl"], runs)]
        rates = [mib / t for t, _ in runs]
        cpu = [cpu * 1000 / (size / (1 << 30)) for _, cpu in runs]
        q1, med, q3 = quartiles(ratios)
        out[k] = {"ratio_best": max(ratios), "ratio_median": med, "ratio_q1": q1,
                  "ratio_q3": q3, "mibs_best": max(rates), "mibs_median": statistics.median(rates),
                  "cpu_ms_per_gib": statistics.median(cpu), "ratios": ratios}
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(1, os.path.dirname(here))
    from testlib.mount import Mount
    from testlib.twin import Twin

    ap = argparse.ArgumentParser(
        description="dd and cat of a T2 stream on twinfs against curl of the same request")
    ap.add_argument("--build", required=True, help="a built twinfs build dir")
    ap.add_argument("--against", action="append", default=[], metavar="BUILD",
                    help="another build dir, mounted on the same twin and run in the same "
                         "rounds (repeatable)")
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-o", "--opt", action="append", default=[],
                    help="mount option key=value for every mount (repeatable)")
    args = ap.parse_args()
    builds = [os.path.abspath(b) for b in [args.build] + args.against]
    for b in builds:
        if not os.access(os.path.join(b, "mount", "twinfs"), os.X_OK):
            ap.error("%s: no mount/twinfs in it (a built build dir?)" % b)
    if len(set(builds)) != len(builds):
        ap.error("the same build twice")
    os.environ["TWINFS_SOURCE"] = os.path.dirname(os.path.dirname(here))
    opts = dict(o.split("=", 1) for o in args.opt)
    tmp = tempfile.mkdtemp(prefix="twinfs-t2bench-")
    tw = Twin(tmp)
    tw.start()
    mounts = {}
    try:
        tw.create_asset("a")
        for b in builds:
            os.environ["TWINFS_BUILD"] = b  # Mount reads it for its binary
            m = Mount(tw, tmp, **opts)
            m.start(timeout=60)
            label = "" if len(builds) == 1 else b
            mounts[label] = m
            m.wait_for(lambda: os.path.isdir(m.path("assets", "a", "t2")), 30, "asset a")
        res = T2Bench(mounts, tw, args.size, args.rounds).run()
    finally:
        for m in mounts.values():
            m.stop()
        tw.stop()
    s = summary(res, args.size)
    print("load %.2f -> %.2f; %d rounds of %d MiB" % (res["load"][0], res["load"][1],
                                                     args.rounds, args.size >> 20))
    print("curl MiB/s: " + " ".join("%.0f" % x for x in s["curl_mibs"]))
    for label in mounts:
        if label:
            print("%s (peak RSS %.1f MiB)" % (label, res["peak_rss_kib"][label] / 1024))
        else:
            print("peak RSS %.1f MiB" % (res["peak_rss_kib"][label] / 1024))
        for r in READERS:
            d = s[reader_key(r, label)]
            print("  %-3s ratio median %.2f (quartiles %.2f-%.2f, best %.2f); MiB/s median %.0f, "
                  "best %.0f; daemon CPU %.0f ms/GiB" % (
                      r, d["ratio_median"], d["ratio_q1"], d["ratio_q3"], d["ratio_best"],
                      d["mibs_median"], d["mibs_best"], d["cpu_ms_per_gib"]))
            print("      rounds: " + " ".join("%.2f" % x for x in d["ratios"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
