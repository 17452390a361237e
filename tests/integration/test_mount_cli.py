"""The twinfs command: start-up errors, --help, -V, daemonized and foreground mounts, clean stops
(fusermount3 -u, SIGTERM, SIGINT), the token's secrecy, and config files.

Every bad invocation must exit non-zero with one line naming the cause and leave no mount and
no process behind. Every mount made here is unmounted at teardown, also when a test fails."""

import errno
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from testlib.cli import (FAILURE, USAGE, assert_fails, closed_port, mounted_fs, pid_alive,
                         twinfs_pids, wait_asset, wait_settled, write_token)
from testlib.events import publish_pings, setup_ping
from testlib.mount import unmount
from testlib.paths import twinfs_binary
from testlib.twin import Twin
from testlib.wait import wait_for

# -- start-up errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("url,words", [
    ("ftp://127.0.0.1:1", ["ftp://127.0.0.1:1", "bad URL", "http://"]),
    ("127.0.0.1:8765", ["bad URL"]),
    ("http://", ["bad URL", "no host"]),
    ("http://user:pw@127.0.0.1:1", ["bad URL", "user:password@"]),
    ("http://127.0.0.1:99999", ["bad URL", "port"]),
    ("http://127.0.0.1:1/x?y", ["bad URL", "query"]),
])
def test_bad_url(runner, url, words):
    mnt = runner.mountpoint()
    assert_fails(runner, runner.run(url, mnt), mnt, USAGE, *words)
    assert_fails(runner, runner.run(url, mnt, "-f"), mnt, USAGE, *words)


@pytest.mark.parametrize("foreground", [False, True])
def test_unreachable_twin(runner, foreground):
    mnt = runner.mountpoint()
    url = "http://127.0.0.1:%d" % closed_port()
    args = [url, mnt] + (["-f"] if foreground else [])
    assert_fails(runner, runner.run(*args), mnt, FAILURE, url, "cannot reach the twin")


@pytest.mark.parametrize("foreground", [False, True])
def test_bad_token(runner, token_twin, tmp_path, foreground):
    mnt = runner.mountpoint()
    fg = ["-f"] if foreground else []
    bad = write_token(tmp_path / "bad.token", "not-the-token")
    r = runner.run(token_twin.url, mnt, "-o", "token_file=" + bad, *fg)
    assert_fails(runner, r, mnt, FAILURE, token_twin.url, "refused the token")
    # No token at all is refused the same way.
    r = runner.run(token_twin.url, mnt, *fg)
    assert_fails(runner, r, mnt, FAILURE, "token")
    # A token file that cannot be read.
    r = runner.run(token_twin.url, mnt, "-o", "token_file=%s/none" % tmp_path, *fg)
    assert_fails(runner, r, mnt, FAILURE, "token_file=", "No such file or directory")


def test_not_a_twin(runner, tmp_path):
    """Something answers HTTP, but not the twin protocol."""
    mnt = runner.mountpoint()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    proc = runner.popen("http://127.0.0.1:%d" % port, mnt, "-f")
    try:
        conn, _ = srv.accept()
        conn.settimeout(10)
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
                     b"Connection: close\r\n\r\nhello")
        conn.close()
        out, err = proc.communicate(timeout=30)
    finally:
        srv.close()
    assert proc.returncode == FAILURE, err
    assert len(err.strip().splitlines()) == 1, err
    assert "not a twin" in err
    assert mounted_fs(mnt) is None


def test_mountpoint_errors(runner, demo_twin, tmp_path):
    missing = str(tmp_path / "missing")
    assert_fails(runner, runner.run(demo_twin.url, missing), missing, FAILURE, missing,
                 "mountpoint", "No such file or directory")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_fails(runner, runner.run(demo_twin.url, str(afile)), str(afile), FAILURE,
                 "mountpoint", "Not a directory")
    # Already a mount point: the second twinfs refuses, the first stays mounted and working.
    mnt = runner.mountpoint()
    r = runner.run(demo_twin.url, mnt)
    assert r.returncode == 0, r.stderr
    r2 = runner.run(demo_twin.url, mnt, "-o", "tracker=%s/other.journal" % tmp_path)
    assert r2.returncode == FAILURE
    assert "already a mount point" in r2.stderr and len(r2.stderr.strip().splitlines()) == 1
    assert len(twinfs_pids(mnt)) == 1
    wait_asset(mnt)


def test_missing_arguments(runner):
    r = runner.run()
    assert_fails(runner, r, None, USAGE, "missing URL", "usage")
    r = runner.run("http://127.0.0.1:1")
    assert_fails(runner, r, None, USAGE, "missing MOUNTPOINT")
    mnt = runner.mountpoint()
    r = runner.run("http://127.0.0.1:1", mnt, "extra")
    assert_fails(runner, r, mnt, USAGE, "extra: unexpected argument")


