"""A hostile twin's numbers: offsets and seqs at the edges of what the protocol allows.

Offsets and seqs are at most 2^53 - 1 (docs/protocol.md): a record naming a larger one is a
bad record (counted in bad_records, logged once), so a readdir cookie (offset + 3) always fits
off_t and a listing ends. A record whose seq is beyond what the twin announced (its head, plus
one seq per line sent since) is a bad record too: it is not delivered and never reaches the
tracker, so it can neither hide the records after it nor make the next mount refuse the twin.

A scripted fake twin (tests/reliability/faketwin.py) serves the lines; each test checks that
later records still appear, that listings return promptly, and that a remount with the same
tracker works."""

import ctypes
import os
import platform
import re
import resource
import struct
import subprocess

import pytest

from testlib.events import T, count_bad_logged, event, line
from testlib.mount import Mount, event_name

MAX = 2 ** 53 - 1  # the largest seq or offset the protocol allows


def limited():
    """A listing that cannot end must not take the machine's memory with it."""
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))


def ls(path, timeout=30):
    """The names `ls -1` prints for path; an AssertionError if it does not end in time."""
    try:
        r = subprocess.run(["ls", "-1", path], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=limited)
    except subprocess.TimeoutExpired:
        raise AssertionError("ls %s did not return within %d s" % (path, timeout))
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def getdents_one_by_one(path):
    """[(name, d_off)] of a directory read with a getdents64 buffer too small for two events,
    so that the kernel asks the file system again from the last entry's cookie each time."""
    sys_getdents64 = {"x86_64": 217, "aarch64": 61}.get(platform.machine())
    if sys_getdents64 is None:
        pytest.skip("getdents64's number on %s is not known here" % platform.machine())
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(64)
    out = []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while len(out) < 100:
            n = libc.syscall(sys_getdents64, fd, buf, len(buf))
            if n < 0:
                raise OSError(ctypes.get_errno(), "getdents64")
            if n == 0:
                return out
            pos = 0
            while pos < n:
                d_off, reclen = struct.unpack_from("<qH", buf.raw, pos + 8)
                name = buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode()
                out.append((name, d_off))
                pos += reclen
    finally:
        os.close(fd)
    raise AssertionError("the listing does not end: %r" % out[:10])


def journal_numbers(path):
    """Every seq the tracker journal holds ("w N", "a N", "r LO HI" lines)."""
    with open(path) as f:
        return [int(x) for x in re.findall(r"\d+", f.read())]


@pytest.mark.parametrize("offset", [2 ** 63 - 3, 2 ** 63 - 4, 2 ** 63 - 1, MAX + 1])
def test_offset_beyond_the_protocol_is_a_bad_record(fake, mount_of, offset):
    """An event at offset 2^63 - 3 made the cookie of its entry overflow off_t: `ls events/`
    started over at every batch and never returned."""
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=0))
    fake.add_record(**event(2, "a", offset, n=2))
    fake.add_record(**event(3, "a", 1, n=3))
    m = mount_of(fake)
    m.wait_for(lambda: m.status()["last_seq"] >= 3 and m.status()["materialize_queue"] == 0,
               30, "every record handled")
    want = [event_name(0, "Ping"), event_name(1, "Ping")]
    assert ls(m.events_dir("a")) == want
    assert sorted(m.events("a")) == want
    st = m.status()
    assert st["bad_records"] == 1, st
    assert count_bad_logged(m.log())[0] == {2: 1}
    # later records still come, and the listing still ends
    fake.add_record(**event(4, "a", 2, n=4))
    m.wait_for(lambda: event_name(2, "Ping") in m.events("a"), 20, "a live event")
    assert ls(m.events_dir("a")) == want + [event_name(2, "Ping")]


def test_largest_offset_is_listed(fake, mount_of):
    """2^53 - 1 is a valid offset: its file is shown, listed and acked like any other."""
    fake.assets = ["a", "b"]
    fake.add_record(**event(1, "a", 0, n=0))
    fake.add_record(**event(2, "a", MAX, n=2))
    fake.add_record(**event(3, "b", 0, n=3))
    m = mount_of(fake)
    m.wait_for(lambda: m.events("b"), 30, "the event after the largest offset")
    want = [event_name(0, "Ping"), event_name(MAX, "Ping")]
    assert ls(m.events_dir("a")) == want
    # a listing read one entry per getdents resumes from each entry's cookie: all are there,
    # once, and the largest cookie is the offset + 3
    entries = getdents_one_by_one(m.events_dir("a"))
    assert [name for name, _ in entries] == [".", ".."] + want
    assert entries[-1][1] == MAX + 3
    assert m.status()["bad_records"] == 0
    os.unlink(os.path.join(m.events_dir("a"), event_name(MAX, "Ping")))
    assert ls(m.events_dir("a")) == [event_name(0, "Ping")]


