"""The twinfs benchmark suite: every benchmark of docs/performance.md, each measured
side by side with its baseline in the same run, printed as a table and written to a markdown
report. Run it through tests/bench/run.sh, which builds what it needs.

    bench.py --build BUILD --helpers DIR [--quick] [--out FILE]

A benchmark never fails on a missed target: it reports it. Exit status 1 only when something
could not run (the twin or a mount did not start, a helper is missing, ...).
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
if __name__ == "__main__":  # a script: the helpers are found as tests/pytest.ini finds them
    sys.path.insert(1, os.path.dirname(HERE))

from dispatch_bench import bench_dispatch  # noqa: E402
from t2_bench import T2Bench, summary as t2_summary  # noqa: E402
from testlib.events import PING, zigzag  # noqa: E402
from testlib.mount import Mount  # noqa: E402
from testlib.proc import progress  # noqa: E402
from testlib.twin import Twin  # noqa: E402
from testlib.wait import wait_for  # noqa: E402

# "ingest" events go to two assets of ingest/2 each: the C loop consumes one, Python the other.
FULL = {"ingest": 200000, "assets": 50000, "t2": 1 << 30, "live": 3000, "dispatch": 5000,
        "dispatch_rounds": 2}
QUICK = {"ingest": 60000, "assets": 20000, "t2": 1 << 30, "live": 1000, "dispatch": 500,
         "dispatch_rounds": 1}
ROUNDS = 3  # rounds of the ingest/consume benchmarks; the best counts
MARK_BEGIN = "<!-- bench:begin (written by tests/bench/run.sh; do not edit by hand) -->"
MARK_END = "<!-- bench:end -->"


def load_events(tw, asset, count, start=0, batch=10000):
    """Publishes count Ping events (pre-encoded AVRO, so the twin does no encoding work)."""
    n = start
    while n < start + count:
        k = min(batch, start + count - n)
        body = "".join(json.dumps({"asset": asset, "name": "Ping", "version": 1,
                                   "source": "bench",
                                   "data_b64": base64.b64encode(zigzag(i)).decode()})
                       + "\n" for i in range(n, n + k))
        status, _, data = tw.request("POST", "/v1/events:batch", body, timeout=120)
        if status != 200:
            raise RuntimeError("batch publish: %d %r" % (status, data[:200]))
        n += k


def create_assets(tw, names):
    conn = http.client.HTTPConnection("127.0.0.1", tw.port, timeout=30)
    try:
        for a in names:
            conn.request("PUT", "/v1/assets/" + a)
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201):
                raise RuntimeError("create asset %s: %d" % (a, r.status))
    finally:
        conn.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def timed(argv, **kw):
    """Runs argv; returns (seconds, CompletedProcess)."""
    t0 = time.monotonic()
    p = subprocess.run(argv, **kw)
    return time.monotonic() - t0, p


def best_of(n, fn):
    return min(fn() for _ in range(n))


def ls_time(path, flags):
    env = dict(os.environ, LC_ALL="C")

    def once():
        t, p = timed(["ls", flags, path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     env=env)
        if p.returncode != 0:
            raise RuntimeError("ls %s %s: %s" % (flags, path, p.stderr[:200]))
        return t
    return best_of(3, once)


def requests_total(st, exclude=()):
    return sum(v for k, v in st["requests"].items() if k not in exclude)


def follow_ingest(m, n, timeout=600):
    """Polls mount m's status from now until n events are visible; returns the samples
    (seconds since the call, materialized, materialize_queue, visible_events, delivered)
    and the last status."""
    t0 = time.monotonic()
    samples = []
    while True:
        st = m.status()
        t = time.monotonic() - t0
        samples.append((t, st["materialized"], st["materialize_queue"],
                        st["visible_events"], st["delivered"]))
        if st["visible_events"] >= n:
            return samples, st
        if t > timeout:
            raise RuntimeError("ingest did not finish: %r" % st)
        if m.proc.poll() is not None:
            raise RuntimeError("twinfs died:\n" + m.log())
        time.sleep(0.05)


def ingest_rates(samples, n):
    """From follow_ingest's samples: events/s visible, delivered to fs/, and materialized.
    Materialize is the rate of the materializer alone, once the follower has delivered
    everything (before that it shares the 2 CPUs with decoding); the whole busy span if that
    part is too short to measure."""
    ingest = n / samples[-1][0]
    delivered = n / next(s[0] for s in samples if s[4] >= n)
    busy = [s for s in samples if s[2] > 0]
    alone = [s for s in busy if s[4] >= n]
    span = alone if len(alone) >= 5 else busy
    if len(span) >= 2 and samples[-1][0] > span[0][0]:
        mat = (samples[-1][1] - span[0][1]) / (samples[-1][0] - span[0][0])
    else:
        mat = ingest
    return ingest, delivered, mat


def mat_requests(mat):
    """The request counters of a floor FS's STATSFILE.mat (Bench.read_stats), non-zero ones."""
    return {k: int(v) for k, v in mat.items() if isinstance(v, float) and v and k != "errors"}


