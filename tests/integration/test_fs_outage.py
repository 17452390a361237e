"""Outage: the twin is killed and restarted while events are being published; twinfs keeps
serving the tree, status shows the outage, and afterwards every event is there exactly once."""

import os
import threading
import time

from testlib.events import publish_pings, read_json, setup_ping
from testlib.mount import event_name, mounted


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


PONG = {"type": "record", "name": "Pong", "fields": [{"name": "msg", "type": "string"}]}


def test_schema_store_blip_is_retried(twin, tmp_path):
    """A schema fetch that fails for a moment (503) is tried again: the event shows its data,
    not an error for good. One that keeps failing is delivered with its raw data and the error
    (the stream does not stall behind it)."""
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: os.path.isdir(m.events_dir("a")), 10, "asset a")
        twin.put_schema("Pong", 1, PONG)
        twin.hook("schema_fail", count=2)
        twin.publish("a", "Pong", 1, {"msg": "hello"})
        name = event_name(0, "Pong")
        m.wait_for(lambda: name in m.events("a"), 15, "the Pong event")
        doc = read_json(os.path.join(m.events_dir("a"), name))
        assert doc.get("data") == {"msg": "hello"}, doc
        assert "error" not in doc
        assert twin.hook_state()["hooks"]["schema_failures"] == 0  # both failures were seen

        twin.put_schema("Pong", 2, PONG)
        twin.hook("schema_fail", count=100)
        twin.publish("a", "Pong", 2, {"msg": "again"})
        stuck = event_name(1, "Pong")
        m.wait_for(lambda: stuck in m.events("a"), 30, "the undecodable event")
        doc = read_json(os.path.join(m.events_dir("a"), stuck))
        assert "schema fetch failed" in doc["error"], doc
        assert doc["data_b64"]
        # the next event of that schema, soon after: one fetch, no retries (a store that stays
        # broken must not stall the stream for seconds per event)
        left = twin.hook_state()["hooks"]["schema_failures"]
        t0 = time.monotonic()
        twin.publish("a", "Pong", 2, {"msg": "once more"})
        m.wait_for(lambda: event_name(2, "Pong") in m.events("a"), 15, "the next Pong")
        assert time.monotonic() - t0 < 3
        assert twin.hook_state()["hooks"]["schema_failures"] == left - 1
        twin.hook("reset")
        twin.publish("a", "Ping", 1, {"n": 7})
        later = event_name(3, "Ping")
        m.wait_for(lambda: later in m.events("a"), 15, "the event after the undecodable one")
        assert read_json(os.path.join(m.events_dir("a"), later))["data"] == {"n": 7}


def test_twin_reset_while_followed_is_reported(twin, tmp_path):
    """The twin comes back with a shorter log (reset or restored from an older backup): what it
    logs up to the seq already followed cannot be seen, and status and the log say so instead
    of nothing."""
    import shutil
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 20)
    with mounted(twin, tmp_path) as m:
        m.wait_for(lambda: len(m.events("a")) == 20, 15, "20 events")
        twin.stop()
        shutil.rmtree(twin.state_dir)
        os.makedirs(twin.state_dir)
        twin.start()  # same port, empty log
        setup_ping(twin, ["a"])
        m.wait_for(lambda: "reset or restored" in m.status()["last_error"], 30,
                   "status to report the reset")
        assert len(m.events("a")) == 20  # the tree stays as it was
