"""A remount right after an unmount, with the same tracker.

`fusermount3 -u M` returns once the mount is gone, while the daemon that served it is still
stopping (stopping the follower, flushing the tracker): it holds the tracker's lock a little
longer. A twinfs started then with the same tracker waits for that daemon to exit (at most
10 s) and mounts. A tracker held by a twinfs whose mount is still there is refused at once."""

import os
import signal
import time

from testlib.cli import FAILURE, assert_fails, pid_alive, twinfs_pids, wait_settled
from testlib.mount import read_status, unmount
from testlib.wait import wait_for

# How long twinfs waits for the holder of its tracker to exit (docs/twinfs.1, tracker=).
HOLDER_WAIT_S = 10


def mount_ok(runner, url, mnt, tracker):
    r = runner.run(url, mnt, "-o", "tracker=" + tracker)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stderr == ""
    return r


def usable(mnt):
    st = read_status(mnt)
    assert "watermark" in st, st
    return st


def test_immediate_remount_loop(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    tracker = str(tmp_path / "t.journal")
    mount_ok(runner, demo_twin.url, mnt, tracker)
    usable(mnt)
    for i in range(10):
        unmount(mnt)
        r = runner.run(demo_twin.url, mnt, "-o", "tracker=" + tracker)
        assert r.returncode == 0, (i, r.returncode, r.stderr)
        usable(mnt)
    unmount(mnt)
    wait_for(lambda: not twinfs_pids(mnt, with_caller=True), 20, "twinfs to exit")


def test_live_holder_is_refused_at_once(runner, demo_twin, tmp_path):
    first = runner.mountpoint("first")
    second = runner.mountpoint("second")
    tracker = str(tmp_path / "t.journal")
    mount_ok(runner, demo_twin.url, first, tracker)
    holder = twinfs_pids(first)
    assert len(holder) == 1, holder

    start = time.monotonic()
    r = runner.run(demo_twin.url, second, "-o", "tracker=" + tracker)
    elapsed = time.monotonic() - start

    assert_fails(runner, r, second, FAILURE, "tracker=%s: in use by another twinfs" % tracker,
                 "pid %d" % holder[0], first)
    assert elapsed < HOLDER_WAIT_S / 2, elapsed
    usable(first)


def stopped_holder(runner, url, mnt, tracker):
    """Mounts, then stops the daemon (SIGSTOP) and unmounts: a holder whose mount is gone and
    which is slow to exit. Returns its pid."""
    mount_ok(runner, url, mnt, tracker)
    wait_settled(mnt)  # the materializer is idle: nothing of it makes the unmount busy
    pid = twinfs_pids(mnt)[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        unmount(mnt)
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise
    return pid


def test_waits_for_a_slow_exit(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    tracker = str(tmp_path / "t.journal")
    old = stopped_holder(runner, demo_twin.url, mnt, tracker)
    try:
        p = runner.popen(demo_twin.url, mnt, "-o", "tracker=" + tracker)
        # It waits rather than failing: still running a while later, nothing mounted yet.
        time.sleep(1.5)
        assert p.poll() is None, p.output()
        assert not os.path.ismount(mnt)
    finally:
        os.kill(old, signal.SIGCONT)
    wait_for(lambda: not pid_alive(old), 20, "the old daemon to exit")
    wait_for(lambda: p.poll() is not None, 30, "the new twinfs to mount")
    assert p.returncode == 0, p.output()
    usable(mnt)
    unmount(mnt)
    wait_for(lambda: not twinfs_pids(mnt, with_caller=True), 20, "twinfs to exit")


def test_wait_is_bounded(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    tracker = str(tmp_path / "t.journal")
    old = stopped_holder(runner, demo_twin.url, mnt, tracker)
    try:
        start = time.monotonic()
        r = runner.run(demo_twin.url, mnt, "-o", "tracker=" + tracker, timeout=HOLDER_WAIT_S * 4)
        elapsed = time.monotonic() - start
        assert_fails(runner, r, None, FAILURE, "tracker=%s: in use by another twinfs" % tracker,
                     "pid %d" % old)
        assert HOLDER_WAIT_S - 0.5 <= elapsed < HOLDER_WAIT_S * 3, elapsed
        assert not os.path.ismount(mnt)
    finally:
        os.kill(old, signal.SIGCONT)
    wait_for(lambda: not pid_alive(old), 20, "the old daemon to exit")