def best_rate(rounds, k):
    return max(x[k] for x in rounds)


def req_delta(before, after):
    return {k: after["requests"].get(k, 0) - before["requests"].get(k, 0)
            for k in after["requests"] if after["requests"].get(k, 0) != before["requests"].get(k, 0)}


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.n = QUICK if args.quick else FULL
        self.helpers = args.helpers
        self.tmp = tempfile.mkdtemp(prefix="twinfs-bench-")
        self.shm = tempfile.mkdtemp(prefix="twinfs-bench-", dir="/dev/shm")
        self.rows = []  # (benchmark, measure, twinfs, baseline, ratio, target, met)
        self.notes = []
        self.cleanup = []  # callables, run in reverse
        self.raw = {}

    # -- plumbing ------------------------------------------------------------------------------

    def row(self, bench, measure, value, baseline, ratio, target, met):
        self.rows.append((bench, measure, value, baseline, ratio, target, met))
        progress("bench", "%s | %s | %s | %s | %s | %s | %s" % (
            bench, measure, value, baseline, ratio, target, "met" if met else "MISSED"))

    def twin(self):
        tw = Twin(self.tmp)
        tw.start()
        self.cleanup.append(tw.stop)
        tw.put_schema("Ping", 1, PING)
        return tw

    def mount(self, tw, **opts):
        m = Mount(tw, self.tmp, **opts)
        m.start(timeout=60)
        self.cleanup.append(m.stop)
        return m

    def minfs(self, count, size, answer_open=False, link=False):
        """Starts the floor filesystem; returns (mountpoint, stats path, proc, stop)."""
        d = tempfile.mkdtemp(prefix="minfs-", dir=self.tmp)
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        stats = os.path.join(d, "stats")
        proc = subprocess.Popen([os.path.join(self.helpers, "minfs"), mnt, str(count), str(size),
                                 stats], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=dict(os.environ, MINFS_OPEN="1" if answer_open else "0",
                                         MINFS_LINK="1" if link else "0"))

        def stop():
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        self.cleanup.append(stop)
        wait_for(lambda: os.path.exists(stats + ".mat") or proc.poll() is not None, 300,
                 "minfs to materialize")
        if proc.poll() is not None:
            raise RuntimeError("minfs exited: %s" % proc.stderr.read()[:500])
        return mnt, stats, proc, stop

    @staticmethod
    def read_stats(path):
        out = {}
        with open(path) as f:
            for line in f:
                k, *v = line.split()
                out[k] = [float(x) for x in v] if len(v) > 1 else float(v[0])
        return out

    def consume_c(self, path):
        p = subprocess.run([os.path.join(self.helpers, "consume"), path], capture_output=True,
                           text=True, check=True)
        _, n, t, nbytes, errors = p.stdout.split()
        return int(n), float(t), int(errors)

    def consume_py(self, path):
        code = ("import os, sys, time\n"
                "d = sys.argv[1]; t0 = time.monotonic(); n = e = 0\n"
                "for name in os.listdir(d):\n"
                "    p = os.path.join(d, name)\n"
                "    try:\n"
                "        with open(p, 'rb') as f:\n"
                "            f.read()\n"
                "        os.unlink(p); n += 1\n"
                "    except OSError:\n"
                "        e += 1\n"
                "print(n, time.monotonic() - t0, e)\n")
        p = subprocess.run(["/usr/bin/python3", "-c", code, path], capture_output=True,
                           text=True, check=True)
        n, t, errors = p.stdout.split()
        return int(n), float(t), int(errors)

    def tmpfs_events(self, names, size):
        d = tempfile.mkdtemp(prefix="events-", dir=self.shm)
        content = b"x" * (size - 1) + b"\n"
        for name in names:
            with open(os.path.join(d, name), "wb") as f:
                f.write(content)
        return d

    # -- benchmarks ----------------------------------------------------------------------------

    def ingest_round(self, tw, n, curl_rate, first):
        """One mount with a fresh tracker over the loaded twin: ingest, then (first round) the
        big directory and memory figures, then the consume loops. Returns the measures."""
        r = {}
        m = self.mount(tw, max_pending=n + 100)
        # Counted from the return of m.start() (the mount is there); start-up is not counted.
        samples, _ = follow_ingest(m, n)
        r["ingest"], r["delivered"], r["mat"] = ingest_rates(samples, n)
        st = m.status()
        if st["materialize_errors"]:
            self.notes.append("ingest: %d materialize errors" % st["materialize_errors"])
        self.raw["ingest_requests"] = {k: v for k, v in st["requests"].items() if v}
        rss_full = m.rss_kib()
        evdir_a = m.events_dir("a")
        if first:
            names_a = sorted(os.listdir(evdir_a))
            sizes = [os.stat(os.path.join(evdir_a, x)).st_size for x in names_a[:2000]]
            self.avg_json = sum(sizes) / len(sizes)
            self.shm_a = self.tmpfs_events(names_a, int(self.avg_json))
            before = m.status()
            self.ls_tmpfs = {}
            for flags in ("-f", "-l"):
                t_fs = ls_time(evdir_a, flags)
                t_tmp = self.ls_tmpfs[flags] = ls_time(self.shm_a, flags)
                self.row("big directories", "ls %s events/ (%d files), s"
                         % (flags, len(names_a)), "%.3f" % t_fs, "%.3f (tmpfs)" % t_tmp,
                         t_tmp / t_fs, "≥ 0.33× (within 3×)", t_fs <= 3 * t_tmp)
            self.raw["ls_events_requests"] = req_delta(before, m.status())
            per_event = (rss_full - self.rss_base) * 1024 / n - self.avg_json
            self.row("memory", "RSS per pending event beyond its JSON (%d pending), bytes" % n,
                     "%.0f" % per_event, "RSS %d KiB, empty mount %d KiB, JSON %.0f B"
                     % (rss_full, self.rss_base, self.avg_json), None, "≤ 1024 B",
                     per_event <= 1024)
        before = m.status()
        cn, ct, ce = self.consume_c(evdir_a)
        mid = m.status()
        pn, pt, pe = self.consume_py(m.events_dir("b"))
        after = m.status()
        r["c"], r["py"], r["cn"], r["pn"] = cn / ct, pn / pt, cn, pn
        r["c_req"] = req_delta(before, mid)
        r["py_req"] = req_delta(mid, after)
        if ce or pe:
            self.notes.append("consume on twinfs: %d (C) and %d (Python) errors" % (ce, pe))
        m.stop()
        return r

    def materialize_round(self, tw, n, **opts):
        """A mount with a fresh tracker and opts, until its n events are visible; no consume
        loops. Returns the materialize rate and the FUSE requests of the ingest."""
        m = self.mount(tw, max_pending=n + 100, **opts)
        samples, _ = follow_ingest(m, n)
        st = m.status()
        if st["materialize_errors"]:
            self.notes.append("ingest %r: %d materialize errors"
                              % (opts, st["materialize_errors"]))
        m.stop()
        return {"mat": ingest_rates(samples, n)[2],
                "req": {k: v for k, v in st["requests"].items() if v}}

    def floor_round(self, n, half, first):
        """The same loops on tmpfs and on the floor FS (no open; open answered)."""
        r = {}
        size = int(self.avg_json)
        if not first:
            self.shm_a = self.tmpfs_events(["%020d-Ping.json" % i for i in range(half)], size)
        tc_n, tc_t, _ = self.consume_c(self.shm_a)
        shm_b = self.tmpfs_events(["%020d-Ping.json" % i for i in range(n - half)], size)
        tp_n, tp_t, _ = self.consume_py(shm_b)
        shutil.rmtree(self.shm_a, ignore_errors=True)
        shutil.rmtree(shm_b, ignore_errors=True)
        r["tmp_c"], r["tmp_py"] = tc_n / tc_t, tp_n / tp_t
        mnt, stats, _, stop = self.minfs(half, size)
        mat = self.read_stats(stats + ".mat")
        r["mat"] = half / mat["materialized"][1]
        r["mat_req"] = mat_requests(mat)
        if first:
            for flags in ("-f", "-l"):
                t_fl = ls_time(mnt, flags)
                t_tmp = self.ls_tmpfs[flags]
                self.row("big directories", "ls %s of the floor FS (%d files; getxattr ENOSYS),"
                         " s" % (flags, half), "%.3f" % t_fl, "%.3f (tmpfs)" % t_tmp,
                         t_tmp / t_fl, "(information)", True)
        fc_n, fc_t, _ = self.consume_c(mnt)
        stop()
        fstats = self.read_stats(stats)
        r["req"] = {k: int(fstats[k] - mat.get(k, 0)) for k in fstats
                    if isinstance(fstats[k], float) and fstats[k] != mat.get(k, 0)}
        r["c"], r["cn"] = fc_n / fc_t, fc_n
        mnt2, stats2, _, stop2 = self.minfs(n - half, size)
        fp_n, fp_t, _ = self.consume_py(mnt2)
        stop2()
        mat2, end2 = self.read_stats(stats2 + ".mat"), self.read_stats(stats2)
        r["py_req"] = {k: int(end2[k] - mat2.get(k, 0)) for k in end2
                       if isinstance(end2[k], float) and end2[k] != mat2.get(k, 0)}
        r["pn"] = fp_n
        r["py"] = fp_n / fp_t
        # The floor with open answered, as twinfs must (T2): what the deviation costs.
        mnt3, _, _, stop3 = self.minfs(half, size, answer_open=True)
        fo_n, fo_t, _ = self.consume_c(mnt3)
        stop3()
        r["c_open"] = fo_n / fo_t
        # The floor making its files with twinfs's calls (create+close, link+open+close).
        _, stats4, _, stop4 = self.minfs(half, size, link=True)
        stop4()
        mat4 = self.read_stats(stats4 + ".mat")
        r["mat_link"] = half / mat4["materialized"][1]
        r["link_req"] = mat_requests(mat4)
        if mat4.get("errors"):
            self.notes.append("floor FS (MINFS_LINK): %d materialize errors" % mat4["errors"])
        return r

    def bench_ingest(self):
        """Backlog ingest, materialize, memory per event, big events dir, consume: ROUNDS
        rounds of twinfs then its baselines; each figure is the best round (this machine's
        neighbours make single runs noisy)."""
        n = self.n["ingest"]
        half = n // 2
        progress("bench", "loading %d events into the twin" % n)
        tw = self.twin()
        tw.create_asset("a")
        tw.create_asset("b")
        load_events(tw, "a", half)
        load_events(tw, "b", n - half)

        # Baseline: the twin streaming the same records to curl > /dev/null, until caught_up.
        def curl_stream():
            t0 = time.monotonic()
            p = subprocess.Popen(["curl", "-sN", tw.url + "/v1/stream?after=0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            tail = b""
            try:
                while True:
                    b = os.read(p.stdout.fileno(), 1 << 20)
                    if not b:
                        raise RuntimeError("curl stream ended early")
                    if b'"caught_up"' in tail + b:
                        return time.monotonic() - t0
                    tail = b[-64:]
            finally:
                p.kill()
                p.wait()
                p.stdout.close()
        curl_rate = n / best_of(2, curl_stream)

        tws, nes, fls = [], [], []
        for i in range(ROUNDS):
            progress("bench", "ingest/consume round %d of %d" % (i + 1, ROUNDS))
            tws.append(self.ingest_round(tw, n, curl_rate, i == 0))
            nes.append(self.materialize_round(tw, n, no_events_dir=True))
            fls.append(self.floor_round(n, half, i == 0))
        tw.stop()

        ing = best_rate(tws, "ingest")
        self.row("backlog ingest", "events/s visible (%d events)" % n, "%.0f" % ing,
                 "%.0f (curl of the stream)" % curl_rate, ing / curl_rate, "≥ 0.5×",
                 ing / curl_rate >= 0.5)
        dl = best_rate(tws, "delivered")
        self.row("backlog ingest", "events/s delivered to fs/ (before materialization)",
                 "%.0f" % dl, "%.0f (curl of the stream)" % curl_rate, dl / curl_rate,
                 "(information)", True)
        self.materialize_rows(tws, nes, fls, n)
        for lang, k in (("C", "c"), ("Python", "py")):
            r, rf, rt = best_rate(tws, k), best_rate(fls, k), best_rate(fls, "tmp_" + k)
            self.row("consume", "%s loop events/s (%d events) vs floor FS"
                     % (lang, tws[0][k[0] + "n"]), "%.0f" % r, "%.0f (floor FS)" % rf, r / rf,
                     "≥ 0.9×", r / rf >= 0.9)
            self.row("consume", "%s loop events/s vs tmpfs" % lang, "%.0f" % r,
                     "%.0f (tmpfs)" % rt, r / rt, "—", True)
        fo, fc = best_rate(fls, "c_open"), best_rate(fls, "c")
        self.row("consume", "C loop events/s, floor FS answering open (the T2 deviation)",
                 "%.0f" % fo, "%.0f (floor FS)" % fc, fo / fc, "(information)", True)
        c_req, p_req, f_req = tws[0]["c_req"], tws[0]["py_req"], fls[0]["req"]
        cn, pn, fn = tws[0]["cn"], tws[0]["pn"], fls[0]["cn"]

        def per(req, count, forget=True):
            return sum(v for k, v in req.items() if forget or k != "forget") / max(count, 1)
        self.row("consume", "FUSE requests per consumed event (C), all / without forget",
                 "%.2f / %.2f" % (per(c_req, cn), per(c_req, cn, False)),
                 "%.2f / %.2f (floor FS)" % (per(f_req, fn), per(f_req, fn, False)), None,
                 "≤ 1.1", per(c_req, cn, False) <= 1.1)
        fp_req, fpn = fls[0]["py_req"], fls[0]["pn"]
        self.row("consume", "FUSE requests per consumed event (Python), all / without forget",
                 "%.2f / %.2f" % (per(p_req, pn), per(p_req, pn, False)),
                 "%.2f / %.2f (floor FS)" % (per(fp_req, fpn), per(fp_req, fpn, False)), None,
                 "≤ 1.1", per(p_req, pn, False) <= 1.1)
        self.raw["floor_consume_py_requests"] = fp_req
        self.raw["consume_c_requests"] = c_req
        self.raw["consume_py_requests"] = p_req
        self.raw["floor_consume_c_requests"] = f_req
        self.raw["rounds"] = {"twinfs": [{k: v for k, v in x.items() if not k.endswith("req")}
                                         for x in tws],
                              "twinfs_no_events_dir": [{"mat": x["mat"]} for x in nes],
                              "floor_and_tmpfs": [{k: v for k, v in x.items() if not k.endswith("req")}
                                                  for x in fls]}

    def materialize_rows(self, tws, nes, fls, n):
        mt, mn, mf, ml = (best_rate(tws, "mat"), best_rate(nes, "mat"), best_rate(fls, "mat"),
                          best_rate(fls, "mat_link"))
        self.row("materialize", "events/s made visible, events/ on (create+close, "
                 "link+open+close) vs the floor FS's mknod", "%.0f" % mt,
                 "%.0f (floor FS)" % mf, mt / mf, "≥ 0.8×", mt / mf >= 0.8)
        self.row("materialize", "events/s made visible, events/ on, vs the floor FS making "
                 "the same calls", "%.0f" % mt, "%.0f (floor FS, create+link)" % ml, mt / ml,
                 "≥ 0.8×", mt / ml >= 0.8)
        self.row("materialize", "events/s made visible, -o no_events_dir (create+close)",
                 "%.0f" % mn, "%.0f (floor FS)" % mf, mn / mf, "(information)", True)
        on, off = requests_total({"requests": self.raw["ingest_requests"]}), \
            requests_total({"requests": nes[0]["req"]})
        floor = sum(fls[0]["mat_req"].values()) / (n // 2)
        floor_link = sum(fls[0]["link_req"].values()) / (n // 2)
        self.row("materialize", "FUSE requests per event during the ingest, events/ on / "
                 "no_events_dir (all opcodes)", "%.2f / %.2f" % (on / n, off / n),
                 "%.2f / %.2f (floor FS: mknod / create+link)" % (floor, floor_link), None,
                 "(information)", True)
        self.raw["ingest_no_events_dir_requests"] = nes[0]["req"]
        self.raw["floor_mat_requests"] = fls[0]["mat_req"]
        self.raw["floor_link_requests"] = fls[0]["link_req"]

    def bench_assets(self):
        n = self.n["assets"]
        progress("bench", "creating %d assets" % n)
        tw = self.twin()
        names = ["asset-%06d" % i for i in range(n)]
        create_assets(tw, names)
        m = self.mount(tw)
        t0 = time.monotonic()
        m.wait_for(lambda: m.status()["assets"] >= n, 600, "%d assets visible" % n)
        t_vis = time.monotonic() - t0
        self.notes.append("%d assets were made visible (self-mkdir) in %.1f s after the mount "
                          "(%.0f/s)" % (n, t_vis, n / t_vis))
        rss = m.rss_kib()
        shm = tempfile.mkdtemp(prefix="assets-", dir=self.shm)
        for a in names:
            os.mkdir(os.path.join(shm, a))
        before = m.status()
        assets_dir = m.path("assets")
        for flags in ("-f", "-l"):
            t_fs = ls_time(assets_dir, flags)
            t_tmp = ls_time(shm, flags)
            self.row("big directories", "ls %s assets/ (%d assets), s" % (flags, n),
                     "%.3f" % t_fs, "%.3f (tmpfs)" % t_tmp, t_tmp / t_fs, "≥ 0.33× (within 3×)",
                     t_fs <= 3 * t_tmp)
        self.raw["ls_assets_requests"] = req_delta(before, m.status())
        per_asset = (rss - self.rss_base) * 1024 / n
        self.row("memory", "RSS per asset (%d assets), bytes" % n, "%.0f" % per_asset,
                 "RSS %d KiB, empty mount %d KiB" % (rss, self.rss_base), None, "≤ 2048 B",
                 per_asset <= 2048)
        m.stop()
        tw.stop()
        shutil.rmtree(shm, ignore_errors=True)

    def bench_small(self):
        """An empty mount's RSS, T2 stream, live latency (one asset, nothing pending)."""
        tw = self.twin()
        tw.create_asset("a")
        m = self.mount(tw)
        m.wait_for(lambda: os.path.isdir(m.events_dir("a")), 30, "asset a")
        time.sleep(0.3)
        self.rss_base = m.rss_kib()

        # T2 stream: dd bs=1M and cat of SIZE bytes of Generated vs curl of the same request,
        # alternating, 11 rounds in either mode: single rounds vary 2x here, and the median of
        # fewer moves by more than a change to the data path (tests/bench/t2_bench.py).
        size = self.n["t2"]
        res = T2Bench({"": m}, tw, size, 11).run()
        s = t2_summary(res, size)
        self.raw["t2"] = {"load": res["load"], "curl_mibs": s["curl_mibs"],
                          "dd_ratios": s["dd"]["ratios"], "cat_ratios": s["cat"]["ratios"]}
        mib = size / (1 << 20)
        curl_med = statistics.median(s["curl_mibs"])
        for k, what in (("dd", "dd bs=1M"), ("cat", "cat")):
            d = s[k]
            self.row("T2 stream", "%s of %d MiB to /dev/null, MiB/s (median of %d rounds; "
                     "ratio: median of the rounds' ratios, quartiles %.2f–%.2f×, best %.2f×)"
                     % (what, mib, len(d["ratios"]), d["ratio_q1"], d["ratio_q3"],
                        d["ratio_best"]),
                     "%.0f" % d["mibs_median"], "%.0f (curl)" % curl_med, d["ratio_median"],
                     "≥ 0.8×", d["ratio_median"] >= 0.8)
            self.row("T2 stream", "daemon CPU per GiB during %s, ms" % what,
                     "%.0f" % d["cpu_ms_per_gib"], "—", None, "(information)", True)
        self.row("T2 stream", "daemon peak RSS during dd and cat, MiB",
                 "%.1f" % (res["peak_rss_kib"][""] / 1024), "—", None, "≤ 64 MiB",
                 res["peak_rss_kib"][""] <= 64 * 1024)
        self.notes.append("T2 stream: load average %.1f before, %.1f after"
                          % tuple(res["load"]))

        # Live latency: publish reply -> inotifywait CREATE.
        self.bench_live(tw, m)
        m.stop()
        tw.stop()

    def bench_live(self, tw, m):
        count = self.n["live"]
        rate = 1000.0
        evdir = m.events_dir("a")
        ino = subprocess.Popen(["inotifywait", "-m", "-e", "create", "--format", "%f", evdir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.cleanup.append(lambda: (ino.poll() is None and ino.kill(), ino.wait()))
        err = b""
        deadline = time.monotonic() + 10
        while b"Watches established" not in err:
            if time.monotonic() > deadline:
                raise RuntimeError("inotifywait did not start: %r" % err)
            err += os.read(ino.stderr.fileno(), 4096)
        seen = {}

        def reader():
            buf = b""
            fd = ino.stdout.fileno()
            while len(seen) < count:
                b = os.read(fd, 65536)
                t = time.monotonic()
                if not b:
                    return
                buf += b
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    try:
                        seen[int(line[:20])] = t
                    except ValueError:
                        pass
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        conn = http.client.HTTPConnection("127.0.0.1", tw.port, timeout=30)
        replies = {}
        sent = {}
        data = base64.b64encode(b"\x02").decode()
        t0 = time.monotonic()
        for i in range(count):
            when = t0 + i / rate
            d = when - time.monotonic()
            if d > 0:
                time.sleep(d)
            body = json.dumps({"name": "Ping", "version": 1, "source": "bench",
                               "data_b64": data})
            t_send = time.monotonic()
            conn.request("POST", "/v1/assets/a/events", body,
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            answer = json.loads(r.read())
            replies[answer["offset"]] = time.monotonic()
            sent[answer["offset"]] = t_send
        pub_t = time.monotonic() - t0
        conn.close()
        th.join(30)
        ino.kill()
        ino.wait()
        lat = sorted((seen[o] - t) * 1000 for o, t in replies.items() if o in seen)
        missing = count - len(lat)
        if not lat:
            raise RuntimeError("no CREATE seen")
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        achieved = count / pub_t
        self.row("live latency", "publish reply → CREATE p50, ms (%d events at %.0f/s)"
                 % (count, achieved), "%.2f" % p50, "—", None, "≤ 5 ms", p50 <= 5)
        self.row("live latency", "publish reply → CREATE p99, ms", "%.2f" % p99, "—", None,
                 "≤ 25 ms", p99 <= 25)
        # The twin wakes its streams before it answers, so a CREATE can come before the reply
        # (negative latencies): from the request's send is the upper bound.
        up = sorted((seen[o] - t) * 1000 for o, t in sent.items() if o in seen)
        self.row("live latency", "publish request sent → CREATE p50 / p99, ms (upper bound)",
                 "%.2f / %.2f" % (up[len(up) // 2], up[min(len(up) - 1, int(len(up) * 0.99))]),
                 "—", None, "(information)", True)
        self.raw["live"] = {"min_ms": lat[0], "max_ms": lat[-1], "mean_ms": statistics.mean(lat),
                            "missing": missing, "achieved_rate": achieved}
        if missing:
            self.notes.append("live latency: %d of %d CREATE events not seen" % (missing, count))
        if achieved < rate * 0.95:
            self.notes.append("live latency: the publisher reached %.0f/s, not %.0f/s (the "
                              "reference twin answers one publish at a time)" % (achieved, rate))

    # -- report --------------------------------------------------------------------------------

    def build_shown(self):
        """The build dir as the report shows it: relative to the source tree when inside it."""
        rel = os.path.relpath(self.args.build, SOURCE_ROOT)
        return os.path.abspath(self.args.build) if rel.startswith("..") else rel

    def table(self):
        out = ["| benchmark | measure | twinfs | baseline (same run) | ratio | target | |",
               "|---|---|---|---|---|---|---|"]
        for bench, measure, value, base, ratio, target, met in self.rows:
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                bench, measure, value, base, "%.2f×" % ratio if ratio is not None else "—",
                target, "met" if met else "**missed**"))
        return "\n".join(out)

    def machine(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
        fuse = subprocess.run(["pkg-config", "--modversion", "fuse3"], capture_output=True,
                              text=True).stdout.strip()
        return ("%d CPUs (%s), %d MiB RAM, Linux %s, libfuse %s, Python %s" % (
            os.cpu_count(), cpu, mem, platform.release(), fuse, platform.python_version()))

    def report(self, elapsed):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [MARK_BEGIN, "",
                 "Run of %s (%s mode%s), %.0f s in all." % (
                     now, "quick" if self.quick else "full",
                     ": counts scaled down" if self.quick else "", elapsed),
                 "", "Machine: " + self.machine() + ".", "",
                 "Command: `%s`; twinfs built in `%s` (%s)." % (
                     "tests/bench/run.sh" + (" --quick" if self.quick else ""),
                     self.build_shown(), self.args.buildtype),
                 "", self.table(), ""]
        if self.notes:
            lines += ["Notes of this run:", ""] + ["- " + x for x in self.notes] + [""]
        lines += ["FUSE requests seen by twinfs (per-opcode counters of `.twinfs/status`, "
                  "deltas) and by the floor FS:", "", "```",
                  json.dumps(self.raw, indent=1, sort_keys=True, default=str), "```", "",
                  MARK_END]
        block = "\n".join(lines)
        out = self.args.out
        old = ""
        if os.path.exists(out):
            with open(out) as f:
                old = f.read()
        if MARK_BEGIN in old and MARK_END in old:
            head, rest = old.split(MARK_BEGIN, 1)
            tail = rest.split(MARK_END, 1)[1]
            text = head + block + tail
        else:
            text = "# twinfs performance\n\n" + block + "\n"
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, out)
        progress("bench", "wrote %s" % out)

    def run(self):
        t0 = time.monotonic()
        try:
            # small measures the empty mount's RSS that ingest and assets use
            for name, fn in (("small", self.bench_small), ("ingest", self.bench_ingest),
                             ("assets", self.bench_assets),
                             ("dispatch", lambda: bench_dispatch(self))):
                if not self.args.only or name in self.args.only:
                    fn()
        finally:
            for fn in reversed(self.cleanup):
                try:
                    fn()
                except Exception as e:  # cleanup goes on whatever failed
                    progress("bench", "cleanup: %r" % e)
            shutil.rmtree(self.shm, ignore_errors=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
        elapsed = time.monotonic() - t0
        print(self.table())
        for x in self.notes:
            print("note: " + x)
        self.report(elapsed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--buildtype", default="?")
    ap.add_argument("--helpers", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", action="append", choices=["small", "ingest", "assets", "dispatch"],
                    help="run only these (repeatable; ingest and assets need small); for trying "
                    "one out, with --out elsewhere")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    os.environ["TWINFS_BUILD"] = args.build
    os.environ["TWINFS_SOURCE"] = SOURCE_ROOT
    for h in ("minfs", "consume", "exit0", "spawnloop"):
        if not os.access(os.path.join(args.helpers, h), os.X_OK):
            progress("bench", "helper %s missing in %s" % (h, args.helpers))
            return 1
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        Bench(args).run()
    except Exception as e:
        progress("bench", "could not run: %r" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