@pytest.mark.parametrize("opt,message", [
    ("max_pending=abc", "max_pending=abc: not a number"),
    ("max_pending=0", "max_pending=0: must be between 1 and 10000000"),
    ("max_pending=-5", "max_pending=-5: not a number"),
    ("t2_timeout=0", "t2_timeout=0: must be more than 0"),
    ("t2_timeout=soon", "t2_timeout=soon: not a number of seconds"),
    ("entry_timeout=-1", "entry_timeout=-1: not a number of seconds"),
    ("materialize_delay=1.5", "materialize_delay=1.5: not a number"),
    ("max_t2_open=100000", "max_t2_open=100000: must be between 1 and 4096"),
    ("start=later", "start=later: must be beginning or now"),
    ("t2=yes", "t2=yes: t2 takes no value"),
    ("token_file", "token_file: needs a value"),
    ("cacert=", "cacert=: needs a value"),
    ("schemas=/nonexistent-dir", "schemas=/nonexistent-dir: No such file or directory"),
    ("cacert=/nonexistent.pem", "cacert=/nonexistent.pem: No such file or directory"),
])
def test_bad_option_values(runner, demo_twin, opt, message):
    mnt = runner.mountpoint()
    r = runner.run(demo_twin.url, mnt, "-o", opt)
    status = FAILURE if "No such file" in message else USAGE
    assert_fails(runner, r, mnt, status, message)


@pytest.mark.parametrize("args,words", [
    (["-o", "bogus"], ["unknown option", "bogus"]),
    (["-o", "allow_other,no_such_fuse_opt=1"], ["unknown option", "no_such_fuse_opt=1"]),
    (["--bogus"], ["--bogus: unknown option"]),
    (["-x"], ["-x: unknown option"]),
    (["-o"], ["missing argument", "-o"]),
])
def test_unknown_option(runner, demo_twin, args, words):
    mnt = runner.mountpoint()
    r = runner.run(demo_twin.url, mnt, *args)
    assert_fails(runner, r, mnt, USAGE, *words)


# -- --help and -V -------------------------------------------------------------------------------

def test_help_lists_every_option(runner):
    for flag in ("-h", "--help"):
        r = runner.run(flag)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert out.startswith("usage: twinfs URL MOUNTPOINT")
        for opt in ["token_file=FILE", "cacert=FILE", "tracker=FILE", "schemas=DIR",
                    "-o t2, -o no_t2", "t2_timeout=S", "max_pending=N", "max_pending_mb=N",
                    "start=beginning|now",
                    "materialize_delay=MS", "entry_timeout=S", "max_t2_open=N", "config=FILE",
                    "-f ", "-d, -o debug", "-s ", "-V, --version", "TWINFS_TOKEN",
                    "XDG_STATE_HOME", "exit status"]:
            assert opt in out, opt
        # Every default, as the parser really uses it.
        for default in ["(default: t2)", "(default: 10)", "(default: 10000)",
                        "(default: beginning)", "(default: 100)", "(default: 86400)",
                        "(default: 64)"]:
            assert default in out, default
        # libfuse's own options follow.
        assert "FUSE options:" in out and "allow_other" in out


def test_version(runner):
    for flag in ("-V", "--version"):
        r = runner.run(flag)
        assert r.returncode == 0, r.stderr
        assert "twinfs version 0.2.0" in r.stdout
        assert "libfuse version 3." in r.stdout


# -- good mounts and clean stops -----------------------------------------------------------------

