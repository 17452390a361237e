"""chaosproxy: a fault-injecting TCP proxy for HTTP between twinfs and a twin (stdlib only).

In the spirit of chaos-http-proxy (used by s3fs-fuse's tests), but at the TCP level so it can
break a response anywhere: in the status line, in the headers, inside a chunk of the endless
stream, inside a T2 body. Each new connection draws its fate from a seeded random generator:

    cut     the connection is reset (RST) after a random number of bytes, in either direction
    stall   at a random byte, nothing is forwarded for stall_s[0]..stall_s[1] seconds
    delay   every forwarded read waits delay_ms[0]..delay_ms[1] ms
    clean   forwarded untouched

and refuse_for(S) (or a random refusal window, refuse_p per connection) makes new
connections fail with ECONNREFUSED for S seconds: the listening socket is closed and bound
again on the same port afterwards. Long-lived connections (twinfs's endless stream) draw
their fate once, so with every_s=(lo, hi) a chaos thread also strikes an open connection every
lo..hi seconds: it cuts it, stalls it, or opens a refusal window (weights from the odds).

    from chaosproxy import ChaosProxy
    p = ChaosProxy(("127.0.0.1", twin_port), seed=1, cut_p=0.3, stall_p=0.1, delay_p=0.2)
    p.start(); p.url                    # http://127.0.0.1:PORT, give it to twinfs
    p.set(cut_p=0, stall_p=0, ...)      # change the odds at any time
    p.faults_off()                      # everything clean from now on (existing conns too)
    p.refuse_for(3); p.cut_all()        # explicit faults
    p.stats()                           # {"connections", "cuts", "stalls", "delays", ...}
    p.stop()                            # closes everything

Everything is bounded in time: stalls end, refusal windows end, and with deadline_s the
proxy stops injecting anything once that many seconds have passed since start().
Command line (for manual runs): python3 chaosproxy.py --target HOST:PORT [--listen PORT]
[--seed N] [--cut P] [--stall P] [--delay P] [--refuse P] [--duration S]; prints its URL and
the counts at exit (SIGINT/SIGTERM).
"""

import argparse
import random
import select
import signal
import socket
import struct
import sys
import threading
import time


