"""mountlib: mount twinfs over a reference twin from pytest, and always unmount.

    from mountlib import Mount, mounted

    with mounted(twin, tmp_path, max_pending=1000) as m:   # or m = Mount(...); m.start(); m.stop()
        m.mnt                      # the mount point (str)
        m.path("assets", "a1")     # a path under the mount
        m.status()                 # /.twinfs/status parsed
        m.wait_settled()           # the replay is done and shown: assets/... paths exist
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

from twinctl import SOURCE_ROOT


def twinfs_binary():
    build = os.environ.get("TWINFS_BUILD") or os.path.join(SOURCE_ROOT, "build")
    return os.path.join(build, "mount", "twinfs")


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns a true value, which is returned; else AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except OSError as e:
            last = None
            err = e
        else:
            err = None
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s (last value %.200r, "
                                 "last error %r)" % (timeout, what, last, err))
        time.sleep(interval)


def settled_status(mnt):
    """The status of the mount at mnt if its replay is done and every delivered asset and
    event is shown, else None."""
    with open(os.path.join(mnt, ".twinfs", "status")) as f:
        st = json.load(f)
    return st if st["replay_done"] and st["materialize_queue"] == 0 else None


def unmount(mnt, timeout=20):
    """fusermount3 -u, again while it says busy: the materializer makes entries through the
    mount, and an unmount during one of its mkdirs or mknods is EBUSY (seen on a loaded
    machine). Any other failure is an AssertionError."""
    def attempt():
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
        if r.returncode != 0 and "busy" not in r.stderr:
            raise AssertionError(r.stderr)
        return r.returncode == 0
    wait_for(attempt, timeout, "the unmount of " + mnt, interval=0.1)


_mount_counter = [0]


class Mount:
    """One twinfs daemon mounted on a fresh directory under tmp_path."""

    def __init__(self, twin, tmp_path, url=None, tracker=None, **opts):
        _mount_counter[0] += 1
        n = _mount_counter[0]
        self.twin = twin
        self.url = url
        self.dir = os.path.join(str(tmp_path), "fs-%d" % n)
        self.mnt = os.path.join(self.dir, "mnt")
        self.log_path = os.path.join(self.dir, "twinfs.log")
        self.tracker = tracker or os.path.join(self.dir, "tracker.journal")
        os.makedirs(self.mnt, exist_ok=True)
        # TWINFS_TEST_MATERIALIZE_DELAY stretches the default delay (ms) to flush out tests
        # that use a path before the materializer has shown it (a loaded CI machine does that).
        delay = int(os.environ.get("TWINFS_TEST_MATERIALIZE_DELAY", "100"))
        self.opts = {"tracker": self.tracker, "materialize_delay": delay}
        self.opts.update(opts)
        self.proc = None

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
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                # it may have died after mounting (a crash): take the dead mount away
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
                raise RuntimeError("twinfs exited %s before mounting; log:\n%s" % (rc, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("twinfs did not mount; log:\n" + self.log())
            time.sleep(0.02)
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout=20):
        """Unmounts (fusermount3 -u, lazily as a last resort) and reaps the daemon."""
        if os.path.ismount(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        rc = None
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            self.proc = None
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        return rc

    def kill9(self):
        """A crash: SIGKILL, then the dead mount is taken away."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        wait_for(lambda: not os.path.ismount(self.mnt), 10, "the dead mount to go")

    def status(self):
        with open(self.path(".twinfs", "status")) as f:
            return json.load(f)

    def wait_settled(self, timeout=15.0):
        """Waits until the replay is done and every delivered asset and event is shown (made
        visible by the materializer a moment after the mount); returns the status. Paths under
        assets/ exist only from then on."""
        return self.wait_for(lambda: settled_status(self.mnt), timeout,
                             "the replay to be done and materialized")

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def events_dir(self, asset):
        return self.path("assets", asset, "events")

    def events(self, asset):
        """The asset's event file names as listed (readdir order)."""
        return os.listdir(self.events_dir(asset))

    def wait_for(self, pred, timeout=10.0, what="condition"):
        def check():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("twinfs died; log:\n" + self.log())
            return pred()
        return wait_for(check, timeout, what)

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
