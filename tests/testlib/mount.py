"""testlib.mount: mount twinfs over a twin from pytest, and always unmount.

    from testlib.mount import Mount, mounted

    with mounted(twin, tmp_path, max_pending=1000) as m:   # or m = Mount(...); m.start(); m.stop()
        m.mnt                      # the mount point (str)
        m.path("assets", "a1")     # a path under the mount
        m.status()                 # /.twinfs/status parsed
        m.wait_settled()           # the replay is done and shown: assets/... paths exist
        m.wait_quiet("delivered")  # until those status counters stop changing
        m.rss_kib()                # VmRSS of the daemon
        m.wait_for(lambda: ..., timeout=10, what="...")
        m.kill9(); m.start()       # crash and remount (same tracker)

Options are passed as -o key=value (True: just -o key). The daemon runs with -f and its stderr
goes to m.log_path. The binary is $TWINFS_BUILD/mount/twinfs (default <repo>/build).
"""

import contextlib
import json
import os
import signal
import subprocess
import time

from testlib.paths import twinfs_binary
from testlib.proc import Proc, vm_kib
from testlib.wait import wait_for, wait_quiet


def read_status(mnt):
    """The mount's .twinfs/status, parsed."""
    with open(os.path.join(mnt, ".twinfs", "status")) as f:
        return json.load(f)


def settled_status(mnt):
    """The status of the mount at mnt if its replay is done and every delivered asset and
    event is shown, else None."""
    st = read_status(mnt)
    return st if st["replay_done"] and st["materialize_queue"] == 0 else None


def unmount(mnt, timeout=20):
    """fusermount3 -u, again while it says busy: the materializer makes entries through the
    mount, and an unmount during one of its mkdirs or mknods is EBUSY. Any other failure is
    an AssertionError."""
    def attempt():
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
        if r.returncode != 0 and "busy" not in r.stderr:
            raise AssertionError(r.stderr)
        return r.returncode == 0
    wait_for(attempt, timeout, "the unmount of " + mnt, interval=0.1)


def lazy_unmount(mnt):
    """fusermount3 -u -z: takes away a mount whose daemon is dead or will not go."""
    subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)


_mount_counter = [0]


class Mount(Proc):
    """One twinfs daemon mounted on a fresh directory under tmp_path."""

    def __init__(self, twin, tmp_path, url=None, tracker=None, **opts):
        _mount_counter[0] += 1
        n = _mount_counter[0]
        self.twin = twin
        self.url = url
        self.dir = os.path.join(str(tmp_path), "fs-%d" % n)
        self.mnt = os.path.join(self.dir, "mnt")
        self.tracker = tracker or os.path.join(self.dir, "tracker.journal")
        os.makedirs(self.mnt, exist_ok=True)
        super().__init__([], os.path.join(self.dir, "twinfs.log"))
        # TWINFS_TEST_MATERIALIZE_DELAY stretches the default delay (ms) to flush out tests
        # that use a path before the materializer has shown it (a loaded CI machine does that).
        delay = int(os.environ.get("TWINFS_TEST_MATERIALIZE_DELAY", "100"))
        self.opts = {"tracker": self.tracker, "materialize_delay": delay}
        self.opts.update(opts)

    def argv(self):
        o = []
        for k, v in self.opts.items():
            if v is None or v is False:
                continue
            o.append(k if v is True else "%s=%s" % (k, v))
        return [twinfs_binary(), self.url or self.twin.url, self.mnt, "-f", "-o", ",".join(o)]

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def start(self, timeout=20):
        """Starts the daemon and waits until the mount is there."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                # it may have died after mounting (a crash): take the dead mount away
                lazy_unmount(self.mnt)
                raise RuntimeError("twinfs exited %s before mounting; log:\n%s" % (rc, self.log()))
            if time.monotonic() > deadline:
                report = self.hang_report()
                self.stop()
                raise RuntimeError("twinfs did not mount in %ss;%s log:\n%s"
                                   % (timeout, report, self.log()))
            time.sleep(0.02)
        return self

    def hang_report(self):
        """What start() says about a daemon that neither mounted nor exited in time, before
        it takes it down (a subclass may ask a debugger)."""
        return ""

    def stop(self, timeout=20):
        """Unmounts (fusermount3 -u, lazily as a last resort) and reaps the daemon."""
        if os.path.ismount(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode != 0:
                lazy_unmount(self.mnt)
        rc = super().stop(timeout, sig=None)
        if os.path.ismount(self.mnt):
            lazy_unmount(self.mnt)
        return rc

    def kill9(self):
        """A crash: SIGKILL, then the dead mount is taken away."""
        super().stop(10, signal.SIGKILL)
        lazy_unmount(self.mnt)
        wait_for(lambda: not os.path.ismount(self.mnt), 10, "the dead mount to go")

    def status(self):
        return read_status(self.mnt)

    def wait_settled(self, timeout=15.0):
        """Waits until the replay is done and every delivered asset and event is shown (made
        visible by the materializer a moment after the mount); returns the status. Paths under
        assets/ exist only from then on."""
        return self.wait_for(lambda: settled_status(self.mnt), timeout,
                             "the replay to be done and materialized")

    def rss_kib(self):
        return vm_kib(self.proc.pid)

    def events_dir(self, asset):
        return self.path("assets", asset, "events")

    def read_event(self, asset, offset, name="Ping"):
        """The event file assets/ASSET/events/OFFSET-NAME.json, parsed."""
        with open(os.path.join(self.events_dir(asset), event_name(offset, name)), "rb") as f:
            return json.loads(f.read())

    def events(self, asset):
        """The asset's event file names as listed (readdir order)."""
        return os.listdir(self.events_dir(asset))

    def wait_for(self, pred, timeout=10.0, what="condition"):
        def check():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("twinfs died; log:\n" + self.log())
            return pred()
        return wait_for(check, timeout, what)

    def wait_quiet(self, *keys, quiet_s=1.0, timeout=30.0):
        """Waits until the status counters named by keys (default: what the follower has
        delivered, what is pending and what is shown) stay unchanged for quiet_s seconds;
        returns the status then. A test asserts "nothing more comes" after this."""
        keys = keys or ("delivered", "pending", "visible_events", "assets", "materialized")
        last = {}

        def read():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("twinfs died; log:\n" + self.log())
            last["status"] = self.status()
            return tuple(last["status"][k] for k in keys)
        wait_quiet(read, quiet_s, timeout, "status " + ", ".join(keys))
        return last["status"]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def mounted(twin, tmp_path, **opts):
    m = Mount(twin, tmp_path, **opts)
    m.start()
    try:
        yield m
    finally:
        m.stop()


def event_name(offset, name):
    """The file name of an event: the offset zero-padded to 20 digits, dash, name, .json."""
    return "%020d-%s.json" % (offset, name)
