"""Security: who may use a mount, and where the token may never show.

- Without allow_other the mount is private to the user who made it: another uid (nobody,
  through setpriv) gets EACCES for everything, and nothing of its attempts reaches the twin.
- With allow_other another uid can list and read, but (like the modes say: r-x directories,
  r-- files) it must not remove anything, i.e. not ack the owner's events.
- The token never shows in ps, /proc/PID/cmdline or environ, the -f -d log, .twinfs/status,
  /proc/mounts or the tracker file, even after reconnects and failed T2 requests.
- A token file readable by group or others gets a warning (foreground too) and still works.

The mount points live in a world-traversable scratch directory (pytest's tmp_path is 0700,
which would deny the other uid for the wrong reason); it is removed at teardown."""

import json
import os
import subprocess

import pytest

from testlib.cli import write_token
from testlib.mount import Mount, unmount
from testlib.wait import wait_for

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
ASSET = "acme-pump-01"

# What another uid tries, in a python run as that uid: each op prints "name errno-or-0".
PROBE = r"""
import errno, os, sys
mnt = sys.argv[1]
asset = os.path.join(mnt, "assets", sys.argv[2])
def probe(name, fn):
    try:
        fn()
        print(name, 0)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def read(p):
    with open(p, "rb") as f:
        f.read()
probe("stat_root", lambda: os.stat(mnt))
probe("list_root", lambda: os.listdir(mnt))
probe("list_assets", lambda: os.listdir(os.path.join(mnt, "assets")))
probe("list_events", lambda: os.listdir(os.path.join(asset, "events")))
probe("read_event", lambda: read(os.path.join(asset, "events", sys.argv[3])))
probe("read_status", lambda: read(os.path.join(mnt, ".twinfs", "status")))
probe("read_t2", lambda: read(os.path.join(asset, "t2", "AcmecorpExampleReq", "README.txt")))
probe("unlink_event", lambda: os.unlink(os.path.join(asset, "events", sys.argv[3])))
"""


def as_nobody(*argv):
    return subprocess.run(NOBODY + list(argv), capture_output=True, text=True, timeout=60)


def probe_as_nobody(m, event):
    r = as_nobody("/usr/bin/python3", "-c", PROBE, m.mnt, ASSET, event)
    assert r.returncode == 0, r.stderr
    return dict(line.split() for line in r.stdout.splitlines())


def first_event(m):
    names = m.wait_for(lambda: sorted(m.events(ASSET)), 10, "the demo events")
    return names[0]


def test_private_without_allow_other(demo_twin, shared_dir):
    m = Mount(demo_twin, shared_dir)
    with m:
        event = first_event(m)
        before = m.status()
        # The way to the mount point is open to nobody: only the mount itself says no.
        assert as_nobody("ls", os.path.dirname(m.mnt)).returncode == 0
        r = as_nobody("ls", m.mnt)
        assert r.returncode != 0
        assert "Permission denied" in r.stderr, r.stderr
        got = probe_as_nobody(m, event)
        assert got == {k: "EACCES" for k in got}, got
        assert len(got) == 8
        # Nothing reached the daemon's tree or the twin: no ack, no T2 request.
        after = m.status()
        assert after["acked"] == before["acked"]
        assert after["t2_requests"] == before["t2_requests"]
        assert event in m.events(ASSET)
        # The owner still has it all.
        with open(os.path.join(m.events_dir(ASSET), event)) as f:
            assert json.load(f)["asset"] == ASSET


def test_allow_other_lets_others_read(demo_twin, shared_dir):
    m = Mount(demo_twin, shared_dir, allow_other=True)
    with m:
        event = first_event(m)
        r = as_nobody("ls", m.mnt + "/assets")
        assert r.returncode == 0, r.stderr
        assert ASSET in r.stdout.split()
        r = as_nobody("cat", os.path.join(m.events_dir(ASSET), event))
        assert r.returncode == 0 and json.loads(r.stdout)["asset"] == ASSET
        got = probe_as_nobody(m, event)
        for k in ["stat_root", "list_root", "list_assets", "list_events", "read_event",
                  "read_status", "read_t2"]:
            assert got[k] == "0", (k, got)


def test_allow_other_others_cannot_ack(demo_twin, shared_dir):
    m = Mount(demo_twin, shared_dir, allow_other=True)
    with m:
        event = first_event(m)
        acked = m.status()["acked"]
        got = probe_as_nobody(m, event)
        assert got["unlink_event"] in ("EACCES", "EPERM"), got
        assert event in m.events(ASSET)
        assert m.status()["acked"] == acked


