"""cliutil: run the twinfs program as a user would (its own processes, not mountlib's Mount)
and find what it left behind: mounts, daemons, the materializer's caller process. The pytest
fixture `runner` (conftest.py) gives a Runner that cleans up every mount and process."""

import os
import signal
import subprocess

from mountlib import settled_status, twinfs_binary, wait_for

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


class LoggedProc(subprocess.Popen):
    """A twinfs process whose stdout and stderr go to files. Pipes that nobody reads until the
    end fill up under -d (a line per FUSE request), and then the daemon blocks in the middle of
    a request and the test with it. communicate() waits and returns both as text."""

    def __init__(self, argv, out_path, err_path, **kw):
        self.out_path, self.err_path = out_path, err_path
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            super().__init__(argv, stdout=out, stderr=err, **kw)

    def output(self):
        """(stdout, stderr) so far, as text."""
        texts = []
        for path in (self.out_path, self.err_path):
            with open(path, errors="replace") as f:
                texts.append(f.read())
        return tuple(texts)

    def communicate(self, input=None, timeout=None):
        assert input is None
        self.wait(timeout)
        return self.output()


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
        p = LoggedProc([twinfs_binary()] + [str(a) for a in args],
                       str(self.tmp / ("twinfs-%d.out" % n)), str(self.tmp / ("twinfs-%d.err" % n)),
                       env=env or self.env, stdin=subprocess.DEVNULL,
                       preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
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
                subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
            for pid in twinfs_pids(mnt):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
