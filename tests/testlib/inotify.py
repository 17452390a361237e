"""testlib.inotify: `inotifywait -m -r -e create DIR` as a handler would run it, its lines
collected as "PATH|EVENTS" (testlib.watcher does the work)."""

from testlib.watcher import Watcher


class Inotify(Watcher):
    """The recursive IN_CREATE watch of one directory tree."""

    def __init__(self, root, log_dir):
        super().__init__([root], ["create"], log_dir, recursive=True)
