#!/usr/bin/python3
"""twin.py: the reference twin of twinfs (protocol version 1, see docs/protocol.md).

A real HTTP/1.1 server, stdlib plus python3-avro only, run with Debian's /usr/bin/python3:

    twin.py --listen 127.0.0.1:PORT --state DIR [--demo] [--token-file F] [--t2-dir DIR]
            [--no-t2] [--test-hooks] [--heartbeat S] [--tls-cert F --tls-key F]

It prints exactly one line to stdout once it serves ("twin: listening on http://HOST:PORT") and
exits with 0 on SIGTERM or SIGINT. State (assets, schemas, the log) lives in DIR/twin.db (sqlite,
WAL), so a restart keeps everything and seq/offset continue.

Design notes (why it looks like this):
- Every log record is stored as its finished NDJSON line, so streaming the backlog is a batched
  sqlite read plus one socket write per batch: no JSON work per record on the hot path.
- Writers are serialized by one lock; readers use their own sqlite connection per thread (WAL
  lets them read while a writer commits). Live streams sleep on one condition variable.
- Socket writes block: a slow stream reader stalls its own thread (TCP back-pressure), nothing
  is buffered beyond one batch.
"""

import argparse
import base64
import datetime
import hmac
import io
import json
import mimetypes
import os
import queue
import signal
import socket
import sqlite3
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import avro.errors
import avro.io
import avro.schema

