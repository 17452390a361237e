"""testlib.twin: start, stop and drive the reference twin (tests/twin/twin.py) from pytest.

Every integration test uses this module; its API is stable (add, do not change):

    from testlib.twin import Twin, TwinError, generated_bytes, generated_sha256

    with Twin(tmp_path, demo=True) as tw:        # or tw = Twin(...); tw.start(); ...; tw.stop()
        tw.url                                    # "http://127.0.0.1:PORT" (https with tls=)
        tw.port, tw.state_dir, tw.log_path        # the real port, sqlite dir, stderr of the twin
        tw.request("GET", "/v1/assets")           # -> (status, headers {lower-case: value}, bytes)
        tw.get_json("/v1/assets")                 # -> parsed JSON; raises TwinError on non-2xx
        tw.create_asset("a1"); tw.delete_asset("a1")
        tw.put_schema("Ping", 1, {"type": "record", "name": "Ping", "fields": [...]})
        seq, offset = tw.publish("a1", "Ping", 1, {"n": 1}, source="test", time=None)
        seq, offset = tw.publish_b64("a1", "Ping", 1, b"\\x02")   # pre-encoded AVRO, stored as is
        tw.publish_batch([{"asset": "a1", "name": "Ping", "version": 1, "data": {"n": 2}}, ...])
                                                  # -> {"count", "first_seq", "last_seq", "head"}
        tw.head()                                 # current max seq
        tw.hook("cut_streams"); tw.hook("delay", ms=200); tw.hook("inject", kind="bad_json")
        tw.hook_state()                           # GET /v1/test/state
        tw.wait_streams(1)                        # until >= 1 stream is open on the twin
        with tw.stream(after=0) as s:             # GET /v1/stream, one parsed record per call
            rec = s.next(timeout=5)               # dict, or raises TimeoutError / EOFError
        tw.provider_register("Slow"); req = tw.provider_next("Slow", wait=5)  # dict or None
        tw.provider_chunk(req["id"], "text/plain", b"hi"); tw.provider_end(req["id"])
        tw.provider_error(req["id"], "RESOURCE_UNKNOWN")
        tw.t2("a1", "Generated", b"1024", timeout=10)  # -> (status, headers, body) in one go
        tw.restart()                              # same port, same state
        tw.kill()                                 # SIGKILL (then start() or restart())

    Twin(tmp_path, demo=False, token=None, t2_dir=None, no_t2=False, test_hooks=True,
         heartbeat=None, tls=None, port=0, extra_args=())
      token: a string; written to a file and passed as --token-file; requests made through this
        object send it (pass headers={"Authorization": ...} to override).
      tls: (cert_path, key_path); the twin serves https and requests verify against cert_path.
      The state directory is tmp_path/"twin-N" (N counts twins made in this process).

    generated_bytes(n) / generated_sha256(n): the content of T2 type Generated, name str(n):
      the 64 KiB block bytes(i % 251 for i in range(65536)) repeated and cut to n bytes.

The twin runs with Debian's /usr/bin/python3 (it needs python3-avro), whatever runs pytest.
"""

import base64
import hashlib
import http.client
import itertools
import json
import os
import select
import socket
import ssl
import subprocess
import time
import urllib.parse

from testlib.paths import PYTHON, TWIN_PY
from testlib.proc import Proc

GENERATED_BLOCK = bytes(i % 251 for i in range(65536))
_counter = itertools.count(1)


