"""Bad input from users: names.

- Components longer than 255 bytes get ENAMETOOLONG everywhere (the kernel itself lets FUSE
  names up to 1024 bytes through, so twinfs has to say it), and 255 bytes still work.
- T2 names and types with odd bytes (spaces, UTF-8, invalid UTF-8, control characters, `%`,
  URL syntax) reach the provider byte for byte: the name is the request data, the type and the
  asset are the ones looked up, nothing is decoded or cut on the way.
- Afterwards nothing changed: the same events, no ack, the daemon alive.

An "Echo" remote provider answers every request with its own data, so what the provider got
comes back through read()."""

import errno
import os
import threading

import pytest

from testlib.events import setup_ping
from testlib.mount import mounted
from testlib.names import shown

ASSET = "a"


class Echo:
    """Answers every request for the given types with its data (the T2 name) until stopped;
    keeps the requests it saw."""

    def __init__(self, twin, rtypes):
        self.twin = twin
        self.rtypes = list(rtypes)
        self.seen = []
        self.stop_flag = threading.Event()
        self.threads = []
        for t in self.rtypes:
            twin.provider_register(t)
            th = threading.Thread(target=self.run, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)

    def run(self, rtype):
        while not self.stop_flag.is_set():
            try:
                req = self.twin.provider_next(rtype, wait=0.5)
            except Exception:  # the twin is going away at teardown
                if self.stop_flag.is_set():
                    return
                raise
            if req is None:
                continue
            self.seen.append(req)
            self.twin.provider_chunk(req["id"], "application/octet-stream", req["data"])
            self.twin.provider_end(req["id"])

    def stop(self):
        self.stop_flag.set()
        for th in self.threads:
            th.join(10)


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def t2_bytes(m, asset, rtype, name):
    """The path of a T2 file as bytes (names may be invalid UTF-8)."""
    return os.path.join(os.fsencode(m.mnt), b"assets", os.fsencode(asset), b"t2",
                        os.fsencode(rtype), name)


@pytest.fixture
def twin_a(twin):
    setup_ping(twin, [ASSET])
    twin.publish(ASSET, "Ping", 1, {"n": 1})
    twin.publish(ASSET, "Ping", 1, {"n": 2})
    return twin


def snapshot(m):
    st = m.status()
    return sorted(m.events(ASSET)), st["acked"], st["visible_events"], st["assets"]


def settled(m):
    m.wait_for(lambda: len(m.events(ASSET)) == 2, 10, "the two events")
    return snapshot(m)


LONG_PLACES = [
    ("assets", "{}"),
    ("events", "assets/a/events/{}"),
    ("t2 type", "assets/a/t2/{}"),
    ("t2 name", "assets/a/t2/Echo/{}"),
    ("under t2 type", "assets/a/t2/{}/x"),
    ("hidden", ".twinfs/{}"),
    ("root", "{}"),
]


