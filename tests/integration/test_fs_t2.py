"""T2 files: cat of a small file equals the provider's bytes; 1 GiB streams through cat to
sha256sum with bounded RSS; each failure of the errno table at open; a cut gives EIO at read;
the mime xattr; no_t2 gives EACCES; max_t2_open gives EMFILE."""

import errno
import os
import subprocess
import threading
import time

import pytest

from testlib.events import setup_ping
from testlib.mount import mounted
from testlib.twin import Twin, generated_bytes, generated_sha256


def t2_path(m, asset, rtype, name):
    return m.path("assets", asset, "t2", rtype, name)


def open_errno(path):
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        return e.errno
    return 0


@pytest.fixture
def t2_twin(tmp_path):
    d = tmp_path / "t2dir"
    (d / "Docs").mkdir(parents=True)
    (d / "Docs" / "hello.txt").write_bytes(b"hello from the provider\n")
    (d / "Docs" / "blob.bin").write_bytes(bytes(range(256)) * 1000)
    tw = Twin(tmp_path, t2_dir=d, test_hooks=True)
    tw.start()
    try:
        setup_ping(tw, ["a"])
        yield tw
    finally:
        tw.stop()


def test_small_files_and_mime(t2_twin, tmp_path):
    with mounted(t2_twin, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        # assets/a appears once the materializer made it (later on a loaded machine).
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 10, "asset a")
        p = t2_path(m, "a", "Docs", "hello.txt")
        st = os.stat(p)
        assert st.st_size == 0 and (st.st_mode & 0o777) == 0o444
        out = subprocess.run(["cat", p], capture_output=True, check=True).stdout
        assert out == b"hello from the provider\n"
        assert os.getxattr(p, "user.twin.mime") == b"text/plain"
        b = t2_path(m, "a", "Docs", "blob.bin")
        with open(b, "rb") as f:
            assert f.read() == bytes(range(256)) * 1000
        assert os.getxattr(b, "user.twin.mime") == b"application/octet-stream"
        # each open is a new request
        before = m.status()["t2_requests"]
        for _ in range(3):
            with open(p, "rb") as f:
                assert f.read() == b"hello from the provider\n"
        assert m.status()["t2_requests"] == before + 3
        m.wait_for(lambda: m.status()["t2_open"] == 0, 5, "every stream closed")
        # a stream: reading at another offset fails
        with open(b, "rb", buffering=0) as f:
            assert f.read(10) == bytes(range(10))
            with pytest.raises(OSError) as e:
                os.pread(f.fileno(), 10, 100)
            assert e.value.errno == errno.ESPIPE


def test_one_gib_streams_with_bounded_rss(twin, tmp_path):
    size = 1 << 30
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        path = t2_path(m, "a", "Generated", str(size))
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], m.rss_kib())
                time.sleep(0.05)
        t = threading.Thread(target=sample)
        t.start()
        try:
            r = subprocess.run("cat '%s' | sha256sum" % path, shell=True, capture_output=True,
                               check=True, timeout=600)
        finally:
            done.set()
            t.join()
        assert r.stdout.split()[0].decode() == generated_sha256(size)
        assert 0 < peak[0] < 64 * 1024, "twinfs RSS peaked at %d KiB" % peak[0]


def test_cat_reads_a_stream_in_mib_requests(twin, tmp_path):
    """T2 files say st_blksize 1 MiB, so cat (and cp, dd) read 1 MiB at a time: a 64 MiB
    stream is about 64 read requests, not the 512 of cat's 128 KiB default."""
    size = 64 << 20
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        path = t2_path(m, "a", "Generated", str(size))
        assert os.stat(path).st_blksize == 1 << 20
        before = m.status()["requests"]["read"]
        r = subprocess.run("cat '%s' | sha256sum" % path, shell=True, capture_output=True,
                           check=True, timeout=120)
        assert r.stdout.split()[0].decode() == generated_sha256(size)
        reads = m.status()["requests"]["read"] - before
        assert 64 <= reads <= 128, reads