HOSTILE = {
    "event": lambda seq: line(event(seq, "a", 100, n=666)),
    "asset_created": lambda seq: line({"seq": seq, "kind": "asset_created", "asset": "evil",
                                       "time": T}),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("seq", [2 ** 63 - 1, MAX, 1000])
def test_seq_far_beyond_the_head_is_a_bad_record(fake, mount_of, kind, seq):
    """A record with seq 2^63 - 1 made every later record look like a replay (dropped), and
    its seq reached the tracker's journal as the watermark: the next mount saw a twin whose log
    ends before it and refused to follow it."""
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=0))
    # the twin's own bookkeeping (head, what a reconnect gets again) does not count this line:
    # it is the one lie in an otherwise honest log
    fake.add_line(HOSTILE[kind](seq), seq=1)
    fake.add_record(**event(2, "a", 1, n=1))
    fake.add_record(**event(3, "a", 2, n=2))
    m = mount_of(fake)
    m.wait_for(lambda: len(m.events("a")) == 3, 30, "the events after the hostile record")
    assert sorted(m.events("a")) == [event_name(o, "Ping") for o in range(3)]
    assert sorted(os.listdir(m.path("assets"))) == ["a"]
    st = m.status()
    assert st["bad_records"] == 1, st
    assert count_bad_logged(m.log())[0] == {seq: 1}
    assert st["last_seq"] == 3, st
    # live records follow
    fake.add_record(**event(4, "a", 3, n=3))
    m.wait_for(lambda: event_name(3, "Ping") in m.events("a"), 20, "a live event")
    for n in m.events("a"):
        os.unlink(os.path.join(m.events_dir("a"), n))
    m.wait_for(lambda: m.status()["watermark"] == 4, 20, "every event acked")
    m.stop()
    assert max(journal_numbers(m.tracker)) <= 4
    # a remount with the same tracker follows the twin: a new record appears, nothing old
    fake.add_record(**event(5, "a", 4, n=4))
    m2 = mount_of(fake, tracker=m.tracker)
    m2.wait_for(lambda: m2.events("a"), 20, "the new event after a remount")
    assert m2.events("a") == [event_name(4, "Ping")]
    assert m2.status()["bad_records"] == 0  # the hostile line is below the watermark now


def test_live_records_above_the_announced_head_are_delivered(fake, mount_of):
    """The head moves while the stream runs: records above the last head announced are news,
    not lies, as long as each line brings at most one new seq. Bad lines in between count as
    the seqs they stand for."""
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=0))
    m = mount_of(fake, max_pending=1000)
    m.wait_settled()
    # a burst with no heartbeat in between, then seqs 200..204 stand behind five bad lines
    for s in range(2, 200):
        fake.add_record(**event(s, "a", s - 1, n=s))
    for s in range(200, 205):
        fake.add_line('{"seq":%d,"kind":"event"}' % s, seq=s)
    fake.add_record(**event(205, "a", 204, n=205))
    m.wait_for(lambda: m.status()["last_seq"] == 205, 30, "the burst")
    m.wait_for(lambda: len(m.events("a")) == 200, 30, "the burst shown")
    st = m.status()
    assert st["bad_records"] == 5, st
    assert st["delivered"] == 200, st


def test_snapshot_head_beyond_the_protocol_is_refused(fake, tmp_path):
    """A snapshot whose head no twin can reach is not a twin's: with start=now it would have
    become the watermark of a new tracker."""
    fake.assets_body = b'{"head": 9223372036854775807, "assets": []}'
    m = Mount(None, tmp_path, url=fake.url, start="now")
    try:
        with pytest.raises(RuntimeError):
            m.start()
    finally:
        m.stop()
    assert "beyond the protocol" in m.log(), m.log()
    if os.path.exists(m.tracker):
        assert all(n <= MAX for n in journal_numbers(m.tracker))