@pytest.mark.parametrize("length", [256, 300, 1024, 2000])
@pytest.mark.parametrize("where,pattern", LONG_PLACES, ids=[p[0] for p in LONG_PLACES])
def test_long_names_are_enametoolong(twin_a, tmp_path, where, pattern, length):
    with mounted(twin_a, tmp_path) as m:
        before = settled(m)
        path = m.path(pattern.format("x" * length))
        assert errno_of(lambda: os.stat(path)) == errno.ENAMETOOLONG
        assert errno_of(lambda: read_all(path)) == errno.ENAMETOOLONG
        # Made of multi-byte characters: the limit is in bytes, not characters.
        wide = m.path(pattern.format("é" * (length // 2 + 1)))
        assert errno_of(lambda: os.stat(wide)) == errno.ENAMETOOLONG
        assert snapshot(m) == before
        assert m.status()["t2_requests"] == 0


def test_kernel_limit_is_enametoolong_too(twin_a, tmp_path):
    """Past PATH_MAX the kernel answers itself; the daemon must not mind."""
    with mounted(twin_a, tmp_path) as m:
        for n in (4096, 10000):
            p = m.path("assets", "a", "t2", "Echo", "y" * n)
            assert errno_of(lambda: os.stat(p)) == errno.ENAMETOOLONG
        assert os.statvfs(m.mnt).f_namemax == 255


def test_255_bytes_still_work(twin_a, tmp_path):
    echo = Echo(twin_a, ["Echo", "T" * 255])
    try:
        with mounted(twin_a, tmp_path) as m:
            before = settled(m)
            name = ("n" * 250 + "-é-é").encode()[:255]
            assert len(name) == 255
            assert read_all(t2_bytes(m, ASSET, "Echo", name)) == name
            assert read_all(t2_bytes(m, ASSET, "T" * 255, b"x")) == b"x"
            assert snapshot(m) == before
    finally:
        echo.stop()
    assert [r["type"] for r in echo.seen] == ["Echo", "T" * 255]


ODD_NAMES = [
    b"with space",
    b" leading and trailing ",
    "ünïcødé-日本語-🙂".encode(),
    b"\xff\xfe invalid utf-8 \xc3",
    b"ctl\x01\x02\x1b[31m\x7f",
    b"tab\there",
    b"new\nline\r\n",
    b"100%",
    b"%2F%2e%2e%00%",
    b"a?b=c&d=e#frag",
    b"back\\slash",
    b"quotes\"'`",
    b"+plus+",
    b"-dash",
    b".hidden",
    b"...",
    b"semi;colon,comma",
    b"{\"json\": 1}",
]


def test_odd_bytes_in_t2_names(twin_a, tmp_path):
    echo = Echo(twin_a, ["Echo"])
    try:
        with mounted(twin_a, tmp_path) as m:
            before = settled(m)
            for name in ODD_NAMES:
                got = read_all(t2_bytes(m, ASSET, "Echo", name))
                assert got == name, (name, got)
            assert snapshot(m) == before
            assert m.status()["t2_requests"] == len(ODD_NAMES)
    finally:
        echo.stop()
    assert [r["data"] for r in echo.seen] == ODD_NAMES
    assert {r["asset"] for r in echo.seen} == {ASSET}
    assert {r["type"] for r in echo.seen} == {"Echo"}


ODD_TYPES = ["Echo Space", "Echo%25", "Echo%2F", "Échö-日本", "Echo?x=1#y", "Echo+&;"]


def test_odd_bytes_in_t2_types(twin_a, tmp_path):
    echo = Echo(twin_a, ODD_TYPES)
    try:
        with mounted(twin_a, tmp_path) as m:
            settled(m)  # asset a is shown: its t2/ can be reached
            for t in ODD_TYPES:
                assert read_all(t2_bytes(m, ASSET, t, b"n")) == b"n", t
    finally:
        echo.stop()
    assert sorted(r["type"] for r in echo.seen) == sorted(ODD_TYPES)


ODD_ASSETS = ["asset with space", "asset%2F%25", "ässet-日本", "a?b#c", "a+b&c;d", "tab\there"]


def test_odd_asset_ids_reach_the_provider(twin, tmp_path):
    """Asset ids with odd bytes: the directory has the id's shown name (control characters and
    '%' escaped, everything else as it is), and a T2 request made through it names that very
    asset."""
    setup_ping(twin, ODD_ASSETS)
    echo = Echo(twin, ["Echo"])
    try:
        with mounted(twin, tmp_path) as m:
            m.wait_for(lambda: len(os.listdir(m.path("assets"))) == len(ODD_ASSETS), 10,
                       "the assets")
            assert sorted(os.listdir(m.path("assets"))) == sorted(shown(a) for a in ODD_ASSETS)
            assert shown("asset%2F%25") == "asset%252F%2525" and shown("tab\there") == "tab%09here"
            for a in ODD_ASSETS:
                assert os.getxattr(m.path("assets", shown(a)), "user.twin.asset") == a.encode()
                assert read_all(t2_bytes(m, shown(a), "Echo", b"q")) == b"q", a
            # A name that is not an asset is ENOENT, whatever its bytes.
            for bad in (b"nope", b"asset%20with%20space", b"\xff", b"asset with space ",
                        b"asset%2F%25", b"tab\there"):
                p = os.path.join(os.fsencode(m.mnt), b"assets", bad)
                assert errno_of(lambda: os.stat(p)) == errno.ENOENT, bad
    finally:
        echo.stop()
    assert sorted(r["asset"] for r in echo.seen) == sorted(ODD_ASSETS)


def test_odd_event_file_names_are_enoent(twin_a, tmp_path):
    """Names in events/ that look almost like an event's: ENOENT, nothing acked."""
    with mounted(twin_a, tmp_path) as m:
        before = settled(m)
        real = sorted(m.events(ASSET))[0]
        for bad in ["0-Ping.json", real.upper(), real + " ", " " + real, real[:-5],
                    real.replace("-Ping", "-Pong"), "%020d-Ping.json" % 7,
                    "-1-Ping.json", "99999999999999999999999-Ping.json", real + "\0x"[:1],
                    "00000000000000000000-Ping.json/..", "\x01", "%s"]:
            p = os.path.join(m.events_dir(ASSET), bad)
            if "\0" in p:
                continue
            assert errno_of(lambda: os.stat(p)) in (errno.ENOENT, errno.ENOTDIR), bad
            assert errno_of(lambda: os.unlink(p)) in (errno.ENOENT, errno.ENOTDIR), bad
        assert snapshot(m) == before
