"""Live assets and events appear after the mount, and `inotifywait -m -r -e create` on
MNT/assets reports every new asset directory and every new event file; a deleted asset's
directory disappears."""

import os
import time

import pytest

from testlib.cli import twinfs_pids
from testlib.events import publish_pings, read_json, setup_ping
from testlib.mount import event_name, mounted
from testlib.wait import wait_for


def test_live_assets_and_events_fire_inotify(twin, tmp_path, inotify):
    setup_ping(twin, ["old"])
    twin.publish("old", "Ping", 1, {"n": 0})
    with mounted(twin, tmp_path, materialize_delay=300) as m:
        m.wait_for(lambda: os.listdir(m.events_dir("old")), 10, "backlog")
        w = inotify(m.path("assets"))
        expected = {m.path("assets", "new1") + "|CREATE,ISDIR",
                    m.path("assets", "new2") + "|CREATE,ISDIR"}
        twin.publish("old", "Ping", 1, {"n": 1})
        expected.add(os.path.join(m.events_dir("old"), event_name(1, "Ping")) + "|CREATE")
        for a in ("new1", "new2"):
            twin.create_asset(a)
            for i in range(5):
                seq, off = twin.publish(a, "Ping", 1, {"n": i})
                expected.add(os.path.join(m.events_dir(a), event_name(off, "Ping")) + "|CREATE")
        lines = w.collect(lambda ls: expected <= set(ls))
        missing = sorted(x.rsplit("/", 3)[-3:] and x[len(m.mnt):] for x in expected - set(lines))
        assert not missing, (missing, [x[len(m.mnt):] for x in lines])
        # each entry exactly once
        assert len(lines) == len(set(lines)), lines
        for a in ("new1", "new2"):
            names = os.listdir(m.events_dir(a))
            assert names == [event_name(i, "Ping") for i in range(5)]
            for i, n in enumerate(names):
                doc = read_json(os.path.join(m.events_dir(a), n))
                assert doc["data"] == {"n": i}
                assert doc["asset"] == a


def test_backlog_fires_inotify_at_start(twin, tmp_path, inotify):
    """The replayed backlog is materialized after the mount too: a watcher started on the
    empty mount point's assets dir before the events show sees them (here: by watching a
    second mount of a twin whose backlog arrives once the first asset exists)."""
    setup_ping(twin, [])
    with mounted(twin, tmp_path, materialize_delay=300) as m:
        w = inotify(m.path("assets"))
        twin.create_asset("b1")
        publish_pings(twin, "b1", 200)
        want = {os.path.join(m.events_dir("b1"), event_name(i, "Ping")) + "|CREATE"
                for i in range(200)}
        lines = w.collect(lambda ls: want <= set(ls))
        assert want <= set(lines), len(want - set(lines))


def test_deleted_asset_disappears(twin, tmp_path):
    setup_ping(twin, ["gone", "stays"])
    twin.publish("gone", "Ping", 1, {"n": 0})
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: os.listdir(m.events_dir("gone")), 10, "event of gone")
        st_before = m.status()
        twin.delete_asset("gone")
        m.wait_for(lambda: "gone" not in os.listdir(m.path("assets")), 10, "asset gone")
        # The kernel's cached entry goes when the materializer tells it, a moment later.
        m.wait_for(lambda: not os.path.exists(m.path("assets", "gone")), 5, "entry gone")
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("assets", "gone"))
        assert "stays" in os.listdir(m.path("assets"))
        wait_for(lambda: m.status()["assets"] == st_before["assets"] - 1, 5, "status assets")
        # a new asset of the same name is a new directory
        twin.create_asset("gone")
        twin.publish("gone", "Ping", 1, {"n": 7})
        m.wait_for(lambda: os.listdir(m.events_dir("gone")), 10, "recreated asset's event")


def test_assets_created_and_deleted_at_once_are_no_error(twin, tmp_path):
    """An asset deleted while its directory is being made needs nothing made: no materialize
    error and no warning in the log. One deleted and created again at once is a new, empty
    directory with only its new event."""
    setup_ping(twin, ["keep"])
    with mounted(twin, tmp_path, materialize_delay=0) as m:
        m.wait_for(lambda: "keep" in os.listdir(m.path("assets")), 10, "asset keep")
        for i in range(150):  # each a race between its mkdir and its deletion
            a = "brief-%d" % i
            twin.create_asset(a)
            twin.delete_asset(a)
        twin.delete_asset("keep")
        twin.create_asset("keep")
        twin.publish("keep", "Ping", 1, {"n": 99})
        m.wait_for(lambda: m.status()["materialize_queue"] == 0
                   and os.listdir(m.path("assets")) == ["keep"]
                   and m.events("keep") == [event_name(0, "Ping")], 20, "the queue done")
        assert read_json(os.path.join(m.events_dir("keep"), event_name(0, "Ping")))["data"] == \
            {"n": 99}
        st = m.status()
        assert st["materialize_errors"] == 0, st
        assert st["assets"] == 1 and st["visible_events"] == 1, st
    assert "without inotify event" not in m.log()


def caller_pids(m):
    """The materializer's caller process (twinfs-caller) of the mount m."""
    return [p for p in twinfs_pids(m.mnt, with_caller=True) if p != m.pid]


def test_a_killed_caller_is_replaced_and_events_still_fire_inotify(twin, tmp_path,
                                                                   inotify):
    """Regression: when the caller process (the one that makes the materializer's calls on the
    mount) died, every later entry was shown without its IN_CREATE, for good."""
    setup_ping(twin, ["a"])
    twin.publish("a", "Ping", 1, {"n": 0})
    with mounted(twin, tmp_path) as m:
        m.wait_settled()
        w = inotify(m.path("assets"))
        for round_ in range(2):  # twice: a second death is handled like the first
            old = m.wait_for(lambda: caller_pids(m), 5, "the caller")
            os.kill(old[0], 9)
            # seq, offset: offsets 1 and 2 follow the backlog's 0
            _, off = twin.publish("a", "Ping", 1, {"n": round_ + 1})
            want = os.path.join(m.events_dir("a"), event_name(off, "Ping")) + "|CREATE"
            lines = w.collect(lambda ls: want in ls, timeout=10)
            assert want in lines, (want, lines, m.log())
            new = m.wait_for(lambda: caller_pids(m), 5, "a new caller")
            assert new != old
            time.sleep(1.1)  # restarts are limited to one a second
        st = m.status()
        assert st["materialize_errors"] == 0
        assert "started a new one" in m.log(), m.log()