PROTOCOL_VERSION = 1
BATCH_ROWS = 2000  # rows per sqlite read when streaming
MAX_BODY = 1 << 30  # largest request body accepted
MAX_ID = 255  # bytes in an asset id, event name or T2 type
GENERATED_BLOCK = bytes(i % 251 for i in range(65536))
GENERATED_MAX = 1 << 40
SEND_BLOCK = 1 << 20  # bytes per chunk for file and generated T2 answers
DEMO_DATASET_SIZE = 128 << 20
T2_IDLE_LIMIT = 300.0  # a remote provider silent this long after its first chunk: cut
NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def now_rfc3339():
    """The current UTC time as RFC 3339 with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def dumps(obj):
    """Compact JSON, UTF-8 (the wire form of every record and answer)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class ApiError(Exception):
    """An error answer: HTTP status, error code, T2 reason (or None), message."""

    def __init__(self, status, code, message, reason=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message


def id_is_safe(s):
    """The rule of core/record.h: 1..255 bytes of UTF-8, no '/' or NUL, not '.' or '..'."""
    if not s or s in (".", ".."):
        return False
    if "/" in s or "\0" in s:
        return False
    return len(s.encode("utf-8", "surrogatepass")) <= MAX_ID


def name_is_safe(s):
    """Event (schema) names are further limited to [A-Za-z0-9_.-]."""
    return id_is_safe(s) and all(c in NAME_CHARS for c in s)


# ---------------------------------------------------------------------------------------------
# AVRO: JSON values to python3-avro datums


def _branch_name(s):
    """The name a union branch is tagged with in AVRO's JSON encoding."""
    if isinstance(s, avro.schema.NamedSchema):
        return s.fullname
    return s.type


def to_datum(s, v):
    """Converts a JSON value v to the datum python3-avro's writer wants for schema s.

    JSON has no dates or bytes, so: int logicalType date takes days since 1970-01-01 or
    "YYYY-MM-DD"; long timestamp-millis/-micros take the integer or an RFC 3339 string; bytes
    and fixed take a string of code points 0..255 (AVRO's JSON encoding); a union takes either
    the bare value (first branch that validates wins) or AVRO's tagged form {"type": value}.
    Raises ValueError when v cannot be converted."""
    t = s.type
    lt = getattr(s, "logical_type", None) or s.get_prop("logicalType")
    if t == "union":
        if v is None:
            return None
        if isinstance(v, dict) and len(v) == 1:
            (k, inner), = v.items()
            for b in s.schemas:
                if _branch_name(b) == k or getattr(b, "name", None) == k:
                    return to_datum(b, inner)
        for b in s.schemas:
            if b.type == "null":
                continue
            try:
                d = to_datum(b, v)
            except (ValueError, TypeError, OverflowError):
                continue
            if avro.io.validate(b, d):
                return d
        raise ValueError("value matches no branch of the union")
    if t == "record" or t == "error":
        if not isinstance(v, dict):
            raise ValueError("record %s needs an object" % s.fullname)
        out = {}
        for f in s.fields:
            if f.name in v:
                out[f.name] = to_datum(f.type, v[f.name])
            elif f.has_default:
                out[f.name] = to_datum(f.type, f.default)
            else:
                raise ValueError("record %s: field %s missing" % (s.fullname, f.name))
        return out
    if t == "array":
        if not isinstance(v, list):
            raise ValueError("array needs a list")
        return [to_datum(s.items, x) for x in v]
    if t == "map":
        if not isinstance(v, dict):
            raise ValueError("map needs an object")
        return {k: to_datum(s.values, x) for k, x in v.items()}
    if t in ("bytes", "fixed"):
        if isinstance(v, str):
            return v.encode("latin-1")
        raise ValueError("bytes need a string of code points 0..255")
    if t == "int" and lt == "date":
        if isinstance(v, bool):
            raise ValueError("date needs an int or YYYY-MM-DD")
        if isinstance(v, int):
            return datetime.date(1970, 1, 1) + datetime.timedelta(days=v)
        if isinstance(v, str):
            return datetime.date.fromisoformat(v)
        raise ValueError("date needs an int or YYYY-MM-DD")
    if t == "long" and lt in ("timestamp-millis", "timestamp-micros"):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        if isinstance(v, int) and not isinstance(v, bool):
            unit = 1000 if lt == "timestamp-millis" else 1000000
            return epoch + datetime.timedelta(microseconds=v * (1000000 // unit))
        if isinstance(v, str):
            d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.timezone.utc)
            return d
        raise ValueError("timestamp needs an int or RFC 3339")
    if t in ("float", "double") and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


class SchemaEntry:
    """A registered schema, parsed once, with its writer (cached per name/version)."""

    def __init__(self, name, version, text):
        self.name = name
        self.version = version
        self.text = text
        self.schema = avro.schema.parse(text)
        self.writer = avro.io.DatumWriter(self.schema)

    def encode(self, value):
        """JSON value -> AVRO binary. Raises ApiError 400 data_invalid if it does not match."""
        try:
            datum = to_datum(self.schema, value)
            buf = io.BytesIO()
            self.writer.write(datum, avro.io.BinaryEncoder(buf))
        except (ValueError, TypeError, OverflowError, avro.errors.AvroException) as e:
            msg = str(e).replace("\n", " ")
            raise ApiError(400, "data_invalid", "data does not match %s v%d: %s"
                           % (self.name, self.version, msg[:300]))
        return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# State: the sqlite store, the in-memory view of it, the condition streams sleep on


class Store:
    """Assets, schemas and the log, in DIR/twin.db. Writes hold self.lock."""

    def __init__(self, state_dir):
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, "twin.db")
        self.lock = threading.Lock()
        self.cond = threading.Condition()  # notified when head moves or streams must look
        self.local = threading.local()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS records (
                seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, asset TEXT NOT NULL,
                offset INTEGER, line BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS assets (
                id TEXT PRIMARY KEY, created TEXT NOT NULL, seq INTEGER NOT NULL,
                deleted INTEGER NOT NULL DEFAULT 0, next_offset INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS schemas (
                name TEXT NOT NULL, version INTEGER NOT NULL, text TEXT NOT NULL,
                PRIMARY KEY (name, version));
            """
        )
        row = self.db.execute("SELECT MAX(seq) FROM records").fetchone()
        self.head = row[0] or 0
        self.assets = {}  # current assets: id -> created
        self.next_offset = {}  # every id ever seen: id -> next offset (never reused)
        for aid, created, deleted, nxt in self.db.execute(
                "SELECT id, created, deleted, next_offset FROM assets ORDER BY seq"):
            self.next_offset[aid] = nxt
            if not deleted:
                self.assets[aid] = created
        self.schemas = {}
        for name, version, text in self.db.execute("SELECT name, version, text FROM schemas"):
            self.schemas[(name, version)] = SchemaEntry(name, version, text)

    def is_empty(self):
        """True when nothing was ever stored (for --demo)."""
        return self.head == 0 and not self.schemas

    def reader(self):
        """This thread's read connection."""
        c = getattr(self.local, "db", None)
        if c is None:
            c = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.local.db = c
        return c

    def read_lines(self, after, upto, limit=BATCH_ROWS):
        """Up to limit (seq, line) rows with after < seq <= upto (upto None: no bound)."""
        c = self.reader()
        if upto is None:
            return c.execute("SELECT seq, line FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                             (after, limit)).fetchall()
        return c.execute(
            "SELECT seq, line FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, upto, limit)).fetchall()

    def _publish_head(self, head):
        with self.cond:
            self.head = head
            self.cond.notify_all()

    def snapshot(self):
        """(head, [(id, created)]) consistent with each other."""
        with self.lock:
            return self.head, list(self.assets.items())

    def create_asset(self, aid):
        """Creates aid. Returns (created: bool, created_time, seq or None)."""
        with self.lock:
            if aid in self.assets:
                return False, self.assets[aid], None
            seq = self.head + 1
            t = now_rfc3339()
            line = dumps({"seq": seq, "kind": "asset_created", "asset": aid, "time": t})
            nxt = self.next_offset.get(aid, 0)
            self.db.execute("BEGIN")
            try:
                self.db.execute("INSERT INTO records VALUES (?, 'asset_created', ?, NULL, ?)",
                                (seq, aid, line.encode()))
                self.db.execute("INSERT OR REPLACE INTO assets VALUES (?, ?, ?, 0, ?)",
                                (aid, t, seq, nxt))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.assets[aid] = t
            self.next_offset[aid] = nxt
            self._publish_head(seq)
            return True, t, seq

    def delete_asset(self, aid):
        """Deletes aid; returns the seq of the asset_deleted record. ApiError 404 if unknown."""
        with self.lock:
            if aid not in self.assets:
                raise ApiError(404, "asset_unknown", "no asset %r" % aid)
            seq = self.head + 1
            t = now_rfc3339()
            line = dumps({"seq": seq, "kind": "asset_deleted", "asset": aid, "time": t})
            self.db.execute("BEGIN")
            try:
                self.db.execute("INSERT INTO records VALUES (?, 'asset_deleted', ?, NULL, ?)",
                                (seq, aid, line.encode()))
                self.db.execute("UPDATE assets SET deleted = 1 WHERE id = ?", (aid,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            del self.assets[aid]
            self._publish_head(seq)
            return seq

    def put_schema(self, name, version, text):
        """Registers a schema. Returns True if new; ApiError 409 if a different one exists."""
        try:
            entry = SchemaEntry(name, version, text)
        except (avro.errors.AvroException, ValueError, TypeError) as e:
            raise ApiError(400, "schema_invalid", "not an AVRO schema: %s" % str(e)[:300])
        with self.lock:
            old = self.schemas.get((name, version))
            if old is not None:
                if json.loads(old.text) == json.loads(text):
                    return False
                raise ApiError(409, "schema_conflict",
                               "%s v%d exists with different text; versions are immutable"
                               % (name, version))
            self.db.execute("INSERT INTO schemas VALUES (?, ?, ?)", (name, version, text))
            self.schemas[(name, version)] = entry
            return True

    def append_events(self, events):
        """Appends events atomically (one transaction).

        events: list of (asset, name, version, source, time, systime, data_field) where
        data_field is the string put in "data" (normally base64). Returns [(seq, offset)].
        ApiError 404 asset_unknown (nothing stored) if an asset is not current."""
        with self.lock:
            seq = self.head
            rows = []
            out = []
            offsets = {}
            for asset, name, version, source, t, systime, data in events:
                if asset not in self.assets:
                    raise ApiError(404, "asset_unknown", "no asset %r" % asset)
                off = offsets.get(asset)
                if off is None:
                    off = self.next_offset[asset]
                seq += 1
                line = dumps({"seq": seq, "kind": "event", "asset": asset, "offset": off,
                              "name": name, "version": version, "source": source, "time": t,
                              "systime": systime, "data": data})
                rows.append((seq, asset, off, line.encode()))
                out.append((seq, off))
                offsets[asset] = off + 1
            if not rows:
                return out
            self.db.execute("BEGIN")
            try:
                self.db.executemany("INSERT INTO records VALUES (?, 'event', ?, ?, ?)", rows)
                self.db.executemany("UPDATE assets SET next_offset = ? WHERE id = ?",
                                    [(n, a) for a, n in offsets.items()])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.next_offset.update(offsets)
            self._publish_head(seq)
            return out

    def close(self):
        with self.lock:
            self.db.close()


# ---------------------------------------------------------------------------------------------
# Streams, remote providers, test hooks


class StreamState:
    """One open GET /v1/stream, as seen by the hooks."""

    def __init__(self, sock):
        self.sock = sock
        self.cut = False
        self.cut_after = None  # records still to send before a cut, or None
        self.inject = []  # transient lines to send (test hooks)


class Hooks:
    """Fault controls (only with --test-hooks). Plain attributes read without a lock: each is
    one assignment, and a racing reader seeing the old value for a moment is fine."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.delay_ms = 0
        self.next_stream_cut_after = None
        self.t2_cut_bytes = None
        self.not_connected = False
        self.not_connected_types = set()
        self.stall = False
        self.schema_failures = 0  # the next N schema GETs answer 503

    def as_dict(self):
        return {"delay_ms": self.delay_ms, "next_stream_cut_after": self.next_stream_cut_after,
                "t2_cut_bytes": self.t2_cut_bytes, "not_connected": self.not_connected,
                "not_connected_types": sorted(self.not_connected_types), "stall": self.stall,
                "schema_failures": self.schema_failures}


class T2Request:
    """A T2 request waiting for, or streaming from, a remote provider."""

    def __init__(self, asset, rtype, data, timeout):
        self.id = uuid.uuid4().hex
        self.asset = asset
        self.type = rtype
        self.data = data
        self.timeout = timeout
        self.items = queue.Queue(maxsize=8)  # ("chunk", mime, bytes) | ("end",) | ("error", r)
        self.abandoned = False  # the requester is gone (timeout, cut, disconnect)
        self.finished = False  # the provider sent end or error


class Provider:
    def __init__(self, rtype):
        self.type = rtype
        self.pending = queue.Queue()


class Twin:
    """Everything the handlers share."""

    def __init__(self, args):
        self.args = args
        self.store = Store(args.state)
        self.token = None
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as f:
                self.token = f.read().strip()
            if not self.token:
                raise SystemExit("twin: token file %s is empty" % args.token_file)
        self.hooks = Hooks()
        self.streams = set()
        self.streams_lock = threading.Lock()
        self.providers = {}
        self.requests = {}
        self.prov_lock = threading.Lock()
        self.stopping = False
        self.demo_files = {}
        if args.demo:
            self.load_demo()

    def load_demo(self):
        """The acmecorp-like demo set (tests/twin/demo.py), stored only into an empty state."""
        import demo

        self.demo_files = {"manual.pdf": minimal_pdf(), "README.txt": demo.README.encode()}
        st = self.store
        if not st.is_empty():
            return
        for name, version, schema in demo.SCHEMAS:
            st.put_schema(name, version, json.dumps(schema, indent=1))
        for aid in demo.ASSETS:
            st.create_asset(aid)
        events = []
        for asset, name, version, source, t, data in demo.EVENTS:
            raw = st.schemas[(name, version)].encode(data)
            events.append((asset, name, version, source, t, now_rfc3339(),
                           base64.b64encode(raw).decode()))
        st.append_events(events)

    def stop(self):
        self.stopping = True
        with self.store.cond:
            self.store.cond.notify_all()


# ---------------------------------------------------------------------------------------------
# T2 content helpers


def generated_chunk(n):
    """The first n bytes (n <= SEND_BLOCK) of the Generated content."""
    reps = -(-n // len(GENERATED_BLOCK))
    return (GENERATED_BLOCK * reps)[:n]


_FULL_BLOCK = generated_chunk(SEND_BLOCK)


def minimal_pdf(title="ACME pump P-100 manual"):
    """A small valid PDF (one page, one line of text) with a correct xref table."""
    text = "BT /F1 18 Tf 72 720 Td (%s) Tj ET" % title
    objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        "<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += ("%d 0 obj\n%s\nendobj\n" % (i, o)).encode()
    xref = len(out)
    out += ("xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)).encode()
    for off in offsets:
        out += ("%010d 00000 n \n" % off).encode()
    out += ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, xref)).encode()
    return bytes(out)


class Cut(Exception):
    """The response must end by cutting the connection (no terminating chunk)."""


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "twinfs-reference-twin/1"
    twin = None  # set in main

    # -- plumbing ------------------------------------------------------------------------------

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(None)

    def log_message(self, fmt, *args):
        if self.twin.args.verbose:
            sys.stderr.write("twin: %s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj, headers=None):
        body = (dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_json(self, e):
        headers = {}
        if e.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="twin"'
        self.send_json(e.status, {"error": e.code, "reason": e.reason, "message": e.message},
                       headers)

    def send_empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def read_body(self):
        """The request body (Content-Length or chunked), bounded by MAX_BODY."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            parts = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ApiError(400, "bad_request", "truncated chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise ApiError(413, "too_large", "body over %d bytes" % MAX_BODY)
                parts.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(parts)
        n = self.headers.get("Content-Length")
        if not n:
            return b""
        try:
            n = int(n)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad_request", "bad Content-Length")
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "too_large", "body over %d bytes" % MAX_BODY)
        return self.rfile.read(n)

    def start_chunked(self, status, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")

    def cut_connection(self):
        """Ends the exchange abruptly: the client sees a body without its last chunk."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        tw = self.twin
        try:
            body = self.read_body()
        except ApiError as e:
            self.send_error_json(e)
            return
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        segs = [urllib.parse.unquote(s, errors="strict") if "%" in s else s
                for s in url.path.split("/")[1:]]
        try:
            if not segs or segs[0] != "v1":
                raise ApiError(404, "not_found", "every path is under /v1")
            if tw.token is not None:
                auth = self.headers.get("Authorization", "")
                ok = auth.startswith("Bearer ") and hmac.compare_digest(
                    auth[7:].strip().encode(), tw.token.encode())
                if not ok:
                    raise ApiError(401, "unauthorized", "missing or bad bearer token")
            segs = segs[1:]
            if segs and segs[0] == "test":
                if not tw.args.test_hooks:
                    raise ApiError(404, "not_found", "test hooks are off (--test-hooks)")
                self.route_test(segs[1:], body)
                return
            if tw.hooks.delay_ms:
                time.sleep(tw.hooks.delay_ms / 1000.0)
            self.route(segs, body)
        except ApiError as e:
            self.send_error_json(e)
        except UnicodeDecodeError:
            self.send_error_json(ApiError(400, "bad_request", "path is not UTF-8"))
        except (BrokenPipeError, ConnectionResetError, Cut):
            self.close_connection = True
        except Exception as e:  # a bug: answer 500 and keep serving
            sys.stderr.write("twin: internal error on %s %s: %r\n" % (self.command, self.path, e))
            try:
                self.send_error_json(ApiError(500, "internal", repr(e)[:300]))
            except OSError:
                self.close_connection = True

    def method(self, *allowed):
        m = "GET" if self.command == "HEAD" else self.command
        if m not in allowed:
            raise ApiError(405, "method_not_allowed",
                           "%s not allowed here (allowed: %s)" % (self.command, ", ".join(allowed)))
        return m

    def route(self, s, body):
        n = len(s)
        if n == 1 and s[0] == "assets":
            self.method("GET")
            head, assets = self.twin.store.snapshot()
            self.send_json(200, {"head": head, "assets": [{"id": a, "created": c}
                                                          for a, c in assets]})
        elif n == 2 and s[0] == "assets":
            m = self.method("GET", "PUT", "DELETE")
            self.asset(m, s[1])
        elif n == 3 and s[0] == "assets" and s[2] == "events":
            self.method("POST")
            self.publish_one(s[1], body)
        elif n == 1 and s[0] in ("events:batch", "events.batch"):
            self.method("POST")
            self.publish_batch(body)
        elif n == 1 and s[0] == "stream":
            self.method("GET")
            self.stream()
        elif n == 1 and s[0] == "schemas":
            self.method("GET")
            st = self.twin.store
            with st.lock:
                keys = sorted(st.schemas)
            self.send_json(200, {"schemas": [{"name": a, "version": b} for a, b in keys]})
        elif n == 3 and s[0] == "schemas":
            m = self.method("GET", "PUT")
            self.schema(m, s[1], s[2], body)
        elif n == 4 and s[0] == "assets" and s[2] == "t2":
            self.method("POST")
            self.t2(s[1], s[3], body)
        elif n == 2 and s[0] == "providers":
            m = self.method("PUT", "DELETE")
            self.provider(m, s[1])
        elif n == 3 and s[0] == "providers" and s[2] == "next":
            self.method("GET")
            self.provider_next(s[1])
        elif n == 3 and s[0] == "t2" and s[2] in ("chunk", "end", "error"):
            self.method("POST")
            self.provider_answer(s[1], s[2], body)
        else:
            raise ApiError(404, "not_found", "no such request: %s" % self.path.split("?")[0])

    # -- integrator side -----------------------------------------------------------------------

    def check_id(self, aid, what="asset id"):
        if self.twin.args.test_hooks and self.query.get("unsafe") == "1":
            if aid and "\0" not in aid:
                return
        if not id_is_safe(aid):
            raise ApiError(400, "bad_request", "%s %r is not a safe path component" % (what, aid))

    def asset(self, m, aid):
        st = self.twin.store
        if m == "GET":
            with st.lock:
                created = st.assets.get(aid)
            if created is None:
                raise ApiError(404, "asset_unknown", "no asset %r" % aid)
            self.send_json(200, {"id": aid, "created": created,
                                 "next_offset": st.next_offset.get(aid, 0)})
        elif m == "PUT":
            self.check_id(aid)
            new, created, seq = st.create_asset(aid)
            self.send_json(201 if new else 200, {"id": aid, "created": created, "seq": seq})
        else:
            seq = st.delete_asset(aid)
            self.send_json(200, {"id": aid, "seq": seq})

    def schema(self, m, name, version_s, body):
        try:
            version = int(version_s, 10)
            if version < 0 or version > 2**31 - 1:
                raise ValueError
        except ValueError:
            raise ApiError(400, "bad_request", "version must be an integer >= 0")
        st = self.twin.store
        if m == "GET" and self.twin.hooks.schema_failures > 0:
            self.twin.hooks.schema_failures -= 1
            raise ApiError(503, "unavailable", "schema store unavailable (test hook)")
        if m == "GET":
            with st.lock:
                e = st.schemas.get((name, version))
            if e is None:
                raise ApiError(404, "schema_unknown", "no schema %s v%d" % (name, version))
            data = e.text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        if not name_is_safe(name):
            raise ApiError(400, "bad_request", "schema name %r must match [A-Za-z0-9_.-]+" % name)
        try:
            text = body.decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "schema_invalid", "body is not JSON")
        new = st.put_schema(name, version, text)
        self.send_json(201 if new else 200, {"name": name, "version": version})

    def prepare_event(self, asset, obj, received):
        """Checks one publish object and returns the tuple Store.append_events takes."""
        if not isinstance(obj, dict):
            raise ApiError(400, "bad_request", "an event is a JSON object")
        if asset not in self.twin.store.assets:  # checked again under the store's lock
            raise ApiError(404, "asset_unknown", "no asset %r" % asset)
        name = obj.get("name")
        version = obj.get("version")
        if not isinstance(name, str) or not name_is_safe(name):
            if not (self.twin.args.test_hooks and self.query.get("unsafe") == "1"
                    and isinstance(name, str) and name):
                raise ApiError(400, "bad_request", "name must match [A-Za-z0-9_.-]+")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ApiError(400, "bad_request", "version must be an integer >= 0")
        source = obj.get("source", "twin")
        t = obj.get("time") or received
        systime = obj["systime"] if "systime" in obj else received
        for k, v in (("source", source), ("time", t)):
            if not isinstance(v, str):
                raise ApiError(400, "bad_request", "%s must be a string" % k)
        if systime is not None and not isinstance(systime, str):
            raise ApiError(400, "bad_request", "systime must be a string or null")
        if "data_b64" in obj:
            raw = obj["data_b64"]
            try:
                base64.b64decode(raw, validate=True)
            except (ValueError, TypeError):
                raise ApiError(400, "bad_request", "data_b64 is not base64")
            data = raw
        elif "data" in obj:
            st = self.twin.store
            e = st.schemas.get((name, version))
            if e is None:
                raise ApiError(400, "schema_unknown",
                               "no schema %s v%d to encode data with" % (name, version))
            data = base64.b64encode(e.encode(obj["data"])).decode()
        else:
            raise ApiError(400, "bad_request", "an event needs data or data_b64")
        return (asset, name, version, source, t, systime, data)

    def publish_one(self, asset, body):
        st = self.twin.store
        try:
            obj = json.loads(body)
        except ValueError:
            raise ApiError(400, "bad_request", "body is not JSON")
        ev = self.prepare_event(asset, obj, now_rfc3339())
        (seq, off), = st.append_events([ev])
        self.send_json(200, {"seq": seq, "offset": off})

    def publish_batch(self, body):
        received = now_rfc3339()
        events = []
        for i, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise ApiError(400, "bad_request", "line %d is not JSON" % i)
            asset = obj.get("asset") if isinstance(obj, dict) else None
            if not isinstance(asset, str):
                raise ApiError(400, "bad_request", "line %d: asset missing" % i)
            try:
                events.append(self.prepare_event(asset, obj, received))
            except ApiError as e:
                e.message = "line %d: %s" % (i, e.message)
                raise
        res = self.twin.store.append_events(events)
        self.send_json(200, {"count": len(res), "first_seq": res[0][0] if res else None,
                             "last_seq": res[-1][0] if res else None,
                             "head": self.twin.store.head})

    # -- the stream ----------------------------------------------------------------------------

    def stream(self):
        tw = self.twin
        st = tw.store
        try:
            after = int(self.query.get("after", "0"), 10)
            if after < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "bad_request", "after must be an integer >= 0")
        hb = tw.args.heartbeat
        state = StreamState(self.connection)
        with st.cond:
            head0 = st.head
            if tw.hooks.next_stream_cut_after is not None:
                state.cut_after = tw.hooks.next_stream_cut_after
                tw.hooks.next_stream_cut_after = None
        with tw.streams_lock:
            tw.streams.add(state)
        self.close_connection = True  # a stream never ends normally
        try:
            self.start_chunked(200, "application/x-ndjson")
            sent = after
            last_write = time.monotonic()
            caught_up = False
            while not tw.stopping and not state.cut:
                with st.cond:
                    if state.inject:
                        extra, state.inject = state.inject, []
                    else:
                        extra = None
                if extra:
                    self.write_chunk(b"".join(x + b"\n" for x in extra))
                    last_write = time.monotonic()
                    continue
                if tw.hooks.stall:
                    with st.cond:
                        st.cond.wait(0.2)
                    last_write = time.monotonic()
                    continue
                if not caught_up:
                    rows = st.read_lines(sent, head0) if sent < head0 else []
                    if not rows:
                        caught_up = True
                        line = dumps({"kind": "caught_up", "head": max(head0, 0)})
                        self.write_chunk(line.encode() + b"\n")
                        last_write = time.monotonic()
                        continue
                elif st.head > sent:
                    rows = st.read_lines(sent, None)
                else:
                    rows = []
                if rows:
                    if state.cut_after is not None and len(rows) >= state.cut_after:
                        rows = rows[:state.cut_after]
                        if rows:
                            self.write_chunk(b"".join(r[1] + b"\n" for r in rows))
                        raise Cut()
                    if state.cut_after is not None:
                        state.cut_after -= len(rows)
                    self.write_chunk(b"".join(r[1] + b"\n" for r in rows))
                    sent = rows[-1][0]
                    last_write = time.monotonic()
                    continue
                wait = last_write + hb - time.monotonic()
                if wait <= 0:
                    self.write_chunk(dumps({"kind": "heartbeat", "head": st.head}).encode()
                                     + b"\n")
                    last_write = time.monotonic()
                    continue
                with st.cond:
                    if (st.head <= sent and not state.inject and not state.cut
                            and not tw.stopping and not tw.hooks.stall):
                        st.cond.wait(wait)
            raise Cut()
        except (Cut, OSError):
            self.cut_connection()
        finally:
            with tw.streams_lock:
                tw.streams.discard(state)

    # -- T2, follower side ---------------------------------------------------------------------

    def t2(self, asset, rtype, body):
        tw = self.twin
        try:
            timeout = float(self.query.get("timeout", "10"))
            if not (0 <= timeout <= 3600):
                raise ValueError
        except ValueError:
            raise ApiError(400, "bad_request", "timeout must be seconds in 0..3600")
        if tw.args.no_t2:
            raise ApiError(403, "t2_unavailable", "T2 is not enabled on this twin (--no-t2)")
        if tw.hooks.not_connected or rtype in tw.hooks.not_connected_types:
            raise ApiError(503, "not_connected", "no link to the providers of %r" % rtype)
        if asset not in tw.store.assets:
            raise ApiError(404, "asset_unknown", "no asset %r" % asset)
        with tw.prov_lock:
            prov = tw.providers.get(rtype)
        if prov is not None:
            self.t2_remote(prov, asset, rtype, body, timeout)
            return
        try:
            name = body.decode("utf-8")
        except UnicodeDecodeError:
            name = None
        d = tw.args.t2_dir
        if d:
            per_asset = os.path.join(d, asset, rtype) if id_is_safe(asset) else None
            everyone = os.path.join(d, rtype) if id_is_safe(rtype) else None
            tdirs = [p for p in (per_asset, everyone) if p and os.path.isdir(p)]
            if tdirs:
                if name is None or not id_is_safe(name):
                    raise ApiError(404, "t2_failed", "bad resource name", "RESOURCE_UNKNOWN")
                for p in tdirs:
                    f = os.path.join(p, name)
                    if os.path.isfile(f):
                        self.t2_file(f, name)
                        return
                raise ApiError(404, "t2_failed", "no %r for %s" % (name, rtype),
                               "RESOURCE_UNKNOWN")
        if rtype == "Generated":
            if name is None or not name.isdigit() or int(name) > GENERATED_MAX:
                raise ApiError(404, "t2_failed", "Generated wants a byte count", "RESOURCE_UNKNOWN")
            self.t2_generated(int(name), "application/octet-stream")
            return
        if rtype == "AcmecorpExampleReq" and tw.args.demo:
            if name == "dataset.bin":
                self.t2_generated(DEMO_DATASET_SIZE, "application/octet-stream")
                return
            content = tw.demo_files.get(name)
            if content is None:
                raise ApiError(404, "t2_failed", "no %r for %s" % (name, rtype),
                               "RESOURCE_UNKNOWN")
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            w = T2Writer(self, mime)
            w.write(content)
            w.end()
            return
        raise ApiError(501, "t2_failed", "no provider handles %r" % rtype, "REQ_UNHANDLED")

    def t2_file(self, path, name):
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with open(path, "rb") as f:
            w = T2Writer(self, mime)
            while True:
                b = f.read(SEND_BLOCK)
                if not b:
                    break
                w.write(b)
            w.end()

    def t2_generated(self, size, mime):
        w = T2Writer(self, mime)
        full = SEND_BLOCK
        left = size
        framed = b"%x\r\n" % full + _FULL_BLOCK + b"\r\n"
        while left > 0:
            if left >= full and w.budget is None:
                self.wfile.write(framed)
                w.sent += full
                left -= full
            else:
                n = min(left, full)
                w.write(_FULL_BLOCK[:n])
                left -= n
        w.end()

    def t2_remote(self, prov, asset, rtype, body, timeout):
        tw = self.twin
        req = T2Request(asset, rtype, body, timeout)
        with tw.prov_lock:
            tw.requests[req.id] = req
        prov.pending.put(req)
        w = None
        try:
            deadline = time.monotonic() + timeout
            item = None
            while item is None:
                left = deadline - time.monotonic()
                if left <= 0 or tw.stopping:
                    raise ApiError(504, "t2_timeout", "the provider did not answer in %gs" % timeout)
                try:
                    item = req.items.get(timeout=min(left, 1.0))
                except queue.Empty:
                    pass
            while True:
                if item[0] == "error":
                    if w is None:
                        reason = item[1]
                        if reason == "REQ_UNHANDLED":
                            raise ApiError(501, "t2_failed", "the provider refused", reason)
                        raise ApiError(404, "t2_failed", "the provider has no such resource",
                                       "RESOURCE_UNKNOWN")
                    raise Cut()
                if item[0] == "end":
                    if w is None:
                        w = T2Writer(self, "application/octet-stream")
                    w.end()
                    return
                if w is None:
                    w = T2Writer(self, item[1])
                w.write(item[2])
                idle = time.monotonic() + T2_IDLE_LIMIT
                item = None
                while item is None:
                    if tw.stopping or time.monotonic() > idle:
                        raise Cut()
                    try:
                        item = req.items.get(timeout=1.0)
                    except queue.Empty:
                        pass
        finally:
            req.abandoned = True
            with tw.prov_lock:
                tw.requests.pop(req.id, None)
            while True:  # unblock a provider stuck on a full queue
                try:
                    req.items.get_nowait()
                except queue.Empty:
                    break

    # -- T2, provider side ---------------------------------------------------------------------

    def provider(self, m, rtype):
        tw = self.twin
        if not id_is_safe(rtype):
            raise ApiError(400, "bad_request", "bad T2 type %r" % rtype)
        with tw.prov_lock:
            if m == "PUT":
                new = rtype not in tw.providers
                if new:
                    tw.providers[rtype] = Provider(rtype)
                self.send_json(201 if new else 200, {"type": rtype})
                return
            prov = tw.providers.pop(rtype, None)
        if prov is None:
            raise ApiError(404, "provider_unknown", "no remote provider for %r" % rtype)
        while True:  # requests nobody will take now: refuse them
            try:
                req = prov.pending.get_nowait()
            except queue.Empty:
                break
            try:
                req.items.put_nowait(("error", "REQ_UNHANDLED"))
            except queue.Full:
                pass
        self.send_json(200, {"type": rtype})

    def provider_next(self, rtype):
        tw = self.twin
        try:
            wait = float(self.query.get("wait", "10"))
            wait = min(max(wait, 0.0), 60.0)
        except ValueError:
            raise ApiError(400, "bad_request", "wait must be seconds")
        with tw.prov_lock:
            prov = tw.providers.get(rtype)
        if prov is None:
            raise ApiError(404, "provider_unknown", "no remote provider for %r" % rtype)
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            try:
                req = prov.pending.get(timeout=max(0.0, min(left, 1.0)))
            except queue.Empty:
                if left <= 0 or tw.stopping:
                    self.send_empty(204)
                    return
                continue
            if req.abandoned:
                continue
            self.send_json(200, {"id": req.id, "asset": req.asset, "type": req.type,
                                 "data_b64": base64.b64encode(req.data).decode(),
                                 "timeout": req.timeout})
            return

    def provider_answer(self, rid, what, body):
        tw = self.twin
        with tw.prov_lock:
            req = tw.requests.get(rid)
        if req is None or req.abandoned:
            raise ApiError(410, "t2_gone", "request %s is over (requester gone or timed out)" % rid)
        if req.finished:
            raise ApiError(409, "t2_finished", "request %s already ended" % rid)
        if what == "chunk":
            item = ("chunk", self.headers.get("Content-Type") or "application/octet-stream", body)
        elif what == "end":
            item = ("end",)
        else:
            try:
                reason = json.loads(body or b"{}").get("reason", "RESOURCE_UNKNOWN")
            except (ValueError, AttributeError):
                raise ApiError(400, "bad_request", "error body is {\"reason\": ...}")
            if reason not in ("RESOURCE_UNKNOWN", "REQ_UNHANDLED"):
                raise ApiError(400, "bad_request", "reason is RESOURCE_UNKNOWN or REQ_UNHANDLED")
            item = ("error", reason)
        if what != "chunk":
            req.finished = True
        while True:  # back-pressure: a slow requester holds the provider here
            if req.abandoned:
                raise ApiError(410, "t2_gone", "request %s is over" % rid)
            try:
                req.items.put(item, timeout=0.5)
                break
            except queue.Full:
                continue
        self.send_empty(204)

    # -- test hooks ----------------------------------------------------------------------------

    def qint(self, k, default=None):
        v = self.query.get(k)
        if v is None:
            if default is None:
                raise ApiError(400, "bad_request", "%s is required" % k)
            return default
        try:
            return int(v, 10)
        except ValueError:
            raise ApiError(400, "bad_request", "%s must be an integer" % k)

    def route_test(self, s, body):
        tw = self.twin
        h = tw.hooks
        st = tw.store
        if len(s) != 1:
            raise ApiError(404, "not_found", "no such test hook")
        name = s[0]
        if name == "state":
            self.method("GET")
            with tw.streams_lock:
                n = len(tw.streams)
            with tw.prov_lock:
                pending = len(tw.requests)
            self.send_json(200, {"streams": n, "t2_requests": pending, "head": st.head,
                                 "hooks": h.as_dict()})
            return
        self.method("POST")
        with tw.streams_lock:
            streams = list(tw.streams)
        res = {"ok": True, "streams": len(streams)}
        if name == "reset":
            h.reset()
        elif name == "cut_streams":
            for sst in streams:
                sst.cut = True
                try:
                    sst.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        elif name == "cut_after":
            n = self.qint("records")
            if n < 0:
                raise ApiError(400, "bad_request", "records must be >= 0")
            which = self.query.get("streams", "open")
            if which == "next":
                h.next_stream_cut_after = n
            elif which == "open":
                with st.cond:
                    for sst in streams:
                        sst.cut_after = n
            else:
                raise ApiError(400, "bad_request", "streams is open or next")
        elif name == "delay":
            h.delay_ms = max(0, self.qint("ms"))
        elif name == "schema_fail":
            h.schema_failures = max(0, self.qint("count"))
        elif name == "stall_streams":
            h.stall = self.qint("on", 1) != 0
        elif name == "t2_cut":
            n = self.qint("bytes")
            h.t2_cut_bytes = n if n >= 0 else None
        elif name == "t2_not_connected":
            on = self.qint("on", 1) != 0
            rtype = self.query.get("type")
            if rtype is None:
                h.not_connected = on
            elif on:
                h.not_connected_types.add(rtype)
            else:
                h.not_connected_types.discard(rtype)
        elif name == "inject":
            res.update(self.inject(streams))
        else:
            raise ApiError(404, "not_found", "no such test hook %r" % name)
        with st.cond:
            st.cond.notify_all()
        res["hooks"] = h.as_dict()
        self.send_json(200, res)

    def inject(self, streams):
        """Malformed input for followers. Transient kinds go to open streams only; the others
        are real log records (they get a seq and an offset and replay like any record)."""
        tw = self.twin
        st = tw.store
        kind = self.query.get("kind")
        if kind in ("bad_json", "huge_line"):
            if kind == "bad_json":
                line = b'{"seq": 1, "kind": "event", "asset": "x", this is not json'
            else:
                size = self.qint("size", 8 << 20)
                line = b'{"kind":"padding","pad":"' + b"x" * max(0, size - 27) + b'"}'
            with st.cond:
                for sst in streams:
                    sst.inject.append(line)
            return {"kind": kind, "transient": True}
        if kind not in ("bad_base64", "bad_avro", "unknown_schema"):
            raise ApiError(400, "bad_request", "kind is bad_json, huge_line, bad_base64, "
                           "bad_avro or unknown_schema")
        asset = self.query.get("asset")
        if asset is None:
            raise ApiError(400, "bad_request", "asset is required for %s" % kind)
        name = self.query.get("name")
        version = self.qint("version", 1) if "version" in self.query else None
        if kind == "unknown_schema":
            name = name or "NoSuchSchema"
            version = 1 if version is None else version
            if (name, version) in st.schemas:
                raise ApiError(409, "conflict", "%s v%d has a schema" % (name, version))
            data = base64.b64encode(b"\x02\x41").decode()
        else:
            if name is None:
                with st.lock:
                    keys = sorted(st.schemas)
                if not keys:
                    raise ApiError(409, "conflict", "register a schema first")
                name, version = keys[0]
            elif version is None:
                version = 1
            if kind == "bad_avro":
                data = base64.b64encode(b"\xff" * 12).decode()
            else:
                data = "!!not*base64!!"
        t = now_rfc3339()
        (seq, off), = st.append_events([(asset, name, version, "twin-test-hooks", t, t, data)])
        return {"kind": kind, "transient": False, "seq": seq, "offset": off, "name": name,
                "version": version}


class T2Writer:
    """Writes a T2 answer (200, chunked), honouring the t2_cut test hook."""

    def __init__(self, handler, mime):
        self.h = handler
        self.sent = 0
        self.budget = handler.twin.hooks.t2_cut_bytes
        handler.start_chunked(200, mime)

    def write(self, data):
        if self.budget is not None and self.sent + len(data) >= self.budget:
            part = data[:max(0, self.budget - self.sent)]
            self.h.write_chunk(part)
            raise Cut()
        self.h.write_chunk(data)
        self.sent += len(data)

    def end(self):
        if self.budget is not None and self.sent >= self.budget:
            raise Cut()
        self.h.end_chunked()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError)):
            return  # clients that vanish or fail TLS are not our problem
        super().handle_error(request, client_address)


def parse_listen(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host:
        raise SystemExit("twin: --listen wants HOST:PORT")
    try:
        p = int(port, 10)
        if not 0 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise SystemExit("twin: bad port %r" % port)
    return host.strip("[]"), p


def main(argv=None):
    ap = argparse.ArgumentParser(description="twinfs reference twin (protocol v1)")
    ap.add_argument("--listen", required=True, help="HOST:PORT (PORT 0 picks a free one)")
    ap.add_argument("--state", required=True, help="directory for twin.db")
    ap.add_argument("--demo", action="store_true", help="load the demo data set if empty")
    ap.add_argument("--token-file", help="require Authorization: Bearer <token in file>")
    ap.add_argument("--t2-dir", help="directory provider: DIR/<type>/<name>, DIR/<asset>/...")
    ap.add_argument("--no-t2", action="store_true", help="answer every T2 request 403")
    ap.add_argument("--test-hooks", action="store_true", help="enable /v1/test/...")
    ap.add_argument("--heartbeat", type=float, default=5.0, help="seconds of silence (5)")
    ap.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("twin: --tls-cert and --tls-key go together")
    if args.heartbeat <= 0:
        raise SystemExit("twin: --heartbeat must be > 0")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    host, port = parse_listen(args.listen)
    tw = Twin(args)
    Handler.twin = tw
    srv = Server((host, port), Handler)
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in the handler thread (Handler.setup), not in accept.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    real_port = srv.server_address[1]
    shown = "[%s]" % host if ":" in host else host
    sys.stdout.write("twin: listening on %s://%s:%d\n" % (scheme, shown, real_port))
    sys.stdout.flush()
    while not stop.wait(0.2):
        pass
    tw.stop()
    srv.shutdown()
    srv.server_close()
    tw.store.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Handler threads are daemons blocked in sockets or queues; there is nothing left to save.
    os._exit(0)


if __name__ == "__main__":
    main()
