"""testlib.dispatch: run twinfs-dispatch from pytest, and write the handlers it runs.

    d = Dispatcher(m.mnt, handlers_dir, tmp_path, "-j", "2")
    d.start()                     # returns once it logged "watching MNT (N pending)"
    ...
    d.stop()                      # SIGTERM, then the exit status; its process group goes too
    r = run_once(m.mnt, handlers_dir, "--backoff", "0.05")
    r.rc, r.out, r.err, r.left    # exit status, stdout, stderr, processes it left running

Each dispatcher runs in a process group of its own, so that stop() (and kill() after a
kill -9 of the dispatcher alone) also takes away the handlers it left running."""

import os
import signal
import subprocess
import time

from testlib.paths import build_dir
from testlib.proc import Proc
from testlib.wait import wait_for


def dispatch_binary():
    return os.path.join(build_dir(), "dispatch", "twinfs-dispatch")


def need_binary():
    """The binary's path; an AssertionError saying so if it is not built."""
    b = dispatch_binary()
    assert os.access(b, os.X_OK), "twinfs-dispatch is not built: no %s" % b
    return b


def write_handler(handlers_dir, name, text, mode=0o755):
    """Writes the script text as handlers_dir/name with mode; returns its path."""
    p = os.path.join(str(handlers_dir), name)
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, p)  # a dispatcher never runs it half written
    return p


def read_lines(path):
    try:
        with open(str(path)) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


_counter = [0]


class Dispatcher(Proc):
    """A long-running twinfs-dispatch MNT HANDLERS_DIR with options, its stderr in a log file
    and its stdout in another."""

    def __init__(self, mnt, handlers_dir, log_dir, *opts, env=None):
        _counter[0] += 1
        n = _counter[0]
        base = os.path.join(str(log_dir), "dispatch-%d" % n)
        super().__init__([need_binary()] + [str(o) for o in opts] + [mnt, str(handlers_dir)],
                         base + ".log", out_path=base + ".out", env=env, preexec_fn=os.setsid)
        self.pgid = None

    def start(self, timeout=60):
        """Starts it and waits for its "watching" line (its watches are in place and its
        first scan is listed)."""
        self.spawn()
        self.pgid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("twinfs-dispatch exited %s before watching: %s"
                                     % (self.proc.returncode, self.log()))
            return "twinfs-dispatch: watching " in self.log()
        wait_for(ready, timeout, "twinfs-dispatch to log its watching line")
        return self

    def kill9(self):
        """kill -9 of the dispatcher alone: the handlers it runs go on."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def kill_group(self):
        """SIGKILL to everything left in its process group (handlers it left running)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, timeout=60, sig=signal.SIGTERM, strict=False):
        try:
            return super().stop(timeout, sig, strict)
        finally:
            self.kill_group()


class Result:
    def __init__(self, rc, out, err, left):
        self.rc, self.out, self.err, self.left = rc, out, err, left

    def __repr__(self):
        return "exit %s, stderr:\n%s" % (self.rc, self.err[-3000:])


def group_members(pgid):
    """The pids of the live (not zombie) processes of process group pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d))
    return out


def pid_alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def run_once(mnt, handlers_dir, *opts, timeout=120, progress=None, idle=180, env=None):
    """twinfs-dispatch --once OPTS MNT HANDLERS_DIR -> Result (see the module docstring).

    With progress (a function returning a number that grows while it works) it waits as long
    as the number keeps changing, failing only after idle seconds without a change; else at
    most timeout seconds. Its process group is killed at the end whatever happened."""
    argv = [need_binary(), "--once"] + [str(o) for o in opts] + [mnt, str(handlers_dir)]
    left = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True, env=env) as p:
        try:
            if progress is None:
                out, err = p.communicate(timeout=timeout)
            else:
                out, err = _communicate_progress(p, progress, idle)
            left = group_members(p.pid)
        except subprocess.TimeoutExpired:
            what = ("did not exit in %ss" % timeout if p.poll() is None else
                    "exited %s, but in %ss its output was still held open by processes it "
                    "left running (%s)" % (p.returncode, timeout, group_members(p.pid)))
            raise AssertionError("twinfs-dispatch --once %s; stderr:\n%s"
                                 % (what, _end(p)[1][-3000:])) from None
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if p.poll() is None:
                p.kill()
                p.wait()
    return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), left)


def _communicate_progress(p, progress, idle):
    last, since = None, time.monotonic()
    while True:
        try:
            return p.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > idle:
            raise AssertionError("twinfs-dispatch --once made no progress for %ss (at %r); "
                                 "stderr:\n%s" % (idle, last, _end(p)[1][-3000:]))


def _end(p):
    """Kills a dispatcher that did not end, and its group; (stdout, stderr) so far. A handler
    of another group may hold the pipes open: the reading stops after 10 s."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.kill()
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        out, err = b"", b"(its stderr is held open by a process left running)"
    return out.decode(errors="replace"), err.decode(errors="replace")
