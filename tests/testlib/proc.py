"""The one base for the processes the tests start (the twin, twinfs, the follower example,
inotifywait), and progress(), the one way a long-running tool prints how it is doing.

A Proc's stderr goes to log_path, and its stdout too unless it has a file of its own
(out_path) or a pipe (stdout=PIPE, for a process whose output is its answer): a pipe that
nobody reads until the end fills up, and the child blocks in the middle of its work."""

import os
import signal
import subprocess
import sys


def progress(who, msg):
    """One line on stderr, flushed: "who: msg"."""
    print("%s: %s" % (who, msg), file=sys.stderr, flush=True)


def read_text(path):
    """The text of a log file so far, "" if there is none yet."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def pids_of_program(program):
    """The pids of the processes whose argv[0] is program (a path, as it was run)."""
    want = os.fsencode(program)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if f.read().split(b"\0")[0] == want:
                    pids.append(int(d))
        except OSError:
            continue
    return pids


def vm_kib(pid, field="VmRSS"):
    """A size field of /proc/PID/status (VmRSS, VmHWM, ...) in KiB; 0 if it has none."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Proc:
    """A child process with its output in files; see the module docstring."""

    def __init__(self, argv, log_path, out_path=None, stdout=None, env=None, preexec_fn=None):
        self._argv = [str(a) for a in argv]
        self.log_path = str(log_path)
        self.out_path = str(out_path) if out_path else None
        self.stdout = stdout
        self.env = env
        self.preexec_fn = preexec_fn
        self.proc = None
        self._rc = None

    def argv(self):
        """The command line; a subclass that builds it from its options overrides this."""
        return self._argv

    def spawn(self):
        """Starts argv() (stdin is /dev/null) and returns its Popen."""
        with open(self.log_path, "ab") as err:
            out = open(self.out_path, "ab") if self.out_path else None
            try:
                self.proc = subprocess.Popen(
                    self.argv(), stdin=subprocess.DEVNULL, stderr=err, env=self.env,
                    stdout=self.stdout if self.stdout is not None else (out or err),
                    preexec_fn=self.preexec_fn)
            finally:
                if out:
                    out.close()
        return self.proc

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.returncode if self.proc else self._rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def poll(self):
        return self.proc.poll()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=None):
        return self.proc.wait(timeout)

    def log(self):
        """Its stderr so far."""
        return read_text(self.log_path)

    def output(self):
        """(stdout, stderr) so far, as text (needs out_path)."""
        return read_text(self.out_path), self.log()

    def communicate(self, timeout=None):
        """Waits for the exit; returns output()."""
        self.wait(timeout)
        return self.output()

    def stop(self, timeout=10, sig=signal.SIGTERM, strict=False):
        """Sends sig (None: sends nothing, the process is ending by itself), waits up to
        timeout, then SIGKILL; reaps and forgets the process. Returns the exit status, None
        if none was running. strict: a process that needed SIGKILL is a TimeoutExpired."""
        if self.proc is None:
            return None
        killed = False
        if self.proc.poll() is None:
            if sig is not None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        rc = self._rc = self.proc.returncode
        self.exited()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        if killed and strict:
            raise subprocess.TimeoutExpired(self.argv(), timeout)
        return rc

    def exited(self):
        """Called by stop() once the process is reaped, before its pipes are closed: a
        subclass that reads a pipe in a thread finishes reading here."""

    def kill(self):
        """SIGKILL and reap: a crash."""
        return Proc.stop(self, 10, signal.SIGKILL)
