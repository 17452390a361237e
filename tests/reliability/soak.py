#!/usr/bin/python3
"""soak: twinfs under load and faults, checked end to end.

    /usr/bin/python3 tests/reliability/soak.py [--quick] [--events N] [--seed S] [--json F]

What it does (the long mode's numbers; --quick scales events and time down, not the faults):
- a reference twin (tests/twin/twin.py) with 4 assets; a fault-injecting proxy
  (chaosproxy.py) between it and twinfs: random cuts, stalls, delays and refusal windows;
- a publisher writes --events events (200000) straight to the twin in batches, retrying
  while the twin is down;
- the twin is killed (SIGKILL) and restarted 5 times, twinfs is killed with -9 and remounted
  (same tracker) 5 times, spread over the publishing;
- 4 consumer processes list, read and unlink events concurrently; each logs what it saw
  (listing or open succeeded, with the CLOCK_MONOTONIC time the operation started) and each
  unlink (the time it returned, the result);
- a monitor samples twinfs's open fds (/proc/PID/fd) and VmRSS every second and notices any
  death that was not one of the kills.
At the end the faults stop, the consumers drain the mount, and it checks:
- every event in the twin's log (read back from the twin itself: a publish whose answer was
  lost may have been stored, so the log is the truth) was consumed at least once, with the
  right content;
- no event was seen by an operation that started after an unlink of it had returned 0
  (also across kill -9: the ack was durable when unlink returned 0);
- twinfs never died except when killed;
- fds and memory stayed bounded (peaks printed; limits --max-fds, --max-rss-mib).
It prints the counts, optionally writes them as JSON (--json), and exits 0 only if every check
passed. tests/integration/test_rel_soak.py runs --quick in CI.
"""

import argparse
import errno
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":  # a script: the helpers are found as tests/pytest.ini finds them
    sys.path.insert(1, os.path.dirname(HERE))

from chaosproxy import ChaosProxy  # noqa: E402
from testlib.events import PING, ping_n  # noqa: E402
from testlib.mount import Mount  # noqa: E402
from testlib.proc import progress  # noqa: E402
from testlib.twin import Twin  # noqa: E402

ASSETS = ["soak-a", "soak-b", "soak-c", "soak-d"]


def now():
    return time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine


# -- consumers ----------------------------------------------------------------------------------

def consumer_main(idx, mnt, log_path, stop_path, seed):
    """One consumer process: lists, reads and unlinks events until stop_path exists.

    Log lines: "S t asset offset" seen in a listing that started at t; "O t asset offset n"
    opened and read at t (n the content's data.n, -1 if it did not parse); "U t asset offset rc"
    an unlink that returned rc (0 or an errno) at t."""
    rng = random.Random(seed * 1000 + idx)
    out = open(log_path, "w", buffering=1 << 16)
    try:
        idle = 0
        while not os.path.exists(stop_path):
            did = 0
            assets = list(ASSETS)
            rng.shuffle(assets)
            for a in assets:
                d = os.path.join(mnt, "assets", a, "events")
                t = now()
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for name in names:
                    out.write("S %.6f %s %s\n" % (t, a, name.split("-", 1)[0]))
                # consumers take different slices first so they race on some events only
                if rng.random() < 0.5:
                    names.reverse()
                for name in names[:200]:
                    off = name.split("-", 1)[0]
                    p = os.path.join(d, name)
                    t = now()
                    try:
                        f = open(p, "rb")
                    except OSError:
                        continue
                    try:
                        body = f.read()
                    except OSError as e:
                        # opened, then unlinked by another consumer before the read
                        out.write("E %.6f %s %s %d\n" % (t, a, off, e.errno))
                        continue
                    finally:
                        f.close()
                    try:
                        n = json.loads(body)["data"]["n"]
                    except (ValueError, KeyError, TypeError):
                        n = -2 if not body else -1
                    out.write("O %.6f %s %s %d\n" % (t, a, off, n))
                    try:
                        os.unlink(p)
                        rc = 0
                    except OSError as e:
                        rc = e.errno
                    out.write("U %.6f %s %s %d\n" % (now(), a, off, rc))
                    did += 1
            if did == 0:
                out.flush()  # the driver reads these logs to see when the drain is done
                idle += 1
                time.sleep(min(0.2, 0.01 * idle))
            else:
                idle = 0
    finally:
        out.close()


