"""Bad input from the twin: a scripted fake twin (tests/reliability/faketwin.py) serves a corpus
of malformed stream lines, malformed schema documents and hostile T2 answers to a real mount.

Each test asserts that twinfs keeps serving (the mount answers, later good records appear),
that each bad record is contained to itself (no other record is lost or changed, nothing lands
in another asset or file), that it is logged once (twinfs -f's stderr) and that it is counted
in .twinfs/status (bad_records for lines refused, decode_errors for events whose data cannot be
decoded). docs/reliability.md lists the corpus."""

import base64
import errno
import json
import os
import re
import threading

import pytest

from testlib.events import PING, T, count_bad_logged, event, line, read_all
from testlib.mount import Mount, event_name

from faketwin import Answer

# The corpus of stream lines. Each entry: (what, the line, the seq twinfs can read from it or 0
# when none). Every one must be refused as a bad record, counted once and logged once.
def bad_corpus():
    c = []

    def add(what, text, seq):
        c.append((what, text if isinstance(text, bytes) else text.encode(), seq))

    add("truncated line", line(event(2, "good", 50))[:40], 0)
    add("not JSON", "this is not json", 0)
    add("invalid UTF-8 bytes", b'{"seq":3,"kind":"event","asset":"\xff\xfe"}', 0)
    add("lone surrogate escape", '{"seq":3,"kind":"asset_created","asset":"\\udc80"}', 0)
    add("JSON array", "[1,2,3]", 0)
    add("JSON string", '"event"', 0)
    add("kind missing", '{"seq":3}', 3)
    add("kind not a string", '{"seq":4,"kind":7}', 4)
    add("seq a string", line(event("5", "good", 51)), 0)
    add("seq negative", line(event(-6, "good", 52)), 0)
    add("seq zero", line(event(0, "good", 52)), 0)
    add("seq a float", line(event(7.5, "good", 53)), 0)
    add("seq past 2^64", '{"seq":18446744073709551616,"kind":"event"}', 0)
    add("offset negative", line(event(8, "good", -1)), 8)
    add("offset a string", line(event(9, "good", "9")), 9)
    add("offset missing", line({k: v for k, v in event(10, "good", 0).items() if k != "offset"}),
        10)
    add("name a number", line(event(11, "good", 54, name=123)), 11)
    add("version a string", line(event(12, "good", 55, version="1")), 12)
    add("version past int", line(event(13, "good", 56, version=2 ** 40)), 13)
    add("data a number", line(event(15, "good", 58, data=12345)), 15)
    add("data missing", line({k: v for k, v in event(16, "good", 59).items() if k != "data"}), 16)
    add("source a number", line(event(17, "good", 60, source=5)), 17)
    add("time an object", line(event(18, "good", 61, time={})), 18)
    add("asset with /", line(event(19, "good/evil", 62)), 19)
    add("asset ..", line({"seq": 20, "kind": "asset_created", "asset": "..", "time": T}), 20)
    add("asset .", line({"seq": 21, "kind": "asset_created", "asset": ".", "time": T}), 21)
    add("asset empty", line({"seq": 22, "kind": "asset_created", "asset": "", "time": T}), 22)
    add("asset 300 bytes", line({"seq": 23, "kind": "asset_created", "asset": "a" * 300,
                                 "time": T}), 23)
    add("asset with NUL", line(event(24, "good\u0000evil", 100)), 0)
    add("asset created with NUL", line({"seq": 25, "kind": "asset_created",
                                        "asset": "good\u0000x", "time": T}), 0)
    add("name with NUL", line(event(26, "good", 101, name="Ping\u0000/../x")), 0)
    add("name with /", line(event(27, "good", 102, name="../Ping")), 27)
    add("name with space", line(event(28, "good", 103, name="Ping Pong")), 28)
    add("source with NUL", line(event(29, "good", 104, source="a\u0000b")), 0)
    add("unknown kind", line({"seq": 30, "kind": "asset_renamed", "asset": "good"}), 30)
    add("duplicate keys", '{"seq":31,"kind":"event","seq":32}', 32)
    add("deep nesting", "[" * 100000, 0)
    add("caught_up without head", '{"kind":"caught_up"}', 0)
    add("heartbeat head negative", '{"kind":"heartbeat","head":-1}', 0)
    add("huge line (17 MiB)", b'{"kind":"padding","pad":"' + b"x" * (17 << 20) + b'"}', 0)
    return c


