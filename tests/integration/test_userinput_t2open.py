"""Bad input from users: thousands of concurrent opens of T2 files.

- Past max_t2_open an open gets EMFILE (documented), never another errno, never a hang;
  exactly max_t2_open files are open at the peak.
- Afterwards nothing leaked: no T2 file or stream open in status, the daemon's fds and
  threads back to where they were, and a new open works.
- A daemon that runs out of its own fds (RLIMIT_NOFILE below max_t2_open) fails the open
  cleanly and keeps serving.

Our own RLIMIT_NOFILE is raised first, so an EMFILE here is twinfs's, not ours."""

import errno
import json
import os
import resource
import subprocess
import threading
import time

import pytest

from testlib.events import setup_ping
from testlib.mount import Mount, mounted
from testlib.paths import PYTHON, child_env


@pytest.fixture(autouse=True)
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        yield want
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def twin_a(twin):
    setup_ping(twin, ["a"])
    twin.publish("a", "Ping", 1, {"n": 1})
    return twin


def t2(m, i, size=100):
    """A different name each time (no cache anywhere could answer): Generated/<n> answers n
    bytes, here size + i."""
    return m.path("assets", "a", "t2", "Generated", str(size + i))


def daemon_fds(m):
    return len(os.listdir("/proc/%d/fd" % m.pid))


def fds_back(m, fds0, slack=2):
    """Waits until the daemon holds at most fds0 + slack fds; the failure lists them."""
    def check():
        return daemon_fds(m) <= fds0 + slack
    try:
        m.wait_for(check, 15, "the daemon's fds back to %d" % fds0)
    except AssertionError:
        d = "/proc/%d/fd" % m.pid
        held = []
        for fd in sorted(os.listdir(d), key=int):
            try:
                held.append("%s -> %s" % (fd, os.readlink(os.path.join(d, fd))))
            except OSError:
                pass
        raise AssertionError("the daemon holds %d fds, had %d:\n%s"
                             % (len(held), fds0, "\n".join(held)))


def daemon_threads(m):
    return len(os.listdir("/proc/%d/task" % m.pid))


def quiet(m):
    """Waits until asset a is shown (T2 paths go through its directory, made visible by the
    materializer a moment after the mount) and no T2 file or stream is open in the daemon;
    returns the status."""
    m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 20, "asset a to show")

    def done():
        st = m.status()
        return st if st["t2_open"] == 0 and st["t2_streams_open"] == 0 else None
    return m.wait_for(done, 20, "no T2 file or stream open")


def open_t2(path):
    try:
        return os.open(path, os.O_RDONLY), 0
    except OSError as e:
        return None, e.errno


def test_sequential_opens_past_the_limit(twin_a, tmp_path):
    limit = 64
    with mounted(twin_a, tmp_path, max_t2_open=limit) as m:
        quiet(m)
        fds0, threads0 = daemon_fds(m), daemon_threads(m)
        held, errs = [], {}
        try:
            for i in range(2000):
                fd, err = open_t2(t2(m, i))
                if fd is not None:
                    held.append(fd)
                else:
                    errs[err] = errs.get(err, 0) + 1
            assert len(held) == limit
            assert errs == {errno.EMFILE: 2000 - limit}
            assert m.status()["t2_open"] == limit
            # The held ones still read to the end.
            for i, fd in enumerate(held[:5]):
                assert len(os.read(fd, 1000)) == 100 + i
        finally:
            for fd in held:
                os.close(fd)
        quiet(m)
        with open(t2(m, 0), "rb") as f:
            assert len(f.read()) == 100
        quiet(m)
        fds_back(m, fds0)
        assert daemon_threads(m) <= threads0 + limit + 16


def test_thousands_of_concurrent_opens(twin_a, tmp_path):
    """32 threads open, read a little, and close T2 files as fast as they can, 3200 opens in
    all, against max_t2_open=64: every open succeeds or gets EMFILE."""
    limit, nthreads, per_thread = 64, 32, 100
    with mounted(twin_a, tmp_path, max_t2_open=limit) as m:
        quiet(m)
        fds0 = daemon_fds(m)
        rss0 = m.rss_kib()
        results = {}
        lock = threading.Lock()
        peak = [0]
        opened = [0]

        def worker(k):
            mine = []
            local = {}
            for j in range(per_thread):
                fd, err = open_t2(t2(m, k * per_thread + j, 5000))
                if fd is None:
                    local[err] = local.get(err, 0) + 1
                    continue
                mine.append(fd)
                with lock:
                    opened[0] += 1
                    peak[0] = max(peak[0], opened[0])
                if len(mine) >= 4:  # hold a few, then read one and let it go
                    fd = mine.pop(0)
                    assert len(os.read(fd, 10)) == 10
                    os.close(fd)
                    with lock:
                        opened[0] -= 1
                local[0] = local.get(0, 0) + 1
            for fd in mine:
                os.close(fd)
                with lock:
                    opened[0] -= 1
            with lock:
                for k2, v in local.items():
                    results[k2] = results.get(k2, 0) + v

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        assert not any(th.is_alive() for th in threads), "opens hung"
        elapsed = time.monotonic() - t0
        assert set(results) <= {0, errno.EMFILE}, results
        assert sum(results.values()) == nthreads * per_thread
        assert results.get(0, 0) >= limit
        assert peak[0] <= limit
        st = quiet(m)
        assert st["t2_requests"] == results[0]
        fds_back(m, fds0)
        with open(t2(m, 0), "rb") as f:
            assert len(f.read()) == 100
        print("concurrent opens: %s in %.1fs, peak %d open, rss %d -> %d KiB"
              % (results, elapsed, peak[0], rss0, m.rss_kib()))


