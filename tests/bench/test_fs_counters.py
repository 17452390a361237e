"""The per-opcode request counters of .twinfs/status count every request the consume loop
makes, the benchmark's "FUSE requests per consumed event" included: Python's open() asks
isatty() (ioctl TCGETS), which reached the daemon uncounted (libfuse answered it).

Run with: TWINFS_BUILD=BUILD /usr/bin/python3 -m pytest tests/bench/test_fs_counters.py
(it lives with the benchmark it keeps honest; it uses the integration tests' helpers)."""

import errno
import fcntl
import os
import termios

import pytest

from testlib.events import publish_pings, setup_ping
from testlib.mount import event_name, mounted


def test_ioctl_is_counted_and_answers_enotty(twin, tmp_path):
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 3)
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: m.status()["visible_events"] == 3, 15, "3 events")
        path = os.path.join(m.events_dir("a"), event_name(0, "Ping"))
        before = m.status()["requests"]
        with open(path, "rb") as f:  # buffered open: isatty(), an ioctl
            assert f.read()
            assert not f.isatty()
            with pytest.raises(OSError) as e:
                fcntl.ioctl(f.fileno(), termios.TCGETS, bytes(64))
            assert e.value.errno == errno.ENOTTY  # as before: not a terminal
        after = m.status()["requests"]
        assert after.get("ioctl", 0) - before.get("ioctl", 0) >= 3
