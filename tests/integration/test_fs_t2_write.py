"""Write-then-read T2 files: a T2 file opened read-write takes the bytes written before its
first read as the request data; that read sends the request and reads the answer. The data
arrives at a remote provider byte for byte; the t2_max_data limit (EFBIG past it); every
failure of the request is the first read's errno, the one a read-only open gets; writes after
the first read, write-only opens and writes at another offset are refused; a close without a
read sends nothing; the slots of max_t2_open count from the open; bash's exec 3<> works."""

import errno
import os
import subprocess
import threading

import pytest

from test_fs_t2 import open_errno
from testlib.events import setup_ping
from testlib.mount import mounted
from testlib.twin import Twin


def t2_path(m, rtype, name, asset="a"):
    return m.path("assets", asset, "t2", rtype, name)


class Echo:
    """A remote provider of rtype on tw: answers each request with b"echo:" + its data, and
    keeps the data of the requests it saw."""

    def __init__(self, tw, rtype="Echo"):
        self.tw, self.rtype = tw, rtype
        self.seen = []
        self.stop = threading.Event()
        tw.provider_register(rtype)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            req = self.tw.provider_next(self.rtype, wait=1)
            if req is None:
                continue
            self.seen.append(req["data"])
            self.tw.provider_chunk(req["id"], "application/octet-stream", b"echo:" + req["data"])
            self.tw.provider_end(req["id"])

    def close(self):
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def echo_twin(tmp_path):
    d = tmp_path / "t2dir"
    (d / "Docs").mkdir(parents=True)
    (d / "Docs" / "hello.txt").write_bytes(b"hello from the provider\n")
    tw = Twin(tmp_path, t2_dir=d, test_hooks=True)
    tw.start()
    echo = None
    try:
        setup_ping(tw, ["a"])
        echo = Echo(tw)
        yield tw, echo
    finally:
        if echo:
            echo.close()
        tw.stop()


def write_then_read(path, data, chunk=1000):
    """Opens path r+b unbuffered, writes data in chunks, reads the answer to its end."""
    with open(path, "r+b", buffering=0) as f:
        for i in range(0, len(data), chunk):
            assert f.write(data[i:i + chunk]) == len(data[i:i + chunk])
        return f.read()


def first_read_errno(path, data):
    """The errno of the first read after writing data to path opened r+b (0 if it reads)."""
    with open(path, "r+b", buffering=0) as f:
        if data:
            f.write(data)
        try:
            f.read()
        except OSError as e:
            return e.errno
    return 0


def settled(m):
    m.wait_settled()
    m.wait_for(lambda: os.path.isdir(m.path("assets", "a")), 10, "asset a")


def test_body_arrives_byte_for_byte_and_the_answer_reads_back(echo_twin, tmp_path):
    tw, echo = echo_twin
    body = (b"{\"path\": \"/x/y\", \"nul\": \"\x00\"}\n" * 200)[:3999] + b"\n"
    assert len(body) == 4000 and b"\x00" in body and b"/" in body
    with mounted(tw, tmp_path) as m:
        settled(m)
        before = m.status()["t2_requests"]
        assert write_then_read(t2_path(m, "Echo", "label"), body, chunk=333) == b"echo:" + body
        assert echo.seen == [body]
        assert m.status()["t2_requests"] == before + 1
        # no write: the name is the data, as for a read-only open
        with open(t2_path(m, "Echo", "just-a-name"), "r+b", buffering=0) as f:
            assert f.read() == b"echo:just-a-name"
        # the data replaces the name for the local provider too
        assert write_then_read(t2_path(m, "Docs", "any-label"), b"hello.txt") == \
            b"hello from the provider\n"
        # read-only opens are as before
        with open(t2_path(m, "Echo", "ro"), "rb") as f:
            assert f.read() == b"echo:ro"
        m.wait_for(lambda: m.status()["t2_open"] == 0, 10, "every file closed")


