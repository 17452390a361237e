"""The mount reference against a local user with a mount namespace of her own, and the ways
twinfs mounts and unmounts (docs/design.md, "inotify").

A directory that is mounted on cannot be renamed in the namespace where the mount is, but a
user who made her own user and mount namespace before root mounted sees no mount there and can
rename it: root's mount moves with it. nobody (uid 65534 through setpriv) plays that user."""

import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from testlib.events import setup_ping
from testlib.mount import Mount
from testlib.paths import twinfs_binary
from testlib.wait import wait_for

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def mount_points():
    """(mount point, fs type) of every mount in /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((fields[4].encode().decode("unicode_escape"), fields[sep + 1]))
    return out


def fstype_at(path):
    types = [t for p, t in mount_points() if p == path]
    return types[-1] if types else None


@pytest.fixture
def home():
    """A directory nobody can reach (the test's tmp_path is root's only), with twin/mnt in it
    owned by nobody."""
    d = tempfile.mkdtemp(prefix="twinfs-mountref-")
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "twin", "mnt"))
    for p in ("twin", os.path.join("twin", "mnt")):
        os.chown(os.path.join(d, p), 65534, 65534)
    try:
        yield d
    finally:
        for p, _ in reversed(mount_points()):
            if p.startswith(d + "/"):
                subprocess.run(["umount", "-l", p], check=False)
        shutil.rmtree(d, ignore_errors=True)


class OwnNamespace:
    """nobody in a user and mount namespace of her own (made now, before any mount), waiting
    for a line on stdin to run a shell command in `home`."""

    def __init__(self, home):
        script = 'echo ready; read -r cmd; eval "$cmd"; echo "done $?"; read -r _'
        self.proc = subprocess.Popen(
            NOBODY + ["unshare", "-Urm", "--propagation", "private", "sh", "-c", script],
            cwd=home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.kill()
        self.proc.wait(10)


def test_a_mount_renamed_from_another_namespace_ends_the_session_once(twin, tmp_path, home):
    """Every batch of the materializer then finds no mount on the covered directory (ESTALE):
    twinfs says so once, ends its session as if unmounted, and takes its mount away from
    wherever it is now, instead of a warning per event and a dead mount left behind."""
    setup_ping(twin, ["a0"])
    twin.publish("a0", "Ping", 1, {"n": 0})
    alice = OwnNamespace(home)
    m = Mount(twin, tmp_path)
    m.mnt = os.path.join(home, "twin", "mnt")
    moved = os.path.join(home, "twin", "moved")
    try:
        m.start()
        m.wait_settled()
        assert alice.run("mv twin/mnt twin/moved") == "done 0"
        assert fstype_at(moved) == "fuse.twinfs"  # root's mount went with her rename
        for i in range(1, 41):
            twin.publish("a0", "Ping", 1, {"n": i})
        rc = m.proc.wait(30)
        m.proc = None
        log = m.log()
        assert rc == 0, log
        wait_for(lambda: fstype_at(moved) is None, 10, "the moved mount to be detached")
        assert log.count("no longer on") == 1, log
        assert "shown without inotify event" not in log, log
    finally:
        alice.close()
        if m.proc is not None:
            m.proc.kill()
            m.proc.wait()
            m.proc = None
        for p in (moved, m.mnt):
            if fstype_at(p):
                subprocess.run(["umount", "-l", p], check=False)


def test_auto_unmount_as_root_is_refused(twin, tmp_path):
    """With auto_unmount, fusermount3 mounts and later unmounts by path, and would do so as
    root: twinfs refuses it as root before mounting anything."""
    setup_ping(twin, ["a0"])
    mnt = os.path.join(str(tmp_path), "mnt")
    os.mkdir(mnt)
    argv = [twinfs_binary(), twin.url, mnt, "-f", "-o",
            "auto_unmount,tracker=%s" % os.path.join(str(tmp_path), "tracker")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: proc.poll() is not None or os.path.ismount(mnt), 20,
                 "twinfs to exit or to mount")
        mounted = os.path.ismount(mnt)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], check=False)
    assert not mounted, "auto_unmount was mounted as root: %s" % err
    assert proc.returncode != 0, err
    assert "twinfs: auto_unmount: " in err, err
    assert "cannot mount" not in err, err
