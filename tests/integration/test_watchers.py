"""What event handlers built from ordinary tools see (docs/handlers.md). One watch on
MNT/events handles every event of every asset exactly once, however far behind the handler is
and whenever the asset was created. inotifywait, python3-watchdog and incron see each new
event file complete (IN_CREATE, then IN_CLOSE_WRITE), the ack of either name and the deletion
of an asset on the twin, in both directories. Event files carry the twin's systime as their
times, names stay one line, flock claims an event under both names, -o ro browses without
acking and -o no_events_dir turns the flat directory off."""

import calendar
import collections
import errno
import json
import os
import signal
import subprocess
import time

import pytest

from testlib.events import publish_pings, read_json, setup_ping
from testlib.mount import Mount, event_name, mounted
from testlib.paths import SOURCE_ROOT
from testlib.wait import wait_for
from testlib.watcher import Watcher, paths_with

PYTHON = "/usr/bin/python3"


def flat_name(seq, shown_asset, name="Ping"):
    """The name of an event in MNT/events: seq (20 digits), the asset as shown, the name."""
    return "%020d-%s-%s.json" % (seq, shown_asset, name)


def need_events_dir(m):
    """MNT/events, which must exist; the message says what a handler is missing."""
    assert os.path.isdir(m.path("events")), (
        "MNT/events/ does not exist (the mount's root holds %s): a handler has no one "
        "directory to watch for the events of every asset" % sorted(os.listdir(m.mnt)))
    return m.path("events")


def flat_dir_or_none(m):
    """MNT/events if it exists, else None: a test checks the per-asset side first, so that
    without the flat directory it still says what fails there, then needs MNT/events."""
    return m.path("events") if os.path.isdir(m.path("events")) else None


def in_flat(ev, name):
    """The path of name in MNT/events, or None without one (it is left out of the checks)."""
    return os.path.join(ev, name) if ev else None


def publish_batch(twin, asset, count):
    """count Pings n=0..count-1 on asset in one batch; returns their seqs, offset order."""
    r = twin.publish_batch([{"asset": asset, "name": "Ping", "version": 1, "source": "test",
                             "data": {"n": i}} for i in range(count)])
    assert r["last_seq"] - r["first_seq"] + 1 == count
    return list(range(r["first_seq"], r["last_seq"] + 1))


def twin_xattrs(path):
    return {k: os.getxattr(path, k) for k in os.listxattr(path) if k.startswith("user.twin.")}


# The handler of docs/handlers.md, as it is printed there: watch first, then list, then follow
# the watch; a rescan when idle (a queue overflow); the ack (rm) only when the work succeeded.
HANDLER = r"""#!/bin/bash
# handle-events MNT CMD [ARG...]: runs CMD ARG... FILE for every event of every asset, in
# the twin's order, and acks the event (rm) when CMD exits 0.
set -u
export LC_ALL=C                       # glob order = byte order = the twin's order
dir=$1/events
shift
cmd=("$@")

handle() {                            # $1: a name in $dir
    local f=$dir/$1
    [ -e "$f" ] || return 0           # listed and reported both: handled already
    if "${cmd[@]}" "$f"; then
        rm -f -- "$f"                 # the ack
    fi
}

rescan() {
    local f
    for f in "$dir"/*; do
        [ -e "$f" ] && handle "${f##*/}"
    done
}

# 1. watch first ...
exec 3< <(exec inotifywait -m -e close_write --format %f "$dir" 2>&1)
read -r _ <&3                         # "Setting up watches."
read -r ready <&3
[ "$ready" = "Watches established." ] || { echo "$0: $ready" >&2; exit 1; }
# 2. ... then handle what is there already ...
rescan
# 3. ... then what comes. inotifywait does not report a queue overflow (more than
# fs.inotify.max_queued_events behind): 10 s without news, list again.
while :; do
    if IFS= read -r -t 10 line <&3; then
        handle "$line"
    elif [ $? -gt 128 ]; then
        rescan
    else
        exit 1                        # inotifywait ended: the mount went
    fi
done"""

