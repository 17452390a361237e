"""kill -9 of twinfs while its materializer is making files in a directory that consumers are
removing files from. The long soak once left the daemon unkillable: the materializer, then a
thread of the daemon, waited for the directory's lock inside a mknod on its own mount while a
consumer's unlink held that lock waiting for an answer from the dead daemon; the thread kept
/dev/fuse open, so nobody ever answered and the mount hung. Now the calls on the mount come
from a separate process and the daemon always dies: its mount fails with ENOTCONN."""

import os
import signal
import subprocess
import sys
import threading
import time

from testlib.cli import twinfs_pids
from testlib.events import publish_pings, setup_ping
from testlib.mount import Mount
from testlib.wait import wait_for

# A consumer: lists and removes events until killed, ignoring every error.
CONSUMER = r"""
import os, sys
d = sys.argv[1]
while True:
    try:
        for n in os.listdir(d):
            try:
                os.unlink(os.path.join(d, n))
            except OSError:
                pass
    except OSError:
        pass
"""


def abort_connection(mnt):
    """Aborts the FUSE connection of mnt (fusectl), which ends every request waiting on it: the
    way out of a hung mount, so that a failure of this test cannot hang the run."""
    if not os.path.isdir("/sys/fs/fuse/connections/") or not os.listdir(
            "/sys/fs/fuse/connections/"):
        subprocess.run(["mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections"],
                       capture_output=True)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mnt:
                minor = fields[2].split(":")[1]
                with open("/sys/fs/fuse/connections/%s/abort" % minor, "w") as a:
                    a.write("1")


def test_kill9_while_materializing_never_hangs(twin, tmp_path):
    setup_ping(twin, ["a"])
    stop = threading.Event()
    published = [0]

    def publisher():
        while not stop.is_set():
            try:
                publish_pings(twin, "a", 300, start=published[0])
                published[0] += 300
            except Exception:
                time.sleep(0.05)

    pub = threading.Thread(target=publisher)
    pub.start()
    hung = []
    try:
        for rnd in range(6):
            m = Mount(twin, tmp_path, materialize_delay=0, max_pending=100000)
            m.start()
            d = m.events_dir("a")
            m.wait_for(lambda: os.path.isdir(d), 10, "asset a")
            consumers = [subprocess.Popen([sys.executable, "-c", CONSUMER, d],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for _ in range(3)]
            try:
                time.sleep(0.3 + 0.2 * rnd)
                assert m.proc.poll() is None, m.log()
                m.proc.send_signal(signal.SIGKILL)
                try:
                    m.proc.wait(10)  # a thread stuck on the mount would keep it from ending
                except subprocess.TimeoutExpired:
                    hung.append(rnd)
                    abort_connection(m.mnt)
            finally:
                for c in consumers:  # also what frees a hung daemon
                    c.kill()
                    c.wait()
                m.proc.wait(30)
                m.proc = None
                subprocess.run(["fusermount3", "-u", "-z", m.mnt], capture_output=True)
            # the caller process goes with the daemon (its parent-death signal)
            wait_for(lambda: not twinfs_pids(m.mnt, with_caller=True), 5,
                     "no twinfs process left of the killed mount")
    finally:
        stop.set()
        pub.join()
    assert not hung, "the killed daemon could not end in rounds %s" % hung