def test_stream_corpus_is_contained_logged_once_and_counted(fake, mount_of):
    fake.assets = ["good"]
    fake.snapshot_head = 0  # the records below are news, a2's creation included
    fake.add_record(**event(1, "good", 0, n=0))
    corpus = bad_corpus()
    last = 1
    for _, text, seq in corpus:
        # the fake's own seq only decides what a reconnect gets again: never these lines
        fake.add_line(text, seq=max(seq, last))
        last = max(last, seq)
    # undecodable but well-formed events: shown with the reason, counted in decode_errors
    fake.add_record(**event(40, "good", 1, data=base64.b64encode(b"\xff" * 12).decode()))
    fake.add_record(**event(41, "good", 2, name="NoSuchSchema"))
    fake.add_record(**event(42, "good", 3, n=3))
    # a repeated seq and a seq going backwards: dropped, the record already there stays
    fake.add_record(**event(42, "good", 4, n=999))
    fake.add_record(**event(35, "good", 5, n=999))
    fake.add_record(seq=43, kind="asset_created", asset="a2", time=T)
    fake.add_record(**event(44, "a2", 0, n=7))
    # data that is not base64: the event is sound, shown with the string as sent and the reason
    fake.add_record(**event(45, "a2", 1, data="!!not base64!!"))
    fake.add_record(**event(46, "good", 6, n=6))

    m = mount_of(fake)
    m.wait_for(lambda: event_name(6, "Ping") in m.events("good"), 30, "the last good event")
    m.wait_for(lambda: m.status()["last_seq"] >= 46, 10, "status to catch up")
    st = m.status()
    assert sorted(os.listdir(m.path("assets"))) == ["a2", "good"]
    assert sorted(m.events("good")) == [event_name(o, n) for o, n in [
        (0, "Ping"), (1, "Ping"), (2, "NoSuchSchema"), (3, "Ping"), (6, "Ping")]]
    assert sorted(m.events("a2")) == [event_name(0, "Ping"), event_name(1, "Ping")]
    assert m.read_event("good", 0)["data"] == {"n": 0}
    assert m.read_event("good", 3)["data"] == {"n": 3}
    assert m.read_event("good", 6)["data"] == {"n": 6}
    assert m.read_event("a2", 0)["data"] == {"n": 7}
    bad_avro = m.read_event("good", 1)
    assert "data" not in bad_avro and bad_avro["error"]
    assert base64.b64decode(bad_avro["data_b64"]) == b"\xff" * 12
    assert m.read_event("good", 2, "NoSuchSchema")["error"] == "unknown schema"
    not_b64 = m.read_event("a2", 1)
    assert "data" not in not_b64
    assert not_b64["data_b64"] == "!!not base64!!"
    assert not_b64["error"] == "data is not valid base64"

    assert st["bad_records"] == len(corpus), st
    assert st["decode_errors"] == 3, st
    log = m.log()
    with_seq, without = count_bad_logged(log)
    want = {}
    for _, _, seq in corpus:
        if seq:
            want[seq] = want.get(seq, 0) + 1
    assert with_seq == want
    assert without == sum(1 for _, _, s in corpus if not s)
    assert len(re.findall(r"event seq 40 .*cannot decode", log)) == 1
    assert len(re.findall(r"event seq 41 .*cannot decode", log)) == 1
    assert len(re.findall(r"event seq 45 .*cannot decode: data is not valid base64", log)) == 1

    # a cut: the stream resumes after the last seq and the corpus is not reported again
    fake.cut_streams()
    fake.add_record(**event(47, "good", 7, n=7))
    m.wait_for(lambda: event_name(7, "Ping") in m.events("good"), 30, "a live event")
    assert m.status()["bad_records"] == len(corpus)
    assert count_bad_logged(m.log()) == (with_seq, without)
    # every event can still be acked
    for n in m.events("good"):
        os.unlink(os.path.join(m.events_dir("good"), n))
    assert m.events("good") == []
    assert m.proc.poll() is None


