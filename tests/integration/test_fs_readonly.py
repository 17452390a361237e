"""Read-only: write, create, mkdir, rename, truncate, chmod, chown, utimes, setxattr, symlink,
link in the tree fail with the documented errno (docs/filesystem.md) and change nothing."""

import errno
import os

import pytest

from testlib.events import publish_pings, setup_ping
from testlib.mount import event_name, mounted


def expect(e, fn, *args, **kw):
    with pytest.raises(OSError) as exc:
        fn(*args, **kw)
    assert exc.value.errno == e, (fn.__name__, args, exc.value)


def snapshot(m):
    out = {}
    for root, dirs, files in os.walk(m.path("assets")):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[p] = (fh.read(), os.stat(p).st_mode, os.stat(p).st_mtime)
        out[root] = sorted(dirs) + sorted(files)
    return out


def test_read_only_operations(twin, tmp_path):
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 3)
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: len(m.events("a")) == 3, 10, "events")
        ev = os.path.join(m.events_dir("a"), event_name(0, "Ping"))
        before = snapshot(m)
        R = errno.EROFS
        expect(R, os.open, ev, os.O_WRONLY)
        expect(R, os.open, ev, os.O_RDWR)
        expect(R, os.open, ev, os.O_RDONLY | os.O_TRUNC)
        expect(R, os.open, os.path.join(m.events_dir("a"), "new.json"),
               os.O_WRONLY | os.O_CREAT, 0o644)
        expect(R, os.mknod, os.path.join(m.events_dir("a"), event_name(9, "Ping")))
        expect(R, os.mkdir, m.path("assets", "newasset"))
        expect(R, os.mkdir, os.path.join(m.events_dir("a"), "sub"))
        expect(R, os.rename, ev, os.path.join(m.events_dir("a"), "x.json"))
        expect(R, os.rename, m.path("assets", "a"), m.path("assets", "b"))
        expect(R, os.truncate, ev, 0)
        expect(R, os.chmod, ev, 0o666)
        expect(R, os.chmod, m.path("assets", "a"), 0o777)
        expect(R, os.chown, ev, 1, 1)
        expect(R, os.utime, ev, (0, 0))
        expect(R, os.setxattr, ev, "user.twin.name", b"x")
        expect(R, os.setxattr, ev, "user.mine", b"x")
        expect(R, os.removexattr, ev, "user.twin.name")
        expect(R, os.symlink, "target", os.path.join(m.events_dir("a"), "l"))
        expect(R, os.link, ev, os.path.join(m.events_dir("a"), "hard.json"))
        expect(R, os.rmdir, m.path("assets", "a", "t2"))
        expect(errno.EPERM, os.unlink, m.path(".twinfs", "status"))
        expect(R, os.open, m.path(".twinfs", "status"), os.O_WRONLY)
        assert not os.access(ev, os.W_OK)
        assert os.access(ev, os.R_OK)
        assert snapshot(m) == before