# -- the token -----------------------------------------------------------------------------------

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("source", ["env", "file"])
def test_token_never_shows(runner, token_twin, tmp_path, source):
    """Everything a user or an admin can look at, after a busy life: reconnects, T2 requests
    that work and that fail, acks."""
    mnt = runner.mountpoint()
    tracker = str(tmp_path / "tracker.journal")
    opts = "tracker=" + tracker
    env = dict(runner.env)
    if source == "env":
        env["TWINFS_TOKEN"] = token_twin.token
    else:
        opts += ",token_file=" + write_token(tmp_path / "t.token", token_twin.token)
    p = runner.popen(token_twin.url, mnt, "-f", "-d", "-o", opts, env=env)
    runner.wait_mounted(mnt, p)
    events = os.path.join(mnt, "assets", ASSET, "events")
    names = wait_for(lambda: sorted(os.listdir(events)), 10, "the demo events")
    os.unlink(os.path.join(events, names[0]))
    t2 = os.path.join(mnt, "assets", ASSET, "t2", "AcmecorpExampleReq")
    assert read_bytes(os.path.join(t2, "README.txt"))
    with pytest.raises(OSError):
        read_bytes(os.path.join(t2, "no-such-file"))
    token_twin.hook("cut_streams")
    wait_for(lambda: json.loads(read_bytes(os.path.join(mnt, ".twinfs", "status")))
             ["reconnects"] >= 1, 20, "a reconnect")
    status = read_bytes(os.path.join(mnt, ".twinfs", "status"))
    secret = token_twin.token.encode()
    assert b'"link"' in status and secret not in status
    for what in ["cmdline", "environ"]:
        assert secret not in read_bytes("/proc/%d/%s" % (p.pid, what)), what
    for task in os.listdir("/proc/%d/task" % p.pid):
        assert secret not in read_bytes("/proc/%d/task/%s/environ" % (p.pid, task))
    for ps in (["ps", "-eww", "-o", "pid,args"], ["ps", "eww", "-p", str(p.pid)]):
        out = subprocess.run(ps, capture_output=True, text=True).stdout
        assert str(p.pid) in out and token_twin.token not in out
    assert secret not in read_bytes("/proc/mounts")
    unmount(mnt)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "unlink" in err.lower() or "opcode" in err.lower() or "unique" in err  # -d was on
    assert token_twin.token not in err and token_twin.token not in out
    for name in os.listdir(tmp_path):
        path = os.path.join(tmp_path, name)
        if name != "t.token" and os.path.isfile(path):
            assert secret not in read_bytes(path), path


@pytest.mark.parametrize("mode", [0o604, 0o640, 0o644])
def test_shared_token_file_warns_in_foreground(runner, token_twin, tmp_path, mode):
    mnt = runner.mountpoint()
    tok = write_token(tmp_path / "shared.token", token_twin.token, mode)
    p = runner.popen(token_twin.url, mnt, "-f", "-o", "token_file=" + tok)
    runner.wait_mounted(mnt, p)
    wait_for(lambda: os.path.isdir(os.path.join(mnt, "assets", ASSET)), 10, "the token to work")
    assert os.stat(tok).st_mode & 0o777 == mode  # checked, not changed
    unmount(mnt)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert tok in warnings[0] and "readable by group or others" in warnings[0]
    assert token_twin.token not in err


def test_private_token_file_no_warning(runner, token_twin, tmp_path):
    mnt = runner.mountpoint()
    tok = write_token(tmp_path / "private.token", token_twin.token, 0o400)
    p = runner.popen(token_twin.url, mnt, "-f", "-o", "token_file=" + tok)
    runner.wait_mounted(mnt, p)
    unmount(mnt)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    assert "warning" not in err, err


def test_other_uid_cannot_use_the_token_file(tmp_path, shared_dir):
    """The check is on the file, so test the check's premise too: a 0600 file is not readable
    by another uid (the reason a shared one is worth a warning)."""
    token = "tok-9Qz7-s3cr3t-e4f1c0ffee"
    tok = write_token(os.path.join(shared_dir, "t.token"), token, 0o600)
    r = as_nobody("cat", tok)
    assert r.returncode != 0 and token not in r.stdout
    assert "Permission denied" in r.stderr
