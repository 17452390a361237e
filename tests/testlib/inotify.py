"""testlib.inotify: `inotifywait -m -r -e create DIR` as a handler would run it, its lines
collected as "PATH|EVENTS"."""

import itertools
import os
import select
import subprocess
import time

from testlib.proc import Proc
from testlib.wait import wait_for

_counter = itertools.count(1)


class Inotify(Proc):
    def __init__(self, root, log_dir):
        super().__init__(["inotifywait", "-m", "-r", "-e", "create", "--format", "%w%f|%e",
                          root], os.path.join(str(log_dir), "inotify-%d.log" % next(_counter)),
                         stdout=subprocess.PIPE)
        self.lines = []
        self.buf = b""

    def start(self, timeout=20):
        """Starts it and waits until its watches are in place (it says so on stderr)."""
        self.spawn()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("inotifywait exited: " + self.log())
            return "Watches established" in self.log()
        wait_for(ready, timeout, "inotifywait to start")
        return self

    def collect(self, until, timeout=20):
        """Reads lines until until(lines) holds or timeout passes; returns every line."""
        deadline = time.monotonic() + timeout
        while not until(self.lines) and time.monotonic() < deadline:
            # raw reads: a buffered reader would hide lines from select
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                self.buf += os.read(self.proc.stdout.fileno(), 65536)
                *done, self.buf = self.buf.split(b"\n")
                self.lines += [x.decode() for x in done]
        return self.lines

    def close(self):
        self.stop(10)
