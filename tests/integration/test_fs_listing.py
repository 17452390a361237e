"""twinfs listing: every asset a directory, every unacked event a file oldest first whose JSON
equals what was published (data decoded from AVRO for every demo schema shape), xattrs, the
status file, and the read-only table."""

import errno
import json
import os
import stat
import subprocess

import pytest

from testlib.events import publish_pings, setup_ping
from testlib.mount import event_name, mounted

import demo  # the demo data set the twin loads with --demo (tests/twin/demo.py)

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def avro_json(schema, value, names):
    """value (as the demo publishes it) in AVRO's JSON encoding, the form twinfs shows."""
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return value
        return avro_json(names[schema], value, names)
    if isinstance(schema, list):  # a union: null, or {"branch": value}
        if value is None:
            return None
        for branch in schema:
            if branch == "null":
                continue
            bname = branch if isinstance(branch, str) else branch.get("name", branch["type"])
            return {bname: avro_json(branch, value, names)}
        raise AssertionError("no branch for %r" % (value,))
    t = schema["type"]
    if t == "record":
        names[schema["name"]] = schema
        return {f["name"]: avro_json(f["type"], value.get(f["name"], f.get("default")), names)
                for f in schema["fields"]}
    if t == "enum":
        names[schema["name"]] = schema
        return value
    if t == "array":
        return [avro_json(schema["items"], v, names) for v in value]
    if t == "map":
        return {k: avro_json(schema["values"], v, names) for k, v in value.items()}
    return value  # a primitive with a logical type: its underlying value


def demo_expected():
    """{asset: [(offset, name, version, source, time, data in AVRO JSON)]} of the demo."""
    schemas = {(n, v): s for n, v, s in demo.SCHEMAS}
    out = {a: [] for a in demo.ASSETS}
    for asset, name, version, source, time_, data in demo.EVENTS:
        lst = out.setdefault(asset, [])
        lst.append((len(lst), name, version, source, time_,
                    avro_json(schemas[(name, version)], data, {})))
    return out


def test_listing_matches_demo(demo_twin, tmp_path):
    expected = demo_expected()
    with mounted(demo_twin, tmp_path) as m:
        m.wait_for(lambda: m.status()["visible_events"] == len(demo.EVENTS), 15,
                   "every demo event to be visible")
        assert sorted(os.listdir(m.path("assets"))) == sorted(demo.ASSETS)
        assert sorted(os.listdir(m.mnt)) == [".twinfs", "assets", "events"]
        for asset, evs in expected.items():
            d = m.path("assets", asset)
            assert stat.S_ISDIR(os.stat(d).st_mode)
            assert sorted(os.listdir(d)) == ["events", "t2"]
            names = m.events(asset)
            # readdir order is offset order, which is also the names' sort order
            assert names == [event_name(off, n) for off, n, *_ in evs]
            assert names == sorted(names)
            for off, name, version, source, time_, data in evs:
                p = os.path.join(d, "events", event_name(off, name))
                st = os.stat(p)
                assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
                with open(p, "rb") as f:
                    raw = f.read()
                assert st.st_size == len(raw)  # wc -c, cp and read() agree with stat
                doc = json.loads(raw)
                assert doc["asset"] == asset
                assert doc["offset"] == off
                assert doc["name"] == name
                assert doc["version"] == version
                assert doc["source"] == source
                assert doc["time"] == time_
                assert "systime" in doc
                assert "error" not in doc, doc
                assert doc["data"] == data
                # the same metadata as xattrs
                assert os.getxattr(p, "user.twin.asset").decode() == asset
                assert os.getxattr(p, "user.twin.offset").decode() == str(off)
                assert os.getxattr(p, "user.twin.name").decode() == name
                assert os.getxattr(p, "user.twin.version").decode() == str(version)
                assert os.getxattr(p, "user.twin.source").decode() == source
                assert os.getxattr(p, "user.twin.time").decode() == time_
                assert int(os.getxattr(p, "user.twin.seq")) > 0
                assert set(os.listxattr(p)) >= {
                    "user.twin.asset", "user.twin.offset", "user.twin.name",
                    "user.twin.version", "user.twin.time", "user.twin.source",
                    "user.twin.seq"}
                with pytest.raises(OSError) as e:
                    os.getxattr(p, "user.twin.nope")
                assert e.value.errno == errno.ENODATA