def generated_bytes(n):
    """The content of T2 Generated/<n>: GENERATED_BLOCK repeated, truncated to n bytes."""
    reps = -(-n // len(GENERATED_BLOCK))
    return (GENERATED_BLOCK * reps)[:n]


def generated_sha256(n):
    """sha256 hex digest of generated_bytes(n), computed in 1 MiB steps (any n)."""
    h = hashlib.sha256()
    big = GENERATED_BLOCK * 16
    left = n
    while left >= len(big):
        h.update(big)
        left -= len(big)
    h.update(big[:left])
    return h.hexdigest()


class TwinError(Exception):
    """A non-2xx answer: .status, .body (bytes), .json (parsed error or None)."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None
        super().__init__("twin answered %d: %s" % (status, body[:300]))


class Stream:
    """An open GET /v1/stream; next() returns one parsed line at a time.

    It parses HTTP and the chunked encoding itself on a raw socket, so a read timeout does not
    spoil the connection (http.client's file objects refuse to read after one)."""

    def __init__(self, twin, after, headers=None):
        u = urllib.parse.urlsplit(twin.url)
        sock = socket.create_connection((u.hostname, u.port), timeout=30)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(twin.tls[0]))
            sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
        self.sock = sock
        h = {"Host": "%s:%d" % (u.hostname, u.port), "Accept": "application/x-ndjson"}
        h.update(twin._headers(headers))
        req = "GET /v1/stream?after=%d HTTP/1.1\r\n" % after
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        sock.sendall(req.encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            b = sock.recv(65536)
            if not b:
                raise EOFError("no answer to GET /v1/stream")
            raw += b
        head, self.raw = raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.data = b""  # de-chunked body not yet returned
        self.ended = False
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n:
                b = sock.recv(65536)
                if not b:
                    break
                self.raw += b
            self.close()
            raise TwinError(self.status, self.raw[:n])
        self._dechunk()  # the first read may hold records already

    def _dechunk(self):
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return
            if len(self.raw) < i + 2 + size + 2:
                return
            self.data += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 2 + size + 2:]

    def next_line(self, timeout=10):
        """The next raw line (bytes, with its newline). TimeoutError, or EOFError at a cut."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.data.find(b"\n")
            if i >= 0:
                line, self.data = self.data[:i + 1], self.data[i + 1:]
                return line
            if self.ended:
                raise EOFError("stream ended")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no stream line within %ss" % timeout)
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(1 << 20)
            except TimeoutError:  # socket.timeout is TimeoutError since 3.10
                raise TimeoutError("no stream line within %ss" % timeout)
            except OSError as e:
                raise EOFError("stream cut: %r" % e)
            if not b:
                raise EOFError("stream cut")
            self.raw += b
            self._dechunk()

    def next(self, timeout=10):
        """The next record as a dict."""
        return json.loads(self.next_line(timeout))

    def until(self, pred, timeout=10):
        """Reads records until pred(rec) is true; returns (that record, the ones before)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            rec = self.next(max(0.01, deadline - time.monotonic()))
            if pred(rec):
                return rec, seen
            seen.append(rec)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Twin(Proc):
    """A reference twin process (see the module docstring)."""

    def __init__(self, tmp_path, demo=False, token=None, t2_dir=None, no_t2=False,
                 test_hooks=True, heartbeat=None, tls=None, port=0, extra_args=()):
        n = next(_counter)
        self.dir = os.path.join(str(tmp_path), "twin-%d" % n)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        super().__init__([], os.path.join(self.dir, "twin.log"), stdout=subprocess.PIPE)
        self.demo = demo
        self.token = token
        self.t2_dir = str(t2_dir) if t2_dir else None
        self.no_t2 = no_t2
        self.test_hooks = test_hooks
        self.heartbeat = heartbeat
        self.tls = tls
        self.port = port
        self.extra_args = list(extra_args)
        self.url = None
        self.token_file = None
        if token is not None:
            self.token_file = os.path.join(self.dir, "token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")

    # -- process -------------------------------------------------------------------------------

    def argv(self):
        a = [PYTHON, TWIN_PY, "--listen", "127.0.0.1:%d" % self.port, "--state", self.state_dir]
        if self.demo:
            a.append("--demo")
        if self.token_file:
            a += ["--token-file", self.token_file]
        if self.t2_dir:
            a += ["--t2-dir", self.t2_dir]
        if self.no_t2:
            a.append("--no-t2")
        if self.test_hooks:
            a.append("--test-hooks")
        if self.heartbeat is not None:
            a += ["--heartbeat", str(self.heartbeat)]
        if self.tls:
            a += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        return a + self.extra_args

    def start(self, timeout=20):
        """Spawns the twin and waits for its ready line; sets .port and .url."""
        if self.running():
            raise RuntimeError("twin already running")
        self.spawn()
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("twin did not start; log:\n" + self.log())
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith("twin: listening on "):
            self.kill()
            raise RuntimeError("unexpected ready line %r" % line)
        self.url = line[len("twin: listening on "):]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def restart(self):
        """Stops and starts again on the same port with the same state."""
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP ----------------------------------------------------------------------------------

    def _connection(self, timeout=30):
        u = urllib.parse.urlsplit(self.url)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(self.tls[0]))
            return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def _headers(self, headers=None):
        h = {}
        if self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        return h

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on a new connection -> (status, {lower-case header: value}, body)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def call(self, method, path, body=None, headers=None, timeout=30):
        """request() that parses a JSON answer and raises TwinError on non-2xx."""
        status, _, data = self.request(method, path, body, headers, timeout)
        if status >= 300:
            raise TwinError(status, data)
        return json.loads(data) if data else None

    def get_json(self, path):
        return self.call("GET", path)

    @staticmethod
    def q(s):
        """Percent-encodes one path segment."""
        return urllib.parse.quote(str(s), safe="")

    # -- integrator side -----------------------------------------------------------------------

    def head(self):
        return self.get_json("/v1/assets")["head"]

    def assets(self):
        return [a["id"] for a in self.get_json("/v1/assets")["assets"]]

    def create_asset(self, aid):
        return self.call("PUT", "/v1/assets/" + self.q(aid))

    def delete_asset(self, aid):
        return self.call("DELETE", "/v1/assets/" + self.q(aid))

    def put_schema(self, name, version, schema):
        body = schema if isinstance(schema, (str, bytes)) else json.dumps(schema)
        return self.call("PUT", "/v1/schemas/%s/%d" % (self.q(name), version), body,
                         {"Content-Type": "application/json"})

    def get_schema(self, name, version):
        return self.get_json("/v1/schemas/%s/%d" % (self.q(name), version))

    def publish(self, asset, name, version, data, source="test", time=None, **extra):
        """Publishes JSON data (encoded by the twin with the schema) -> (seq, offset)."""
        ev = {"name": name, "version": version, "source": source, "data": data}
        if time is not None:
            ev["time"] = time
        ev.update(extra)
        r = self.call("POST", "/v1/assets/%s/events" % self.q(asset), ev)
        return r["seq"], r["offset"]

    def publish_b64(self, asset, name, version, raw, source="test", time=None, **extra):
        """Publishes pre-encoded AVRO bytes, stored as is -> (seq, offset)."""
        ev = {"name": name, "version": version, "source": source,
              "data_b64": base64.b64encode(raw).decode()}
        if time is not None:
            ev["time"] = time
        ev.update(extra)
        r = self.call("POST", "/v1/assets/%s/events" % self.q(asset), ev)
        return r["seq"], r["offset"]

    def publish_batch(self, events, timeout=300):
        """POST /v1/events:batch with one JSON object a line (each with "asset")."""
        body = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
        return self.call("POST", "/v1/events:batch", body, {"Content-Type": "application/x-ndjson"},
                         timeout=timeout)

    def stream(self, after=0, headers=None):
        return Stream(self, after, headers)

    def t2(self, asset, rtype, data, timeout=10, http_timeout=60):
        """POST /v1/assets/{asset}/t2/{type} and read the whole answer."""
        if isinstance(data, str):
            data = data.encode()
        return self.request("POST", "/v1/assets/%s/t2/%s?timeout=%g"
                            % (self.q(asset), self.q(rtype), timeout), data,
                            timeout=http_timeout)

    # -- test hooks ----------------------------------------------------------------------------

    def hook(self, name, **params):
        """POST /v1/test/{name}?params -> parsed answer (TwinError on failure)."""
        qs = urllib.parse.urlencode(params)
        return self.call("POST", "/v1/test/%s%s" % (name, "?" + qs if qs else ""))

    def hook_state(self):
        return self.get_json("/v1/test/state")

    def wait_streams(self, n, timeout=10):
        """Waits until at least n streams are open on the twin (needs test hooks)."""
        deadline = time.monotonic() + timeout
        while self.hook_state()["streams"] < n:
            if time.monotonic() > deadline:
                raise TimeoutError("fewer than %d streams open" % n)
            time.sleep(0.02)

    # -- remote provider -----------------------------------------------------------------------

    def provider_register(self, rtype):
        return self.call("PUT", "/v1/providers/" + self.q(rtype))

    def provider_unregister(self, rtype):
        return self.call("DELETE", "/v1/providers/" + self.q(rtype))

    def provider_next(self, rtype, wait=5):
        """The next request for rtype ({"id","asset","type","data_b64","timeout"} plus "data"
        decoded), or None when none came within wait seconds."""
        status, _, body = self.request("GET", "/v1/providers/%s/next?wait=%g"
                                       % (self.q(rtype), wait), timeout=wait + 30)
        if status == 204:
            return None
        if status != 200:
            raise TwinError(status, body)
        r = json.loads(body)
        r["data"] = base64.b64decode(r["data_b64"])
        return r

    def provider_chunk(self, rid, mime, data, timeout=60):
        status, _, body = self.request("POST", "/v1/t2/%s/chunk" % rid, data,
                                       {"Content-Type": mime}, timeout=timeout)
        if status >= 300:
            raise TwinError(status, body)

    def provider_end(self, rid):
        status, _, body = self.request("POST", "/v1/t2/%s/end" % rid)
        if status >= 300:
            raise TwinError(status, body)

    def provider_error(self, rid, reason):
        status, _, body = self.request("POST", "/v1/t2/%s/error" % rid, {"reason": reason})
        if status >= 300:
            raise TwinError(status, body)
