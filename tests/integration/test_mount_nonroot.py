"""A user who is not root mounts with `twinfs URL ~/mnt`, through the setuid fusermount3.

The user is uid 65534 (nobody) with a home of its own made here; privileges are dropped with
setpriv. Without CAP_SYS_ADMIN libfuse opens /dev/fuse as the user and runs fusermount3, which
mounts only on a directory the user may write. Where /dev/fuse is root-only (mode 0600, as in
many containers; Debian ships 0666), the test runs in a mount namespace of its own in which
/dev/fuse is a node of the same device with mode 0666; the machine's /dev is not touched. The
user's mount lives in that namespace: the user's side runs there, as a script
(USER_SCENARIO), and reports what it saw as JSON.

- The user mounts, lists assets and events, reads an event, rm's it (the ack), unmounts with
  `fusermount3 -u`; after a remount the event stays acked. The tracker lands under the user's
  state directory (~/.local/state/twinfs, no XDG_STATE_HOME), owned by the user, mode 0600,
  and the daemon runs as the user.
- A mountpoint the user may not write, or a sticky one they do not own, and a /dev/fuse the
  user may not open, are one clear line and exit status 1 before the twin is contacted, and
  leave nothing mounted or running."""

import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from testlib.cli import FAILURE, pid_alive
from testlib.paths import twinfs_binary
from testlib.proc import pids_of_program
from testlib.wait import wait_for

UID = GID = 65534
FUSE_MAJOR, FUSE_MINOR = 10, 229

# The user's side: mount, browse, read and ack, unmount, remount; prints what it saw.
USER_SCENARIO = r'''
import json, os, re, subprocess, sys, time

twinfs, url, mnt, log = sys.argv[1:5]

def wait(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except OSError:
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.05)

def daemon_pid(count):
    with open(log) as f:
        pids = re.findall(r"twinfs\[(\d+)\]: mounted ", f.read())
    return int(pids[count - 1]) if len(pids) >= count else None

def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True

def events():
    return sorted(os.listdir(os.path.join(mnt, "events")))

def mount(count):
    r = subprocess.run([twinfs, url, mnt, "-o", "logfile=" + log], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit("twinfs failed %d: %s" % (r.returncode, r.stderr))
    return wait(lambda: daemon_pid(count), "the mounted line")

def unmounted():
    # As testlib.mount.unmount: again while busy (the materializer makes entries through the
    # mount), any other failure is one.
    r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True)
    if r.returncode != 0 and "busy" not in r.stderr:
        raise SystemExit("fusermount3 -u failed: " + r.stderr)
    return r.returncode == 0

def unmount(pid):
    wait(unmounted, "the unmount")
    wait(lambda: gone(pid), "the daemon to exit")

out = {}
pid = mount(1)
with open("/proc/%d/status" % pid) as f:
    out["daemon_uids"] = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
assets = lambda: sorted(os.listdir(os.path.join(mnt, "assets")))
out["assets"] = wait(lambda: "acme-pump-01" in assets() and assets(), "the demo's assets")
first = wait(lambda: len(events()) >= 2 and events()[0], "two events")
with open(os.path.join(mnt, "events", first)) as f:
    out["event"] = json.load(f)
os.unlink(os.path.join(mnt, "events", first))
out["acked"] = first
out["after_rm"] = events()
unmount(pid)

pid = mount(2)
# Every event not acked comes back; then the acked one would have too.
out["after_remount"] = wait(lambda: set(out["after_rm"]) <= set(events()) and events(),
                            "the events again")
unmount(pid)
print(json.dumps(out))
'''


def usable_by_others(path):
    st = os.stat(path)
    return st.st_mode & 0o006 == 0o006


@pytest.fixture
def user(tmp_path):
    """The user's world: a home (0700, theirs) and a copy of twinfs in a directory they can
    reach, under a scratch directory removed at teardown; skips where no user mount can be
    made."""
    fusermount = shutil.which("fusermount3")
    if not fusermount:
        pytest.skip("no fusermount3 on this machine")
    st = os.stat(fusermount)
    if st.st_uid != 0 or not st.st_mode & stat.S_ISUID:
        pytest.skip("%s is not setuid root: users cannot mount FUSE here" % fusermount)
    for tool in ("setpriv", "unshare", "mount"):
        if not shutil.which(tool):
            pytest.skip("no %s on this machine" % tool)
    top = tempfile.mkdtemp(prefix="twinfs-user-")
    try:
        os.chmod(top, 0o755)
        home = os.path.join(top, "home")
        os.mkdir(home, 0o700)
        os.mkdir(os.path.join(home, "mnt"), 0o755)
        for d in (home, os.path.join(home, "mnt")):
            os.chown(d, UID, GID)
        binary = os.path.join(top, "twinfs")
        shutil.copy(twinfs_binary(), binary)
        os.chmod(binary, 0o755)
        script = os.path.join(top, "scenario.py")
        with open(script, "w") as f:
            f.write(USER_SCENARIO)
        os.chmod(script, 0o644)
        yield {"top": top, "home": home, "mnt": os.path.join(home, "mnt"), "twinfs": binary,
               "script": script, "dev": os.path.join(top, "dev")}
    finally:
        kill_mounts_under(top)
        shutil.rmtree(top, ignore_errors=True)