def test_status_file(demo_twin, tmp_path):
    with mounted(demo_twin, tmp_path) as m:
        st = m.wait_settled()
        assert st["url"] == demo_twin.url
        assert st["link"] == "up"
        assert st["assets"] == len(demo.ASSETS)
        assert st["head"] >= st["last_seq"] > 0
        for k in ("watermark", "pending", "delivered", "acked", "visible_events",
                  "bad_records", "decode_errors", "reconnects", "last_error",
                  "t2_streams_open", "requests"):
            assert k in st, k
        # every request is counted, per opcode
        before = m.status()["requests"]
        os.listdir(m.path("assets", demo.ASSETS[0], "events"))
        os.stat(m.path("assets", demo.ASSETS[0], "t2", "SomeType", "x"))
        after = m.status()["requests"]
        assert after["lookup"] > before["lookup"]
        assert after["open"] > before["open"]  # the status file's own open


def test_settled_status_means_every_delivered_event_is_listed(twin, tmp_path):
    """Regression: materialize_queue dropped to 0 when the materializer took the last entry,
    before its mknod, so "replay done and queue empty" came while the event was still hidden.
    A long materialize_delay holds the one event between taken and shown."""
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 1)
    with mounted(twin, tmp_path, materialize_delay=1500) as m:
        st = m.wait_settled()
        assert st["visible_events"] == st["delivered"] == 1
        assert m.events("a") == [event_name(0, "Ping")]


def test_unknown_names_and_pending_invisible(demo_twin, tmp_path):
    with mounted(demo_twin, tmp_path) as m:
        m.wait_for(lambda: m.status()["visible_events"] == len(demo.EVENTS), 15, "events")
        ev = m.events_dir(demo.ASSETS[0])
        for bad in ("nope", event_name(999, "NewDocSet"), event_name(0, "Wrong"),
                    "0-NewDocSet.json"):
            with pytest.raises(FileNotFoundError):
                os.stat(os.path.join(ev, bad))
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("assets", "no-such-asset"))
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("nothing"))
        st = os.statvfs(m.mnt)
        assert st.f_namemax == 255


def test_only_the_user_xattr_namespace(twin, tmp_path):
    """Attributes live in user.* only. Other namespaces answer EOPNOTSUPP (not supported here),
    which is what lets `ls -l` stop asking for the SELinux label and ACL of every file: with
    ENODATA it cost 2-3 round trips per file, 100k files took 10x tmpfs."""
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 200)
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: m.status()["visible_events"] == 200, 15, "200 events")
        events = m.events_dir("a")
        p = os.path.join(events, event_name(0, "Ping"))
        for name in ("security.selinux", "system.posix_acl_access",
                     "system.posix_acl_default", "trusted.x"):
            for path in (p, events, m.path("assets", "a")):
                with pytest.raises(OSError) as e:
                    os.getxattr(path, name)
                assert e.value.errno == errno.EOPNOTSUPP, (name, path)
        with pytest.raises(OSError) as e:
            os.getxattr(p, "user.twin.nope")
        assert e.value.errno == errno.ENODATA
        assert os.getxattr(p, "user.twin.offset") == b"0"
        # ls -l: a constant number of getxattr requests, not a few per file
        before = m.status()["requests"].get("getxattr", 0)
        r = subprocess.run(["ls", "-l", events], capture_output=True, text=True,
                           env=dict(os.environ, LC_ALL="C"), check=True)
        assert len(r.stdout.splitlines()) == 201  # "total" and 200 files
        asked = m.status()["requests"].get("getxattr", 0) - before
        assert asked <= 10, asked
