"""A hostile twin's well-formed but expensive events: schemas whose named types expand an empty
value to 10^7..10^12 values, and data that renders 100 times larger than it was sent.

Each event costs bounded work, memory and time: it appears with data_b64 and an error, counted
in decode_errors, the events after it follow, the daemon's peak RSS stays small and SIGTERM
ends it. What the window (max_pending_mb) counts is the event's rendered size when that is
larger than its line, and status pending_bytes says so."""

import base64
import json
import os
import signal
import time

from testlib.events import event, line, zigzag
from testlib.mount import event_name
from testlib.proc import vm_kib
from testlib.wait import wait_for

from faketwin import Answer

SCHEMA_TOO_BIG = "schema expands to more values than one event may decode"
JSON_TOO_BIG = "data renders to more JSON than one event file may hold"
# Peak RSS allowed to the daemon (KiB) while it meets these events. Before the bounds, the
# 10^7 schema alone took 2.3 GB and the 130 MB rendering over 1 GB; under ASan the daemon
# idles near 40 MiB.
MAX_HWM_KIB = 160 * 1024


def chain_schema(fanout):
    """Records R1..Rk: R1 has fanout[0] null fields, each later Ri fanout[i-1] fields of type
    R(i-1), the first defining it and the others referring to it by name. The empty value of
    Rk holds the product of fanout nulls, and takes no byte of data."""
    rec = None
    for i, n in enumerate(fanout, 1):
        fields = []
        for j in range(n):
            if i == 1:
                t = "null"
            elif j == 0:
                t = rec
            else:
                t = "R%d" % (i - 1)
            fields.append({"name": "f%d" % j, "type": t})
        rec = {"type": "record", "name": "R%d" % i, "fields": fields}
    return rec


def nested_bools_schema(levels):
    """levels records nested around an array of booleans: one byte of data per boolean, a
    line of 2 * levels + 10 bytes or so in the event file."""
    t = {"type": "array", "items": "boolean"}
    for i in range(levels):
        t = {"type": "record", "name": "N%d" % i, "fields": [{"name": "x", "type": t}]}
    return t


def bools_data(n):
    out = bytearray(zigzag(n)) if n else bytearray()
    out += bytes(i % 2 for i in range(n))
    out += zigzag(0)
    return base64.b64encode(bytes(out)).decode()


def test_named_type_expansion_is_refused_and_next_events_follow(fake, mount_of):
    """Three and four records of 1000 fields referring to the previous one by name, with
    empty data: 10^7 values made a 219 MB file and 2.3 GB RSS, 10^9 aborted in avro-c (at
    every restart), 10^12 spun for ever and SIGTERM did not end the daemon."""
    shapes = {"Wide7": [10, 1000, 1000], "Wide9": [1000, 1000, 1000],
              "Wide12": [1000, 1000, 1000, 1000]}
    for name, fanout in shapes.items():
        text = json.dumps(chain_schema(fanout))
        fake.schemas[(name, 1)] = Answer(200, "application/json", text)
    fake.assets = ["a"]
    fake.add_record(**event(1, "a", 0, n=1))
    seq = 2
    for offset, name in enumerate(shapes, 1):
        fake.add_record(**event(seq, "a", offset, name=name, data=""))
        seq += 1
    fake.add_record(**event(seq, "a", 4, n=4))

    m = mount_of(fake)
    m.wait_for(lambda: event_name(4, "Ping") in m.events("a"), 60, "the event after them")
    m.wait_for(lambda: m.status()["materialize_queue"] == 0, 30, "every event shown")
    assert sorted(m.events("a")) == sorted(
        [event_name(0, "Ping"), event_name(4, "Ping")] +
        [event_name(o, n) for o, n in enumerate(shapes, 1)])
    for offset, name in enumerate(shapes, 1):
        ev = m.read_event("a", offset, name)
        assert "data" not in ev, name
        assert ev["error"] == SCHEMA_TOO_BIG, (name, ev)
        assert ev["data_b64"] == ""
    assert m.read_event("a", 4, "Ping")["data"] == {"n": 4}
    st = m.status()
    assert st["decode_errors"] == 3, st
    assert st["link"] == "up"
    hwm = vm_kib(m.pid, "VmHWM")
    print("daemon peak RSS %d KiB" % hwm)
    assert hwm < MAX_HWM_KIB, "peak RSS %d KiB" % hwm
    log = m.log()
    for name in shapes:
        assert "%s v1): cannot decode: %s" % (name, SCHEMA_TOO_BIG) in log, log

    # a later event of the same schema costs as little (the refusal is kept with the schema)
    fake.add_record(**event(seq + 1, "a", 5, name="Wide12", data=""))
    fake.add_record(**event(seq + 2, "a", 6, n=6))
    m.wait_for(lambda: event_name(6, "Ping") in m.events("a"), 30, "the live events")
    assert m.read_event("a", 5, "Wide12")["error"] == SCHEMA_TOO_BIG

    # SIGTERM ends the daemon (and its mount) promptly
    proc = m.proc
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    proc.wait(20)
    assert time.monotonic() - start < 10
    m.proc = None
    wait_for(lambda: not os.path.ismount(m.mnt), 10, "the mount to go")


