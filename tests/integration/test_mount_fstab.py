"""twinfs through mount(8): `mount -t fuse.twinfs URL MNT`, the `twinfs#URL` form of type fuse,
and an fstab line (noauto, nofail, _netdev, x-systemd.*, twinfs options) mounted by
`mount MNT`, from a test-owned fstab file (`mount --fstab FILE`), never /etc/fstab.

mount(8) runs mount.fuse3 without PATH (util-linux drops it from a helper's environment), so
mount.fuse3's /bin/sh finds `twinfs` on the shell's default path, /usr/local/{sbin,bin} first:
where `meson install` puts it. Each test runs mount(8) in a private mount namespace
(unshare -m) in which a directory of the test's is bind-mounted over /usr/local/sbin and
/usr/local/bin; its `twinfs` records its argv and runs the build's twinfs. The host's mounts
and files are not touched, and every mount goes with the namespace at teardown."""

import os
import shutil
import signal
import subprocess

import pytest

from testlib.mount import Mount
from testlib.paths import twinfs_binary
from testlib.wait import wait_for

pytestmark = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("unshare", "nsenter", "mount.fuse3")),
    reason="needs util-linux's unshare and nsenter, and fuse3's mount.fuse3")

# What the default-path directories hold in the namespace: a twinfs that records its argv.
WRAPPER = """#!/bin/sh
printf '%%s\\0' "$@" > '%(log)s'.$$
exec '%(twinfs)s' "$@"
"""


def mount_ns_inode(pid):
    return os.stat("/proc/%d/ns/mnt" % pid).st_ino


class Namespace:
    """A private mount namespace held by a sleeping process; commands run in it by nsenter."""

    def __init__(self, tmp_path):
        self.bindir = tmp_path / "bin"
        self.argv_dir = tmp_path / "argv"
        self.bindir.mkdir()
        self.argv_dir.mkdir()
        wrapper = self.bindir / "twinfs"
        wrapper.write_text(WRAPPER % {"log": self.argv_dir / "argv", "twinfs": twinfs_binary()})
        wrapper.chmod(0o755)
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                        "sleep", "3600"], stdin=subprocess.DEVNULL)
        self.mounts = []
        own = mount_ns_inode(os.getpid())
        try:
            wait_for(lambda: self.holder.poll() is None and
                     mount_ns_inode(self.holder.pid) != own, 20, "the mount namespace")
        except AssertionError:
            self.holder.kill()
            self.holder.wait()
            pytest.skip("no private mount namespace here (unshare -m)")
        for d in ("/usr/local/sbin", "/usr/local/bin"):
            if os.path.isdir(d):
                self.run("mount", "--bind", str(self.bindir), d)

    def run(self, *argv, check=True):
        r = subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "--"] + list(argv),
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, "%s: exit %d: %s%s" % (" ".join(argv), r.returncode,
                                                             r.stdout, r.stderr)
        return r

    def mount(self, mnt, *argv):
        """mount(8) with argv, in the namespace; mnt is unmounted at teardown."""
        self.mounts.append(str(mnt))
        return self.run("mount", *argv)

    def mountinfo(self, mnt):
        """(fstype, source, mount options, super options) of mnt in /proc/self/mountinfo as
        the namespace sees it, or None."""
        for line in self.run("cat", "/proc/self/mountinfo").stdout.splitlines():
            left, right = line.split(" - ")
            fields = left.split()
            if fields[4] == str(mnt):
                fstype, source, sopts = right.split(" ", 2)
                return fstype, source, fields[5].split(","), sopts.split(",")
        return None

    def argvs(self):
        """The argv of each twinfs the helpers ran, in the order they ran."""
        out = []
        for p in sorted(self.argv_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns):
            out.append(p.read_bytes().split(b"\0")[:-1])
        return [[a.decode() for a in argv] for argv in out]

    def daemons(self):
        """The processes in the namespace other than its holder (the twinfs daemons)."""
        ino = mount_ns_inode(self.holder.pid)
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == self.holder.pid:
                continue
            try:
                if mount_ns_inode(int(name)) == ino:
                    pids.append(int(name))
            except OSError:
                pass
        return pids

    def close(self):
        for mnt in self.mounts:
            if self.mountinfo(mnt):
                r = self.run("fusermount3", "-u", mnt, check=False)
                if r.returncode != 0:
                    self.run("umount", "-l", mnt, check=False)
        try:
            wait_for(lambda: not self.daemons(), 30, "the twinfs daemons to exit")
        finally:
            for pid in self.daemons():
                os.kill(pid, signal.SIGKILL)
            self.holder.kill()
            self.holder.wait()


@pytest.fixture
def ns(tmp_path):
    n = Namespace(tmp_path)
    try:
        yield n
    finally:
        n.close()


def opts_of(argv):
    """The -o options of a twinfs argv: [URL, MNT, "-o", "a,b,c"] gives ["a", "b", "c"]."""
    assert argv[2] == "-o" and len(argv) == 4, argv
    return argv[3].split(",")