def start_with_soft_fd_limit(twin, tmp_path, soft, **opts):
    """A mount whose daemon inherits a soft RLIMIT_NOFILE of soft. (Lowering the hard limit
    cannot be undone, so the test that needs it runs a child python, see below.)"""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    m = Mount(twin, tmp_path, **opts)
    try:
        m.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    return m


def fd_limit_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def open_many(m, n):
    """Opens n T2 files, closes them; returns (how many opened, {errno: count})."""
    held, errs = [], {}
    try:
        for i in range(n):
            fd, err = open_t2(t2(m, i))
            if fd is not None:
                held.append(fd)
            else:
                errs[err] = errs.get(err, 0) + 1
    finally:
        for fd in held:
            os.close(fd)
    return len(held), errs


def test_daemon_raises_its_fd_limit(twin_a, tmp_path, many_fds):
    """A soft RLIMIT_NOFILE of 128 (a shell's is 1024) below what max_t2_open=250 needs: the
    daemon raises it to the hard limit, so 250 T2 files open at once."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    m = start_with_soft_fd_limit(twin_a, tmp_path, 128, max_t2_open=250)
    try:
        assert fd_limit_of(m.pid) == hard
        quiet(m)
        assert open_many(m, 300) == (250, {errno.EMFILE: 50})
        quiet(m)
        assert "warning" not in m.log()
    finally:
        m.stop()


def test_max_t2_open_above_256_is_honoured(twin_a, tmp_path):
    with mounted(twin_a, tmp_path, max_t2_open=1000) as m:
        quiet(m)
        try:
            assert open_many(m, 400) == (400, {})
        finally:
            # Releases are asynchronous: unmounting before they arrive leaves the handles to
            # twinfs's exit, which (fs/ does not free them there) LeakSanitizer reports.
            quiet(m)


# A daemon whose hard limit is low, started from a child python so that this process keeps
# its own limits: it prints the errno counts of 400 opens, whether the daemon lived, and its log.
OUT_OF_FDS = r"""
import errno, json, os, resource, sys
from testlib.mount import Mount
class T:  # the twin, already running: only its url is needed
    url = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
m = Mount(T, sys.argv[2], max_t2_open=1000)
m.start()
out = {"errs": {}, "held": 0}
try:
    m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 20, "asset a to show")
    held = []
    for i in range(400):
        try:
            held.append(os.open(m.path("assets", "a", "t2", "Generated", str(100 + i)),
                                os.O_RDONLY))
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            out["errs"][name] = out["errs"].get(name, 0) + 1
    out["held"] = len(held)
    out["alive"] = m.proc.poll() is None
    for fd in held:
        os.close(fd)
    m.wait_for(lambda: m.status()["t2_streams_open"] == 0, 20, "every T2 stream closed")
    with open(m.path("assets", "a", "t2", "Generated", "100"), "rb") as f:
        out["after"] = len(f.read())
    # the event may still be materializing
    ev = sorted(m.wait_for(lambda: m.events("a"), 20, "the event of asset a"))[0]
    os.unlink(os.path.join(m.events_dir("a"), ev))
    out["acked"] = m.status()["acked"]
finally:
    m.stop()
out["log"] = m.log()
print(json.dumps(out))
"""


def out_of_fds(twin, tmp_path):
    r = subprocess.run([PYTHON, "-c", OUT_OF_FDS, twin.url, str(tmp_path)], env=child_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_daemon_out_of_fds_keeps_serving(twin_a, tmp_path):
    """max_t2_open above what the daemon's hard RLIMIT_NOFILE allows: a warning at start-up;
    opens past its fds fail, the daemon lives on and serves again once files are closed."""
    out = out_of_fds(twin_a, tmp_path)
    assert "max_t2_open=1000 needs about" in out["log"] and "is 128" in out["log"], out["log"]
    assert out["held"] > 0 and out["errs"], out
    assert out["alive"]
    assert out["after"] == 100
    assert out["acked"] == 1


def test_daemon_out_of_fds_says_emfile(twin_a, tmp_path):
    out = out_of_fds(twin_a, tmp_path)
    assert set(out["errs"]) <= {"EMFILE", "ENFILE"}, out["errs"]
