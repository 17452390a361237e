"""The suite's own helpers (tests/testlib): the waits and the process base that every other
module relies on to tell "done" from "not yet" and to leave nothing running."""

import os
import signal
import subprocess
import time

import pytest

from testlib.paths import PYTHON, child_env
from testlib.proc import Proc
from testlib.wait import wait_for, wait_quiet


def test_wait_for_returns_the_value_and_retries_oserror():
    calls = []

    def pred():
        calls.append(1)
        if len(calls) < 3:
            raise FileNotFoundError("not yet")
        return "ready"
    assert wait_for(pred, 5, "pred") == "ready"
    assert len(calls) == 3


def test_wait_for_times_out_with_the_last_value():
    with pytest.raises(AssertionError, match="the impossible"):
        wait_for(lambda: 0, 0.2, "the impossible")


def test_wait_quiet_waits_until_the_value_stops_changing():
    t0 = time.monotonic()

    def value():  # changes for 0.5 s, then stays
        return min(int((time.monotonic() - t0) * 20), 10)
    assert wait_quiet(value, quiet_s=0.3, timeout=10) == 10
    assert time.monotonic() - t0 >= 0.5 + 0.3


def test_wait_quiet_fails_while_the_value_keeps_changing():
    with pytest.raises(AssertionError, match="still changing"):
        wait_quiet(time.monotonic, quiet_s=0.3, timeout=1)


def test_proc_logs_and_stops_with_sigkill_past_the_timeout(tmp_path):
    # a child that ignores SIGTERM: stop() must still end it, and strict says so
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('up', file=sys.stderr, flush=True); time.sleep(60)"
    p = Proc([PYTHON, "-c", code], tmp_path / "child.log")
    p.spawn()
    wait_for(lambda: "up" in p.log(), 10, "the child to start")
    pid = p.pid
    with pytest.raises(subprocess.TimeoutExpired):
        p.stop(0.5, strict=True)
    assert p.returncode == -signal.SIGKILL and p.proc is None
    assert not os.path.exists("/proc/%d" % pid)  # reaped, not left a zombie


def test_child_env_imports_testlib(tmp_path):
    r = subprocess.run([PYTHON, "-c", "import testlib.mount, faketwin, demo"],
                       env=child_env(), capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