class SoakMount(Mount):
    """A Mount whose start, when twinfs neither mounts nor exits in time, records where the
    daemon's threads are (gdb, if installed) before taking it down."""

    hang_reports = []

    def hang_report(self):
        bt = ""
        if shutil.which("gdb"):
            bt = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                 "thread apply all bt"], capture_output=True, text=True).stdout
        self.hang_reports.append(bt)
        return " threads:\n%s\n" % bt[-6000:]


# -- the run ------------------------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.work = args.workdir or tempfile.mkdtemp(prefix="twinfs-soak-")
        self.twin = None
        self.proxy = None
        self.mount = None
        self.mount_lock = threading.Lock()
        self.killing = False
        self.consumers = []
        self.stop_path = os.path.join(self.work, "stop-consumers")
        self.counts = {"twin_restarts": 0, "twinfs_kills": 0, "crashes": 0,
                       "publish_retries": 0, "batches": 0, "mount_retries": 0}
        self.samples = []  # (t, incarnation, fds, rss_kib)
        self.incarnation = 0
        self.crash_logs = []
        self.stop_monitor = threading.Event()
        self.published_ok = 0

    def log(self, msg):
        progress("soak %7.1fs" % (now() - self.t0), msg)

    # twinfs ------------------------------------------------------------------------------------

    def mount_start(self):
        # twinfs fails fast when its first GET /v1/assets fails (a refused or cut
        # connection, the twin down): that is its start-up contract, so try again.
        for i in range(100):
            try:
                self.mount.start(timeout=40)
                break
            except RuntimeError as e:
                self.counts["mount_retries"] += 1
                if i == 99:
                    raise
                if "before mounting" not in str(e):
                    raise
                time.sleep(0.3)
        self.incarnation += 1

    def monitor(self):
        while not self.stop_monitor.wait(1.0):
            with self.mount_lock:
                m = self.mount
                if m.proc is None or self.killing:
                    continue
                if m.proc.poll() is not None:
                    self.counts["crashes"] += 1
                    self.crash_logs.append(m.log()[-4000:])
                    self.log("twinfs DIED (rc %s): remounting" % m.proc.returncode)
                    m.proc = None
                    m.stop()
                    try:
                        self.mount_start()
                    except RuntimeError as e:
                        self.log("remount failed: %s" % e)
                    continue
                pid = m.proc.pid
                try:
                    fds = len(os.listdir("/proc/%d/fd" % pid))
                    rss = m.rss_kib()
                except OSError:
                    continue
                self.samples.append((now() - self.t0, self.incarnation, fds, rss))

    def kill_twinfs(self):
        with self.mount_lock:
            self.killing = True
            try:
                self.mount.kill9()
                self.counts["twinfs_kills"] += 1
                self.log("twinfs killed -9 (%d)" % self.counts["twinfs_kills"])
                time.sleep(self.rng.uniform(0.2, 1.0))
                self.mount_start()
                self.log("twinfs remounted")
            finally:
                self.killing = False

    def kill_twin(self):
        self.twin.kill()
        self.counts["twin_restarts"] += 1
        self.log("twin killed -9 (%d)" % self.counts["twin_restarts"])
        time.sleep(self.rng.uniform(0.5, 2.0))
        for _ in range(50):
            try:
                self.twin.start()
                break
            except RuntimeError:
                time.sleep(0.2)  # the port may be busy for a moment
        self.log("twin restarted")

    # publisher ---------------------------------------------------------------------------------

    def publisher(self, done):
        n = 0
        total = self.a.events
        batch = self.a.batch
        pace = self.a.publish_seconds / max(1, total / batch)
        while n < total:
            k = min(batch, total - n)
            evs = [{"asset": ASSETS[i % len(ASSETS)], "name": "Ping", "version": 1,
                    "source": "soak", "data": {"n": i}} for i in range(n, n + k)]
            t = now()
            try:
                self.twin.publish_batch(evs, timeout=60)
            except Exception:  # noqa: BLE001 - the twin is down or died mid-answer: retry
                self.counts["publish_retries"] += 1
                time.sleep(0.2)
                continue
            self.counts["batches"] += 1
            n += k
            self.published_ok = n
            time.sleep(max(0.0, pace - (now() - t)))
        done.set()

    # the truth ---------------------------------------------------------------------------------

    def twin_log(self):
        """{(asset, offset): n} of every event the twin stored, read back from its stream."""
        # http.client's read1 de-chunks in linear time (twinctl's Stream is made for a few
        # records at a time and slows down badly on 200k).
        events = {}
        u = urllib.parse.urlsplit(self.twin.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        try:
            conn.request("GET", "/v1/stream?after=0")
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError("GET /v1/stream answered %d" % resp.status)
            buf = b""
            while True:
                chunk = resp.read1(1 << 20)
                if not chunk:
                    raise EOFError("the twin's stream ended before caught_up")
                lines = (buf + chunk).split(b"\n")
                buf = lines.pop()
                for ln in lines:
                    rec = json.loads(ln)
                    if rec.get("kind") == "caught_up":
                        return events
                    if rec.get("kind") == "event":
                        events[(rec["asset"], rec["offset"])] = ping_n(rec["data"])
        finally:
            conn.close()

    def run(self):
        a = self.a
        self.t0 = now()
        self.twin = Twin(self.work, test_hooks=False)
        self.twin.start()
        self.twin.put_schema("Ping", 1, PING)
        for x in ASSETS:
            self.twin.create_asset(x)
        self.proxy = ChaosProxy(("127.0.0.1", self.twin.port), seed=a.seed, cut_p=a.cut_p,
                                stall_p=a.stall_p, delay_p=a.delay_p, refuse_p=a.refuse_p,
                                stall_s=(0.5, 20.0), refuse_s=(0.5, 3.0),
                                every_s=(a.strike_min, a.strike_max))
        self.proxy.start()
        self.mount = SoakMount(None, self.work, url=self.proxy.url, max_pending=a.max_pending,
                           materialize_delay=0)
        self.mount_start()
        self.log("twin %s, proxy %s, mount %s" % (self.twin.url, self.proxy.url, self.mount.mnt))

        # Consumers are separate programs (not forks): a fork would inherit the proxy's
        # listening socket and keep the port busy while the proxy refuses connections.
        for i in range(a.consumers):
            self.consumers.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--consumer", str(i),
                 "--mnt", self.mount.mnt, "--log", os.path.join(self.work, "consumer-%d.log" % i),
                 "--stop", self.stop_path, "--seed", str(a.seed)], stdin=subprocess.DEVNULL))
        mon = threading.Thread(target=self.monitor, daemon=True)
        mon.start()

        done = threading.Event()
        pub = threading.Thread(target=self.publisher, args=(done,), daemon=True)
        pub.start()
        # 5 twin kills and 5 twinfs kills, shuffled, spread over the publishing
        chaos = ["twin"] * a.twin_restarts + ["twinfs"] * a.twinfs_kills
        self.rng.shuffle(chaos)
        step = a.publish_seconds / (len(chaos) + 1)
        for what in chaos:
            time.sleep(self.rng.uniform(0.5, 1.5) * step)
            if what == "twin":
                self.kill_twin()
            else:
                self.kill_twinfs()
            self.log("published %d/%d, proxy %s" % (self.published_ok, a.events,
                                                     self.proxy.stats()))
        pub.join()
        self.log("publishing done (%d events, %d retries)"
                 % (a.events, self.counts["publish_retries"]))
        self.proxy.faults_off()
        faults = self.proxy.stats()
        self.log("faults off; draining")

        truth = self.twin_log()
        keys = set(truth)
        deadline = now() + a.drain_timeout
        good = set()  # events read with their content so far
        pos = {}
        while now() < deadline:
            self.poll_good_reads(good, pos)
            if not keys - good:
                break
            time.sleep(1)
        # every event consumed: stop the consumers, then look at what they saw
        open(self.stop_path, "w").close()
        for p in self.consumers:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.stop_monitor.set()
        mon.join(5)
        with self.mount_lock:
            try:
                st = self.mount.status()
                remaining = sum(len(self.mount.events(x)) for x in ASSETS)
            except OSError:
                st, remaining = {}, -1
            self.mount.stop()
        return self.report(truth, faults, st, remaining)

    def poll_good_reads(self, good, pos):
        """Adds to good the events read with content since the last call (pos: file offsets)."""
        for i in range(len(self.consumers)):
            try:
                f = open(os.path.join(self.work, "consumer-%d.log" % i), "rb")
            except OSError:
                continue
            with f:
                f.seek(pos.get(i, 0))
                for ln in f:
                    if not ln.endswith(b"\n"):
                        break  # a line being written: read it next time
                    pos[i] = pos.get(i, 0) + len(ln)
                    p = ln.split()
                    if p[:1] == [b"O"] and len(p) == 5 and int(p[4]) >= 0:
                        good.add((p[2].decode(), int(p[3])))

    def read_consumer_logs(self, only_reads=False):
        """only_reads: {(asset, offset): [n, ...]} of successful reads. Else the full parse."""
        reads = {}
        seen = []      # (t, asset, offset, how)
        unlinks = {}   # (asset, offset) -> [(t, rc)]
        for i in range(len(self.consumers)):
            try:
                f = open(os.path.join(self.work, "consumer-%d.log" % i))
            except OSError:
                continue
            with f:
                for ln in f:
                    p = ln.split()
                    if len(p) < 4 or not ln.endswith("\n"):
                        continue
                    key = (p[2], int(p[3]))
                    if p[0] == "O" and len(p) == 5:
                        reads.setdefault(key, []).append(int(p[4]))
                        if not only_reads:
                            seen.append((float(p[1]), key, "open"))
                    elif only_reads:
                        continue
                    elif p[0] == "S":
                        seen.append((float(p[1]), key, "listing"))
                    elif p[0] == "U" and len(p) == 5:
                        unlinks.setdefault(key, []).append((float(p[1]), int(p[4])))
        if only_reads:
            return reads
        return reads, seen, unlinks

    def report(self, truth, faults, st, remaining):
        a = self.a
        reads, seen, unlinks = self.read_consumer_logs()
        first_ack = {}
        for key, us in unlinks.items():
            oks = [t for t, rc in us if rc == 0]
            if oks:
                first_ack[key] = min(oks)
        violations = [(t, key, how, first_ack[key]) for t, key, how in seen
                      if key in first_ack and t > first_ack[key]]
        missing = sorted(k for k in truth if not any(n >= 0 for n in reads.get(k, ())))
        # n -2: the file was open when another consumer's unlink won, and the read then
        # returned no bytes (found by this soak, fixed in fs/ by 168de6a)
        empty = sum(1 for ns in reads.values() for n in ns if n == -2)
        wrong = sorted(k for k, ns in reads.items()
                       if k in truth and any(n != truth[k] and n != -2 for n in ns))
        unknown = sorted(set(reads) - set(truth))
        dup_reads = sum(len(ns) - 1 for ns in reads.values())
        acked_twice = sum(1 for us in unlinks.values() if sum(1 for _, rc in us if rc == 0) > 1)
        unlink_errs = {}
        for us in unlinks.values():
            for _, rc in us:
                if rc:
                    name = errno.errorcode.get(rc, str(rc))
                    unlink_errs[name] = unlink_errs.get(name, 0) + 1

        per_inc = {}
        for t, inc, fds, rss in self.samples:
            d = per_inc.setdefault(inc, {"fds": [], "rss": []})
            d["fds"].append(fds)
            d["rss"].append(rss)
        peak_fds = max((s[2] for s in self.samples), default=0)
        peak_rss = max((s[3] for s in self.samples), default=0)
        last = per_inc.get(max(per_inc) if per_inc else 0, {"fds": [0], "rss": [0]})
        r = {
            "mode": "quick" if a.quick else "long",
            "seed": a.seed,
            "seconds": round(now() - self.t0, 1),
            "events_requested": a.events,
            "events_in_twin_log": len(truth),
            "events_consumed_unique": sum(1 for k in truth
                                          if any(n >= 0 for n in reads.get(k, ()))),
            "events_missing": len(missing),
            "events_wrong_content": len(wrong),
            "empty_reads_after_racing_unlink": empty,
            "events_unknown": len(unknown),
            "reads_repeated": dup_reads,
            "unlinks_ok_twice": acked_twice,
            "unlink_errors": unlink_errs,
            "shown_after_ack": len(violations),
            "shown_after_ack_by_listing": sum(1 for v in violations if v[2] == "listing"),
            "shown_after_ack_by_open": sum(1 for v in violations if v[2] == "open"),
            "remaining_files": remaining,
            "twin_restarts": self.counts["twin_restarts"],
            "twinfs_kills": self.counts["twinfs_kills"],
            "twinfs_crashes": self.counts["crashes"],
            "publish_retries": self.counts["publish_retries"],
            "mount_retries": self.counts["mount_retries"],
            "proxy": faults,
            "twinfs_reconnects_last_run": st.get("reconnects"),
            "twinfs_bad_records_last_run": st.get("bad_records"),
            "peak_fds": peak_fds,
            "peak_rss_mib": round(peak_rss / 1024, 1),
            "last_run_fds_first_last": [last["fds"][0], last["fds"][-1]] if last["fds"] else [],
            "last_run_rss_mib_first_last": ([round(last["rss"][0] / 1024, 1),
                                             round(last["rss"][-1] / 1024, 1)]
                                            if last["rss"] else []),
        }
        failures = []
        if missing:
            failures.append("%d events never consumed, e.g. %s" % (len(missing), missing[:5]))
        if wrong:
            failures.append("%d events read with the wrong content, e.g. %s" % (len(wrong),
                                                                                 wrong[:5]))
        if unknown:
            failures.append("%d events read that the twin never stored" % len(unknown))
        by_open = [v for v in violations if v[2] == "open"]
        by_listing = [v for v in violations if v[2] == "listing"]
        if by_open:
            failures.append("%d opens after a successful unlink, e.g. %s"
                            % (len(by_open), by_open[:5]))
        # A listing showing an acked event for tens of microseconds is an fs/ finding (the
        # kernel's readdir cache, see docs/reliability.md): reported, fatal with --strict.
        if by_listing and a.strict_listings:
            failures.append("%d listings after a successful unlink, e.g. %s"
                            % (len(by_listing), by_listing[:5]))
        r["listing_violations_sample"] = by_listing[:5]
        if empty:
            failures.append("%d reads returned an empty file (open before a racing unlink)"
                            % empty)
        if acked_twice:
            failures.append("%d events unlinked with 0 twice" % acked_twice)
        if self.counts["crashes"]:
            failures.append("twinfs died %d times without being killed:\n%s"
                            % (self.counts["crashes"], "\n---\n".join(self.crash_logs)))
        if remaining != 0:
            failures.append("%s event files left after the drain" % remaining)
        if peak_fds > a.max_fds:
            failures.append("twinfs had %d fds open (limit %d)" % (peak_fds, a.max_fds))
        if peak_rss > a.max_rss_mib * 1024:
            failures.append("twinfs RSS reached %.0f MiB (limit %d)" % (peak_rss / 1024,
                                                                       a.max_rss_mib))
        r["failures"] = failures
        r["ok"] = not failures
        return r

    def cleanup(self):
        try:
            open(self.stop_path, "w").close()
        except OSError:
            pass
        for p in self.consumers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.stop_monitor.set()
        if self.mount is not None:
            with self.mount_lock:
                self.mount.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.twin is not None:
            self.twin.stop()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="twinfs soak test under faults")
    ap.add_argument("--quick", action="store_true", help="CI size: 20k events, ~2 minutes")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--publish-seconds", type=float, default=None)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--consumers", type=int, default=4)
    ap.add_argument("--twin-restarts", type=int, default=5)
    ap.add_argument("--twinfs-kills", type=int, default=5)
    ap.add_argument("--max-pending", type=int, default=2000)
    ap.add_argument("--cut-p", type=float, default=0.3)
    ap.add_argument("--stall-p", type=float, default=0.1)
    ap.add_argument("--delay-p", type=float, default=0.3)
    ap.add_argument("--refuse-p", type=float, default=0.1)
    ap.add_argument("--drain-timeout", type=float, default=None)
    ap.add_argument("--strike-min", type=float, default=1.0,
                    help="the proxy strikes an open connection every MIN..MAX s")
    ap.add_argument("--strike-max", type=float, default=4.0)
    ap.add_argument("--strict-listings", action="store_true",
                    help="fail on a listing that showed an acked event (an fs/ finding)")
    ap.add_argument("--max-fds", type=int, default=64)
    ap.add_argument("--max-rss-mib", type=int, default=256)
    ap.add_argument("--workdir", default=None, help="kept after the run if given")
    ap.add_argument("--json", default=None, help="write the counts here")
    # internal: one consumer process
    ap.add_argument("--consumer", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mnt", help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    ap.add_argument("--stop", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.events is None:
        a.events = 20000 if a.quick else 200000
    if a.publish_seconds is None:
        a.publish_seconds = 45.0 if a.quick else 600.0
    if a.drain_timeout is None:
        a.drain_timeout = 90.0 if a.quick else 900.0
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.consumer is not None:
        consumer_main(a.consumer, a.mnt, a.log, a.stop, a.seed)
        return 0
    keep = a.workdir is not None
    soak = Soak(a)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    try:
        r = soak.run()
    finally:
        soak.cleanup()
        if not keep:
            shutil.rmtree(soak.work, ignore_errors=True)
    print(json.dumps(r, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