def test_snapshot_with_unsafe_ids(fake, mount_of):
    """Ids in GET /v1/assets that cannot be a directory are not shown; the others are."""
    fake.assets_body = json.dumps({"head": 0, "assets": [
        {"id": "good"}, {"id": "../up"}, {"id": "a/b"}, {"id": ".."}, {"id": ""}, {"id": 17},
        {"id": None}, {}, "str", {"id": "b" * 256}, {"id": "ok2"}]}).encode()
    fake.add_record(**event(1, "good", 0, n=1))
    m = mount_of(fake)
    m.wait_for(lambda: m.events("good"), 20, "the event")
    assert sorted(os.listdir(m.path("assets"))) == ["good", "ok2"]


@pytest.mark.parametrize("body", [
    b'{"head": 0, "assets": [{"id": "good\\u0000evil"}]}',  # a NUL would cut the id short
    b'{"head": -1, "assets": []}',
    b'{"head": 0, "assets": {}}',
    b'{"head": 0, "assets": [], "head": 5}',
    b"<html>not a twin</html>",
])
def test_bad_snapshot_is_refused_at_start(fake, tmp_path, body):
    """A snapshot that is not the protocol's: twinfs does not mount and says why."""
    fake.assets_body = body
    m = Mount(None, tmp_path, url=fake.url)
    with pytest.raises(RuntimeError) as ei:
        m.start()
    m.stop()
    assert "not a twin" in str(ei.value)


@pytest.mark.parametrize("what,answer", [
    ("not JSON", Answer(200, "application/json", b"{not json")),
    ("JSON, not a schema", Answer(200, "application/json", b'{"hello": 1}')),
    ("empty body", Answer(200, "application/json", b"")),
    ("HTML", Answer(200, "text/html", b"<html><body>schema</body></html>")),
    ("unknown type", Answer(200, "application/json", b'{"type": "nosuchtype"}')),
    ("record without fields", Answer(200, "application/json",
                                     b'{"type":"record","name":"R"}')),
    ("self-recursive record", Answer(200, "application/json", json.dumps(
        {"type": "record", "name": "R", "fields": [{"name": "r", "type": "R"}]}))),
    ("deep nesting", Answer(200, "application/json",
                            b'{"type":"array","items":' * 3000 + b'"long"' + b"}" * 3000)),
    ("500 error", Answer(500, "application/json", b'{"error":"internal"}')),
    ("cut before the body", Answer(200, mode="close")),
    ("bad chunked body", Answer(200, "application/json", mode="bad_chunked")),
    ("slowloris", Answer(200, "application/json", json.dumps(PING).encode(), mode="slowloris",
                         interval=1.0, limit_s=40)),
    ("endless", Answer(200, "application/json", b"[" * 65536, mode="endless", limit_s=40)),
])
def test_malformed_schema_documents(fake, mount_of, what, answer):
    """An event whose schema document is bad still appears (raw data and the reason), is
    counted in decode_errors, and the events after it are decoded normally."""
    fake.schemas[("Bad", 1)] = answer
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, name="Bad"))
    fake.add_record(**event(2, "a", 1, n=1))
    fake.add_record(**event(3, "a", 2, name="Bad"))
    fake.add_record(**event(4, "a", 3, n=3))
    m = mount_of(fake)
    m.wait_for(lambda: len(m.events("a")) == 4, 60, "four events")
    bad = m.read_event("a", 0, "Bad")
    assert "data" not in bad and bad["error"] and "data_b64" in bad
    assert m.read_event("a", 1)["data"] == {"n": 1}
    assert m.read_event("a", 3)["data"] == {"n": 3}
    st = m.status()
    assert st["decode_errors"] == 2, st
    assert st["bad_records"] == 0
    assert m.proc.poll() is None
    # later live records are still decoded and shown
    fake.add_record(**event(5, "a", 4, n=4))
    m.wait_for(lambda: event_name(4, "Ping") in m.events("a"), 20, "a live event")
    assert m.read_event("a", 4)["data"] == {"n": 4}


def t2_path(m, rtype, name="x"):
    return m.path("assets", "a", "t2", rtype, name)


