"""Security: other local users of a mount with allow_other cannot exhaust what the owner needs.

- T2 open slots: another uid may hold at most a quarter of max_t2_open (EMFILE past it), and
  the other uids together leave the owner a quarter, so a user holding many slow T2 opens
  (a provider that never answers) cannot make the owner's opens fail.
- Names under t2/: any name can be looked up, and the kernel keeps the inodes it looked up
  until memory runs short; the daemon keeps at most a bounded number of T2 nodes, so looking
  up many distinct names does not grow it without bound.

The other uids are 65534 and 65533 through setpriv (no passwd entry is needed); the mount
point lives in a world-traversable scratch directory (pytest's tmp_path is 0700)."""

import errno
import os
import subprocess
import threading

import pytest

from testlib.events import setup_ping
from testlib.mount import Mount


def as_uid(uid):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]


# Opens each path given in its own thread and prints, per path, "open" or the errno name as
# soon as the open returns; the files stay open until the process is killed.
HOLDER = r"""
import errno, os, sys, threading
held = []
lock = threading.Lock()
def one(p):
    try:
        fd = os.open(p, os.O_RDONLY)
        msg = "open"
        held.append(fd)
    except OSError as e:
        msg = errno.errorcode.get(e.errno, str(e.errno))
    with lock:
        sys.stdout.write(msg + "\n")
        sys.stdout.flush()
for p in sys.argv[1:]:
    threading.Thread(target=one, args=(p,), daemon=True).start()
threading.Event().wait()
"""


class Holder:
    """A process of another uid that opens paths and holds them; results read as they come."""

    def __init__(self, uid, paths):
        self.proc = subprocess.Popen(as_uid(uid) + ["/usr/bin/python3", "-c", HOLDER] + paths,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.results = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for ln in self.proc.stdout:
            self.results.append(ln.strip())

    def count(self, what):
        return sum(1 for r in list(self.results) if r == what)

    def kill(self, wait=True):
        if self.proc.poll() is None:
            self.proc.kill()
        if wait:
            self.proc.wait(60)  # an open in flight ends when the daemon answers it
            self._t.join(10)


def t2_path(m, rtype, name):
    return m.path("assets", "a", "t2", rtype, name)


def owner_reads(m, n):
    """The owner (this process, the daemon's uid) reads Generated/n: n bytes."""
    with open(t2_path(m, "Generated", str(n)), "rb") as f:
        return len(f.read())


@pytest.mark.parametrize("max_t2_open", [64, 8])
def test_another_user_cannot_take_the_owners_t2_slots(twin, shared_dir, max_t2_open):
    setup_ping(twin, ["a"])
    twin.provider_register("Slow")  # takes requests and never answers them
    share = max_t2_open // 4
    m = Mount(twin, shared_dir, allow_other=True, max_t2_open=max_t2_open, t2_timeout=60)
    holders = []
    try:
        m.start()
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 20, "asset a")
        # uid 65534 tries to hold every slot with opens that never complete.
        h = Holder(65534, [t2_path(m, "Slow", "x%d" % i) for i in range(max_t2_open)])
        holders.append(h)

        def settled():
            st = m.status()
            return st["t2_open"] + h.count("EMFILE") == max_t2_open and st
        st = m.wait_for(settled, 60, "every open of uid 65534 refused or waiting")
        assert st["t2_open"] == share, st
        assert h.count("EMFILE") == max_t2_open - share
        assert h.count("open") == 0  # the provider never answers
        # The owner can still open, read and close T2 files, more than one at once.
        fds = [os.open(t2_path(m, "Generated", str(100 + i)), os.O_RDONLY) for i in range(2)]
        try:
            assert [len(os.read(fd, 1000)) for fd in fds] == [100, 101]
        finally:
            for fd in fds:
                os.close(fd)
        assert owner_reads(m, 50) == 50
        # The share is per uid: a third uid gets its own, as long as the others together
        # leave the owner a quarter.
        h2 = Holder(65533, [t2_path(m, "Generated", str(10 + i)) for i in range(max_t2_open)])
        holders.append(h2)
        m.wait_for(lambda: len(h2.results) == max_t2_open, 60, "the opens of uid 65533")
        assert h2.count("open") == share, h2.results
        assert h2.count("EMFILE") == max_t2_open - share, h2.results
        assert m.status()["t2_open"] == 2 * share
        assert owner_reads(m, 60) == 60
    finally:
        for h in holders:
            h.kill(wait=False)
        # The killed opens wait for their answers: fail every request the provider holds.
        while any(h.proc.poll() is None for h in holders):
            req = twin.provider_next("Slow", wait=0.5)
            if req is not None:
                twin.provider_error(req["id"], "RESOURCE_UNKNOWN")
        for h in holders:
            h.kill()
        twin.provider_unregister("Slow")
        m.stop()


