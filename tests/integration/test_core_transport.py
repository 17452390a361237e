"""core: one mapping from transport failures to errors.

The same failure of the link gives the same error wherever core meets it: the snapshot that
follower_start takes and a T2 request both see a connection dropped before any answer as
ECONNRESET (the link was lost), and a certificate that fails verification as EKEYREJECTED,
its own code, so that mount/ can name the cause without guessing from the URL. Driven through
docs/examples/follower_example, a third-party follower of core's public headers."""

import errno
import json
import os
import socket
import subprocess
import threading

import pytest

from faketwin import Answer, FakeTwin
from test_sec_tls import make_cert
from testlib.paths import example_path
from testlib.twin import Twin

PING = {"type": "record", "name": "Ping", "fields": [{"name": "n", "type": "int"}]}


def example_argv(url, tracker, *args):
    return ([example_path(), url, str(tracker)] +
            [str(a) for a in args])


def example(url, tracker, *args, timeout=120):
    """Runs the example follower to its end; returns (exit status, stdout, stderr)."""
    p = subprocess.run(example_argv(url, tracker, *args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def example_until(prefix, url, tracker, *args, timeout=120):
    """Runs the example follower until it prints a line starting with prefix (or ends), then
    stops it; returns that line, or None, and everything it printed."""
    p = subprocess.Popen(example_argv(url, tracker, *args), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    found, seen = None, []
    try:
        for ln in p.stdout:
            seen.append(ln.rstrip("\n"))
            if ln.startswith(prefix):
                found = seen[-1]
                break
    finally:
        timer.cancel()
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()
    return found, seen


class Dropper:
    """A TCP server that accepts every connection and closes it without a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def test_certificate_rejected_has_its_own_code(tmp_path):
    cert, key = make_cert(tmp_path, "twin", "IP:127.0.0.1,DNS:localhost")
    tw = Twin(tmp_path, demo=True, tls=(cert, key))
    tw.start()
    try:
        status, out, err = example(tw.url, tmp_path / "t.journal")
    finally:
        tw.stop()
    assert status != 0 and "ready" not in out, (out, err)
    assert os.strerror(errno.EKEYREJECTED) in err, err


def test_dropped_connection_is_link_lost_at_start(tmp_path):
    d = Dropper()
    try:
        status, out, err = example(d.url, tmp_path / "t.journal")
    finally:
        d.close()
    assert d.accepted >= 1
    assert status != 0 and "ready" not in out, (out, err)
    assert os.strerror(errno.ECONNRESET) in err, err


def test_dropped_connection_is_link_lost_in_t2(tmp_path):
    ft = FakeTwin(heartbeat=1.0)
    ft.assets = ["a"]
    ft.schemas[("Ping", 1)] = Answer(200, "application/json", json.dumps(PING))
    ft.t2["Close"] = Answer(200, mode="close")
    ft.start()
    try:
        line, seen = example_until("t2 ", ft.url, tmp_path / "t.journal", "--t2", "a", "Close",
                                   "x", "--t2-timeout", "30")
    finally:
        ft.stop()
    assert line == "t2 error LINK_LOST ECONNRESET", seen