def test_python_modes_and_offsets(echo_twin, tmp_path):
    tw, echo = echo_twin
    with mounted(tw, tmp_path) as m:
        settled(m)
        p = t2_path(m, "Echo", "q")
        # w+b (O_TRUNC, O_CREAT) and a+b (O_APPEND) are read-write opens too
        for mode in ("w+b", "a+b"):
            with open(p, mode, buffering=0) as f:
                f.write(b"one,")
                f.write(b"two")
                assert f.read() == b"echo:one,two"
        # write-only cannot read the answer: refused at open
        for flags in (os.O_WRONLY, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND):
            with pytest.raises(OSError) as e:
                os.open(p, flags)
            assert e.value.errno == errno.EINVAL
        fd = os.open(p, os.O_RDWR)
        try:
            assert os.write(fd, b"abc") == 3
            # the file is a stream: no pwrite at another offset, no seek
            with pytest.raises(OSError) as e:
                os.pwrite(fd, b"x", 100)
            assert e.value.errno == errno.ESPIPE
            assert os.fstat(fd).st_size == 0
            assert os.read(fd, 100) == b"echo:abc"
            # after the first read the data is final
            with pytest.raises(OSError) as e:
                os.write(fd, b"more")
            assert e.value.errno == errno.EBADF
            assert os.read(fd, 100) == b""
        finally:
            os.close(fd)
        # setattr (truncate) stays read-only
        with open(p, "r+b", buffering=0) as f:
            with pytest.raises(OSError) as e:
                os.ftruncate(f.fileno(), 0)
            assert e.value.errno == errno.EROFS
        assert echo.seen == [b"one,two", b"one,two", b"abc"]


def test_t2_max_data_and_efbig(echo_twin, tmp_path):
    tw, echo = echo_twin
    with mounted(tw, tmp_path, t2_max_data=5000) as m:
        settled(m)
        body = bytes(range(256)) * 19 + bytes(136)
        assert len(body) == 5000
        assert write_then_read(t2_path(m, "Echo", "q"), body) == b"echo:" + body
        # one byte more: EFBIG, and the request is never sent (the read gets EFBIG too)
        n = len(echo.seen)
        with open(t2_path(m, "Echo", "q"), "r+b", buffering=0) as f:
            f.write(body)
            with pytest.raises(OSError) as e:
                f.write(b"x")
            assert e.value.errno == errno.EFBIG
            with pytest.raises(OSError) as e:
                f.read()
            assert e.value.errno == errno.EFBIG
        with open(t2_path(m, "Echo", "q"), "r+b", buffering=0) as f:
            with pytest.raises(OSError) as e:
                f.write(body + b"x")
            assert e.value.errno == errno.EFBIG
        assert len(echo.seen) == n
    with mounted(tw, tmp_path, t2_max_data=0) as m:
        settled(m)
        with open(t2_path(m, "Echo", "zero"), "r+b", buffering=0) as f:
            with pytest.raises(OSError) as e:
                f.write(b"x")
            assert e.value.errno == errno.EFBIG
        # nothing written: the name is the data
        with open(t2_path(m, "Echo", "zero"), "r+b", buffering=0) as f:
            assert f.read() == b"echo:zero"


def test_failures_are_the_first_reads_errno(echo_twin, tmp_path):
    tw, echo = echo_twin
    with mounted(tw, tmp_path, t2_timeout=1) as m:
        settled(m)
        cases = [
            # RESOURCE_UNKNOWN (the data names a file the provider lacks) -> ENOENT
            (t2_path(m, "Docs", "hello.txt"), b"missing.txt", errno.ENOENT),
            # REQ_UNHANDLED -> EOPNOTSUPP
            (t2_path(m, "NoSuchType", "x"), b"data", errno.EOPNOTSUPP),
        ]
        for path, data, want in cases:
            assert first_read_errno(path, data) == want
        assert open_errno(t2_path(m, "NoSuchType", "x")) == errno.EOPNOTSUPP
        # T2Timeout -> ETIMEDOUT: a provider that never answers
        tw.provider_register("Slow")
        assert open_errno(t2_path(m, "Slow", "x")) == errno.ETIMEDOUT
        assert first_read_errno(t2_path(m, "Slow", "x"), b"data") == errno.ETIMEDOUT
        # NotConnected -> EHOSTUNREACH
        tw.hook("t2_not_connected", type="Docs")
        assert first_read_errno(t2_path(m, "Docs", "x"), b"hello.txt") == errno.EHOSTUNREACH
        tw.hook("t2_not_connected", type="Docs", on=0)
        # AssetUnknown -> ENOENT: the asset went away on the twin after the open
        tw.create_asset("doomed")
        m.wait_for(lambda: os.path.isdir(m.path("assets", "doomed")), 10, "asset")
        with open(t2_path(m, "Echo", "x", asset="doomed"), "r+b", buffering=0) as f:
            f.write(b"data")
            tw.delete_asset("doomed")
            with pytest.raises(OSError) as e:
                f.read()
            assert e.value.errno == errno.ENOENT
            # the failure stays: later reads get it too
            with pytest.raises(OSError) as e:
                f.read()
            assert e.value.errno == errno.ENOENT
        m.wait_for(lambda: m.status()["t2_open"] == 0, 10, "every file closed")
    with mounted(tw, tmp_path, no_t2=True) as m:
        settled(m)
        assert open_errno(t2_path(m, "Echo", "x")) == errno.EACCES
        assert first_read_errno(t2_path(m, "Echo", "x"), b"data") == errno.EACCES