def test_other_users_together_leave_the_owner_a_quarter(twin, shared_dir):
    """Four other uids try 3 each of max_t2_open=8: each may have 2, but together they stop
    at 6, so the fourth gets none and the owner still has 2."""
    setup_ping(twin, ["a"])
    limit = 8
    m = Mount(twin, shared_dir, allow_other=True, max_t2_open=limit)
    holders = []
    try:
        m.start()
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 20, "asset a")
        for k, uid in enumerate([65530, 65531, 65532, 65533]):
            h = Holder(uid, [t2_path(m, "Generated", str(1000 * k + i)) for i in range(3)])
            holders.append(h)
            m.wait_for(lambda: len(h.results) == 3, 60, "the opens of uid %d" % uid)
        got = [h.count("open") for h in holders]
        assert got == [2, 2, 2, 0], [h.results for h in holders]
        assert m.status()["t2_open"] == 6
        fds = [os.open(t2_path(m, "Generated", str(200 + i)), os.O_RDONLY) for i in range(2)]
        try:
            with pytest.raises(OSError) as ei:
                os.open(t2_path(m, "Generated", "300"), os.O_RDONLY)
            assert ei.value.errno == errno.EMFILE  # max_t2_open in all
        finally:
            for fd in fds:
                os.close(fd)
        # A slot given back by one uid is another's to take.
        holders[0].kill()
        m.wait_for(lambda: m.status()["t2_open"] == 4, 20, "uid 65530's files closed")
        h = Holder(65533, [t2_path(m, "Generated", "77")])
        holders.append(h)
        m.wait_for(lambda: h.results, 60, "the open of uid 65533")
        assert h.results == ["open"]
    finally:
        for h in holders:
            h.kill()
        m.stop()


def stat_many(m, paths):
    for p in paths:
        try:
            os.stat(p)
        except OSError as e:
            assert e.errno == errno.ENOENT, e  # T2 names exist; only a stat of it may fail
            raise


@pytest.mark.parametrize("where", ["names", "types"])
def test_lookups_of_distinct_t2_names_do_not_grow_the_daemon(twin, tmp_path, where):
    """10k distinct lookups, then twice 50k more: the last batch must not grow the daemon by
    more than a few MiB (it grew by 220 bytes a name, 11 MiB for 50k, before the bound). The
    first 50k let an allocator that holds freed memory back (ASan's quarantine) fill up."""
    setup_ping(twin, ["a"])

    def path(i):
        if where == "names":
            return t2_path(m, "T", "name-%d" % i)
        return t2_path(m, "Type%d" % i, "x")

    m = Mount(twin, tmp_path)
    with m:
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 20, "asset a")
        stat_many(m, (path(i) for i in range(60000)))
        rss1 = m.rss_kib()
        lookups1 = m.status()["requests"]["lookup"]
        stat_many(m, (path(i) for i in range(60000, 110000)))
        rss2 = m.rss_kib()
        # The names were looked up by the daemon, not answered from a cache.
        assert m.status()["requests"]["lookup"] - lookups1 >= 50000
        assert rss2 - rss1 < 3 * 1024, (rss1, rss2)
        # A name looked up long ago still works: it is looked up again.
        assert os.stat(path(0))
        assert owner_reads(m, 42) == 42
