"""The default tracker's directory, $XDG_STATE_HOME/twinfs when no tracker= is given.

The tracker makes the missing directories itself, checking each directory on the way before it
makes anything below it; nothing makes them earlier. So a state directory below a directory
another user can write is refused at mount (exit status 1, the message naming that directory)
and nothing is made there; a state directory in a safe place is made private (mode 0700)."""

import os
import stat

from testlib.cli import FAILURE, mounted_fs, twinfs_pids
from testlib.mount import unmount
from testlib.wait import wait_for


def test_state_dir_below_a_writable_dir_is_refused_and_left_alone(runner, demo_twin, tmp_path):
    shared = os.path.realpath(str(tmp_path / "shared"))
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    env = dict(runner.env, XDG_STATE_HOME=os.path.join(shared, "state"))
    mnt = runner.mountpoint()

    r = runner.run(demo_twin.url, mnt, env=env)

    assert r.returncode == FAILURE, (r.stdout, r.stderr)
    assert "refused: %s: directory writable by group or others" % shared in r.stderr, r.stderr
    assert mounted_fs(mnt) is None
    assert os.listdir(shared) == []  # nothing made where another user can write


def test_state_dir_made_private(runner, demo_twin, tmp_path):
    base = os.path.realpath(str(tmp_path / "home"))
    os.mkdir(base, 0o700)
    state = os.path.join(base, "state")
    env = dict(runner.env, XDG_STATE_HOME=state)
    mnt = runner.mountpoint()

    r = runner.run(demo_twin.url, mnt, env=env)

    assert r.returncode == 0, (r.stdout, r.stderr)
    try:
        for d in (state, os.path.join(state, "twinfs")):
            mode = os.lstat(d).st_mode
            assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700, (d, oct(mode))
        # Beside the journal, twinfs.log where no syslog listens (twinfs(1), LOGGING).
        journals = [n for n in os.listdir(os.path.join(state, "twinfs")) if n != "twinfs.log"]
        assert len(journals) == 1 and journals[0].startswith("127.0.0.1-%d-" % demo_twin.port)
    finally:
        unmount(mnt)
    wait_for(lambda: not twinfs_pids(mnt, with_caller=True), 10, "twinfs to exit after unmount")
