"""testlib.cli: run the twinfs program as a user would (its own processes, not a Mount) and
find what it left behind: mounts, daemons, the materializer's caller process. The pytest
fixture `runner` (tests/conftest.py) gives a Runner that cleans up every mount and process."""

import os
import signal
import socket
import subprocess

from testlib.mount import lazy_unmount, settled_status
from testlib.paths import twinfs_binary
from testlib.proc import Proc
from testlib.wait import wait_for

USAGE = 2
FAILURE = 1


def mounted_fs(path):
    """The /proc/mounts line's (source, fstype) for path, or None."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                return fields[0], fields[2]
    return None


def twinfs_pids(mnt, with_caller=False):
    """Pids of twinfs daemons whose command line names mnt (and their materializer's caller
    process, named twinfs-caller, with with_caller)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/comm" % d, "rb") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if argv and argv[0].endswith(b"twinfs") and os.fsencode(mnt) in argv:
            if comm != b"twinfs-caller" or with_caller:
                pids.append(int(d))
    return pids


def closed_port():
    """A local TCP port nobody listens on (bound once, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_token(path, token, mode=0o600):
    """Writes a token file with the given mode; returns its path."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(str(path), mode)
    return str(path)


def assert_fails(runner, r, mnt, status, *words):
    """A failed start: the status, one line on stderr naming the cause, nothing left behind."""
    assert r.returncode == status, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("twinfs: "), lines
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert r.stdout == ""
    if mnt:
        assert mounted_fs(mnt) is None
        wait_for(lambda: not twinfs_pids(mnt, with_caller=True), 5, "no twinfs left for " + mnt)


def wait_asset(mnt, asset="acme-pump-01"):
    """Assets are materialized just after the mount: wait for one to show."""
    wait_for(lambda: os.path.isdir(os.path.join(mnt, "assets", asset)), 10, asset + " to show")


def wait_settled(mnt):
    """The replay is done and every delivered event is a file: a listing now is complete."""
    wait_for(lambda: settled_status(mnt), 10, "the replay to be done and materialized")


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Runner:
    """Runs twinfs with a private XDG_STATE_HOME and no TWINFS_TOKEN; cleans up every mount."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
        self.env.pop("TWINFS_TOKEN", None)
        self.mnts = []
        self.procs = []

    def mountpoint(self, name="mnt"):
        p = self.tmp / name
        p.mkdir(exist_ok=True)
        self.mnts.append(str(p))
        return str(p)

    def run(self, *args, env=None, timeout=30):
        return subprocess.run([twinfs_binary()] + [str(a) for a in args], capture_output=True,
                              text=True, timeout=timeout, env=env or self.env,
                              stdin=subprocess.DEVNULL)

    def popen(self, *args, env=None):
        # A test run under nohup would pass SIGHUP on ignored, and twinfs rightly keeps a
        # nohup's wish; the stop tests want the default a terminal gives.
        n = len(self.procs)
        p = Proc([twinfs_binary()] + list(args), self.tmp / ("twinfs-%d.err" % n),
                 out_path=self.tmp / ("twinfs-%d.out" % n), env=env or self.env,
                 preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        p.spawn()
        self.procs.append(p)
        return p

    def wait_mounted(self, mnt, proc=None, timeout=20):
        def check():
            if proc is not None and proc.poll() is not None:
                raise AssertionError("twinfs exited %s: %s" % (proc.returncode,
                                                                proc.output()[1]))
            return mounted_fs(mnt)
        return wait_for(check, timeout, "the mount of " + mnt)

    def cleanup(self):
        for mnt in self.mnts:
            if mounted_fs(mnt):
                subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
            if mounted_fs(mnt):
                lazy_unmount(mnt)
            for pid in twinfs_pids(mnt):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            p.kill()