class ChaosProxy:
    def __init__(self, target, seed=0, listen_port=0, cut_p=0.0, stall_p=0.0, delay_p=0.0,
                 refuse_p=0.0, cut_bytes=(0, 256 * 1024), stall_s=(0.5, 5.0),
                 delay_ms=(1, 50), refuse_s=(0.5, 3.0), deadline_s=None, every_s=None):
        self.target = target
        self.rng = random.Random(seed)
        self.port = listen_port
        self.deadline_s = deadline_s
        self.cut_bytes = cut_bytes
        self.stall_s = stall_s
        self.delay_ms = delay_ms
        self.refuse_s = refuse_s
        self.every_s = every_s
        self._plans = {}  # client socket -> its plan (the chaos thread edits them)
        self.p = {"cut": cut_p, "stall": stall_p, "delay": delay_p, "refuse": refuse_p}
        self._lock = threading.Lock()
        self._conns = set()
        self._stats = {"connections": 0, "cuts": 0, "stalls": 0, "delays": 0, "refusals": 0,
                       "strikes": 0,
                       "refused_connections": 0, "upstream_failures": 0, "bytes": 0}
        self._stop = threading.Event()
        self._refuse_until = 0.0
        self._lsock = None
        self._thread = None
        self._t0 = None
        self._gen = 0  # bumped by faults_off / cut_all: running plans are dropped
        self.url = None

    # -- control --------------------------------------------------------------------------------

    def set(self, cut_p=None, stall_p=None, delay_p=None, refuse_p=None):
        with self._lock:
            for k, v in (("cut", cut_p), ("stall", stall_p), ("delay", delay_p),
                         ("refuse", refuse_p)):
                if v is not None:
                    self.p[k] = v

    def faults_off(self):
        """No new fault from now on; faults planned on open connections are dropped."""
        with self._lock:
            self.p = dict.fromkeys(self.p, 0.0)
            self._refuse_until = 0.0
            self._gen += 1

    def refuse_for(self, seconds):
        with self._lock:
            self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)
            self._stats["refusals"] += 1

    def cut_all(self):
        """Resets every open connection now."""
        with self._lock:
            conns = list(self._conns)
            self._stats["cuts"] += len(conns)
        for c in conns:
            _reset(c)

    def stats(self):
        with self._lock:
            return dict(self._stats, open=len(self._conns))

    def _count(self, key, n=1):
        with self._lock:
            self._stats[key] += n

    def _active(self):
        return self.deadline_s is None or time.monotonic() - self._t0 < self.deadline_s

    # -- process --------------------------------------------------------------------------------

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        return s

    def start(self):
        self._lsock = self._listen()
        self.url = "http://127.0.0.1:%d" % self.port
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        self._chaos = None
        if self.every_s:
            self._chaos = threading.Thread(target=self._chaos_loop, daemon=True)
            self._chaos.start()
        return self

    def _chaos_loop(self):
        while not self._stop.wait(self.rng.uniform(*self.every_s)):
            with self._lock:
                if not self._active() or not any(self.p.values()) or not self._plans:
                    continue
                odds = [("cut", self.p["cut"]), ("stall", self.p["stall"]),
                        ("refuse", self.p["refuse"])]
                x = self.rng.uniform(0, sum(v for _, v in odds))
                for what, v in odds:
                    x -= v
                    if x <= 0:
                        break
                client = self.rng.choice(sorted(self._plans, key=lambda c: c.fileno()))
                plan = self._plans[client]
                self._stats["strikes"] += 1
                if what == "stall":
                    plan["stall_at"] = 0
                    plan["stall_for"] = self.rng.uniform(*self.stall_s)
                elif what == "refuse":
                    self._refuse_until = time.monotonic() + self.rng.uniform(*self.refuse_s)
                    self._stats["refusals"] += 1
                else:
                    # wake the pump: it sees the end of the upstream and resets the client
                    self._stats["cuts"] += 1
                    try:
                        plan["upstream"].shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if getattr(self, "_chaos", None) is not None:
            self._chaos.join(10)
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None
        self.cut_all()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self._stop.is_set():
            with self._lock:
                refusing = time.monotonic() < self._refuse_until and self._active()
            if refusing:
                # Nobody listens on the port: connects get ECONNREFUSED.
                if self._lsock is not None:
                    self._lsock.close()
                    self._lsock = None
                time.sleep(0.05)
                continue
            if self._lsock is None:
                try:
                    self._lsock = self._listen()
                except OSError:
                    time.sleep(0.05)  # the port is in TIME_WAIT trouble: try again
                    continue
            r, _, _ = select.select([self._lsock], [], [], 0.1)
            if not r:
                continue
            try:
                client, _ = self._lsock.accept()
            except OSError:
                continue
            self._count("connections")
            with self._lock:
                if self._active() and self.rng.random() < self.p["refuse"]:
                    self._refuse_until = time.monotonic() + self.rng.uniform(*self.refuse_s)
                    self._stats["refusals"] += 1
                    self._stats["refused_connections"] += 1
                    refuse_now = True
                else:
                    refuse_now = False
            if refuse_now:
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _plan(self):
        """The fate of one connection, drawn under the lock (one seeded sequence)."""
        with self._lock:
            plan = {"gen": self._gen}
            if not self._active():
                return plan
            rng = self.rng
            if rng.random() < self.p["cut"]:
                plan["cut_at"] = rng.randint(*self.cut_bytes)
            if rng.random() < self.p["stall"]:
                plan["stall_at"] = rng.randint(*self.cut_bytes)
                plan["stall_for"] = rng.uniform(*self.stall_s)
            if rng.random() < self.p["delay"]:
                plan["delay"] = rng.uniform(*self.delay_ms) / 1000.0
            return plan

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._count("upstream_failures")
            _reset(client)  # the twin is down: the client sees a reset
            return
        upstream.settimeout(None)
        plan = self._plan()
        with self._lock:
            self._conns.update((client, upstream))
            self._plans[client] = plan
            plan["upstream"] = upstream
        moved = 0
        try:
            socks = [client, upstream]
            while not self._stop.is_set():
                r, _, _ = select.select(socks, [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    dst = upstream if s is client else client
                    if plan.get("gen") != self._gen:
                        with self._lock:  # faults_off: forward cleanly from now
                            for k in ("cut_at", "stall_at", "delay"):
                                plan.pop(k, None)
                            plan["gen"] = self._gen
                    cut_at = plan.get("cut_at")
                    if cut_at is not None and moved + len(data) >= cut_at:
                        dst.sendall(data[:max(0, cut_at - moved)])
                        plan.pop("cut_at")
                        self._count("cuts")
                        return
                    stall_at = plan.get("stall_at")
                    if stall_at is not None and moved + len(data) >= stall_at:
                        plan.pop("stall_at")
                        self._count("stalls")
                        end = time.monotonic() + plan["stall_for"]
                        while (time.monotonic() < end and not self._stop.is_set()
                               and plan.get("gen") == self._gen):
                            time.sleep(0.05)
                    if "delay" in plan:
                        if moved == 0:
                            self._count("delays")
                        time.sleep(plan["delay"])
                    dst.sendall(data)
                    moved += len(data)
                    self._count("bytes", len(data))
        except (OSError, ValueError):
            pass  # cut_all closed a socket under select (ValueError: fd -1)
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
                self._plans.pop(client, None)
            _reset(client)
            _reset(upstream)


def _reset(sock):
    """Closes with an RST (SO_LINGER 0): the peer sees a reset, not a clean end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="HOST:PORT of the twin")
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cut", type=float, default=0.2)
    ap.add_argument("--stall", type=float, default=0.1)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--refuse", type=float, default=0.05)
    ap.add_argument("--duration", type=float, default=None, help="stop injecting after S s")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    p = ChaosProxy((host, int(port)), seed=a.seed, listen_port=a.listen, cut_p=a.cut,
                   stall_p=a.stall, delay_p=a.delay, refuse_p=a.refuse, deadline_s=a.duration)
    p.start()
    print("chaosproxy: listening on %s" % p.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1):
        pass
    p.stop()
    print("chaosproxy: %s" % p.stats(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
