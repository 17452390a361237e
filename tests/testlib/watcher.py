"""testlib.watcher: `inotifywait -m` on some directories for some events, as a user runs it,
its lines collected as "PATH|EVENTS" (PATH normalized: no trailing slash).

    w = Watcher([m.path("events"), m.events_dir("a")], ["create", "close_write"], tmp_path)
    w.start()                                   # returns once the watches are in place
    lines = w.collect(lambda ls: len(ls) >= 4)  # every line so far
    w.close()

testlib.inotify.Inotify is the recursive IN_CREATE watch of one tree, made with this."""

import itertools
import os
import select
import subprocess
import time

from testlib.proc import Proc
from testlib.wait import wait_for

_counter = itertools.count(1)


class Watcher(Proc):
    def __init__(self, paths, events, log_dir, recursive=False):
        argv = ["inotifywait", "-m", "--format", "%w%f|%e"] + (["-r"] if recursive else [])
        for e in events:
            argv += ["-e", e]
        # a trailing slash makes %w end in one whatever inotifywait does with the path
        argv += [p.rstrip("/") + "/" for p in paths]
        super().__init__(argv, os.path.join(str(log_dir), "watcher-%d.log" % next(_counter)),
                         stdout=subprocess.PIPE)
        self.lines = []
        self.buf = b""

    def start(self, timeout=60):
        """Starts it and waits until its watches are in place (it says so on stderr); an
        AssertionError with what inotifywait said if it cannot watch."""
        self.spawn()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("inotifywait could not watch: " + self.log())
            return "Watches established" in self.log()
        wait_for(ready, timeout, "inotifywait to set up its watches")
        return self

    def collect(self, until, timeout=60):
        """Reads lines until until(lines) holds or timeout passes; returns every line."""
        deadline = time.monotonic() + timeout
        while not until(self.lines) and time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.buf += chunk
                *done, self.buf = self.buf.split(b"\n")
                for x in done:
                    path, _, events = x.decode(errors="surrogateescape").rpartition("|")
                    self.lines.append(os.path.normpath(path) + "|" + events)
        return self.lines

    def close(self):
        self.stop(10)


def paths_with(lines, event):
    """The paths of the lines whose event list is exactly event ("DELETE", "DELETE,ISDIR")."""
    return [ln.rpartition("|")[0] for ln in lines if ln.rpartition("|")[2] == event]
