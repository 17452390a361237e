"""Bad input from users: unlink (and rmdir, rm -rf, rename) of what is not an event.

docs/filesystem.md: unlink of anything but an event is EPERM (status, T2 files), a directory
is EISDIR to unlink (the kernel says so) and EROFS to rmdir, nothing changes. After every
attempt the tree, the events and the counters are what they were: no ack, no T2 request, the
daemon alive."""

import errno
import os
import subprocess

import pytest

from testlib.events import setup_ping
from testlib.mount import mounted


@pytest.fixture
def twin_ab(twin):
    setup_ping(twin, ["a", "b"])
    for n in range(3):
        twin.publish("a", "Ping", 1, {"n": n})
    twin.publish("b", "Ping", 1, {"n": 9})
    return twin


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def snapshot(m):
    st = m.status()
    tree = {}
    for a in sorted(os.listdir(m.path("assets"))):
        tree[a] = sorted(os.listdir(m.events_dir(a)))
    return tree, st["acked"], st["visible_events"], st["assets"], st["t2_requests"]


def ready(m):
    m.wait_for(lambda: len(m.events("a")) == 3 and len(m.events("b")) == 1, 10, "the events")
    return snapshot(m)


DIRS = ["", "assets", "assets/a", "assets/a/events", "assets/a/t2", "assets/a/t2/Docs",
        ".twinfs"]
FILES = [".twinfs/status", "assets/a/t2/Docs/x", "assets/a/t2/Docs/hello.txt",
         "assets/b/t2/Type with space/ä%20"]


def test_unlink_of_non_events(twin_ab, tmp_path):
    with mounted(twin_ab, tmp_path) as m:
        before = ready(m)
        for d in DIRS:
            assert errno_of(os.unlink, m.path(d)) == errno.EISDIR, d
        for f in FILES:
            assert errno_of(os.unlink, m.path(f)) == errno.EPERM, f
        # Names that do not exist (the lookup fails first).
        for f in ["assets/zz", "assets/a/events/nope", ".twinfs/other", "nope"]:
            assert errno_of(os.unlink, m.path(f)) == errno.ENOENT, f
        # An event with the directory flag of unlinkat: it is not a directory.
        ev = sorted(m.events("a"))[0]
        assert errno_of(os.rmdir, os.path.join(m.events_dir("a"), ev)) == errno.ENOTDIR
        assert snapshot(m) == before


def test_rmdir_of_directories(twin_ab, tmp_path):
    with mounted(twin_ab, tmp_path) as m:
        before = ready(m)
        for d in DIRS[1:]:
            assert errno_of(os.rmdir, m.path(d)) in (errno.EROFS, errno.ENOTEMPTY), d
        # The root of a mount is busy whatever the filesystem says.
        assert errno_of(os.rmdir, m.mnt) == errno.EBUSY
        for f in FILES:
            assert errno_of(os.rmdir, m.path(f)) == errno.ENOTDIR, f
        assert snapshot(m) == before


def test_rename_and_link_change_nothing(twin_ab, tmp_path):
    with mounted(twin_ab, tmp_path) as m:
        before = ready(m)
        a0, a1, _ = sorted(m.events("a"))
        ev0 = os.path.join(m.events_dir("a"), a0)
        ev1 = os.path.join(m.events_dir("a"), a1)
        for src, dst in [(ev0, ev1), (ev0, ev0 + ".done"), (ev0, m.path("assets", "b", "events",
                                                                          a0)),
                         (m.path(".twinfs", "status"), m.path(".twinfs", "s2")),
                         (m.path("assets", "a"), m.path("assets", "c"))]:
            assert errno_of(os.rename, src, dst) in (errno.EROFS, errno.EPERM), (src, dst)
        assert errno_of(os.rename, ev0, str(tmp_path / "out")) == errno.EXDEV
        assert errno_of(os.link, ev0, ev0 + ".lnk") in (errno.EROFS, errno.EPERM)
        assert errno_of(os.symlink, ev0, ev0 + ".sym") in (errno.EROFS, errno.EPERM)
        assert snapshot(m) == before


def test_rm_rf_of_non_event_trees(twin_ab, tmp_path):
    """rm -rf of .twinfs and of a t2/ tree: errors on every entry, nothing gone."""
    with mounted(twin_ab, tmp_path) as m:
        before = ready(m)
        for d in [".twinfs", "assets/a/t2", "assets/a/t2/Docs"]:
            r = subprocess.run(["rm", "-rf", m.path(d)], capture_output=True, text=True,
                               timeout=30)
            assert r.returncode != 0, d
            assert "Read-only" in r.stderr or "not permitted" in r.stderr, r.stderr
        assert snapshot(m) == before
        with open(m.path(".twinfs", "status")) as f:
            assert f.read().startswith("{")


def test_rm_rf_of_events_acks_only_events(twin_ab, tmp_path):
    """rm -rf assets/a acks a's events (that is what unlink of an event means), and leaves
    the directories and b alone."""
    with mounted(twin_ab, tmp_path) as m:
        tree, acked, visible, assets, t2 = ready(m)
        r = subprocess.run(["rm", "-rf", m.path("assets", "a")], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0  # the directories stay
        assert m.events("a") == []
        assert sorted(m.events("b")) == tree["b"]
        st = m.status()
        assert st["acked"] == acked + 3
        assert st["assets"] == assets and st["t2_requests"] == t2
        assert os.path.isdir(m.path("assets", "a", "events"))
        assert os.path.isdir(m.path("assets", "a", "t2"))