def test_daemonized_mount_and_fusermount(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    t0 = time.monotonic()
    r = runner.run(demo_twin.url, mnt)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    # The command returns only once the mount is there, named after the twin.
    assert mounted_fs(mnt) == (demo_twin.url, "fuse.twinfs")
    assert time.monotonic() - t0 < 20
    # At once, no waiting: the daemon and its materializer's caller, named, are both there
    # when the command returns (the caller used to be forked after, a copy of the daemon until
    # it named itself, and scripts saw two daemons).
    pids = twinfs_pids(mnt)
    assert len(pids) == 1
    daemon = pids[0]
    assert len(twinfs_pids(mnt, with_caller=True)) == 2
    # A daemon: its own session, in /, stdio on /dev/null.
    with open("/proc/%d/stat" % daemon) as f:
        fields = f.read().split(")")[-1].split()
    assert int(fields[3]) == daemon  # session id
    assert os.readlink("/proc/%d/cwd" % daemon) == "/"
    for fd in (0, 1, 2):
        assert os.readlink("/proc/%d/fd/%d" % (daemon, fd)) == "/dev/null"
    assets = sorted(a["id"] for a in demo_twin.get_json("/v1/assets")["assets"])
    wait_for(lambda: sorted(os.listdir(os.path.join(mnt, "assets"))) == assets, 10,
             "the demo assets")
    # The default tracker: one per URL, under XDG_STATE_HOME.
    # Beside it, twinfs.log where no syslog listens (twinfs(1), LOGGING).
    trackers = [n for n in os.listdir(str(tmp_path / "state" / "twinfs")) if n != "twinfs.log"]
    assert len(trackers) == 1
    assert trackers[0].startswith("127.0.0.1-%d-" % demo_twin.port)
    assert trackers[0].endswith(".journal")
    # Its materializer's caller: one child process that holds no file of the daemon's, the
    # FUSE device above all (so that the daemon's death always ends the mount).
    callers = [p for p in twinfs_pids(mnt, with_caller=True) if p != daemon]
    assert len(callers) == 1, callers
    with open("/proc/%d/stat" % callers[0]) as f:
        assert int(f.read().split(")")[-1].split()[1]) == daemon  # its parent
    fds = {os.readlink("/proc/%d/fd/%s" % (callers[0], fd))
           for fd in os.listdir("/proc/%d/fd" % callers[0])}
    assert "/dev/fuse" not in fds and len(fds) <= 4, fds

    unmount(mnt)
    wait_for(lambda: not pid_alive(daemon), 10, "the daemon to exit after fusermount3 -u")
    assert mounted_fs(mnt) is None
    wait_for(lambda: not twinfs_pids(mnt, with_caller=True), 5, "the caller to exit too")


def test_daemonized_sigterm(runner, demo_twin):
    mnt = runner.mountpoint()
    r = runner.run(demo_twin.url, mnt)
    assert r.returncode == 0, r.stderr
    daemon = twinfs_pids(mnt)[0]
    wait_asset(mnt)
    os.kill(daemon, signal.SIGTERM)
    wait_for(lambda: not pid_alive(daemon), 10, "the daemon to exit on SIGTERM")
    assert mounted_fs(mnt) is None


@pytest.mark.parametrize("how", ["fusermount", "SIGTERM", "SIGINT", "SIGHUP"])
def test_foreground_mount_stops_cleanly(runner, demo_twin, how):
    mnt = runner.mountpoint()
    p = runner.popen(demo_twin.url, mnt, "-f", "-o", "max_pending=100")
    assert runner.wait_mounted(mnt, p) == (demo_twin.url, "fuse.twinfs")
    events = os.path.join(mnt, "assets", "acme-pump-01", "events")
    wait_for(lambda: os.listdir(events), 10, "events of acme-pump-01")
    if how == "fusermount":
        unmount(mnt)
    else:
        p.send_signal(getattr(signal, how))
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert mounted_fs(mnt) is None
    # -f logs to stderr.
    assert "twinfs: mounted %s on %s" % (demo_twin.url, mnt) in err
    assert "twinfs: unmounted %s" % mnt in err


def test_acks_survive_sigterm(runner, demo_twin, tmp_path):
    """SIGTERM flushes the tracker: an event removed before it stays gone after a remount."""
    mnt = runner.mountpoint()
    tracker = str(tmp_path / "t.journal")
    r = runner.run(demo_twin.url, mnt, "-o", "tracker=" + tracker)
    assert r.returncode == 0, r.stderr
    events = os.path.join(mnt, "assets", "acme-pump-01", "events")
    # Listing before the backlog is materialized can see only some events (CI saw it).
    wait_settled(mnt)
    names = sorted(os.listdir(events))
    assert len(names) >= 2, names
    os.unlink(os.path.join(events, names[0]))
    daemon = twinfs_pids(mnt)[0]
    os.kill(daemon, signal.SIGTERM)
    wait_for(lambda: not pid_alive(daemon), 10, "the daemon to exit")
    r = runner.run(demo_twin.url, mnt, "-o", "tracker=" + tracker)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: sorted(os.listdir(events)) == names[1:], 10, "the unacked events only")


