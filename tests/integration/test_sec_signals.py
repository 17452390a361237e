"""Stopping twinfs by signal when it was started with signals ignored.

A shell script's background job (`twinfs ... &`, `(cmd &)`, a CI runner's job) starts with
SIGINT and SIGQUIT ignored, and ignored signals survive exec. libfuse only installs its stop
handler on a signal whose disposition is the default, so such a twinfs ignored SIGINT: an
operator's `kill -INT` (or the test suite run in the background) left the mount up forever.
twinfs resets SIGINT and SIGTERM: both always stop it cleanly. SIGHUP ignored (nohup) is
respected in the foreground: the point of nohup is to survive a hangup."""

import os
import signal
import subprocess

import pytest

from testlib.cli import mounted_fs, pid_alive, twinfs_pids, wait_asset
from testlib.paths import twinfs_binary
from testlib.wait import wait_for


def start_ignoring(runner, twin, mnt, ignored, *args):
    def preexec():
        for s in ignored:
            signal.signal(s, signal.SIG_IGN)
    p = subprocess.Popen([twinfs_binary(), twin.url, mnt] + list(args), env=runner.env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
    runner.procs.append(p)
    runner.wait_mounted(mnt, p)
    wait_asset(mnt)
    return p


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_inherited_ignore_does_not_stop_the_stop(runner, demo_twin, sig):
    mnt = runner.mountpoint()
    p = start_ignoring(runner, demo_twin, mnt, [signal.SIGINT, signal.SIGQUIT, signal.SIGTERM],
                       "-f")
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert mounted_fs(mnt) is None
    assert "twinfs: unmounted %s" % mnt in err


def test_inherited_ignore_daemonized(runner, demo_twin):
    """The daemon (no -f) started from a background job: kill -INT stops it."""
    mnt = runner.mountpoint()

    def preexec():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    r = subprocess.run([twinfs_binary(), demo_twin.url, mnt], env=runner.env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                       preexec_fn=preexec)
    assert r.returncode == 0, r.stderr
    daemon = twinfs_pids(mnt)[0]
    wait_asset(mnt)
    os.kill(daemon, signal.SIGINT)
    wait_for(lambda: not pid_alive(daemon), 20, "the daemon to stop on SIGINT")
    assert mounted_fs(mnt) is None


def test_nohup_is_respected_in_the_foreground(runner, demo_twin):
    mnt = runner.mountpoint()
    p = start_ignoring(runner, demo_twin, mnt, [signal.SIGHUP], "-f")
    p.send_signal(signal.SIGHUP)
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=1.5)
    assert mounted_fs(mnt)
    assert os.listdir(os.path.join(mnt, "assets"))
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert mounted_fs(mnt) is None
