"""-o assets=GLOB and -o shard=K/N: a mount follows a subset of the twin's assets. Only the
selected assets are shown, with their events, live ones included; the others' records count as
handled, so the tracker's watermark reaches the twin's head once the shown events are acked,
and a remount with another selection does not replay what was skipped. N mounts with shards
1/N to N/N, each with its own tracker, show every asset exactly once, split by the public hash
(FNV-1a 64 of the id's bytes mod N, core/include/twin/hash.h)."""

import os

from testlib.events import publish_pings, setup_ping
from testlib.mount import Mount, event_name, mounted
from testlib.names import shown


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(asset, n):
    """The shard (0-based) of an asset id, as twin_asset_shard computes it."""
    return fnv1a64(asset.encode()) % n


def test_shard_hash_matches_published_values():
    """The Python twin of the C hash that the tests below compare against (FNV's own
    vectors, and values pinned in tests/unit/test_asset_select.c)."""
    assert fnv1a64(b"") == 0xcbf29ce484222325
    assert fnv1a64(b"a") == 0xaf63dc4c8601ec8c
    assert fnv1a64(b"foobar") == 0x85944171f73967e8
    assert [shard_of(a, 3) for a in ("asset-0", "asset-1", "acme-pump-01", "tab\there")] == \
        [2, 0, 2, 2]


def globs(*patterns):
    """The value of one assets= option that Mount turns into assets=P1,assets=P2,... (Mount
    joins its options with commas)."""
    return ",assets=".join(patterns)


def listed(m):
    return sorted(os.listdir(m.path("assets")))


def ack_all(m):
    """Acks every shown event (rm of its per-asset name); returns how many."""
    n = 0
    for a in os.listdir(m.path("assets")):
        d = m.path("assets", a, "events")
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
            n += 1
    return n


def wait_watermark_at_head(m, twin, timeout=60):
    head = twin.head()
    return m.wait_for(lambda: m.status()["watermark"] == head and m.status(), timeout,
                      "the watermark to reach the twin's head %d (status %r)" % (head, m.status()))


def test_assets_glob_shows_only_matching_assets(twin, tmp_path):
    setup_ping(twin, ["pump-1", "valve-1"])
    publish_pings(twin, "pump-1", 3)
    publish_pings(twin, "valve-1", 4)
    tracker = os.path.join(str(tmp_path), "tracker.journal")
    m = Mount(twin, tmp_path, tracker=tracker, assets="pump-*")
    m.start()
    try:
        m.wait_settled(60)
        m.wait_for(lambda: len(m.events("pump-1")) == 3, 60, "pump-1's backlog")
        assert listed(m) == ["pump-1"]
        assert not os.path.exists(m.path("assets", "valve-1", "t2", "Doc", "x"))
        # live: a new asset of each kind, events on all four
        twin.create_asset("pump-2")
        twin.create_asset("valve-2")
        publish_pings(twin, "valve-2", 5)
        publish_pings(twin, "pump-2", 2)
        publish_pings(twin, "valve-1", 2, start=4)
        publish_pings(twin, "pump-1", 1, start=3)
        m.wait_for(lambda: "pump-2" in listed(m) and len(m.events("pump-2")) == 2
                   and len(m.events("pump-1")) == 4, 60, "the live pump events")
        st = m.wait_quiet()
        assert listed(m) == ["pump-1", "pump-2"]
        assert sorted(m.events("pump-1")) == [event_name(i, "Ping") for i in range(4)]
        if os.path.isdir(m.path("events")):
            flat = os.listdir(m.path("events"))
            assert len(flat) == 6 and all("-pump-" in n for n in flat), flat
        assert st["delivered"] == 6 and st["assets"] == 2, st
        assert st["watermark"] < twin.head()  # pump-1's first event waits for its ack
        assert ack_all(m) == 6
        st = wait_watermark_at_head(m, twin)
        assert st["pending"] == 0 and st["acked"] == 6 and st["last_error"] is None, st
        head = twin.head()
    finally:
        m.stop()

    # Another selection on the same tracker: the valves' skipped events were handled for this
    # tracker, so they do not come back; their assets are shown, and new events are.
    with mounted(twin, tmp_path, tracker=tracker, assets="valve-*") as m2:
        m2.wait_settled(60)
        assert listed(m2) == ["valve-1", "valve-2"]
        st = m2.wait_quiet()
        assert st["delivered"] == 0 and st["watermark"] == head, st
        assert m2.events("valve-1") == [] and m2.events("valve-2") == []
        twin.publish("valve-2", "Ping", 1, {"n": 5})
        twin.publish("pump-1", "Ping", 1, {"n": 4})
        m2.wait_for(lambda: m2.events("valve-2") == [event_name(5, "Ping")], 60,
                    "valve-2's new event")
        assert m2.wait_quiet()["delivered"] == 1