def test_tracker_ahead_of_the_twin_is_refused(runner, tmp_path):
    """A tracker that has handled more than the twin's whole log (the twin was reset or
    restored, or the tracker is another twin's) is refused at start: resuming after its
    watermark would skip every record the twin sends up to there. It failed silently before:
    the mount came up and the fresh twin's events never showed."""
    tracker = str(tmp_path / "t.journal")
    first = Twin(tmp_path, test_hooks=True)
    first.start()
    try:
        setup_ping(first, ["a"])
        publish_pings(first, "a", 5)
        mnt = runner.mountpoint()
        r = runner.run(first.url, mnt, "-o", "tracker=" + tracker)
        assert r.returncode == 0, r.stderr
        wait_settled(mnt)
        events = os.path.join(mnt, "assets", "a", "events")
        for name in os.listdir(events):
            os.unlink(os.path.join(events, name))  # the watermark moves to seq 6
        unmount(mnt)
        wait_for(lambda: not twinfs_pids(mnt), 10, "twinfs to exit")
    finally:
        first.stop()
    with open(tracker, "rb") as f:
        before = f.read()
    fresh = Twin(tmp_path, test_hooks=True)  # a twin reset: same kind of data, a shorter log
    fresh.start()
    try:
        setup_ping(fresh, ["a"])
        publish_pings(fresh, "a", 2)
        r = runner.run(fresh.url, mnt, "-o", "tracker=" + tracker)
        assert_fails(runner, r, mnt, FAILURE, "reset or restored", tracker)
        with open(tracker, "rb") as f:
            assert f.read() == before  # left as it was
    finally:
        fresh.stop()


def test_relative_paths(runner, demo_twin, tmp_path):
    """The daemon runs in /, so relative MOUNTPOINT and tracker are made absolute first."""
    runner.mountpoint("rel")
    r = subprocess.run([twinfs_binary(), demo_twin.url, "rel", "-o", "tracker=rel.journal"],
                       cwd=str(tmp_path), env=runner.env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    mnt = str(tmp_path / "rel")
    assert mounted_fs(mnt)
    assert (tmp_path / "rel.journal").exists()
    unmount(mnt)


# -- the token -----------------------------------------------------------------------------------

def assert_token_hidden(token, daemon, mnt, *texts):
    with open("/proc/%d/cmdline" % daemon, "rb") as f:
        assert token.encode() not in f.read()
    with open("/proc/%d/environ" % daemon, "rb") as f:
        assert token.encode() not in f.read()
    ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout
    assert str(daemon) in ps and token not in ps
    pse = subprocess.run(["ps", "eww", "-p", str(daemon)], capture_output=True, text=True).stdout
    assert token not in pse
    with open(os.path.join(mnt, ".twinfs", "status")) as f:
        status = f.read()
    assert status.startswith("{") and token not in status
    for t in texts:
        assert token not in t


def test_token_file_never_exposed(runner, token_twin, tmp_path):
    mnt = runner.mountpoint()
    tok = write_token(tmp_path / "good.token", token_twin.token)
    r = runner.run(token_twin.url, mnt, "-o", "token_file=" + tok)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # mode 600: no warning
    daemon = twinfs_pids(mnt)[0]
    wait_asset(mnt)  # the token worked
    assert_token_hidden(token_twin.token, daemon, mnt, r.stdout, r.stderr)


def test_token_from_environment(runner, token_twin):
    mnt = runner.mountpoint()
    env = dict(runner.env, TWINFS_TOKEN=token_twin.token)
    p = runner.popen(token_twin.url, mnt, "-f", "-d", env=env)
    runner.wait_mounted(mnt, p)
    wait_asset(mnt)
    assert_token_hidden(token_twin.token, p.pid, mnt)
    unmount(mnt)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    # Even the debug log (every FUSE request) does not have it.
    assert "unique" in err or "INIT" in err or "opcode" in err
    assert token_twin.token not in err and token_twin.token not in out


def test_world_readable_token_file_warns(runner, token_twin, tmp_path):
    mnt = runner.mountpoint()
    tok = write_token(tmp_path / "shared.token", token_twin.token, 0o644)
    r = runner.run(token_twin.url, mnt, "-o", "token_file=" + tok)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("twinfs: warning: token_file=" + tok)
    assert "readable by group or others" in lines[0]
    assert token_twin.token not in r.stderr
    assert mounted_fs(mnt)


# -- config files --------------------------------------------------------------------------------

def open_errno(path):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as e:
        return e.errno
    return 0


def test_config_file_and_command_line_precedence(runner, token_twin, tmp_path):
    tok = write_token(tmp_path / "c.token", token_twin.token)
    conf = tmp_path / "twinfs.conf"
    conf.write_text("# twinfs options\n"
                    "token_file = %s\n"
                    "\n"
                    "tracker=%s/from-file.journal\n"
                    "no_t2\n" % (tok, tmp_path))
    t2file = lambda mnt: os.path.join(mnt, "assets", "acme-pump-01", "t2",  # noqa: E731
                                      "AcmecorpExampleReq", "manual.pdf")

    # The file alone: its token, its tracker, T2 off.
    mnt = runner.mountpoint("m1")
    r = runner.run(token_twin.url, mnt, "-o", "config=%s" % conf)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "from-file.journal").exists()
    wait_asset(mnt)
    assert open_errno(t2file(mnt)) == errno.EACCES
    unmount(mnt)
    wait_for(lambda: not twinfs_pids(mnt), 10, "the first daemon to exit")

    # The command line wins, before or after config=: its tracker, T2 on; the file's token stays.
    for i, opts in enumerate(["tracker=%s/cli.journal,t2,config=%s" % (tmp_path, conf),
                              "config=%s,t2,tracker=%s/cli.journal" % (conf, tmp_path)]):
        (tmp_path / "from-file.journal").unlink(missing_ok=True)
        mnt = runner.mountpoint("m%d" % (i + 2))
        r = runner.run(token_twin.url, mnt, "-o", opts)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "cli.journal").exists()
        assert not (tmp_path / "from-file.journal").exists()
        wait_asset(mnt)
        assert open_errno(t2file(mnt)) == 0
        unmount(mnt)
        wait_for(lambda: not twinfs_pids(mnt), 10, "the daemon to exit")