# The work of the test's handler: keeps the name and the content of each event it is given.
RECORD = r"""#!/bin/sh
body=$(cat -- "$1") || exit 1
printf '%s\n' "${1##*/}" >> "$NAMES"
printf '%s\n' "$body" >> "$BODIES"
"""


def json_docs(text):
    """The JSON documents of text, one after the other."""
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        doc, i = dec.raw_decode(text, i)
        out.append(doc)


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class ShellHandler:
    """HANDLER running on a mount with RECORD as its work, in a process group of its own."""

    def __init__(self, tmp_path, m):
        self.dir = tmp_path / "handler"
        self.dir.mkdir()
        for name, text in (("handle-events", HANDLER), ("record", RECORD)):
            (self.dir / name).write_text(text)
            os.chmod(self.dir / name, 0o755)
        self.names = self.dir / "names"
        self.bodies = self.dir / "bodies"
        self.log = self.dir / "log"
        env = dict(os.environ, NAMES=str(self.names), BODIES=str(self.bodies))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["bash", str(self.dir / "handle-events"), m.mnt, str(self.dir / "record")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True)

    def handled(self):
        """The names handled so far; an AssertionError if the handler has exited."""
        if self.proc.poll() is not None:
            raise AssertionError("the handler exited %s: %s"
                                 % (self.proc.returncode, self.log.read_text()))
        return read_lines(self.names)

    def wait_handled(self, want, timeout_idle=180):
        """Waits until want names are handled or none is handled for timeout_idle seconds."""
        last, since = -1, time.monotonic()
        while True:
            n = len(self.handled())
            if n >= want:
                return
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since > timeout_idle:
                return
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this test started
        self.proc.wait(30)


def test_behind_handler_handles_every_event_once(twin, tmp_path):
    """The inotifywait loop of docs/handlers.md on MNT/events, 3000 events behind, while a
    new asset and its 20 events appear: every event handled once, none missed (a watch per
    asset directory misses all 20), all acked."""
    setup_ping(twin, ["early", "A"])
    publish_pings(twin, "early", 10)
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = need_events_dir(m)
        m.wait_for(lambda: len(os.listdir(ev)) == 10, 60, "the 10 early events in MNT/events")
        h = ShellHandler(tmp_path, m)
        try:
            # there before the handler: found by its listing, after its watch is up
            h.wait_handled(10)
            assert len(h.handled()) == 10, "the events there before the handler were not handled"
            seqs = {"A": publish_batch(twin, "A", 3000)}
            time.sleep(1)  # the scenario: a new asset 1 s after the batch
            twin.create_asset("late-1")
            seqs["late-1"] = publish_batch(twin, "late-1", 20)
            h.wait_handled(3030)
            m.wait_quiet()
            names = h.handled()
        finally:
            h.stop()
        docs = json_docs(h.bodies.read_text())
        assert len(docs) == len(names)
        got = collections.Counter((d["asset"], d["offset"], d["data"]["n"]) for d in docs)
        want = ({("early", i, i) for i in range(10)} | {("A", i, i) for i in range(3000)}
                | {("late-1", i, i) for i in range(20)})
        missed = sorted(want - set(got))
        assert not missed, ("the handler never saw %d of the 3030 events, e.g. %s (late-1: %d)"
                            % (len(missed), missed[:5], sum(a == "late-1" for a, _, _ in missed)))
        twice = sorted(k for k, c in got.items() if c > 1)
        assert not twice, "events handled more than once: %s" % twice[:10]
        assert not set(got) - want, sorted(set(got) - want)[:10]
        for name, d in zip(names, docs):  # the flat name says the seq and the asset
            if d["asset"] != "early":
                assert name == flat_name(seqs[d["asset"]][d["offset"]], d["asset"]), (name, d)
        st = m.wait_quiet()
        assert st["visible_events"] == 0, "events left unacked: %s" % os.listdir(ev)[:10]
        assert st["acked"] == 3030
        assert os.listdir(ev) == []
        for a in ("early", "A", "late-1"):
            assert m.events(a) == [], "%s/events still shows %s" % (a, m.events(a)[:5])


