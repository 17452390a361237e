"""Bad input from users: reads at odd offsets.

- Event files: pread inside, at and past the end (up to 2**62), of any size, from the page
  cache and, after the cache was dropped, from the daemon: always the slice of the content
  (empty past the end); a negative offset is EINVAL.
- T2 files are streams opened non-seekable: pread and lseek are ESPIPE (documented: reads go
  forward only) and do not spoil the stream; read() goes on; past the end reads give 0.
- .twinfs/status: a snapshot per open, read in any order.
Afterwards the daemon is alive and nothing was acked."""

import errno
import json
import os

import pytest

from testlib.events import setup_ping
from testlib.mount import mounted
from testlib.twin import Twin, generated_bytes

ODD = [0, 1, 7, 100, 511, 4095, 4096, 4097]
FAR = [1 << 20, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 40, (1 << 62)]
SIZES = [0, 1, 3, 4096, 1 << 20]


def pread_errno(fd, size, off):
    try:
        os.pread(fd, size, off)
    except OSError as e:
        return e.errno
    return 0


@pytest.fixture
def twin_a(tmp_path):
    d = tmp_path / "t2dir"
    (d / "Docs").mkdir(parents=True)
    (d / "Docs" / "blob.bin").write_bytes(bytes(range(256)) * 1000)
    tw = Twin(tmp_path, t2_dir=d, test_hooks=True)
    tw.start()
    try:
        setup_ping(tw, ["a"])
        tw.put_schema("Big", 1, {"type": "record", "name": "Big",
                                 "fields": [{"name": "s", "type": "string"}]})
        tw.publish("a", "Ping", 1, {"n": 1})
        tw.publish("a", "Big", 1, {"s": "x" * 20000})
        yield tw
    finally:
        tw.stop()


def events(m):
    return m.wait_for(lambda: len(m.events("a")) == 2 and sorted(m.events("a")), 10,
                      "two events")


def check_event_slices(path):
    with open(path, "rb") as f:
        content = f.read()
    n = len(content)
    offsets = sorted(set(ODD + [n - 1, n, n + 1, n + 4096] + FAR))
    fd = os.open(path, os.O_RDONLY)
    try:
        for drop in (False, True):
            if drop:  # the next reads reach the daemon
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            for off in offsets:
                for size in SIZES:
                    if off < 0:
                        continue
                    got = os.pread(fd, size, off)
                    assert got == content[off:off + size], (path, off, size, drop)
            assert pread_errno(fd, 10, -1) == errno.EINVAL
            # Reads going backwards and forwards with lseek.
            for off in (n // 2, 3, n - 2, 0):
                os.lseek(fd, off, os.SEEK_SET)
                assert os.read(fd, 5) == content[off:off + 5]
            assert os.lseek(fd, 0, os.SEEK_END) == n
            assert os.read(fd, 10) == b""
    finally:
        os.close(fd)
    return content


def test_event_files_at_odd_offsets(twin_a, tmp_path):
    with mounted(twin_a, tmp_path) as m:
        names = events(m)
        before = m.status()
        sizes = []
        for name in names:
            content = check_event_slices(os.path.join(m.events_dir("a"), name))
            assert json.loads(content)["asset"] == "a"
            sizes.append(len(content))
        assert max(sizes) > 20000  # one spans many pages
        assert sorted(m.events("a")) == names
        st = m.status()
        assert st["acked"] == before["acked"] == 0
        assert st["visible_events"] == 2


def test_event_file_o_direct(twin_a, tmp_path):
    """O_DIRECT reads (aligned buffers come from mmap) reach the daemon at odd offsets."""
    import mmap
    with mounted(twin_a, tmp_path) as m:
        name = events(m)[1]
        path = os.path.join(m.events_dir("a"), name)
        with open(path, "rb") as f:
            content = f.read()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        except OSError as e:
            assert e.errno == errno.EINVAL  # refusing O_DIRECT is fine too
            return
        try:
            buf = mmap.mmap(-1, 8192)
            for off in (0, 4096, 8192, len(content) - len(content) % 4096,
                        len(content) + 4096, 1 << 40):
                n = os.preadv(fd, [buf], off)
                assert buf[:n] == content[off:off + 8192], off
            buf.close()
        finally:
            os.close(fd)


def t2(m, rtype, name):
    return m.path("assets", "a", "t2", rtype, name)


def lseek_errno(fd, off, how=os.SEEK_SET):
    try:
        os.lseek(fd, off, how)
    except OSError as e:
        return e.errno
    return 0


def test_t2_reads_go_forward_only(twin_a, tmp_path):
    """T2 files are opened non-seekable: the kernel answers every pread and lseek with
    ESPIPE (at the next byte too), and that spoils nothing: read() goes on where it was."""
    total = 3 * 65536 + 123
    want = generated_bytes(total)
    with mounted(twin_a, tmp_path) as m:
        events(m)  # asset a is shown: its t2/ can be reached
        fd = os.open(t2(m, "Generated", str(total)), os.O_RDONLY)
        try:
            for off in [0, 1, 100, 4096, total, total + 1] + FAR:
                assert pread_errno(fd, 10, off) == errno.ESPIPE, off
            assert pread_errno(fd, 10, -1) in (errno.ESPIPE, errno.EINVAL)
            assert lseek_errno(fd, 0) == errno.ESPIPE
            assert lseek_errno(fd, 1000) == errno.ESPIPE
            assert lseek_errno(fd, 0, os.SEEK_END) == errno.ESPIPE
            got = os.read(fd, 10)
            assert got == want[:10]
            for off in [0, 10, 11]:  # backwards, the next byte, forwards
                assert pread_errno(fd, 10, off) == errno.ESPIPE, off
            for size in [1, 7, 4096, 65536, 1 << 20]:
                chunk = os.read(fd, size)
                assert chunk and chunk == want[len(got):len(got) + len(chunk)]
                got += chunk
                assert lseek_errno(fd, len(got) + 1) == errno.ESPIPE
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                got += chunk
            assert got == want
            # At the end: reads give 0, again and again; pread is still ESPIPE.
            assert os.read(fd, 10) == b"" and os.read(fd, 1 << 20) == b""
            assert pread_errno(fd, 10, total) == errno.ESPIPE
        finally:
            os.close(fd)
        # Python's buffered reader and its seek(): the same, through the usual API.
        with open(t2(m, "Docs", "blob.bin"), "rb") as f:
            assert not f.seekable()
            assert f.read(1000) == (bytes(range(256)) * 4)[:1000]
            with pytest.raises(OSError):
                f.seek(0)
            assert f.read() == (bytes(range(256)) * 1000)[1000:]
        m.wait_for(lambda: m.status()["t2_open"] == 0, 5, "the T2 files to close")
        assert m.status()["acked"] == 0


def test_status_at_odd_offsets(twin_a, tmp_path):
    with mounted(twin_a, tmp_path) as m:
        events(m)
        fd = os.open(m.path(".twinfs", "status"), os.O_RDONLY)
        try:
            whole = b""
            while True:
                chunk = os.read(fd, 7)
                if not chunk:
                    break
                whole += chunk
            json.loads(whole)
            n = len(whole)
            for off in sorted(set(ODD + [n - 1, n, n + 1] + FAR)):
                assert os.pread(fd, 64, off) == whole[off:off + 64], off
            assert pread_errno(fd, 10, -5) == errno.EINVAL
        finally:
            os.close(fd)
