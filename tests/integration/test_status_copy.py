"""The status file's size is what a read of it returns, so copy tools copy it whole and
`tail -f` follows it quietly, while the status changes under them.

- shutil.copyfile (sendfile), splice to a pipe, cp, tar (archive, extract, compare) and rsync
  (when installed) give the whole JSON, as many bytes as stat said, without warnings.
- A last_error cut inside a UTF-8 character still gives a status that reads, as JSON.
- Readers in several threads at once, each with stat, open, fstat and reads: all agree.
- `tail -n +1 -f` and `tail -n +1 -F` print the snapshot they opened once, whole, and nothing
  more: no "file truncated" on stderr and no second copy, while events flow and other readers
  take newer snapshots."""

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time

import pytest

from testlib.events import event, setup_ping
from testlib.mount import mounted, read_status
from testlib.wait import wait_for


def status_path(m):
    return m.path(".twinfs", "status")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, timeout=60, **kw)


@contextlib.contextmanager
def flowing(twin, m, asset="a"):
    """Events published and the status read by another reader for as long as the block runs:
    the status changes under the tool being tested. Yields a dict whose "reads" counts the
    other reader's snapshots."""
    stop = threading.Event()
    seen = {"reads": 0, "errors": []}

    def publish():
        n = 0
        while not stop.is_set():
            try:
                twin.publish(asset, "Ping", 1, {"n": n})
            except Exception as e:  # reported by the test, not lost in the thread
                seen["errors"].append(e)
                return
            n += 1
            stop.wait(0.02)

    def read():
        while not stop.is_set():
            try:
                read_status(m.mnt)
            except Exception as e:
                seen["errors"].append(e)
                return
            seen["reads"] += 1
            stop.wait(0.05)

    threads = [threading.Thread(target=publish), threading.Thread(target=read)]
    for t in threads:
        t.start()
    try:
        yield seen
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not seen["errors"], seen["errors"]


def assert_whole(data, size):
    """data is a whole status: size bytes (what stat said), one JSON object."""
    assert size > 0
    assert len(data) == size, (len(data), size)
    doc = json.loads(data)
    assert doc["link"] in ("connecting", "up", "down")
    assert "requests" in doc


def test_copyfile_sendfile_splice(twin, tmp_path):
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        src = status_path(m)
        with flowing(twin, m):
            for i in range(10):
                size = os.stat(src).st_size
                dst = str(tmp_path / ("copy%d.json" % i))
                shutil.copyfile(src, dst)  # sendfile on Linux
                with open(dst, "rb") as f:
                    data = f.read()
                assert_whole(data, size)
                assert os.stat(src).st_size == size
                # splice into a pipe, as a program would without a page of its own
                fd = os.open(src, os.O_RDONLY)
                r, w = os.pipe()
                try:
                    size = os.fstat(fd).st_size
                    got = b""
                    while True:
                        n = os.splice(fd, w, 1 << 16)
                        if n == 0:
                            break
                        got += os.read(r, n)
                finally:
                    for x in (fd, r, w):
                        os.close(x)
                assert_whole(got, size)


def test_cp_tar_rsync(twin, tmp_path):
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        src = status_path(m)
        with flowing(twin, m):
            for i in range(5):
                size = os.stat(src).st_size
                dst = str(tmp_path / ("cp%d.json" % i))
                r = run(["cp", src, dst])
                assert r.returncode == 0 and not r.stderr, r
                with open(dst, "rb") as f:
                    assert_whole(f.read(), size)

                tar = str(tmp_path / ("s%d.tar" % i))
                r = run(["tar", "-cf", tar, "-C", m.path(".twinfs"), "status"])
                # tar warns "file changed as we read it" or "file shrank" when stat and read
                # disagree
                assert r.returncode == 0 and not r.stderr, r
                out = tmp_path / ("x%d" % i)
                out.mkdir()
                r = run(["tar", "-xf", tar, "-C", str(out)])
                assert r.returncode == 0 and not r.stderr, r
                with tarfile.open(tar) as t:
                    archived = t.getmember("status").size
                with open(str(out / "status"), "rb") as f:
                    assert_whole(f.read(), archived)

                if shutil.which("rsync"):
                    dst = str(tmp_path / ("rsync%d.json" % i))
                    r = run(["rsync", src, dst])
                    assert r.returncode == 0 and not r.stderr, r
                    with open(dst, "rb") as f:
                        data = f.read()
                    assert_whole(data, len(data))


def test_concurrent_readers_agree(twin, tmp_path):
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        src = status_path(m)
        errors = []

        def reader():
            try:
                for _ in range(40):
                    size = os.stat(src).st_size
                    fd = os.open(src, os.O_RDONLY)
                    try:
                        assert os.fstat(fd).st_size == size
                        data = b""
                        while True:
                            chunk = os.read(fd, 997)  # odd pieces: several reads each
                            if not chunk:
                                break
                            data += chunk
                    finally:
                        os.close(fd)
                    assert_whole(data, size)
            except Exception as e:
                errors.append(e)

        with flowing(twin, m):
            threads = [threading.Thread(target=reader) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        assert not errors, errors


@pytest.mark.parametrize("follow", ["-f", "-F"])
def test_tail_follows_without_truncation(twin, tmp_path, follow):
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        out_path, err_path = tmp_path / "tail.out", tmp_path / "tail.err"
        with flowing(twin, m) as seen, open(str(out_path), "wb") as out, \
                open(str(err_path), "wb") as err:
            first = read_status(m.mnt)
            tail = subprocess.Popen(["tail", "-n", "+1", follow, status_path(m)],
                                    stdout=out, stderr=err)
            try:
                wait_for(lambda: out_path.read_bytes().rstrip().endswith(b"}"), 20,
                         "tail to print the status")
                # tail looks at the file once a second: let it look several times while the
                # status changes, and check that it did change
                reads = seen["reads"]
                deadline = time.monotonic() + 3.5
                while time.monotonic() < deadline:
                    time.sleep(0.1)
                wait_for(lambda: read_status(m.mnt)["delivered"] > first["delivered"]
                         and seen["reads"] > reads + 5, 20, "the status to change")
                assert tail.poll() is None, "tail exited"
            finally:
                tail.terminate()
                tail.wait(10)
        assert err_path.read_bytes() == b""
        # the snapshot tail opened, whole and once: a second copy would be extra data
        doc = json.loads(out_path.read_bytes())
        assert doc["delivered"] >= first["delivered"]


def test_status_reads_with_an_error_cut_inside_a_character(fake, mount_of):
    """last_error keeps the first 255 bytes of a message: here the notice of an event that
    cannot be decoded, whose asset id puts the cut inside a two-byte character."""
    asset = "x" + "\u00e9" * 121  # "event seq 1 (" + asset: byte 254 starts an é
    fake.assets = [asset]
    fake.add_record(**event(1, asset, 0, name="Nope"))  # no such schema
    m = mount_of(fake)
    st = wait_for(lambda: (lambda s: s if s["decode_errors"] == 1 else None)(
        read_status(m.mnt)), 20, "the decode error")
    # the message up to its last whole character
    assert st["last_error"].encode() == ("event seq 1 (" + asset).encode()[:254]
    with open(status_path(m), "rb") as f:
        assert_whole(f.read(), os.stat(status_path(m)).st_size)
