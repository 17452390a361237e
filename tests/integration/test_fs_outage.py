"""Outage: the twin is killed and restarted while events are being published; twinfs keeps
serving the tree, status shows the outage, and afterwards every event is there exactly once."""

import os
import threading
import time

from fsutil import read_json, setup_ping
from mountlib import event_name, mounted


def test_twin_killed_and_restarted_while_publishing(twin, tmp_path):
    total = 300
    setup_ping(twin, ["a"])
    published = []
    stop = threading.Event()

    def publisher():
        i = 0
        while i < total and not stop.is_set():
            try:
                twin.publish("a", "Ping", 1, {"n": i})
            except OSError:
                time.sleep(0.05)  # the twin is down: retry the same event
                continue
            except Exception:
                time.sleep(0.05)
                continue
            published.append(i)
            i += 1
            time.sleep(0.005)

    with mounted(twin, tmp_path) as m:
        t = threading.Thread(target=publisher)
        t.start()
        try:
            m.wait_for(lambda: len(m.events("a")) >= 30, 20, "some events")
            twin.kill()
            # status shows the outage; the tree stays browsable meanwhile
            m.wait_for(lambda: m.status()["link"] != "up", 20, "link down in status")
            names = m.events("a")
            assert names
            assert read_json(os.path.join(m.events_dir("a"), names[0]))["data"]["n"] == 0
            assert sorted(os.listdir(m.path("assets"))) == ["a"]
            time.sleep(1)
            twin.start()  # same port, same state
            m.wait_for(lambda: m.status()["link"] == "up", 30, "link up again")
            t.join(120)
            assert not t.is_alive()
        finally:
            stop.set()
            t.join()
        assert len(published) == total
        # the twin may have committed a publish whose answer was lost: count what it has
        head_offsets = total
        m.wait_for(lambda: len(m.events("a")) >= head_offsets, 30, "every event")
        names = m.events("a")
        assert names == sorted(set(names))  # each once, in order
        ns = [read_json(os.path.join(m.events_dir("a"), n))["data"]["n"] for n in names]
        assert sorted(set(ns)) == list(range(total))
        assert names[:1] == [event_name(0, "Ping")]
        assert m.status()["reconnects"] >= 1