def test_mount_t_fuse_twinfs(ns, demo_twin, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    tracker = tmp_path / "state" / "tracker.journal"
    ns.mount(mnt, "-t", "fuse.twinfs", demo_twin.url, str(mnt), "-o",
             "ro,nosuid,nodev,noexec,noatime,tracker=%s" % tracker)

    info = ns.mountinfo(mnt)
    assert info, "not mounted"
    fstype, source, mopts, _ = info
    # The URL is the source, untouched: twinfs gives it as fsname.
    assert (fstype, source) == ("fuse.twinfs", demo_twin.url)
    # The kernel's flags reached the mount; ro is twinfs's (the kernel mount stays writable).
    assert {"rw", "nosuid", "nodev", "noexec", "noatime"} <= set(mopts)
    found = ns.run("findmnt", "-n", "-o", "SOURCE,FSTYPE", str(mnt)).stdout.split()
    assert found == [demo_twin.url, "fuse.twinfs"]

    assert ns.argvs() == [[demo_twin.url, str(mnt), "-o",
                           "ro,nosuid,nodev,noexec,noatime,tracker=%s" % tracker]]
    assert sorted(ns.run("ls", str(mnt / "assets")).stdout.split()) == \
        sorted(demo_twin.assets())
    events = mnt / "assets" / "acme-pump-01" / "events"
    first = wait_for(lambda: ns.run("ls", str(events)).stdout.split(), 20, "the events")[0]
    r = ns.run("rm", str(events / first), check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr

    ns.run("umount", str(mnt))
    assert ns.mountinfo(mnt) is None


def test_prog_hash_url_form(ns, demo_twin, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    tracker = tmp_path / "state" / "tracker.journal"
    ns.mount(mnt, "-t", "fuse", "twinfs#" + demo_twin.url, str(mnt), "-o",
             "tracker=%s,start=now,nodiratime,lazytime" % tracker)
    fstype, source, _, _ = ns.mountinfo(mnt)
    assert (fstype, source) == ("fuse.twinfs", demo_twin.url)
    # mount(8) puts rw and the kernel's flags first (the atime policies, which twinfs
    # ignores), mount.fuse3 (as root) adds dev and suid.
    assert ns.argvs() == [[demo_twin.url, str(mnt), "-o",
                           "rw,nodiratime,lazytime,tracker=%s,start=now,dev,suid" % tracker]]
    assert sorted(ns.run("ls", str(mnt / "assets")).stdout.split()) == \
        sorted(demo_twin.assets())


def test_fstab_line(ns, demo_twin, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    tracker = tmp_path / "state" / "tracker.journal"
    own = ("start=now,no_t2,tracker=%s" % tracker)
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# a test's own fstab\n"
        "%s %s fuse.twinfs noauto,nofail,_netdev,x-systemd.automount,"
        "x-systemd.mount-timeout=30,x-systemd.requires=network-online.target,comment=twin,%s"
        " 0 0\n" % (demo_twin.url, mnt, own))

    # noauto: mount -a leaves it alone.
    ns.mount(mnt, "--fstab", str(fstab), "-a")
    assert ns.mountinfo(mnt) is None and ns.argvs() == []

    ns.mount(mnt, "--fstab", str(fstab), str(mnt))
    fstype, source, _, _ = ns.mountinfo(mnt)
    assert (fstype, source) == ("fuse.twinfs", demo_twin.url)
    # Only the options twinfs and the kernel take reach twinfs.
    assert ns.argvs() == [[demo_twin.url, str(mnt), "-o", "rw,%s,dev,suid" % own]]

    # start=now: a new tracker starts at the head, so nothing of the demo's past is shown;
    # no_t2: a T2 request is refused (EACCES). What happens next comes.
    pump = mnt / "assets" / "acme-pump-01"
    assert ns.run("ls", str(pump / "events")).stdout.split() == []
    r = ns.run("cat", str(pump / "t2" / "AcmecorpExampleReq" / "manual.pdf"), check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    demo_twin.create_asset("live-1")
    wait_for(lambda: "live-1" in ns.run("ls", str(mnt / "assets")).stdout.split(), 20,
             "the new asset")

    ns.run("umount", str(mnt))
    assert ns.mountinfo(mnt) is None
    wait_for(lambda: not ns.daemons(), 30, "twinfs to exit after umount")


@pytest.mark.parametrize("opts", [
    "defaults,auto,user,users,owner,group,nouser",
    "relatime,norelatime,strictatime,nostrictatime,diratime,nodiratime,lazytime,nolazytime",
    "noauto,nofail,_netdev,comment=twin,x-systemd.automount,x-systemd.mount-timeout=30",
])
def test_twinfs_takes_an_fstab_option_list(demo_twin, tmp_path, opts):
    """What an fstab line holds, given to twinfs itself (another helper, a systemd unit, a
    copied option list): mount(8)'s own options are dropped, nothing is an unknown option."""
    extra = {o.split("=")[0]: (o.split("=", 1)[1] if "=" in o else True)
             for o in opts.split(",")}
    m = Mount(demo_twin, tmp_path, **extra)
    try:
        m.start()
        wait_for(lambda: sorted(os.listdir(m.path("assets"))) == sorted(demo_twin.assets()),
                 20, "the assets")
    finally:
        m.stop()
    assert "unknown option" not in m.log()
