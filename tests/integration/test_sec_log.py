"""Security: what a hostile twin puts in names and headers cannot forge log lines or reach
xattrs as control characters.

- The daemon's log (stderr in the foreground, syslog when daemonized; both written by
  mount/log.c) escapes every control character and invalid UTF-8 byte as \\xNN: an asset id
  with "\\n" cannot start a line of its own, and an ESC sequence cannot recolour or clear a
  terminal that shows the log.
- A T2 answer's Content-Type reaches user.twin.mime with its control characters escaped the
  same way, and cut to 255 bytes however long the header was.
- A token sent over plain http:// to a host that is not the loopback gets one warning before
  anything is sent (a proxy from http_proxy would see it too).

The fake twin (tests/reliability/faketwin.py) serves the hostile names and headers."""

import json
import os
import re
import subprocess

import pytest

from testlib.events import event, read_all
from testlib.mount import event_name
from testlib.names import shown
from testlib.paths import twinfs_binary

from faketwin import Answer

# Each hostile id ends in a line that looks like twinfs's own, or in terminal escapes.
FORGED = "twinfs: link to the twin down FORGED"
EVIL_ASSETS = [
    "ev1\n" + FORGED,
    "ev2\r\n[fake] " + FORGED,
    "ev3\x1b[31mred\x1b[0m\x1b[2J",
    "ev4\x7f\x08\x08\x08" + FORGED,
]


def log_bytes(m):
    with open(m.log_path, "rb") as f:
        return f.read()


def test_hostile_ids_cannot_forge_log_lines(fake, mount_of):
    """Each hostile id is logged (an event of an unknown schema names its asset), and every
    log line is one of twinfs's own."""
    fake.assets = ["a"]
    fake.snapshot_head = 0  # the records below are news
    seq = 1
    for aid in EVIL_ASSETS:
        fake.add_record(seq=seq, kind="asset_created", asset=aid, time="2026-01-05T09:00:00Z")
        seq += 1
        fake.add_record(**event(seq, aid, 0, name="NoSuchSchema"))
        seq += 1
    fake.add_record(**event(seq, "a", 0))
    m = mount_of(fake)
    m.wait_for(lambda: m.events("a") == [event_name(0, "Ping")], 20, "the good event")
    m.wait_for(lambda: m.status()["decode_errors"] == len(EVIL_ASSETS), 20, "the decode errors")
    # The events of the hostile assets are there, under names shown escaped (docs/filesystem.md,
    # "Names from the twin"), each with its error and the real id in its JSON.
    for aid in EVIL_ASSETS:
        assert m.events(shown(aid)) == [event_name(0, "NoSuchSchema")]
        with open(os.path.join(m.events_dir(shown(aid)), event_name(0, "NoSuchSchema"))) as f:
            assert json.load(f)["asset"] == aid
    m.status_at_stop = m.status()
    m.stop()
    log = log_bytes(m)
    lines = log.split(b"\n")
    assert lines[-1] == b""
    for ln in lines[:-1]:
        assert ln.startswith(b"twinfs: "), ln
        assert not re.search(rb"[\x00-\x1f\x7f]", ln), ln
    # The text is there, inside the lines that report the events, and starts none.
    forged = [ln for ln in lines if FORGED.encode() in ln]
    assert len(forged) == 3, log
    assert all(ln.startswith(b"twinfs: event seq ") for ln in forged), forged
    assert m.status_at_stop["bad_records"] == 0
    # Each id is logged once, escaped.
    for aid in EVIL_ASSETS:
        esc = "".join("\\x%02x" % ord(c) if ord(c) < 0x20 or ord(c) == 0x7f else c
                      for c in aid).encode()
        assert log.count(esc) == 1, (esc, log)


def test_valid_utf8_is_kept(fake, mount_of):
    """Only control characters and bytes that are not UTF-8 are escaped (the unit test of
    core/escape.c has those): a UTF-8 id is logged as it is."""
    fake.assets = ["a"]
    fake.snapshot_head = 0
    good = "grüße-テスト"
    fake.add_record(seq=1, kind="asset_created", asset=good, time="2026-01-05T09:00:00Z")
    fake.add_record(**event(2, good, 0, name="NoSuchSchema"))
    fake.add_record(**event(3, "a", 0))
    m = mount_of(fake)
    m.wait_for(lambda: m.events("a") == [event_name(0, "Ping")], 20, "the good event")
    m.wait_for(lambda: m.status()["decode_errors"] == 1, 20, "the decode error")
    m.stop()
    log = log_bytes(m)
    assert ("(%s offset 0 NoSuchSchema" % good).encode() in log, log


