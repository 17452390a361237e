"""faketwin: a tiny scripted twin that serves crafted, hostile answers (Python stdlib only).

The reference twin (tests/twin/twin.py) always speaks the protocol correctly, and its test
hooks inject only a few kinds of bad input. This one serves exactly the bytes a test gives it:

    from faketwin import FakeTwin

    with FakeTwin() as ft:                       # or ft.start() ... ft.stop()
        ft.url                                    # http://127.0.0.1:PORT
        ft.assets = ["a1"]                        # GET /v1/assets (head = ft.head)
        ft.assets_body = b"..."                   # or serve these bytes instead
        ft.snapshot_head = 0                      # head in /v1/assets (default: ft.head)
        ft.add_line(b'{"seq":1,...}', seq=1)      # a stream line (no "\\n"); seq for ?after=
        ft.add_record(kind="event", asset=..)     # a JSON record; seq taken from the dict
        ft.schemas[("Ping", 1)] = Answer(200, "application/json", b"{...}")
        ft.schemas[("Slow", 1)] = Answer(200, mode="slowloris")
        ft.t2["Endless"] = Answer(200, "text/plain", mode="endless")
        ft.cut_streams()                          # closes every open stream
        ft.requests                               # [(method, path)] received, in order

Stream lines: every open stream gets each line added with add_line, as it is added. A stream
that connects with ?after=N first gets the stored lines whose seq is None or > N (lines
added with seq=None are sent on every connection: transient junk such as bad JSON), then
{"kind":"caught_up","head":H}, then live lines, and a heartbeat every `heartbeat` seconds.

Answer modes: "normal" (the body, with Content-Length), "endless" (chunks forever, until the
client goes), "slowloris" (the body one byte every `interval` seconds), "stall" (chunked
headers, then nothing until limit_s, then a cut), "bad_chunked" (a chunked body with a bad
chunk size line), "close" (the connection is closed without any answer). Every mode is
bounded by `limit_s` so no thread outlives a test.
"""

