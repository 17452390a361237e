"""testlib.example: runs docs/examples/follower_example and collects its stdout lines.

    ex = Example(url, tracker, "--no-ack", log_dir=tmp_path)
    ex.start()
    ex.wait_for(lambda ex: "internal eof_replay" in ex.lines, timeout=10)
    ex.wait_quiet()   # until no more lines come
    ex.events()   # [(seq, asset, offset, name, handler), ...] in delivery order
    ex.acks()     # [seq, ...] from "ack SEQ" lines
    ex.stop()     # SIGTERM; returns the exit code
    ex.kill()     # SIGKILL

A reader thread drains stdout until EOF, so after kill() every line the program printed
before it died is in .lines.
"""

import os
import subprocess
import threading
import time

from testlib.paths import example_path
from testlib.proc import Proc
from testlib.wait import wait_quiet


class Example(Proc):
    _n = 0

    def __init__(self, url, tracker, *args, log_dir=None):
        Example._n += 1
        super().__init__([example_path(), url, tracker] + list(args),
                         os.path.join(str(log_dir or "/tmp"), "example-%d.log" % Example._n),
                         stdout=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.thread = None

    def start(self):
        self.spawn()
        self.thread = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.thread.start()
        return self

    def _read(self, out):
        for raw in out:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pred, timeout=20):
        """Waits until pred(self) is true; AssertionError with the output if it never is."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0 or (self.eof and not pred(self)):
                    raise AssertionError("condition not met; output:\n%s\nlog:\n%s"
                                         % ("\n".join(self.lines[-40:]), self.log()[-3000:]))
                self.cond.wait(min(left, 0.2))

    def wait_quiet(self, quiet_s=1.0, timeout=30.0):
        """Waits until no line has come for quiet_s seconds: whatever was on its way is in."""
        def count():
            with self.cond:
                return len(self.lines)
        wait_quiet(count, quiet_s, timeout, "the example's output")

    def wait_exit(self, timeout=20):
        rc = self.proc.wait(timeout)
        self.thread.join(timeout)
        return rc

    def stop(self, timeout=20):
        """SIGTERM; the exit status. A program that SIGTERM does not end is killed and the
        stop is a TimeoutExpired."""
        return super().stop(timeout, strict=True)

    def exited(self):
        if self.thread is not None:
            self.thread.join(20)  # the rest of its output, up to EOF

    # -- parsed output -------------------------------------------------------------------------

    def _fields(self, kind):
        with self.cond:
            lines = list(self.lines)
        return [ln.split(" ") for ln in lines if ln.startswith(kind + " ")]

    def events(self):
        return [(int(f[1]), f[2], int(f[3]), f[4], f[5]) for f in self._fields("event")]

    def acks(self):
        return [int(f[1]) for f in self._fields("ack")]

    def decode_errors(self):
        return {int(f[1]): " ".join(f[2:]) for f in self._fields("decode_error")}

    def t2(self):
        """The t2 line's fields after "t2", or None."""
        f = self._fields("t2")
        return f[0][1:] if f else None

    def has(self, line):
        with self.cond:
            return line in self.lines