@pytest.mark.parametrize("text,words", [
    ("max_pending=abc\n", [":1: max_pending=abc: not a number"]),
    ("# c\nbogus=1\n", [":2: unknown key 'bogus'"]),
    ("allow_other\n", [":1: unknown key 'allow_other'"]),
    ("config=/etc/other\n", [":1: config=/etc/other: a config file cannot name another"]),
])
def test_bad_config_file(runner, demo_twin, tmp_path, text, words):
    mnt = runner.mountpoint()
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = runner.run(demo_twin.url, mnt, "-o", "config=%s" % conf)
    assert_fails(runner, r, mnt, USAGE, str(conf), *words)


def test_missing_config_file(runner, demo_twin, tmp_path):
    mnt = runner.mountpoint()
    r = runner.run(demo_twin.url, mnt, "-o", "config=%s/none.conf" % tmp_path)
    assert_fails(runner, r, mnt, FAILURE, "config=", "none.conf", "No such file or directory")


def test_tracker_in_use(runner, demo_twin, tmp_path):
    """Two mounts cannot share one tracker: the second fails and the first keeps running."""
    tracker = "tracker=%s/shared.journal" % tmp_path
    m1, m2 = runner.mountpoint("a"), runner.mountpoint("b")
    assert runner.run(demo_twin.url, m1, "-o", tracker).returncode == 0
    r = runner.run(demo_twin.url, m2, "-o", tracker)
    assert_fails(runner, r, m2, FAILURE, "shared.journal", "in use")
    assert mounted_fs(m1)


def test_token_file_mode_is_checked_not_changed(runner, token_twin, tmp_path):
    tok = write_token(tmp_path / "g.token", token_twin.token, 0o640)
    mnt = runner.mountpoint()
    r = runner.run(token_twin.url, mnt, "-o", "token_file=" + tok)
    assert r.returncode == 0
    assert "warning" in r.stderr
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o640


def test_silent_twin_times_out(runner):
    """A twin that accepts the connection and never answers: a timeout, not a hang."""
    mnt = runner.mountpoint()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        url = "http://127.0.0.1:%d" % srv.getsockname()[1]
        t0 = time.monotonic()
        r = runner.run(url, mnt, timeout=90)
        assert time.monotonic() - t0 < 60
    finally:
        srv.close()
    assert_fails(runner, r, mnt, FAILURE, url, "did not answer in time")


def test_fuse_options_pass_through(runner, demo_twin):
    """FUSE options reach the kernel mount; -s runs single-threaded and still serves."""
    mnt = runner.mountpoint()
    p = runner.popen(demo_twin.url, mnt, "-f", "-s", "-o",
                     "allow_other,default_permissions,fsname=mytwin,max_pending=50")
    runner.wait_mounted(mnt, p)
    with open("/proc/mounts") as f:
        line = next(ln for ln in f if ln.split()[1] == mnt)
    source, _, fstype, opts = line.split()[:4]
    assert (source, fstype) == ("mytwin", "fuse.twinfs")
    assert "allow_other" in opts.split(",") and "default_permissions" in opts.split(",")
    wait_asset(mnt)
    events = os.path.join(mnt, "assets", "acme-pump-01", "events")
    names = wait_for(lambda: sorted(os.listdir(events)), 10, "events")
    with open(os.path.join(events, names[0])) as f:
        assert '"asset"' in f.read()
    unmount(mnt)
    assert p.wait(timeout=20) == 0