def test_hostile_t2_answers(fake, mount_of):
    fake.assets = ["a"]
    fake.t2["Endless"] = Answer(200, "application/octet-stream", mode="endless", limit_s=60)
    fake.t2["Slow"] = Answer(200, "text/plain", b"abcdefghijklmnopqrstuvwxyz",
                             mode="slowloris", interval=0.2, limit_s=60)
    fake.t2["Stall"] = Answer(200, "text/plain", mode="stall", limit_s=8)
    fake.t2["Html"] = Answer(200, "text/html; charset=utf-8", b"<html>hi</html>")
    fake.t2["NoType"] = Answer(200, None, b"no content type")
    fake.t2["WeirdType"] = Answer(200, "\x7f\x01bad/type\tx", b"weird")
    fake.t2["BadChunks"] = Answer(200, "text/plain", mode="bad_chunked")
    fake.t2["Close"] = Answer(200, mode="close")
    fake.t2["ErrHtml"] = Answer(500, "text/html", b"<html>oops</html>")
    fake.t2["Err404Junk"] = Answer(404, "application/json", b"{junk")
    fake.t2["Teapot"] = Answer(418, "text/plain", b"short and stout")
    fake.t2["LongType"] = Answer(200, "x/" + "y" * 60000, b"long type")
    fake.t2["HugeType"] = Answer(200, "x/" + "y" * 200000, b"huge type")
    fake.t2["ManyHeaders"] = Answer(200, "text/plain", b"many", headers={
        "X-H%d" % i: "v" * 100 for i in range(3000)})
    fake.t2["BadLength"] = Answer(200, "text/plain", b"body", headers={"Content-Length": "-5"})
    fake.add_record(**event(1, "a", 0))
    m = mount_of(fake, t2_timeout=3)
    m.wait_for(lambda: m.events("a"), 20, "the event")
    rss0 = m.rss_kib()

    # endless: reading 256 MiB streams with bounded memory; close ends the transfer
    got = read_all(t2_path(m, "Endless"), limit=256 << 20)
    assert len(got) >= 256 << 20
    assert m.rss_kib() < rss0 + 64 * 1024
    m.wait_for(lambda: m.status()["t2_streams_open"] == 0, 20, "the endless stream to close")

    # slowloris: the bytes arrive, slowly, and the file ends normally
    assert read_all(t2_path(m, "Slow")) == b"abcdefghijklmnopqrstuvwxyz"

    # a stalled answer (headers, then silence, then a cut): the reader waits as long as the
    # twin holds the connection (a slow provider is legitimate), the mount stays usable
    # meanwhile, and the cut is an error, never a short file
    res = {}

    def stall_reader():
        try:
            res["data"] = read_all(t2_path(m, "Stall"))
        except OSError as e:
            res["err"] = e.errno

    t = threading.Thread(target=stall_reader, daemon=True)
    t.start()
    m.wait_for(lambda: any(meth == "POST" and "/t2/Stall" in path
                           for meth, path in list(fake.requests)), 20, "the stalled request")
    assert m.events("a") == [event_name(0, "Ping")]
    t.join(120)
    assert not t.is_alive(), "a read of a stalled T2 answer never returned"
    assert res.get("err") == errno.EIO, res

    # wrong or missing content types: the body is served, the mime is whatever is sane
    assert read_all(t2_path(m, "Html")) == b"<html>hi</html>"
    assert read_all(t2_path(m, "NoType")) == b"no content type"
    assert read_all(t2_path(m, "WeirdType")) == b"weird"

    # a broken chunked body or a connection closed at once: an error, never a short file
    for rtype in ("BadChunks", "Close"):
        with pytest.raises(OSError) as ei:
            read_all(t2_path(m, rtype))
        assert ei.value.errno in (errno.EIO, errno.EPROTO, errno.ECONNRESET), rtype
    # error answers that are not the protocol's JSON: a clean errno at open
    for rtype in ("ErrHtml", "Err404Junk", "Teapot"):
        with pytest.raises(OSError):
            read_all(t2_path(m, rtype))

    # oversized headers: served or refused with an errno, the mime xattr bounded
    for rtype in ("LongType", "HugeType", "ManyHeaders", "BadLength"):
        try:
            body = read_all(t2_path(m, rtype))
        except OSError:
            continue
        assert body in (b"long type", b"huge type", b"many", b"body"), rtype
        try:
            assert len(os.getxattr(t2_path(m, rtype), "user.twin.mime")) <= 65536
        except OSError as e:
            assert e.errno in (errno.ENODATA, errno.E2BIG, errno.ERANGE), rtype

    assert m.proc.poll() is None
    assert m.status()["link"] == "up"
    m.wait_for(lambda: m.status()["t2_streams_open"] == 0, 30, "every T2 stream to close")