def test_slots_count_from_the_open_and_close_without_read_sends_nothing(echo_twin, tmp_path):
    tw, echo = echo_twin
    with mounted(tw, tmp_path, max_t2_open=2, ro=True) as m:
        settled(m)
        before = m.status()["t2_requests"]
        # -o ro: a read-write open of a T2 file is a request, not an ack: allowed
        files = [open(t2_path(m, "Echo", "q%d" % i), "r+b", buffering=0) for i in range(2)]
        try:
            files[0].write(b"unsent")
            assert m.status()["t2_open"] == 2
            with pytest.raises(OSError) as e:
                open(t2_path(m, "Echo", "third"), "r+b", buffering=0)
            assert e.value.errno == errno.EMFILE
            assert open_errno(t2_path(m, "Echo", "third")) == errno.EMFILE
        finally:
            for f in files:
                f.close()
        m.wait_for(lambda: m.status()["t2_open"] == 0, 10, "every file closed")
        assert m.status()["t2_requests"] == before
        assert echo.seen == []
        assert write_then_read(t2_path(m, "Echo", "q"), b"sent") == b"echo:sent"


def test_bash_exec_read_write(echo_twin, tmp_path):
    tw, echo = echo_twin
    with mounted(tw, tmp_path) as m:
        settled(m)
        script = ('exec 3<>"$1" && printf \'%s\' "$2" >&3 && cat <&3 && exec 3<&- && '
                  'cat "$3"')
        json = '{"op": "status", "path": "/a/b"}\n'
        out = subprocess.run(["bash", "-c", script, "bash", t2_path(m, "Echo", "q"), json,
                              t2_path(m, "Echo", "plain")],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"echo:" + json.encode() + b"echo:plain"
        # > opens write-only: refused
        out = subprocess.run(["bash", "-c", 'printf x > "$1"', "bash",
                              t2_path(m, "Echo", "q")], capture_output=True, timeout=60)
        assert out.returncode != 0 and b"Invalid argument" in out.stderr
        assert echo.seen == [json.encode(), b"plain"]


def test_two_threads_write_one_descriptor(echo_twin, tmp_path):
    """Each write lands whole and the data is every write once, whatever the interleaving."""
    tw, echo = echo_twin
    with mounted(tw, tmp_path) as m:
        settled(m)
        fd = os.open(t2_path(m, "Echo", "q"), os.O_RDWR)
        try:
            chunks = {t: [(b"%c%03d" % (t, i)) * 50 for i in range(100)] for t in b"AB"}

            def writer(t):
                for c in chunks[t]:
                    assert os.write(fd, c) == len(c)

            threads = [threading.Thread(target=writer, args=(t,)) for t in b"AB"]
            for th in threads:
                th.start()
            for th in threads:
                th.join(60)
            got = b""
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                got += b
        finally:
            os.close(fd)
        assert got.startswith(b"echo:")
        data = got[5:]
        assert len(data) == 2 * 100 * 200
        pieces = [data[i:i + 200] for i in range(0, len(data), 200)]
        for t in b"AB":
            assert [p for p in pieces if p[0] == t] == chunks[t]
        assert echo.seen == [data]