def kill_mounts_under(top):
    """Teardown: a daemon left running (its mount is in its namespace) is killed."""
    for pid in pids_of_program(os.path.join(top, "twinfs")):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def as_user(user, argv, fuse_mode=0o666, env_extra=None):
    """Runs argv as uid 65534 with HOME set, in a private mount namespace whose /dev/fuse has
    fuse_mode (the machine's own /dev/fuse when that mode is what it has already)."""
    env = ["HOME=" + user["home"], "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8"]
    env += env_extra or []
    drop = ["setpriv", "--reuid", str(UID), "--regid", str(GID), "--clear-groups",
            "env", "-i"] + env + argv
    setup = ""
    if not (fuse_mode == 0o666 and usable_by_others("/dev/fuse")):
        setup = ('mkdir -p "$DEV" && mount -t tmpfs -o mode=755 tmpfs "$DEV" && '
                 'mknod -m %o "$DEV/fuse" c %d %d && mount --bind "$DEV/fuse" /dev/fuse '
                 '|| exit 99; ' % (fuse_mode, FUSE_MAJOR, FUSE_MINOR))
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        setup + 'exec "$@"', "sh"] + drop,
                       env=dict(os.environ, DEV=user["dev"]), capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL, cwd="/")
    if r.returncode == 99:
        pytest.skip("/dev/fuse is root-only here and no private FUSE node can be made in a "
                    "mount namespace: %s" % r.stderr.strip())
    return r


def test_user_mounts_browses_acks_and_unmounts(user, demo_twin):
    log = os.path.join(user["home"], "twinfs.log")
    r = as_user(user, ["/usr/bin/python3", user["script"], user["twinfs"], demo_twin.url,
                       user["mnt"], log])
    assert r.returncode == 0, (r.stdout, r.stderr)
    seen = json.loads(r.stdout)

    assert seen["daemon_uids"] == [str(UID)] * 4
    assert "acme-pump-01" in seen["assets"]
    assert seen["event"]["asset"] in seen["assets"]
    assert seen["acked"] not in seen["after_rm"]
    assert seen["acked"] not in seen["after_remount"]
    assert set(seen["after_rm"]) <= set(seen["after_remount"])

    state = os.path.join(user["home"], ".local", "state", "twinfs")
    journals = [n for n in os.listdir(state) if n.endswith(".journal")]
    assert len(journals) == 1, os.listdir(state)
    st = os.stat(os.path.join(state, journals[0]))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (UID, 0o600)
    assert (os.stat(state).st_uid, stat.S_IMODE(os.stat(state).st_mode)) == (UID, 0o700)
    assert os.stat(log).st_uid == UID


def one_failure(r, *words):
    assert r.returncode == FAILURE, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def no_daemon_left(user):
    wait_for(lambda: not any(pid_alive(p) for p in pids_of_program(user["twinfs"])), 10,
             "no daemon left")


def test_mountpoint_the_user_may_not_write_is_a_clear_error(user, demo_twin):
    theirs_not = os.path.join(user["top"], "root-owned")
    os.mkdir(theirs_not, 0o755)
    log = os.path.join(user["home"], "twinfs.log")
    r = as_user(user, [user["twinfs"], demo_twin.url, theirs_not, "-o", "logfile=" + log])
    one_failure(r, theirs_not, "not writable by uid %d" % UID, "fusermount3")
    no_daemon_left(user)


def test_sticky_mountpoint_of_another_user_is_a_clear_error(user, demo_twin):
    sticky = os.path.join(user["top"], "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    log = os.path.join(user["home"], "twinfs.log")
    r = as_user(user, [user["twinfs"], demo_twin.url, sticky, "-o", "logfile=" + log])
    one_failure(r, sticky, "sticky directory owned by uid 0, not by uid %d" % UID)
    no_daemon_left(user)


def test_root_only_dev_fuse_is_a_clear_error(user, demo_twin):
    log = os.path.join(user["home"], "twinfs.log")
    r = as_user(user, [user["twinfs"], demo_twin.url, user["mnt"], "-o", "logfile=" + log],
                fuse_mode=0o600)
    one_failure(r, "/dev/fuse: Permission denied", "may not use FUSE")
    no_daemon_left(user)