def test_repeated_and_backward_offsets(fake, mount_of):
    """Offsets of an asset only grow (docs/protocol.md). An event repeating an offset already
    delivered, or going back, is a bad record: skipped, counted, logged once. Before the fix
    it took a slot of the pending window for good (the file system could not show it next to
    the first event of that offset, so no one could ever ack it): max_pending such records
    stopped delivery, and the tracker's watermark stayed behind it."""
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=0))
    fake.add_record(**event(2, "a", 0, n=900))  # same offset again
    fake.add_record(**event(3, "a", 1, n=1))
    fake.add_record(**event(4, "a", 1, n=901))  # and again
    fake.add_record(**event(5, "a", 0, n=902))  # backwards
    fake.add_record(**event(6, "a", 2, n=2))
    m = mount_of(fake, max_pending=4)
    m.wait_for(lambda: event_name(2, "Ping") in m.events("a"), 20, "the last event")
    assert [m.read_event("a", o)["data"]["n"] for o in range(3)] == [0, 1, 2]
    for n in m.events("a"):
        os.unlink(os.path.join(m.events_dir("a"), n))
    st = m.status()
    assert st["bad_records"] == 3, st
    assert st["pending"] == 0, st
    assert st["watermark"] == 6, st
    assert count_bad_logged(m.log())[0] == {2: 1, 4: 1, 5: 1}
    # the window is not clogged: more events than max_pending still flow
    for k in range(10):
        fake.add_record(**event(7 + k, "a", 3 + k, n=3 + k))
    m.wait_for(lambda: len(m.events("a")) == 4, 20, "a full window")
    acked = 0
    while acked < 10:
        # each ack lets the next event in; it shows a moment later (much later on a loaded
        # machine, where three rounds 0.3 s apart could miss some and the watermark stayed put)
        names = m.wait_for(lambda: m.events("a"), 20, "more events (%d acked)" % acked)
        for n in names:
            os.unlink(os.path.join(m.events_dir("a"), n))
            acked += 1
    m.wait_for(lambda: m.status()["watermark"] == 16, 20, "every event acked")


@pytest.mark.parametrize("bad", [
    '{"seq": 9000000000000000000, "kind": "event"}',
    '{"seq": 9000000000000000000, "kind": "asset_created", "asset": "../x"}',
    '{"seq": 9000000000000000000, "kind": "event", "asset": "a", "offset": 9, "data": 5}',
])
def test_bad_record_with_a_seq_far_ahead(fake, mount_of, tmp_path, bad):
    """A refused record's seq is not trusted: a bad line claiming a seq far ahead must not
    make the records after it look like replays. Before the fix, every later record was
    dropped, and the watermark (on disk) jumped past them, so a restart lost them too."""
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=0))
    fake.add_line(bad, seq=1)
    fake.add_record(**event(2, "a", 1, n=1))
    m = mount_of(fake)
    m.wait_for(lambda: event_name(1, "Ping") in m.events("a"), 20, "the event after the bad one")
    assert m.status()["bad_records"] == 1
    assert m.status()["watermark"] < 9000000000000000000
    # live records and a reconnect: still delivered, the bad line not reported again
    fake.add_record(**event(3, "a", 2, n=2))
    m.wait_for(lambda: event_name(2, "Ping") in m.events("a"), 20, "a live event")
    fake.cut_streams()
    fake.add_record(**event(4, "a", 3, n=3))
    m.wait_for(lambda: event_name(3, "Ping") in m.events("a"), 20, "an event after a cut")
    assert m.status()["bad_records"] == 1
    assert sum(count_bad_logged(m.log())[0].values()) == 1
    # a restart with the same tracker: the events not acked are all there again
    m.stop()
    m2 = mount_of(fake, tracker=m.tracker)
    m2.wait_for(lambda: len(m2.events("a")) == 4, 20, "four events after a restart")
