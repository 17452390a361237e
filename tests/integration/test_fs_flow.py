"""Flow control: with max_pending=1000 and 20000 events in the backlog, at most 1000 are shown
at once; as they are acked the rest arrive; twinfs' RSS stays bounded."""

import os

from fsutil import publish_pings, setup_ping
from mountlib import mounted


def test_max_pending_window(twin, tmp_path):
    total, window = 20000, 1000
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", total)
    seen = set()
    peak_rss = 0
    with mounted(twin, tmp_path, max_pending=window) as m:
        d = m.events_dir("a")
        m.wait_for(lambda: len(m.events("a")) == window, 30, "a full window")
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
        assert peak_rss < 64 * 1024, peak_rss