import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Answer:
    def __init__(self, status=200, ctype="application/json", body=b"", mode="normal",
                 interval=1.0, limit_s=60.0, headers=None):
        self.status = status
        self.ctype = ctype
        self.body = body if isinstance(body, bytes) else body.encode()
        self.mode = mode
        self.interval = interval
        self.limit_s = limit_s
        self.headers = headers or {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeTwin:
    def __init__(self, heartbeat=1.0, host="127.0.0.1"):
        self.heartbeat = heartbeat
        self.host = host
        self.assets = []
        self.assets_body = None
        self.head = 0
        self.snapshot_head = None
        self.schemas = {}
        self.t2 = {}
        self.requests = []
        self.streams_opened = 0
        self._lines = []  # (seq or None, bytes)
        self._cond = threading.Condition()
        self._gen = 0  # bumped by cut_streams
        self._stopping = False
        self._server = None
        self._thread = None
        self.url = None
        self.port = None

    # -- script ---------------------------------------------------------------------------------

    def add_line(self, line, seq=None):
        """Appends one stream line (bytes or str, without the newline)."""
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        with self._cond:
            self._lines.append((seq, line))
            if isinstance(seq, int) and seq > self.head:
                self.head = seq
            self._cond.notify_all()

    def add_record(self, **rec):
        """Appends one JSON record; its "seq" (if an int) is also the line's seq."""
        seq = rec.get("seq")
        self.add_line(json.dumps(rec, separators=(",", ":")),
                      seq if isinstance(seq, int) and not isinstance(seq, bool) else None)

    def cut_streams(self):
        with self._cond:
            self._gen += 1
            self._cond.notify_all()

    # -- process --------------------------------------------------------------------------------

    def start(self, port=0):
        ft = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                ft._handle(self, "GET")

            def do_POST(self):
                ft._handle(self, "POST")

        self._server = _Server((self.host, port), Handler)
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d" % (self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- serving --------------------------------------------------------------------------------

    def _handle(self, h, method):
        u = urllib.parse.urlsplit(h.path)
        self.requests.append((method, h.path))
        n = int(h.headers.get("Content-Length") or 0)
        if n:
            h.rfile.read(n)
        parts = [urllib.parse.unquote(p) for p in u.path.split("/")]
        try:
            if method == "GET" and u.path == "/v1/assets":
                body = self.assets_body
                if body is None:
                    body = json.dumps({"head": self.head if self.snapshot_head is None
                                       else self.snapshot_head, "assets": [
                        {"id": a, "created": "2026-01-01T00:00:00.000Z"} for a in self.assets]})
                self._answer(h, Answer(200, "application/json", body))
            elif method == "GET" and u.path == "/v1/stream":
                q = urllib.parse.parse_qs(u.query)
                self._stream(h, int(q.get("after", ["0"])[0]))
            elif method == "GET" and len(parts) == 5 and parts[:3] == ["", "v1", "schemas"]:
                key = (parts[3], int(parts[4]) if parts[4].lstrip("-").isdigit() else parts[4])
                self._answer(h, self.schemas.get(key) or Answer(
                    404, body=b'{"error":"schema_unknown","reason":null,"message":"no"}'))
            elif method == "POST" and len(parts) == 6 and parts[4] == "t2":
                self._answer(h, self.t2.get(parts[5]) or Answer(
                    501, body=b'{"error":"t2_failed","reason":"REQ_UNHANDLED","message":"no"}'))
            else:
                self._answer(h, Answer(404, body=b'{"error":"not_found"}'))
        except (OSError, ValueError):
            h.close_connection = True

    def _send_head(self, h, status, ctype, extra):
        h.send_response_only(status)
        if ctype is not None:
            h.send_header("Content-Type", ctype)
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()

    def _answer(self, h, a):
        deadline = time.monotonic() + a.limit_s
        if a.mode == "close":
            h.close_connection = True
            return
        if a.mode == "normal":
            self._send_head(h, a.status, a.ctype, dict(a.headers, **{
                "Content-Length": str(len(a.body))}))
            h.wfile.write(a.body)
            return
        h.close_connection = True
        if a.mode == "slowloris":
            self._send_head(h, a.status, a.ctype, dict(a.headers, **{
                "Content-Length": str(len(a.body))}))
            for i in range(len(a.body)):
                if self._stopping or time.monotonic() > deadline:
                    return
                h.wfile.write(a.body[i:i + 1])
                h.wfile.flush()
                time.sleep(a.interval)
            return
        if a.mode == "stall":
            self._send_head(h, a.status, a.ctype, dict(a.headers, **{
                "Transfer-Encoding": "chunked"}))
            while not self._stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        if a.mode == "bad_chunked":
            self._send_head(h, a.status, a.ctype, dict(a.headers, **{
                "Transfer-Encoding": "chunked"}))
            h.wfile.write(b"4\r\nabcd\r\nzz-not-hex\r\nefgh\r\n")
            h.wfile.flush()
            return
        if a.mode == "endless":
            self._send_head(h, a.status, a.ctype, dict(a.headers, **{
                "Transfer-Encoding": "chunked"}))
            block = (a.body or b"x" * 65536)
            chunk = b"%x\r\n" % len(block) + block + b"\r\n"
            while not self._stopping and time.monotonic() < deadline:
                h.wfile.write(chunk)
            return
        raise ValueError("unknown mode " + a.mode)

    def _stream(self, h, after):
        h.close_connection = True
        with self._cond:
            self.streams_opened += 1
            gen = self._gen
            backlog = [ln for s, ln in self._lines if s is None or s > after]
            sent = len(self._lines)
            head = self.head
        self._send_head(h, 200, "application/x-ndjson", {"Transfer-Encoding": "chunked"})

        def send(line):
            data = line + b"\n"
            h.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

        for ln in backlog:
            send(ln)
        send(b'{"kind":"caught_up","head":%d}' % head)
        h.wfile.flush()
        last = time.monotonic()
        while True:
            with self._cond:
                while (not self._stopping and self._gen == gen and sent == len(self._lines)
                       and time.monotonic() - last < self.heartbeat):
                    self._cond.wait(0.1)
                if self._stopping or self._gen != gen:
                    return  # cut: no terminating chunk
                new = [ln for _, ln in self._lines[sent:]]
                sent = len(self._lines)
                head = self.head
            for ln in new:
                send(ln)
            if not new:
                send(b'{"kind":"heartbeat","head":%d}' % head)
            h.wfile.flush()
            last = time.monotonic()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
