"""Flow control: with max_pending=1000 and 20000 events in the backlog, at most 1000 are shown
at once; as they are acked the rest arrive; twinfs' RSS stays bounded."""

import os

from testlib.events import publish_pings, setup_ping
from testlib.mount import mounted


def test_max_pending_window(twin, tmp_path):
    total, window = 20000, 1000
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", total)
    seen = set()
    peak_rss = 0
    with mounted(twin, tmp_path, max_pending=window) as m:
        d = m.events_dir("a")
        m.wait_for(lambda: len(m.events("a")) == window, 30, "a full window")
        st = m.wait_quiet("delivered", "pending", "visible_events")
        assert st["pending"] == window and st["visible_events"] == window, st  # no more came
        while len(seen) < total:
            names = m.wait_for(lambda: m.events("a"), 30, "more events (%d seen)" % len(seen))
            assert len(names) <= window
            st = m.status()
            assert st["visible_events"] <= window and st["pending"] <= window
            for n in names:
                assert n not in seen, "%s shown again after its ack" % n
                seen.add(n)
                os.unlink(os.path.join(d, n))
            peak_rss = max(peak_rss, m.rss_kib())
        assert len(seen) == total
        assert m.status()["acked"] == total
        # About 14 MiB unsanitized; ASan's redzones, quarantine and fake stacks (a few MiB per
        # FUSE worker thread) add about 50 MiB to that.
        bound = 96 if os.environ.get("TWINFS_SANITIZED") else 64
        assert peak_rss < bound * 1024, peak_rss


BLOB = {"type": "record", "name": "Blob", "fields": [{"name": "text", "type": "string"}]}


def test_max_pending_mb_window(twin, tmp_path):
    """max_pending_mb bounds the bytes of the unacked events too: 40 events of about 400 KiB
    each (as sent) with a 1 MiB budget are shown two at a time (a third would pass 1 MiB), all
    arrive as they are acked, and a single event larger than the budget still comes."""
    twin.put_schema("Blob", 1, BLOB)
    twin.create_asset("a")
    total = 40
    twin.publish_batch([{"asset": "a", "name": "Blob", "version": 1, "source": "test",
                         "data": {"text": "%04d" % i + "x" * 300000}} for i in range(total)])
    twin.publish("a", "Blob", 1, {"text": "big" + "y" * 1500000})  # about 2 MiB on the wire
    seen = []
    with mounted(twin, tmp_path, max_pending_mb=1) as m:
        d = m.events_dir("a")
        m.wait_for(lambda: m.events("a"), 30, "the first events")
        while len(seen) < total + 1:
            names = m.wait_for(lambda: m.events("a"), 30, "more events (%d seen)" % len(seen))
            st = m.status()
            assert len(names) <= 2 and st["pending"] <= 2, (names, st)
            assert st["pending_bytes"] <= 1024 * 1024 or st["pending"] == 1, st
            for n in sorted(names):
                seen.append(n)
                os.unlink(os.path.join(d, n))
        assert len(set(seen)) == total + 1
        assert m.status()["pending_bytes"] == 0
