"""The two names of an event (its asset's events/ and the mount's events/) under racing rm's
of either name while its asset is deleted and made again on the twin: afterwards the status,
the listings, the link counts and the inode count agree, and nothing was counted as a
materialize error."""

import json
import os
import select
import subprocess
import sys
import time

from testlib.events import publish_pings, setup_ping
from testlib.mount import mounted
from testlib.wait import wait_for

FIXED = 5  # root, assets, .twinfs, status, events

RACER = r"""
import errno, json, os, random, sys, time
mnt, seed, until = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
random.seed(seed)
seen = {}
while time.time() < until:
    paths = []
    try:
        paths += [os.path.join(mnt, "events", n) for n in os.listdir(os.path.join(mnt, "events"))]
        for a in os.listdir(os.path.join(mnt, "assets")):
            d = os.path.join(mnt, "assets", a, "events")
            try:
                paths += [os.path.join(d, n) for n in os.listdir(d)]
            except OSError:
                pass
    except OSError:
        pass
    random.shuffle(paths)
    for p in paths[:20]:
        try:
            os.unlink(p)
            k = "ok"
        except OSError as e:
            k = errno.errorcode.get(e.errno, str(e.errno))
        seen[k] = seen.get(k, 0) + 1
    time.sleep(random.random() * 0.01)
print(json.dumps(seen))
"""


def listing(m):
    """{inode: [names]} over both kinds of events directory, and the flat names."""
    by_ino = {}
    flat = os.listdir(m.path("events"))
    for n in flat:
        by_ino.setdefault(os.stat(m.path("events", n)).st_ino, []).append("events/" + n)
    for a in os.listdir(m.path("assets")):
        for n in os.listdir(m.events_dir(a)):
            st = os.stat(os.path.join(m.events_dir(a), n))
            by_ino.setdefault(st.st_ino, []).append("assets/%s/events/%s" % (a, n))
    return by_ino, flat


def check_consistent(m):
    """Every event has both names, nlink 2, and the counts agree; returns the status."""
    st = m.wait_quiet("visible_events", "assets", "materialized", "acked", quiet_s=1.5,
                      timeout=60)
    by_ino, flat = listing(m)
    half = {i: ns for i, ns in by_ino.items() if len(ns) != 2}
    assert not half, ("names without their other name", half)
    for ns in by_ino.values():
        for n in ns:
            assert os.stat(m.path(n)).st_nlink == 2, n
    assert st["visible_events"] == len(flat) == len(by_ino), (st, len(flat), len(by_ino))
    assert st["assets"] == len(os.listdir(m.path("assets"))), st
    return st


def wait_inodes(m, want):
    """statfs f_files (the tree's node count) comes back to want."""
    wait_for(lambda: os.statvfs(m.mnt).f_files == want, 20,
             "f_files == %d (is %d)" % (want, os.statvfs(m.mnt).f_files))


def test_racing_rm_of_both_names_while_the_asset_is_deleted_and_made_again(twin, tmp_path):
    setup_ping(twin, ["a", "b"])
    publish_pings(twin, "a", 60)
    publish_pings(twin, "b", 60)
    with mounted(twin, tmp_path, materialize_delay=0) as m:
        m.wait_settled(60)
        check_consistent(m)
        until = time.time() + 8
        racers = [subprocess.Popen([sys.executable, "-c", RACER, m.mnt, str(s), str(until)],
                                   stdout=subprocess.PIPE, text=True) for s in range(3)]
        n = 0
        while time.time() < until:
            twin.delete_asset("b")
            twin.create_asset("b")
            publish_pings(twin, "b", 15, start=n)
            publish_pings(twin, "a", 5, start=1000 + n)
            n += 15
            time.sleep(0.2)
        outcomes = [json.loads(r.communicate(timeout=60)[0]) for r in racers]
        st = check_consistent(m)
        assert st["materialize_errors"] == 0, (st, m.log())
        # ack whatever is left, and delete b: only a (and its directories) stays
        for name in os.listdir(m.path("events")):
            os.unlink(m.path("events", name))
        twin.delete_asset("b")
        m.wait_for(lambda: os.listdir(m.path("assets")) == ["a"], 20, "only a")
        st = check_consistent(m)
        assert st["visible_events"] == 0
        wait_inodes(m, FIXED + 3)
        assert st["materialize_errors"] == 0, (st, m.log())
        assert sum(o.get("ok", 0) for o in outcomes) > 0, outcomes


def test_asset_made_again_at_once_keeps_one_directory(twin, tmp_path):
    """An asset deleted and made again many times before the materializer catches up: one
    directory of that name, the newest asset's events only, and the old nodes all freed."""
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 5)
    with mounted(twin, tmp_path, materialize_delay=0) as m:
        m.wait_settled(60)
        for i in range(30):
            twin.delete_asset("a")
            twin.create_asset("a")
            publish_pings(twin, "a", 3, start=100 * i)
        st = check_consistent(m)
        assert st["assets"] == 1
        names = os.listdir(m.events_dir("a"))
        assert len(names) == 3, names
        wait_inodes(m, FIXED + 3 + 3)
        assert st["materialize_errors"] == 0, (st, m.log())


def collect(proc, lines, until, timeout):
    """Reads proc's stdout lines into lines until until(lines) or timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not until(lines) and time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            buf += os.read(proc.stdout.fileno(), 65536)
            *done, buf = buf.split(b"\n")
            lines += [x.decode() for x in done]
    return lines


def test_every_name_gets_one_delete_whichever_name_is_removed(twin, tmp_path):
    """Three processes rm events through both names at random: each name in either directory
    gets exactly one IN_CREATE, one IN_CLOSE_WRITE and one IN_DELETE."""
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path, materialize_delay=0) as m:
        m.wait_settled(60)
        w = subprocess.Popen(["stdbuf", "-oL", "inotifywait", "-m", "-e",
                              "create,delete,close_write", "--format", "%w%f|%e",
                              m.path("events"), m.events_dir("a")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = []
        try:
            wait_for(lambda: b"Watches established" in w.stderr.readline(), 20, "inotifywait")
            publish_pings(twin, "a", 150)
            m.wait_for(lambda: m.status()["visible_events"] == 150
                       and m.status()["materialize_queue"] == 0, 60, "150 events")
            until = time.time() + 30
            racers = [subprocess.Popen([sys.executable, "-c", RACER, m.mnt, str(s), str(until)],
                                       stdout=subprocess.PIPE, text=True) for s in range(3)]
            m.wait_for(lambda: not os.listdir(m.path("events"))
                       and not os.listdir(m.events_dir("a")), 40, "every name removed")
            for r in racers:
                r.kill()
                r.wait()
            m.wait_quiet("acked", "materialized", quiet_s=1.5)
            wait_inodes(m, FIXED + 3)
            collect(w, lines, lambda ls: sum("|DELETE" in x for x in ls) >= 300, 10)
            collect(w, lines, lambda ls: False, 1)  # anything more (a second delete)
        finally:
            w.kill()
            w.wait()
        counts = {}
        for ln in lines:
            path, ev = ln.rsplit("|", 1)
            counts.setdefault(path, []).append(ev)
        bad = {p: evs for p, evs in counts.items()
               if sorted(evs) != ["CLOSE_WRITE,CLOSE", "CREATE", "DELETE"]}
        assert len(counts) == 300 and not bad, (len(counts), bad)
        assert m.status()["materialize_errors"] == 0

