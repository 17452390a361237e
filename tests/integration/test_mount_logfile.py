"""-o logfile=FILE: the daemon's log in a file of the user's choice, and where the log goes when
no syslog listens.

- Each line is "TIME twinfs[PID]: [LEVEL: ]message", appended with one write (O_APPEND), so
  remounts add to the file, and logrotate's copytruncate leaves no hole of NULs.
- SIGHUP reopens FILE by its path (logrotate's postrotate `kill -HUP`): after `mv FILE FILE.1`
  the next lines go to a new FILE, and the mount stays up. Without a log file SIGHUP stops
  twinfs, as a hangup stops any foreground program.
- A relative FILE is the caller's, although the daemon runs in /.
- A FILE that cannot be opened fails the mount (exit status 1), naming it.
- Daemonized without logfile= and without a syslog daemon on /dev/log (a container), the log
  goes to $XDG_STATE_HOME/twinfs/twinfs.log, and the first line on stderr says so. The test
  hides /dev/log in a mount namespace of its own when the machine has one."""

import os
import pty
import re
import signal
import stat
import subprocess

from testlib.cli import FAILURE, assert_fails, mounted_fs, pid_alive, twinfs_pids, wait_asset
from testlib.mount import unmount as unmount_busy_or_not
from testlib.paths import twinfs_binary
from testlib.proc import read_text
from testlib.wait import wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} twinfs\[(\d+)\]: (.*)$")


def lines(path):
    """The (pid, message) of each line of the log file; every line must have the format."""
    out = []
    for line in read_text(path).splitlines():
        m = LINE.match(line)
        assert m, "not a log line: %r" % line
        out.append((int(m.group(1)), m.group(2)))
    return out


def messages(path):
    return [msg for _, msg in lines(path)]


def wait_line(path, text, what=None, count=1):
    wait_for(lambda: messages(path).count(text) >= count, 20, what or repr(text))


def daemon_of(mnt):
    pids = twinfs_pids(mnt)
    assert len(pids) == 1, pids
    return pids[0]


def twin_down_and_up(twin, log):
    """A known warning and its recovery: the twin stops, then starts again on its port."""
    down = messages(log).count("warning: link to the twin down")
    up = messages(log).count("link to the twin up")
    twin.stop()
    wait_line(log, "warning: link to the twin down", count=down + 1)
    twin.start()
    wait_line(log, "link to the twin up", count=up + 1)


def unmount(mnt, pid):
    unmount_busy_or_not(mnt)
    wait_for(lambda: not pid_alive(pid), 20, "the daemon to exit")


def test_log_lands_in_the_file_and_is_appended_across_remounts(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    log = str(tmp_path / "twinfs.log")

    r = runner.run(demo_twin.url, mnt, "-o", "logfile=" + log)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # the user chose the file: nothing to tell
    first = daemon_of(mnt)
    wait_asset(mnt)
    assert (first, "mounted %s on %s" % (demo_twin.url, mnt)) in lines(log)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    twin_down_and_up(demo_twin, log)
    unmount(mnt, first)
    assert messages(log)[-1] == "unmounted " + mnt
    before = read_text(log)

    r = runner.run(demo_twin.url, mnt, "-o", "logfile=" + log)
    assert r.returncode == 0, r.stderr
    second = daemon_of(mnt)
    wait_line(log, "mounted %s on %s" % (demo_twin.url, mnt), count=2)
    assert read_text(log).startswith(before)
    assert (second, "mounted %s on %s" % (demo_twin.url, mnt)) in lines(log)
    assert second != first
    unmount(mnt, second)


def test_sighup_reopens_the_file_and_the_mount_stays(runner, demo_twin, tmp_path):
    """logrotate's default: mv FILE FILE.1, then kill -HUP: the new lines go to a new FILE."""
    mnt = runner.mountpoint()
    log = str(tmp_path / "twinfs.log")
    r = runner.run(demo_twin.url, mnt, "-o", "logfile=" + log)
    assert r.returncode == 0, r.stderr
    pid = daemon_of(mnt)
    wait_asset(mnt)
    wait_line(log, "mounted %s on %s" % (demo_twin.url, mnt))

    os.rename(log, log + ".1")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: os.path.exists(log), 20, "the reopened log file")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    twin_down_and_up(demo_twin, log)

    assert mounted_fs(mnt)
    assert pid_alive(pid)
    assert "acme-pump-01" in os.listdir(os.path.join(mnt, "assets"))
    assert "warning: link to the twin down" not in messages(log + ".1")
    assert all(p == pid for p, _ in lines(log))
    unmount(mnt, pid)
    assert messages(log)[-1] == "unmounted " + mnt


def test_copytruncate_leaves_no_hole(runner, demo_twin, tmp_path):
    """logrotate's copytruncate empties the file under the open descriptor: O_APPEND writes
    the next line at the new end, not at the old offset after a run of NULs."""
    mnt = runner.mountpoint()
    log = str(tmp_path / "twinfs.log")
    r = runner.run(demo_twin.url, mnt, "-o", "logfile=" + log)
    assert r.returncode == 0, r.stderr
    pid = daemon_of(mnt)
    wait_line(log, "replay of the backlog done")

    os.truncate(log, 0)
    twin_down_and_up(demo_twin, log)
    with open(log, "rb") as f:
        data = f.read()
    assert b"\0" not in data
    assert messages(log)[0] == "warning: link to the twin down"
    unmount(mnt, pid)