def test_watchdog_sees_creations_acks_and_deletions(twin, tmp_path):
    """python3-watchdog (Debian's, on inotify), recursive on MNT/assets and not recursive on
    MNT/events, reports new event files (created, then closed), acks and a deleted asset."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError as e:
        pytest.fail("python3-watchdog is not installed (tests/install_deps.sh): %s" % e)
    setup_ping(twin, ["w", "gone"])
    publish_pings(twin, "gone", 2)
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = flat_dir_or_none(m)
        m.wait_for(lambda: len(m.events("gone")) == 2, 60, "gone's 2 events")
        gone_files = [os.path.join(m.events_dir("gone"), n) for n in m.events("gone")]
        if ev:
            m.wait_for(lambda: len(os.listdir(ev)) == 2, 60, "gone's 2 events in MNT/events")
            gone_files += [os.path.join(ev, n) for n in os.listdir(ev)]
        seen = []

        class Collect(FileSystemEventHandler):
            def on_any_event(self, e):
                seen.append((type(e).__name__, os.path.normpath(e.src_path)))

        obs = Observer()
        obs.schedule(Collect(), m.path("assets"), recursive=True)
        if ev:
            obs.schedule(Collect(), ev, recursive=False)
        obs.start()  # the inotify watches are set when start returns
        try:
            made = []
            for i in range(3):
                seq, off = twin.publish("w", "Ping", 1, {"n": i})
                made += [os.path.join(m.events_dir("w"), event_name(off, "Ping")),
                         in_flat(ev, flat_name(seq, "w"))]

            def missing(kind, paths):
                return sorted(set(paths) - {p for k, p in seen if k == kind})
            made_now = [p for p in made if p]
            wait_for(lambda: not missing("FileCreatedEvent", made_now), 60, "FileCreatedEvents")
            wait_for(lambda: not missing("FileClosedEvent", made_now), 60,
                     "FileClosedEvents (on_closed: the file is complete)")
            os.unlink(made[0])  # the ack of w's offset 0 through its per-asset name
            acked = [p for p in made[:2] if p]
            wait_for(lambda: not missing("FileDeletedEvent", acked), 60,
                     "FileDeletedEvent for both names of the acked event")
            twin.delete_asset("gone")
            gone = m.path("assets", "gone")
            try:
                wait_for(lambda: not missing("DirDeletedEvent", [gone])
                         and not missing("FileDeletedEvent", gone_files), 60, "deletions")
            except AssertionError:
                pytest.fail("watchdog did not report the deletion of asset gone: missing %s "
                            "and %s; it saw %s"
                            % (missing("DirDeletedEvent", [gone]),
                               missing("FileDeletedEvent", gone_files), seen[-10:]))
        finally:
            obs.stop()
            obs.join(30)
        need_events_dir(m)


def test_close_write_fires_for_each_new_event_in_both_directories(twin, tmp_path):
    """`inotifywait -e close_write` (the file is complete) sees each new event under both
    names, each after its IN_CREATE, the per-asset name first."""
    setup_ping(twin, ["a"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = flat_dir_or_none(m)
        m.wait_for(lambda: os.path.isdir(m.events_dir("a")), 30, "a/events")
        w = Watcher([d for d in (ev, m.events_dir("a")) if d], ["create", "close_write"],
                    tmp_path).start()
        try:
            pairs = []
            for i in range(5):
                seq, off = twin.publish("a", "Ping", 1, {"n": i})
                pairs.append((os.path.join(m.events_dir("a"), event_name(off, "Ping")),
                              in_flat(ev, flat_name(seq, "a"))))
            want = [p for pair in pairs for p in pair if p]

            def closed(lines):
                return set(paths_with(lines, "CLOSE_WRITE,CLOSE"))
            lines = w.collect(lambda ls: set(want) <= closed(ls), 60)
        finally:
            w.close()
        never = sorted(set(want) - closed(lines))
        assert not never, ("inotifywait -e close_write never reported %s: a handler that waits "
                           "for the file to be complete never runs; it saw %s"
                           % (never, lines[:10]))
        for p in want:
            mine = [ln.rpartition("|")[2] for ln in lines if ln.rpartition("|")[0] == p]
            assert mine == ["CREATE", "CLOSE_WRITE,CLOSE"], (p, mine)
        need_events_dir(m)
        for per_asset, flat in pairs:
            assert lines.index(per_asset + "|CREATE") < lines.index(flat + "|CREATE"), \
                "the flat name appeared before the per-asset one: %s" % lines


@pytest.mark.parametrize("via", ["flat", "per_asset"])
def test_rm_of_either_name_acks_once_and_both_go(twin, tmp_path, via):
    """Both names are one file (inode, links, content, xattrs); rm of one acks, the other goes
    too, IN_DELETE in both directories, a second rm is ENOENT, and the ack holds at remount."""
    setup_ping(twin, ["a"])
    seqs = [twin.publish("a", "Ping", 1, {"n": i})[0] for i in range(2)]
    m = Mount(twin, tmp_path)
    m.start()
    try:
        m.wait_settled(60)
        ev = need_events_dir(m)
        names = [(os.path.join(m.events_dir("a"), event_name(i, "Ping")),
                  os.path.join(ev, flat_name(seqs[i], "a"))) for i in range(2)]
        per, flat = names[0]
        m.wait_for(lambda: os.path.exists(per) and os.path.exists(flat), 60, "both names")
        sp, sf = os.stat(per), os.stat(flat)
        assert sp.st_ino == sf.st_ino, "the two names are different files"
        assert (sp.st_nlink, sf.st_nlink) == (2, 2), "st_nlink is not 2: ls -l, find -links lie"
        with open(per, "rb") as a, open(flat, "rb") as b:
            assert a.read() == b.read()
        assert twin_xattrs(per) == twin_xattrs(flat) != {}
        w = Watcher([ev, m.events_dir("a")], ["delete"], tmp_path).start()
        try:
            acked = m.status()["acked"]
            first, other = (flat, per) if via == "flat" else (per, flat)
            os.unlink(first)
            m.wait_for(lambda: not os.path.exists(other), 30,
                       "the other name to go after the ack (it would be handled again)")
            for p in (first, other):
                with pytest.raises(FileNotFoundError):
                    os.unlink(p)
            want = {first + "|DELETE", other + "|DELETE"}
            lines = w.collect(lambda ls: want <= set(ls), 60)
        finally:
            w.close()
        assert want <= set(lines), ("no IN_DELETE for %s: a watcher of that directory does "
                                    "not learn of the ack" % sorted(want - set(lines)))
        assert sorted(lines) == sorted(want), "IN_DELETE more than once: %s" % lines
        st = m.wait_quiet()
        assert (st["acked"], st["visible_events"]) == (acked + 1, 1)
        assert os.path.exists(names[1][0]) and os.path.exists(names[1][1])
        m.stop()
        m.start()  # same tracker: the ack holds under both names
        m.wait_settled(60)
        m.wait_for(lambda: os.path.exists(names[1][1]), 60, "the unacked event after remount")
        assert not os.path.exists(per) and not os.path.exists(flat), "the acked event came back"
        assert sorted(os.listdir(ev)) == [os.path.basename(names[1][1])]
    finally:
        m.stop()


def test_asset_deleted_on_twin_is_deleted_through_the_mount(twin, tmp_path):
    """inotifywait -m -r on MNT sees the deletion of an asset: its pending files in both
    directories, then its events/ and t2/, then its directory in assets/."""
    setup_ping(twin, ["gone", "stays"])
    publish_pings(twin, "gone", 3)
    publish_pings(twin, "stays", 1)
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = flat_dir_or_none(m)
        m.wait_for(lambda: len(m.events("gone")) == 3, 60, "gone's 3 events")
        gone_dir = m.path("assets", "gone")
        files = [os.path.join(m.events_dir("gone"), n) for n in m.events("gone")]
        if ev:
            m.wait_for(lambda: len(os.listdir(ev)) == 4, 60, "4 events in MNT/events")
            files += [os.path.join(ev, n) for n in os.listdir(ev) if "-gone-" in n]
            assert len(files) == 6
        errors = m.status()["materialize_errors"]
        w = Watcher([m.mnt], ["delete"], tmp_path, recursive=True).start()
        try:
            twin.delete_asset("gone")
            dirs = [os.path.join(gone_dir, "events"), os.path.join(gone_dir, "t2"), gone_dir]
            want = {p + "|DELETE" for p in files} | {d + "|DELETE,ISDIR" for d in dirs}
            lines = w.collect(lambda ls: want <= set(ls), 60)
        finally:
            w.close()
        missing = sorted(want - set(lines))
        assert not missing, ("inotifywait -r saw no deletion of %s (it saw %s): a watcher does "
                             "not learn that asset gone and its events are gone"
                             % (missing, lines))
        at = {ln: i for i, ln in enumerate(lines)}
        last_file = max(at[p + "|DELETE"] for p in files)
        assert last_file < at[dirs[0] + "|DELETE,ISDIR"], lines
        assert max(at[d + "|DELETE,ISDIR"] for d in dirs[:2]) < at[gone_dir + "|DELETE,ISDIR"], \
            lines
        assert os.listdir(m.path("assets")) == ["stays"]
        assert len(os.listdir(need_events_dir(m))) == 1 and m.events("stays")
        st = m.wait_quiet()
        assert st["materialize_errors"] == errors, m.log()[-2000:]


def test_asset_created_and_deleted_at_once_is_no_error(twin, tmp_path):
    """Assets that come and go before the mount shows them leave no trace and count no
    materialize_errors."""
    setup_ping(twin, ["keep"])
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        for i in range(10):
            a = "flash-%d" % i
            twin.create_asset(a)
            publish_pings(twin, a, 2)
            twin.delete_asset(a)
        seq, _ = twin.publish("keep", "Ping", 1, {"n": 0})  # a marker after them
        m.wait_for(lambda: m.events("keep"), 60, "the marker")
        st = m.wait_quiet("delivered", "visible_events", "assets", "materialized",
                          "materialize_errors", "materialize_queue")
        assert st["materialize_errors"] == 0, (
            "status counts %d materialize_errors for assets nobody saw; log:\n%s"
            % (st["materialize_errors"], m.log()[-2000:]))
        assert os.listdir(m.path("assets")) == ["keep"]
        assert os.listdir(need_events_dir(m)) == [flat_name(seq, "keep")]


T1 = "2026-01-05T09:05:00.120Z"
T2 = "2026-01-05T09:05:00.470Z"  # 0.35 s after T1


def iso_ns(iso):
    whole = calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))
    return whole * 10**9 + int(iso[20:23]) * 10**6


def test_times_are_the_twins_systime(twin, tmp_path):
    """mtime and ctime of both names are the record's systime to the millisecond, the same
    after a remount; `find -newer` tells apart events 0.35 s apart; a directory's mtime moves
    when an event appears in it."""
    setup_ping(twin, ["a"])
    s1, _ = twin.publish("a", "Ping", 1, {"n": 0}, systime=T1)
    s2, _ = twin.publish("a", "Ping", 1, {"n": 1}, systime=T2)
    m = Mount(twin, tmp_path)
    m.start()
    try:
        m.wait_settled(60)
        ev = flat_dir_or_none(m)
        files = {os.path.join(m.events_dir("a"), event_name(0, "Ping")): T1,
                 os.path.join(m.events_dir("a"), event_name(1, "Ping")): T2}
        if ev:
            files.update({os.path.join(ev, flat_name(s1, "a")): T1,
                          os.path.join(ev, flat_name(s2, "a")): T2})
        m.wait_for(lambda: all(os.path.exists(p) for p in files), 60, "the event files")

        def times():
            return {p: (os.stat(p).st_mtime_ns, os.stat(p).st_ctime_ns) for p in files}
        first = times()
        for p, t in files.items():
            assert first[p] == (iso_ns(t), iso_ns(t)), (
                "%s: (mtime, ctime) ns %s, but the event's systime is %s (%d): find -newer, "
                "ls -t and rsync see a wrong time" % (p, first[p], t, iso_ns(t)))
        ref = tmp_path / "REF"
        ref.write_text("")
        os.utime(ref, ns=(iso_ns(T1) + 300 * 10**6,) * 2)  # between the two events
        for d, later in ((m.events_dir("a"), event_name(1, "Ping")), (ev, flat_name(s2, "a"))):
            if d is None:
                continue
            out = subprocess.run(["find", d, "-type", "f", "-newer", str(ref)], check=True,
                                 capture_output=True, text=True).stdout.split()
            assert out == [os.path.join(d, later)], \
                "find %s -newer REF (REF 0.3 s after the first event) found %s" % (d, out)
        m.stop()
        m.start()  # same tracker, nothing acked
        m.wait_settled(60)
        m.wait_for(lambda: all(os.path.exists(p) for p in files), 60, "the files after remount")
        assert times() == first, "the times changed at the remount: rsync copies them again"

        for d in (m.events_dir("a"), need_events_dir(m)):
            before = os.stat(d).st_mtime_ns
            # a change the clock can tell from the last one, even at a whole-second resolution
            wait_for(lambda: time.time_ns() > before + 1.5e9, 10, "the clock to move on")
            t0 = time.time_ns()
            twin.publish("a", "Ping", 1, {"n": 2})
            m.wait_for(lambda: os.stat(d).st_mtime_ns != before, 30,
                       "the mtime of %s to change when an event appears in it" % d)
            after = os.stat(d).st_mtime_ns
            assert t0 - 2 * 10**9 <= after <= time.time_ns() + 2 * 10**9, (d, t0, after)
    finally:
        m.stop()


# asset id on the twin -> the directory twinfs shows
SHOWN = {"nl\nname": "nl%0Aname", "tab\tx": "tab%09x", "del\x7fx": "del%7Fx",
         "pct%41": "pct%2541", "-dash": "-dash"}


def test_ids_with_control_characters_stay_one_line(twin, tmp_path):
    """An asset id with a newline (or other control character, or '%') is shown escaped, so
    `ls | while read` sees one line per event; the real id is in the JSON and the xattr."""
    setup_ping(twin, list(SHOWN))
    seqs = {a: twin.publish(a, "Ping", 1, {"n": 0})[0] for a in SHOWN}
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        assert sorted(os.listdir(m.path("assets"))) == sorted(SHOWN.values()), (
            "MNT/assets shows %r, not the escaped ids %r: a line-based loop splits them"
            % (sorted(os.listdir(m.path("assets"))), sorted(SHOWN.values())))
        for a, shown in SHOWN.items():
            per = os.path.join(m.events_dir(shown), event_name(0, "Ping"))
            m.wait_for(lambda: os.path.exists(per), 60, per)
            assert read_json(per)["asset"] == a
            assert os.getxattr(per, "user.twin.asset") == a.encode()
            assert os.getxattr(m.path("assets", shown), "user.twin.asset") == a.encode()
        ev = need_events_dir(m)
        for a, shown in SHOWN.items():
            flat = os.path.join(ev, flat_name(seqs[a], shown))
            m.wait_for(lambda: os.path.exists(flat), 60, flat)
            assert read_json(flat)["asset"] == a
            assert os.getxattr(flat, "user.twin.asset") == a.encode()
        loop = ('ls "$1" | while IFS= read -r f; do [ -e "$1/$f" ] && echo "$f"; done | wc -l')
        for d, n in ((m.path("assets"), len(SHOWN)), (ev, len(SHOWN))):
            count = subprocess.run(["sh", "-c", loop, "sh", d], check=True, capture_output=True,
                                   text=True).stdout.strip()
            assert count == str(n), "`ls %s | while read f` found %s of %d names" % (d, count, n)
        flat = os.path.join(ev, flat_name(seqs["nl\nname"], "nl%0Aname"))
        subprocess.run(["rm", flat], check=True)
        m.wait_for(lambda: not m.events("nl%0Aname"), 30, "the per-asset name to go")
        assert m.wait_quiet()["acked"] == 1


def test_no_events_dir_option(twin, tmp_path):
    """-o no_events_dir: no MNT/events, the per-asset files work as ever; -o events_dir (the
    default) has it."""
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 2)
    with mounted(twin, tmp_path, no_events_dir=True) as m:
        m.wait_settled(60)
        m.wait_for(lambda: len(m.events("a")) == 2, 60, "a's 2 events")
        assert sorted(os.listdir(m.mnt)) == [".twinfs", "assets"], os.listdir(m.mnt)
        assert not os.path.exists(m.path("events"))
        assert os.stat(os.path.join(m.events_dir("a"), event_name(0, "Ping"))).st_nlink == 1
        os.unlink(os.path.join(m.events_dir("a"), event_name(0, "Ping")))
        assert m.events("a") == [event_name(1, "Ping")]
        assert m.status()["acked"] == 1
    with mounted(twin, tmp_path, events_dir=True) as m:
        m.wait_settled(60)
        ev = need_events_dir(m)
        m.wait_for(lambda: len(os.listdir(ev)) == 2, 60, "2 events in MNT/events")


HOLD = "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); " \
       "print('claimed', flush=True); time.sleep(600)"


def test_flock_claims_an_event_under_both_names(twin, tmp_path):
    """`flock -n FILE` claims an event: a second claim through either name fails while the
    first handler lives and succeeds once it is killed; the claim-first line of
    docs/handlers.md acks it."""
    setup_ping(twin, ["a"])
    seq, _ = twin.publish("a", "Ping", 1, {"n": 0})
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = need_events_dir(m)
        per = os.path.join(m.events_dir("a"), event_name(0, "Ping"))
        flat = os.path.join(ev, flat_name(seq, "a"))
        m.wait_for(lambda: os.path.exists(per) and os.path.exists(flat), 60, "both names")
        holder = subprocess.Popen([PYTHON, "-c", HOLD, flat], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "claimed"
            for p in (per, flat):
                r = subprocess.run(["flock", "-n", p, "true"])
                assert r.returncode == 1, "a second handler claimed %s while the first had it" % p
        finally:
            holder.kill()
            holder.wait(30)
            holder.stdout.close()
        assert subprocess.run(["flock", "-n", per, "true"]).returncode == 0, \
            "the claim of a handler killed with -9 was not freed"
        r = subprocess.run(["flock", "-n", flat, "sh", "-c", 'cat -- "$1" >/dev/null && rm -- "$1"',
                            "sh", flat])
        assert r.returncode == 0
        m.wait_for(lambda: not os.path.exists(per), 30, "the per-asset name to go at the ack")
        assert m.wait_quiet()["acked"] == 1


def test_ro_mount_browses_without_acking(twin, tmp_path):
    """-o ro shows every event under both names; rm is EROFS and acks nothing."""
    setup_ping(twin, ["a"])
    publish_pings(twin, "a", 2)
    m = Mount(twin, tmp_path, ro=True)
    m.start()
    try:
        m.wait_settled(60)
        ev = need_events_dir(m)
        m.wait_for(lambda: len(os.listdir(ev)) == 2, 60, "2 events in MNT/events of an ro mount")
        for p in [os.path.join(ev, n) for n in os.listdir(ev)] + \
                 [os.path.join(m.events_dir("a"), n) for n in m.events("a")]:
            assert read_json(p)["asset"] == "a"
            with pytest.raises(OSError) as exc:
                os.unlink(p)
            assert exc.value.errno == errno.EROFS, p
        assert m.status()["acked"] == 0
        m.stop()
        m.opts["ro"] = False  # the same tracker, read-write: nothing was acked
        m.start()
        m.wait_settled(60)
        m.wait_for(lambda: len(os.listdir(ev)) == 2, 60, "both events after the ro mount")
    finally:
        m.stop()


INCRON_CONF = """system_table_dir = {d}/tables
user_table_dir = {d}/user
lockfile_dir = {d}/lock
lockfile_name = incrond
"""


def test_incron_one_line_handles_events_of_new_assets(twin, tmp_path):
    """One incron line (MNT/events IN_CLOSE_WRITE) handles the events of an asset created
    after incrond started, with the events published together with it."""
    setup_ping(twin, [])
    inc = tmp_path / "incron"
    for sub in ("tables", "user", "lock", "probe"):
        (inc / sub).mkdir(parents=True)
    (inc / "incron.conf").write_text(INCRON_CONF.format(d=inc))
    handle = inc / "handle-one"
    handle.write_text('#!/bin/sh\ncat -- "$1" >/dev/null && rm -- "$1" && '
                      'printf "%%s\\n" "${1##*/}" >> %s/handled\n' % inc)
    probe = inc / "probe-one"
    probe.write_text('#!/bin/sh\nprintf "%%s\\n" "$1" >> %s/probed\n' % inc)
    os.chmod(handle, 0o755)
    os.chmod(probe, 0o755)
    with mounted(twin, tmp_path) as m:
        m.wait_settled(60)
        ev = need_events_dir(m)
        (inc / "tables" / "twinfs").write_text(
            "%s IN_CLOSE_WRITE %s $@/$#\n%s IN_CLOSE_WRITE %s $#\n"
            % (ev, handle, inc / "probe", probe))
        incrond = subprocess.Popen(["incrond", "-n", "-f", str(inc / "incron.conf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            tick = iter(range(10**6))

            def probed():  # its tables are loaded once a file in the probe dir runs a command
                (inc / "probe" / ("p%d" % next(tick))).write_text("x")
                return read_lines(inc / "probed")
            wait_for(probed, 60, "incrond to load its table", interval=0.3)
            twin.create_asset("fresh")
            want = {flat_name(s, "fresh") for s in publish_batch(twin, "fresh", 10)}
            wait_for(lambda: want <= set(read_lines(inc / "handled")) or None, 60,
                     "incron to handle the 10 events of asset fresh")
            got = collections.Counter(read_lines(inc / "handled"))
            assert set(got) == want and max(got.values()) == 1, got
            st = m.wait_quiet()
            assert st["visible_events"] == 0 and st["acked"] == 10
        finally:
            incrond.terminate()
            incrond.wait(30)


def test_docs_show_the_tested_handler():
    """docs/handlers.md prints the handler loop the tests run, word for word."""
    with open(os.path.join(SOURCE_ROOT, "docs", "handlers.md")) as f:
        doc = f.read()
    assert "```bash\n" + HANDLER + "\n```\n" in doc, \
        "the handler loop of docs/handlers.md is not HANDLER of this test"