def test_shard_splits_assets_between_three_mounts(twin, tmp_path):
    odd = ["tab\there", "nl\nname", "ässet-日本", "asset%2F%25"]
    assets = ["asset-%02d" % i for i in range(30)] + odd
    setup_ping(twin, assets)
    for a in assets:
        twin.publish(a, "Ping", 1, {"n": 0})
    want = {k: sorted(shown(a) for a in assets if shard_of(a, 3) == k) for k in range(3)}
    assert all(want.values()), want  # each shard has some: the test can fail both ways
    mounts = [Mount(twin, tmp_path, shard="%d/3" % (k + 1)) for k in range(3)]
    try:
        for m in mounts:
            m.start()
        for k, m in enumerate(mounts):
            m.wait_settled(60)
            m.wait_for(lambda: m.status()["visible_events"] == len(want[k]), 60,
                       "shard %d/3's %d events" % (k + 1, len(want[k])))
            assert listed(m) == want[k], (k, listed(m), want[k])
        # every asset in exactly one mount
        seen = sorted(a for m in mounts for a in listed(m))
        assert seen == sorted(shown(a) for a in assets)
        # live assets follow the same split
        live = ["live-%d" % i for i in range(9)]
        for a in live:
            twin.create_asset(a)
            twin.publish(a, "Ping", 1, {"n": 0})
        for k, m in enumerate(mounts):
            mine = sorted(want[k] + [a for a in live if shard_of(a, 3) == k])
            m.wait_for(lambda: m.status()["visible_events"] == len(mine), 60,
                       "shard %d/3's live events" % (k + 1))
            assert listed(m) == mine
        head = twin.head()
        for m in mounts:
            assert ack_all(m) == m.status()["delivered"]
        for m in mounts:
            st = wait_watermark_at_head(m, twin)
            assert st["watermark"] == head and st["pending"] == 0, st
    finally:
        for m in mounts:
            m.stop()


def test_globs_match_the_real_id(twin, tmp_path):
    """A pattern is matched against the id as the twin sends it, control characters and '%'
    included, not against its escaped name under the mount."""
    ids = ["tab\there", "nl\nname", "asset%2F%25", "plain"]
    setup_ping(twin, ids)
    for a in ids:
        twin.publish(a, "Ping", 1, {"n": 0})
    with mounted(twin, tmp_path, assets=globs("nl\n*", "asset%2F*")) as m:
        m.wait_settled(60)
        assert listed(m) == sorted([shown("nl\nname"), shown("asset%2F%25")])
        for a in ("nl\nname", "asset%2F%25"):
            m.wait_for(lambda: len(m.events(shown(a))) == 1, 60, "the event of %r" % a)
            assert os.getxattr(m.path("assets", shown(a)), "user.twin.asset") == a.encode()
    # the shown names do not match: "nl%0A*" selects nothing
    with mounted(twin, tmp_path, assets=globs("nl%0A*", "tab%09*")) as m:
        m.wait_settled(60)
        st = m.wait_quiet()
        assert listed(m) == [] and st["delivered"] == 0, st
        assert st["watermark"] == twin.head()


def test_start_now_with_assets(twin, tmp_path):
    """start=now skips the backlog of every asset; then only the selected assets' live
    events are shown, and the watermark reaches the head when they are acked."""
    setup_ping(twin, ["pump-1", "valve-1"])
    publish_pings(twin, "pump-1", 3)
    publish_pings(twin, "valve-1", 3)
    with mounted(twin, tmp_path, assets="pump-*", start="now") as m:
        m.wait_settled(60)
        assert listed(m) == ["pump-1"] and m.events("pump-1") == []
        publish_pings(twin, "valve-1", 2, start=3)
        publish_pings(twin, "pump-1", 2, start=3)
        publish_pings(twin, "valve-1", 1, start=5)
        m.wait_for(lambda: len(m.events("pump-1")) == 2, 60, "pump-1's live events")
        st = m.wait_quiet()
        assert sorted(m.events("pump-1")) == [event_name(3, "Ping"), event_name(4, "Ping")]
        assert st["delivered"] == 2, st
        assert ack_all(m) == 2
        wait_watermark_at_head(m, twin)


def test_unselected_asset_deleted_on_twin(twin, tmp_path):
    """Deleting an asset that is not followed changes nothing under the mount and moves the
    watermark; re-creating it does not show it. A followed asset's deletion shows as ever."""
    setup_ping(twin, ["pump-1", "pump-2", "valve-1"])
    publish_pings(twin, "valve-1", 2)
    publish_pings(twin, "pump-2", 1)
    with mounted(twin, tmp_path, assets="pump-*") as m:
        m.wait_settled(60)
        m.wait_for(lambda: len(m.events("pump-2")) == 1, 60, "pump-2's event")
        assert ack_all(m) == 1
        wait_watermark_at_head(m, twin)
        twin.delete_asset("valve-1")
        twin.delete_asset("pump-1")
        m.wait_for(lambda: listed(m) == ["pump-2"], 60, "pump-1 to go")
        twin.create_asset("valve-1")
        publish_pings(twin, "valve-1", 1)
        st = wait_watermark_at_head(m, twin)
        st = m.wait_quiet()
        assert listed(m) == ["pump-2"]
        assert st["assets"] == 1 and st["delivered"] == 1, st
        assert st["last_error"] is None and st["materialize_errors"] == 0, st
