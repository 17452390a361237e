"""A mount point's path is not the mount: another local user who owns a directory on the path
(here /T/home/twin, with twinfs mounted on /T/home/twin/mnt) can rename it away and put
something else at the old path. twinfs makes its materializing calls and its unmount on the
mount it made, wherever that now is, and never on what the old path leads to.

The other user is played by root: the renames and the planted symlink are what alice could do
in her own home directory."""

import os
import signal
import subprocess

from testlib.events import setup_ping
from testlib.mount import Mount, event_name
from testlib.wait import wait_for


def mountinfo():
    """(mount point, fs type) of every mount, in /proc/self/mountinfo's order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            path = fields[4].encode().decode("unicode_escape")
            out.append((path, fields[sep + 1]))
    return out


def fstype_at(path):
    """The fs type of the topmost mount on path, or None if nothing is mounted there."""
    types = [t for p, t in mountinfo() if p == path]
    return types[-1] if types else None


def mount_in_home(twin, tmp_path):
    """A Mount on tmp/home/twin/mnt; its log and tracker stay outside home/twin."""
    m = Mount(twin, tmp_path)
    home = os.path.join(str(tmp_path), "home")
    m.mnt = os.path.join(home, "twin", "mnt")
    os.makedirs(m.mnt)
    return m, home


def swap_home(m, home):
    """alice's move: home/twin goes to home/twin.old (the mount with it), and a new
    home/twin/mnt takes its place. Returns the new (empty) home/twin/mnt."""
    os.rename(os.path.join(home, "twin"), os.path.join(home, "twin.old"))
    m.mnt = os.path.join(home, "twin.old", "mnt")  # where m.stop() finds the mount now
    decoy = os.path.join(home, "twin", "mnt")
    os.makedirs(decoy)
    return decoy


def test_materializer_calls_go_to_the_mount_not_to_its_old_path(twin, tmp_path, inotify):
    setup_ping(twin, ["a0"])
    twin.publish("a0", "Ping", 1, {"n": 0})
    victim = os.path.join(str(tmp_path), "victim")  # stands for a root-only directory
    os.mkdir(victim, 0o700)
    m, home = mount_in_home(twin, tmp_path)
    m.start()
    watch = None
    try:
        m.wait_settled()
        assert os.listdir(m.events_dir("a0")) == [event_name(0, "Ping")]
        decoy = swap_home(m, home)
        os.symlink(victim, os.path.join(decoy, "assets"))
        # Watched where the mount is now: inotifywait -r adds its watches on new directories
        # by path.
        watch = inotify(m.path("assets"))

        twin.create_asset("a1")
        twin.publish("a1", "Ping", 1, {"n": 1})
        twin.publish("a0", "Ping", 1, {"n": 2})
        new_event = os.path.join(m.events_dir("a1"), event_name(0, "Ping"))
        old_asset_event = os.path.join(m.events_dir("a0"), event_name(1, "Ping"))
        # Whichever comes first: the entries in the real mount, or anything in the victim.
        m.wait_for(lambda: os.listdir(victim) or
                   (os.path.exists(new_event) and os.path.exists(old_asset_event)),
                   20, "the new entries (in the mount, or in the victim directory)")
        assert os.listdir(victim) == [], "made through the planted symlink: %r" % (
            os.listdir(victim),)
        assert os.path.exists(new_event) and os.path.exists(old_asset_event)
        want = {m.path("assets", "a1") + "|CREATE,ISDIR", new_event + "|CREATE",
                old_asset_event + "|CREATE"}
        lines = watch.collect(lambda ls: want <= set(ls))
        assert want <= set(lines), (want, lines)
        st = m.status()
        assert st["materialize_errors"] == 0, m.log()
        assert os.listdir(decoy) == ["assets"]
    finally:
        if watch:
            watch.close()
        m.stop()
    assert os.listdir(victim) == []


def test_sigterm_unmounts_the_mount_not_what_its_old_path_holds(twin, tmp_path):
    setup_ping(twin, ["a0"])
    m, home = mount_in_home(twin, tmp_path)
    m.start()
    old_path = m.mnt
    decoy = None
    try:
        m.wait_settled()
        decoy = swap_home(m, home)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "twinfs-test-decoy", decoy],
                       check=True)
        assert fstype_at(decoy) == "tmpfs"
        assert fstype_at(m.mnt) == "fuse.twinfs"
        m.proc.send_signal(signal.SIGTERM)
        rc = m.proc.wait(30)
        m.proc = None
        assert rc == 0, m.log()
        assert fstype_at(decoy) == "tmpfs", "the decoy was unmounted: %r" % (mountinfo(),)
        assert fstype_at(m.mnt) is None, "twinfs's own mount is still there (dead)"
        assert "unmounted %s" % old_path in m.log()
    finally:
        m.stop()
        if decoy and fstype_at(decoy):
            subprocess.run(["umount", "-l", decoy], check=False)


def test_sigterm_unmounts_a_busy_mount_that_moved(twin, tmp_path):
    """A process with its working directory in the mount keeps the connection up after the
    unmount (a lazy detach): the unmount still goes to the mount, not to the old path."""
    setup_ping(twin, ["a0"])
    m, home = mount_in_home(twin, tmp_path)
    m.start()
    decoy = None
    sleeper = None
    try:
        m.wait_settled()
        sleeper = subprocess.Popen(["sleep", "600"], cwd=m.path("assets"))
        decoy = swap_home(m, home)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "twinfs-test-decoy", decoy],
                       check=True)
        m.proc.send_signal(signal.SIGTERM)
        rc = m.proc.wait(30)
        m.proc = None
        assert rc == 0, m.log()
        assert fstype_at(decoy) == "tmpfs", "the decoy was unmounted: %r" % (mountinfo(),)
        wait_for(lambda: fstype_at(m.mnt) is None, 10, "the mount to be detached")
    finally:
        if sleeper:
            sleeper.kill()
            sleeper.wait()
        m.stop()
        if decoy and fstype_at(decoy):
            subprocess.run(["umount", "-l", decoy], check=False)
