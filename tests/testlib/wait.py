"""Waiting on conditions, never on the clock: wait_for until something holds, wait_quiet
until something stops changing."""

import time


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns a true value, which is returned; else AssertionError.
    An OSError from pred() counts as not yet (a path that is still being made)."""
    deadline = time.monotonic() + timeout
    last = err = None
    while True:
        try:
            last = pred()
        except OSError as e:
            last, err = None, e
        else:
            err = None
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s (last value %.200r, "
                                 "last error %r)" % (timeout, what, last, err))
        time.sleep(interval)


def wait_quiet(read, quiet_s=1.0, timeout=30.0, what="values", interval=0.05):
    """Polls read() until it returns the same value for quiet_s seconds in a row and returns
    that value; AssertionError if it is still changing after timeout seconds. This is how a
    test shows that nothing more comes: the counters have stopped, not a guessed time has
    passed (on a loaded machine a fixed sleep ends before the daemon has caught up)."""
    deadline = time.monotonic() + timeout
    last = read()
    since = time.monotonic()
    while True:
        time.sleep(interval)
        now = read()
        t = time.monotonic()
        if now != last:
            last, since = now, t
        elif t - since >= quiet_s:
            return now
        if t > deadline:
            raise AssertionError("%s still changing after %ss (last %.300r)"
                                 % (what, timeout, now))
