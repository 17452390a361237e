"""testlib.events: the Ping schema the tests publish, its AVRO encoding, publishing in bulk,
reading event files, and the stream records a fake twin serves."""

import base64
import json
import os
import re

PING = {"type": "record", "name": "Ping", "fields": [{"name": "n", "type": "long"}]}
T = "2026-01-05T09:00:00.000Z"  # the time of every record event() makes


def setup_ping(twin, assets=()):
    """Registers schema Ping v1 and creates the assets."""
    twin.put_schema("Ping", 1, PING)
    for a in assets:
        twin.create_asset(a)


def publish_pings(twin, asset, count, start=0, batch=5000):
    """Publishes Ping events n=start..start+count-1 on asset, in batches."""
    n = start
    while n < start + count:
        k = min(batch, start + count - n)
        twin.publish_batch([{"asset": asset, "name": "Ping", "version": 1, "source": "test",
                             "data": {"n": i}} for i in range(n, n + k)])
        n += k


def zigzag(n):
    """The AVRO binary of a long (zig-zag varint): a Ping's whole data."""
    v = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ping_b64(n):
    return base64.b64encode(zigzag(n)).decode()


def ping_n(data_b64):
    """data.n of a Ping event from its AVRO bytes in base64: the inverse of ping_b64."""
    v = shift = 0
    for b in base64.b64decode(data_b64):
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            break
    return (v >> 1) ^ -(v & 1)


def event(seq, asset, offset, n=0, name="Ping", version=1, **over):
    """A stream record of a Ping event (fields in over replace or add to it)."""
    rec = {"seq": seq, "kind": "event", "asset": asset, "offset": offset, "name": name,
           "version": version, "source": "fake", "time": T, "systime": T, "data": ping_b64(n)}
    rec.update(over)
    return rec


def line(rec):
    """A record as one compact stream line (without the newline)."""
    return json.dumps(rec, separators=(",", ":"))


def read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def event_files(m, asset):
    """The asset's event file names, [] while its directory is not there."""
    try:
        return os.listdir(m.events_dir(asset))
    except FileNotFoundError:
        return []


def read_all(path, limit=None):
    """The bytes of a file read to its end (or to limit bytes) in 64 KiB unbuffered reads,
    as a streaming reader reads a T2 file."""
    out = bytearray()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(65536)
            if not b:
                return bytes(out)
            out += b
            if limit is not None and len(out) >= limit:
                return bytes(out)


def count_bad_logged(log):
    """{seq: times logged} for bad records with a seq, and how many were logged without one."""
    with_seq = {}
    without = 0
    for ln in log.splitlines():
        times = 1
        rep = re.search(r"last message repeated (\d+) times?: ", ln)
        if rep:  # mount/log.c folds repeats of one message
            times = int(rep.group(1))
        m = re.search(r"bad record seq (\d+) skipped", ln)
        if m:
            s = int(m.group(1))
            with_seq[s] = with_seq.get(s, 0) + times
        elif "bad record skipped:" in ln:
            without += times
    return with_seq, without