def test_relative_path_is_the_callers(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([twinfs_binary(), demo_twin.url, mnt, "-o", "logfile=rel.log"],
                       cwd=str(work), env=runner.env, capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    pid = daemon_of(mnt)
    wait_line(str(work / "rel.log"), "mounted %s on %s" % (demo_twin.url, mnt))
    assert not os.path.exists("/rel.log")
    unmount(mnt, pid)


def test_foreground_logs_to_the_file_and_sighup_reopens(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    log = str(tmp_path / "fg.log")
    p = runner.popen(demo_twin.url, mnt, "-f", "-o", "logfile=" + log)
    runner.wait_mounted(mnt, p)
    wait_line(log, "mounted %s on %s" % (demo_twin.url, mnt))

    os.rename(log, log + ".1")
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: os.path.exists(log), 20, "the reopened log file")
    twin_down_and_up(demo_twin, log)
    assert p.poll() is None
    assert mounted_fs(mnt)

    assert p.stop(timeout=20) == 0
    assert mounted_fs(mnt) is None
    assert messages(log)[-1] == "unmounted " + mnt
    assert "mounted" not in p.log()  # the log went to the file, not to stderr


def test_sighup_without_a_log_file_stops_cleanly(runner, demo_twin):
    """Documented in twinfs(1): with the log on stderr, SIGHUP is a hangup and stops twinfs
    as SIGTERM does."""
    mnt = runner.mountpoint()
    p = runner.popen(demo_twin.url, mnt, "-f")
    runner.wait_mounted(mnt, p)
    wait_asset(mnt)
    p.send_signal(signal.SIGHUP)
    p.wait(timeout=20)
    assert p.returncode == 0, p.log()
    assert mounted_fs(mnt) is None
    assert "twinfs: unmounted %s" % mnt in p.log()


def test_a_file_that_cannot_be_opened_fails_the_mount(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    target = tmp_path / "target.log"
    target.write_text("")
    os.symlink(str(target), str(tmp_path / "link.log"))
    cases = [
        (str(tmp_path / "missing" / "x.log"), "No such file or directory"),
        (str(tmp_path), "Is a directory"),
        (str(tmp_path / "link.log"), "a symbolic link"),
    ]
    for path, why in cases:
        for fg in ([], ["-f"]):
            r = runner.run(demo_twin.url, mnt, "-o", "logfile=" + path, *fg)
            assert_fails(runner, r, mnt, FAILURE, "logfile=" + path, why)
    assert target.read_text() == ""


def run_without_syslog(runner, *args, tty=False):
    """twinfs in a mount namespace of its own, where /dev/log (if the machine has one) is
    /dev/null: no syslog daemon listens there. The daemon and its mount stay in that
    namespace; the mount is reached as /proc/PID/root/MNT. tty: stderr is a terminal (a pty),
    whose text is returned as the stderr."""
    script = ('if [ -e /dev/log ]; then mount --bind /dev/null /dev/log || exit 99; fi; '
              'exec "$@"')
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            twinfs_binary()] + list(args)
    if not tty:
        return subprocess.run(argv, env=runner.env, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, env=runner.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        out, _ = p.communicate(timeout=30)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    return subprocess.CompletedProcess(argv, p.returncode, out,
                                       err.decode().replace("\r\n", "\n"))


NOTE = "no syslog listens on /dev/log: the log goes to this file (choose with -o logfile=FILE)"


def test_without_syslog_the_log_goes_to_the_state_directory(runner, demo_twin, tmp_path):
    """At a terminal the first line names the file; the file's own lines say why it is used."""
    mnt = runner.mountpoint()
    state = os.path.join(runner.env["XDG_STATE_HOME"], "twinfs")
    log = os.path.join(state, "twinfs.log")

    r = run_without_syslog(runner, demo_twin.url, mnt, tty=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "twinfs: no syslog listens on /dev/log: the log goes to %s "
        "(choose with -o logfile=FILE)" % log], r.stderr
    wait_line(log, "mounted %s on %s" % (demo_twin.url, mnt))
    assert messages(log)[0] == NOTE
    pid = lines(log)[-1][0]
    wait_for(lambda: os.listdir("/proc/%d/root%s/assets" % (pid, mnt)), 20,
             "the assets through the daemon's namespace")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600

    # Logging to a file, SIGHUP reopens it here too.
    os.rename(log, log + ".1")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: os.path.exists(log), 20, "the reopened log file")
    assert pid_alive(pid)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), 20, "the daemon to exit")
    assert messages(log)[-1] == "unmounted " + mnt
    assert "mounted %s on %s" % (demo_twin.url, mnt) not in messages(log)


def test_without_syslog_a_script_gets_no_output(runner, demo_twin):
    """A script's (or cron's) stderr stays for errors: a mount prints nothing, an error is
    its one line; the file still says why it holds the log."""
    mnt = runner.mountpoint()
    log = os.path.join(runner.env["XDG_STATE_HOME"], "twinfs", "twinfs.log")
    r = run_without_syslog(runner, demo_twin.url, mnt)
    assert (r.returncode, r.stderr) == (0, "")
    wait_line(log, "mounted %s on %s" % (demo_twin.url, mnt))
    assert NOTE in messages(log)
    pid = lines(log)[-1][0]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), 20, "the daemon to exit")

    r = run_without_syslog(runner, demo_twin.url, mnt, "-o", "bogus")
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_foreground_without_syslog_keeps_stderr(runner, demo_twin):
    """With -f the log is on stderr as always: no fallback file, no line about it."""
    mnt = runner.mountpoint()
    p = runner.popen(demo_twin.url, mnt, "-f")
    runner.wait_mounted(mnt, p)
    assert p.stop(timeout=20) == 0
    assert "twinfs: mounted %s on %s" % (demo_twin.url, mnt) in p.log()
    assert "no syslog" not in p.log()
    assert not os.path.exists(os.path.join(runner.env["XDG_STATE_HOME"], "twinfs",
                                           "twinfs.log"))