HOSTILE_TYPES = {
    "Ctl": ("text/plain\x1b]0;pwned\x07\x1b[2J\x7f\x01", "text/plain\\x1b]0;pwned\\x07"
            "\\x1b[2J\\x7f\\x01"),
    "Tab": ("text/plain;\tcharset=utf-8", "text/plain;\\x09charset=utf-8"),
    "Latin1": ("text/plain; x=\xe9", "text/plain; x=\\xe9"),
}


def test_t2_content_type_is_escaped_and_bounded(fake, mount_of):
    fake.assets = ["a"]
    for rtype, (ctype, _) in HOSTILE_TYPES.items():
        fake.t2[rtype] = Answer(200, ctype, b"body of " + rtype.encode())
    fake.t2["Long"] = Answer(200, "x/" + "y" * 60000, b"long type")
    fake.t2["LongCtl"] = Answer(200, "x/" + "\x1b" * 20000, b"long control")
    fake.t2["Plain"] = Answer(200, "text/csv; charset=utf-8", b"plain")
    fake.add_record(**event(1, "a", 0))
    m = mount_of(fake)
    m.wait_for(lambda: m.events("a"), 20, "the event")

    def t2(rtype):
        return m.path("assets", "a", "t2", rtype, "x")

    for rtype, (_, want) in HOSTILE_TYPES.items():
        assert read_all(t2(rtype)) == b"body of " + rtype.encode()
        mime = os.getxattr(t2(rtype), "user.twin.mime")
        assert not re.search(rb"[\x00-\x1f\x7f-\xff]", mime), (rtype, mime)
        assert mime == want.encode(), (rtype, mime)
    assert read_all(t2("Long")) == b"long type"
    mime = os.getxattr(t2("Long"), "user.twin.mime")
    assert mime == b"x/" + b"y" * 253
    assert read_all(t2("LongCtl")) == b"long control"
    mime = os.getxattr(t2("LongCtl"), "user.twin.mime")
    assert len(mime) <= 255 and mime.startswith(b"x/\\x1b\\x1b")
    assert re.fullmatch(rb"x/(\\x1b)+", mime), mime  # cut between escapes, never inside one
    assert read_all(t2("Plain")) == b"plain"
    assert os.getxattr(t2("Plain"), "user.twin.mime") == b"text/csv; charset=utf-8"
    assert m.proc.poll() is None


# -- a token over plain http --------------------------------------------------------------------

def run_twinfs(tmp_path, url, token):
    """Runs twinfs -f with a token against url, whose host never answers (a name in .invalid
    fails to resolve, RFC 6761; nothing is sent anywhere), and returns its stderr."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    env = dict(os.environ, TWINFS_TOKEN=token)
    for k in ("http_proxy", "https_proxy", "all_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(k, None)
    try:
        r = subprocess.run([twinfs_binary(), url, str(mnt), "-f", "-o",
                            "tracker=%s" % (tmp_path / "tracker.journal")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                           timeout=60)
    finally:
        if os.path.ismount(str(mnt)):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    assert r.returncode != 0  # the twin cannot be reached
    assert token not in r.stderr and token not in r.stdout
    return r.stderr


def test_token_over_plain_http_to_a_remote_host_warns_once(tmp_path):
    err = run_twinfs(tmp_path, "http://twin.invalid:8765", "tok-plain-9f8e")
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warnings) == 1, err
    assert "plain http" in warnings[0] and "twin.invalid" in warnings[0], warnings
    assert "http_proxy" in warnings[0], warnings


@pytest.mark.parametrize("url", ["https://twin.invalid:8765", "http://127.0.0.1:9",
                                 "http://localhost:9", "http://[::1]:9", "http://127.9.8.7:9"])
def test_no_plain_http_warning_for_https_or_the_loopback(tmp_path, url):
    err = run_twinfs(tmp_path, url, "tok-plain-9f8e")
    assert "plain http" not in err, err


def test_no_plain_http_warning_without_a_token(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TWINFS_TOKEN"}
    r = subprocess.run([twinfs_binary(), "http://twin.invalid:8765", str(mnt), "-f", "-o",
                        "tracker=%s" % (tmp_path / "tracker.journal")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode != 0
    assert "plain http" not in r.stderr, r.stderr