def first_difference(a, b):
    """The first offset where a and b differ, or None when they are equal."""
    if a == b:
        return None
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def test_reads_of_any_size_on_streams_read_side_by_side(twin, tmp_path):
    """Each open T2 file has its own reply buffer and grows it for a bigger read: two streams
    read at once, each with reads of changing sizes, both come out whole."""
    sizes = (100, 4096, 1 << 20, 7, 65536 + 3, 1 << 20, 1)
    streams = {"a": (3 << 20) + 5, "b": (2 << 20) + 999}
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        got, errors = {}, []

        def read_all(key, n):
            parts, i, fd = [], 0, None
            try:
                fd = os.open(t2_path(m, "a", "Generated", str(n)), os.O_RDONLY)
                while True:
                    b = os.read(fd, sizes[i % len(sizes)])
                    if not b:
                        break
                    parts.append(b)
                    i += 1
            except OSError as e:
                errors.append((key, e))
            finally:
                if fd is not None:
                    os.close(fd)
            got[key] = b"".join(parts)
        threads = [threading.Thread(target=read_all, args=kv) for kv in streams.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
            assert not t.is_alive(), "a reader hangs"
        assert not errors
        for key, n in streams.items():
            assert len(got[key]) == n, key
            assert first_difference(got[key], generated_bytes(n)) is None, key


def test_close_right_after_the_last_read(twin, tmp_path):
    """A reader that closes as soon as its read returns sends the release while the worker
    that replied may still be returning from the reply: the release waits for it (under ASan
    a freed reply buffer or handle shows here)."""
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        path = t2_path(m, "a", "Generated", str(65536))
        want = generated_bytes(65536)
        errors = []

        def loop():
            try:
                for _ in range(100):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        b = os.read(fd, 1 << 20)
                    finally:
                        os.close(fd)
                    if b != want[:len(b)] or not b:
                        errors.append("read %d bytes, not a prefix of the stream" % len(b))
                        return
            except OSError as e:
                errors.append(e)
        threads = [threading.Thread(target=loop) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
            assert not t.is_alive(), "a reader hangs"
        assert not errors
        assert m.running()


def test_failures_errno_at_open(t2_twin, tmp_path):
    tw = t2_twin
    with mounted(tw, tmp_path, t2_timeout=1) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        # RESOURCE_UNKNOWN -> ENOENT
        assert open_errno(t2_path(m, "a", "Docs", "missing.txt")) == errno.ENOENT
        assert open_errno(t2_path(m, "a", "Generated", "not-a-number")) == errno.ENOENT
        # REQ_UNHANDLED -> EOPNOTSUPP
        assert open_errno(t2_path(m, "a", "NoSuchType", "x")) == errno.EOPNOTSUPP
        # NotConnected -> EHOSTUNREACH
        tw.hook("t2_not_connected", type="Docs")
        assert open_errno(t2_path(m, "a", "Docs", "hello.txt")) == errno.EHOSTUNREACH
        tw.hook("t2_not_connected", type="Docs", on=0)
        # T2Timeout -> ETIMEDOUT: a provider that never answers
        tw.provider_register("Slow")
        t0 = time.monotonic()
        assert open_errno(t2_path(m, "a", "Slow", "x")) == errno.ETIMEDOUT
        assert time.monotonic() - t0 < 15
        # AssetUnknown -> ENOENT: the asset went away on the twin under an open t2/ dir
        tw.create_asset("doomed")
        m.wait_for(lambda: os.path.isdir(m.path("assets", "doomed")), 10, "asset")
        fd = os.open(m.path("assets", "doomed", "t2", "Docs"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            tw.delete_asset("doomed")
            try:
                os.close(os.open("hello.txt", os.O_RDONLY, dir_fd=fd))
                err = 0
            except OSError as e:
                err = e.errno
            assert err == errno.ENOENT
        finally:
            os.close(fd)
        # and after all this the good file still works
        with open(t2_path(m, "a", "Docs", "hello.txt"), "rb") as f:
            assert f.read() == b"hello from the provider\n"
        # release comes after close returns: wait for it
        m.wait_for(lambda: m.status()["t2_open"] == 0, 5, "every stream closed")


def test_cut_mid_stream_is_eio_at_read(t2_twin, tmp_path):
    tw = t2_twin
    with mounted(tw, tmp_path) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        tw.hook("t2_cut", bytes=300000)
        got = 0
        with open(t2_path(m, "a", "Generated", str(4 << 20)), "rb", buffering=0) as f:
            with pytest.raises(OSError) as e:
                while True:
                    b = f.read(65536)
                    assert b, "EOF instead of EIO after %d bytes" % got
                    assert b == generated_bytes(got + len(b))[got:]
                    got += len(b)
            assert e.value.errno == errno.EIO
        assert got <= 300000
        tw.hook("t2_cut", bytes=-1)


def test_no_t2_option_and_twin_without_t2(t2_twin, tmp_path):
    with mounted(t2_twin, tmp_path, no_t2=True) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        assert open_errno(t2_path(m, "a", "Docs", "hello.txt")) == errno.EACCES
    tw = Twin(tmp_path, no_t2=True)
    tw.start()
    try:
        setup_ping(tw, ["b"])
        with mounted(tw, tmp_path) as m:
            m.wait_settled()  # the asset shows a moment after the mount
            assert open_errno(t2_path(m, "b", "Docs", "hello.txt")) == errno.EACCES
    finally:
        tw.stop()


def test_max_t2_open_is_emfile(t2_twin, tmp_path):
    with mounted(t2_twin, tmp_path, max_t2_open=2) as m:
        m.wait_settled()  # the asset shows a moment after the mount
        files = [open(t2_path(m, "a", "Generated", str(10 << 20)), "rb") for _ in range(2)]
        try:
            assert open_errno(t2_path(m, "a", "Docs", "hello.txt")) == errno.EMFILE
            assert m.status()["t2_open"] == 2
        finally:
            for f in files:
                f.close()
        m.wait_for(lambda: m.status()["t2_open"] == 0, 5, "streams closed")
        with open(t2_path(m, "a", "Docs", "hello.txt"), "rb") as f:
            assert f.read() == b"hello from the provider\n"


def test_slow_provider_bytes_are_not_held_back_and_sigterm_is_not_blocked(twin, tmp_path):
    """Regression: a T2 read waited to fill the whole FUSE request, so a slow provider's first
    bytes stayed invisible until the response ended; and a read blocked on a silent provider
    kept twinfs from stopping on SIGTERM."""
    import signal
    twin.create_asset("a1")
    twin.provider_register("Slow")
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a1")), 10, "asset a1")
        got = {}

        def reader():
            try:
                with open(t2_path(m, "a1", "Slow", "x"), "rb", buffering=0) as f:
                    got["first"] = f.read(100)
                    got["first_at"] = time.monotonic()
                    got["second"] = f.read(100)
            except OSError as e:
                got["err"] = e.errno

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        req = twin.provider_next("Slow", wait=10)
        sent_at = time.monotonic()
        twin.provider_chunk(req["id"], "text/plain", b"hello")
        wait_deadline = time.monotonic() + 5
        while "first" not in got and time.monotonic() < wait_deadline:
            time.sleep(0.02)
        assert got.get("first") == b"hello", got
        assert got["first_at"] - sent_at < 2.0

        # The reader now waits on a silent provider; SIGTERM must still stop twinfs.
        m.proc.send_signal(signal.SIGTERM)
        try:
            rc = m.proc.wait(10)
        finally:
            if m.proc.poll() is None:
                twin.provider_end(req["id"])
        assert rc == 0
        th.join(10)
        assert not th.is_alive()


def test_trickling_provider_is_shown_as_it_comes(twin, tmp_path):
    """Regression: a read waited 20 ms for more after each piece of a stream, so a provider
    that sent a few bytes more often than that (a live feed) kept them from the reader until
    the 1 MiB request filled or the response ended. A byte is now held back 20 ms at most."""
    twin.create_asset("a1")
    twin.provider_register("Feed")
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: os.path.isdir(m.path("assets", "a1")), 10, "asset a1")
        got = []

        def reader():
            with open(t2_path(m, "a1", "Feed", "x"), "rb", buffering=0) as f:
                while True:
                    b = f.read(1 << 20)
                    got.append((time.monotonic(), b))
                    if not b:
                        return

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        req = twin.provider_next("Feed", wait=10)
        sent = b""
        start = time.monotonic()
        # 4 s of a line every few ms: never a 20 ms gap on a machine that is not overloaded.
        while time.monotonic() - start < 4:
            line = b"%.6f\n" % time.monotonic()
            twin.provider_chunk(req["id"], "text/plain", line)
            sent += line
            time.sleep(0.003)
        end = time.monotonic()
        twin.provider_end(req["id"])
        th.join(10)
        assert not th.is_alive()
        assert b"".join(b for _, b in got) == sent
        # The reader saw the feed while it ran, in many reads, not in one at its end.
        assert got[0][0] < start + 1.5, got[0][0] - start
        assert sum(1 for t, b in got if b and t < end) >= 10