def test_rendered_size_is_capped_and_counted(fake, mount_of):
    """60 records nested around an array of booleans render 100 times larger than their line:
    a 1.3 MB line made a 130 MB file. Now an event whose JSON would pass 64 MiB appears with
    data_b64 and the reason, without the daemon building it; one under the cap is shown
    decoded and counted in pending_bytes at its rendered size."""
    fake.schemas[("Nest", 1)] = Answer(200, "application/json",
                                       json.dumps(nested_bools_schema(60)))
    fake.assets = ["a"]
    huge = event(1, "a", 0, name="Nest", data=bools_data(980000))
    small = event(2, "a", 1, name="Nest", data=bools_data(20000))
    fake.add_record(**huge)
    fake.add_record(**small)
    fake.add_record(**event(3, "a", 2, n=2))
    wire = [len(line(huge)), len(line(small)), len(line(event(3, "a", 2, n=2)))]
    assert wire[0] > 1300000

    m = mount_of(fake)
    m.wait_for(lambda: event_name(2, "Ping") in m.events("a"), 60, "the event after them")
    st = m.wait_for(lambda: (lambda s: s if s["materialize_queue"] == 0 and
                             s["last_seq"] >= 3 else None)(m.status()), 30, "all shown")
    paths = [os.path.join(m.events_dir("a"), event_name(o, n))
             for o, n in [(0, "Nest"), (1, "Nest"), (2, "Ping")]]
    sizes = [os.stat(p).st_size for p in paths]

    ev = m.read_event("a", 0, "Nest")
    assert "data" not in ev and ev["error"] == JSON_TOO_BIG, {k: ev[k] for k in ev if k != "data_b64"}
    assert ev["data_b64"] == huge["data"]
    assert sizes[0] < 2 * wire[0]

    ev = m.read_event("a", 1, "Nest")
    inner = ev["data"]
    for _ in range(60):
        inner = inner["x"]
    assert len(inner) == 20000 and inner[:3] == [False, True, False]
    assert sizes[1] > 50 * wire[1], (sizes[1], wire[1])
    assert st["decode_errors"] == 1, st

    # the window holds each event at the larger of its line and its file
    assert st["pending"] == 3
    assert st["pending_bytes"] == sum(max(w, s) for w, s in zip(wire, sizes)), (st, wire, sizes)
    hwm = vm_kib(m.pid, "VmHWM")
    print("daemon peak RSS %d KiB" % hwm)
    assert hwm < MAX_HWM_KIB, "peak RSS %d KiB" % hwm


def test_window_counts_rendered_size(fake, mount_of):
    """With max_pending_mb=1, events of 12 KB lines that render to 700 KB each are shown one
    at a time (two would pass 1 MiB): counted as sent, all of them were shown at once."""
    fake.schemas[("Nest", 1)] = Answer(200, "application/json",
                                       json.dumps(nested_bools_schema(40)))
    fake.assets = ["a"]
    total = 4
    for i in range(total):
        fake.add_record(**event(i + 1, "a", i, name="Nest", data=bools_data(8000)))

    m = mount_of(fake, max_pending_mb=1)
    d = m.events_dir("a")
    seen = []
    while len(seen) < total:
        names = m.wait_for(lambda: m.events("a"), 30, "more events (%d seen)" % len(seen))
        st = m.status()
        assert len(names) == 1 and st["pending"] == 1, (names, st)
        size = os.stat(os.path.join(d, names[0])).st_size
        assert st["pending_bytes"] >= size
        assert size > 600 * 1024, size
        seen.append(names[0])
        os.unlink(os.path.join(d, names[0]))
    assert seen == [event_name(i, "Nest") for i in range(total)]
    assert m.wait_for(lambda: m.status()["pending_bytes"] == 0 or None, 10, "the window empty")
