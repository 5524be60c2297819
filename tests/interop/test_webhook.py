"""Webhook bridges (``connection`` blocks with ``bridge_type http``, and webhooks
added over the HTTP API) against a real HTTP server run by the test.

The server (:class:`HookServer`) is Python's ``ThreadingHTTPServer`` on
127.0.0.1, speaking HTTP/1.1 with keep-alive, optionally over TLS.  It records
every request it reads (method, path, headers, body and the status it answered)
and can be told to answer 500, or to stop listening (refused connections, open
connections dropped) for a while.  Every test starts a culex of its own with an
API listener, and asserts what the server receives: the JSON of each event, the
headers, the signature, batching, and that failures delay messages without
losing them.  Webhooks are culex's own: the module is skipped with
``INTEROP_BROKER=mosquitto``.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes

from interop_util import Peer, props, unique_client_id, wait_for
from transport_broker import free_port

BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
pytestmark = pytest.mark.skipif(BROKER_KIND != "culex", reason="webhooks are culex's own")

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10
TOKEN = "hook-token-" + uuid.uuid4().hex
API = "/api/v1/"
SECRET = "s3cret"
SETTLE = 0.8  # seconds to wait for posts that must not come
MESSAGE_KEYS = {"event", "topic", "qos", "retain", "payload", "payload_encoding",
                "properties", "timestamp"}


# ---------------------------------------------------------------------------
# The web service


@dataclass
class Hit:
    """One request the server read, and the status it answered."""

    method: str
    path: str
    headers: dict  # lower-case names
    body: bytes
    status: int
    conn: int  # which TCP connection carried it (1, 2, ...)
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self):
        return json.loads(self.body)

    def events(self):
        """The events of the body: one object, or each of an array."""
        doc = self.json
        return doc if isinstance(doc, list) else [doc]

    def __repr__(self):
        return f"<{self.method} {self.path} {self.status} conn{self.conn} {self.body[:200]!r}>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise

    def setup(self):
        super().setup()
        self.conn_no = self.server.hook._opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.hook._closed(self.connection)

    def _any(self):
        length = self.headers.get("Content-Length")
        body = self.rfile.read(int(length)) if length is not None else b""
        hook = self.server.hook
        status, delay = hook._answer()
        if delay:
            time.sleep(delay)
        hook._record(Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                         body, status, self.conn_no))
        reply = b"{}" if status < 300 else b"{\"error\":\"failing on purpose\"}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.wfile.flush()

    do_POST = do_PUT = do_GET = _any

    def log_message(self, fmt, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, hook, context):
        self.hook = hook
        self.context = context
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.context is not None:
            # The handshake happens in the handler's thread, on the first read.
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # Failed TLS handshakes, connections cut by refuse(): counted, not printed.
        self.hook.errors += 1


class HookServer:
    """The web service: ``url(path)``, ``hits``, ``fail(status)``, ``refuse()``,
    ``recover()``."""

    def __init__(self, context=None):
        self.context = context
        self.scheme = "https" if context is not None else "http"
        self._cond = threading.Condition()
        self._hits = []
        self._conns = {}
        self._conn_count = 0
        self.errors = 0
        self.failing = None  # a status to answer instead of 200
        self.delay = 0.0  # seconds before each answer
        self.server = None
        self.port = 0
        self._listen()

    def _listen(self):
        self.server = _Server(("127.0.0.1", self.port), self, self.context)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    # -- handler side ----------------------------------------------------
    def _opened(self, sock):
        with self._cond:
            self._conn_count += 1
            self._conns[id(sock)] = sock
            return self._conn_count

    def _closed(self, sock):
        with self._cond:
            self._conns.pop(id(sock), None)

    def _answer(self):
        with self._cond:
            return (self.failing or 200), self.delay

    def _record(self, hit):
        with self._cond:
            self._hits.append(hit)
            self._cond.notify_all()

    # -- test side -------------------------------------------------------
    def url(self, path="/", host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def hits(self):
        with self._cond:
            return list(self._hits)

    def accepted(self, path=None):
        """The requests answered 2xx (on ``path``)."""
        return [h for h in self.hits if 200 <= h.status < 300 and (path is None or h.path == path)]

    def events(self, path=None):
        """The events of every accepted request, in order."""
        return [e for h in self.accepted(path) for e in h.events()]

    def wait(self, predicate, timeout=TIMEOUT, what="requests"):
        """Wait until ``predicate(self)`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._cond.release()
                try:
                    value = predicate(self)
                finally:
                    self._cond.acquire()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                         f"server got {self._hits!r}")
                self._cond.wait(min(left, 0.1))

    def wait_events(self, match, count=1, path=None, timeout=TIMEOUT, what=None):
        """Wait until ``count`` accepted events satisfy ``match``; return them."""
        def found(s):
            got = [e for e in s.events(path) if match(e)]
            return got if len(got) >= count else None
        return self.wait(found, timeout, what or f"{count} matching event(s)")

    def fail(self, status=500):
        with self._cond:
            self.failing = status

    def refuse(self):
        """Stop listening and drop the open connections: connections are refused."""
        self.server.shutdown()
        self.server.server_close()
        with self._cond:
            conns = list(self._conns.values())
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._refusing = True

    def recover(self):
        """Answer 200 again, listening again on the same port when refusing."""
        with self._cond:
            self.failing = None
        if getattr(self, "_refusing", False):
            self._refusing = False
            self._listen()

    def stop(self):
        if not getattr(self, "_refusing", False):
            self.server.shutdown()
            self.server.server_close()

    def __repr__(self):
        return f"<HookServer {self.url()}>"


@pytest.fixture
def hook_server():
    """``hook_server(context=None)``: a started web service, stopped at teardown."""
    made = []

    def make(context=None):
        s = HookServer(context)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


# ---------------------------------------------------------------------------
# culex, its API and its clients


class Resp:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:400]!r}>"


class Api:
    def __init__(self, broker):
        self.broker = broker

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.broker.host, self.broker.http_port, timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, API + path, body=body, headers=headers)
            r = conn.getresponse()
            return Resp(r.status, r.read())
        finally:
            conn.close()

    def bridge(self, name):
        r = self.request("GET", f"bridges/{name}")
        assert r.status == 200, f"GET bridges/{name}: {r}"
        return r.json

    def wait_bridge(self, name, predicate, what, timeout=TIMEOUT):
        last = {}

        def reached():
            last.clear()
            last.update(self.bridge(name))
            return predicate(last)

        try:
            wait_for(reached, timeout, interval=0.05, message=f"bridge {name}: {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}; bridge is {last}\n--- culex log ---\n"
                                 f"{self.broker.log()[-3000:]}") from None
        return dict(last)


def hook_block(name, url, topics=("sensors/# out 1",), **options):
    """The lines of a webhook's ``connection`` block."""
    lines = [f"connection {name}", "bridge_type http", f"bridge_url {url}"]
    lines += [f"topic {t}" for t in topics]
    opts = {"restart_timeout": "1"}
    opts.update(options)
    lines += [f"{k} {v}" for k, v in opts.items() if v is not None]
    return lines


@pytest.fixture
def culex(http_broker_factory):
    """``culex(*blocks)``: a culex with an API listener and the webhook blocks;
    returns ``(broker, api)``."""

    def make(*blocks, **settings):
        lines = [line for block in blocks for line in block]
        b = http_broker_factory(token=TOKEN, tail_lines=lines, **settings)
        return b, Api(b)

    return make


@pytest.fixture
def peers():
    """``peers(broker, version=5, **kw)``: connected paho clients, closed at teardown."""
    made = []

    def make(target, version=5, connect=True, **kw):
        kw.setdefault("client_id", None)
        p = Peer(target, version=version, **kw)
        made.append(p)
        if connect:
            p.connect()
        return p

    yield make
    for p in made:
        p.close()


def assert_serves(broker, peers):
    """The broker still serves MQTT: a subscriber gets a QoS 1 message."""
    topic = f"alive/{uuid.uuid4().hex[:8]}"
    sub = peers(broker)
    sub.subscribe(topic, 1)
    pub = peers(broker)
    pub.publish(topic, b"still here", qos=1)
    assert sub.wait_message(topic).payload == b"still here"


def signature(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def now_ms():
    return int(time.time() * 1000)


def messages(events, topic=None):
    return [e for e in events if e.get("event") == "message" and (topic is None or e["topic"] == topic)]


# ---------------------------------------------------------------------------
# 1. Messages: the JSON, the headers, the signature, the filter


def test_message_posts_exact_json_with_signature(hook_server, culex, peers):
    server = hook_server()
    path = "/events/in?src=culex"
    broker, api = culex(hook_block("hook", server.url(path), bridge_hmac_secret=SECRET))
    v3 = peers(broker, version=3)
    v5 = peers(broker, version=5)
    before = now_ms()

    v3.publish("sensors/a", b"hello", qos=1)
    v3.publish("elsewhere/a", b"outside the filter", qos=1)
    binary = bytes(range(256))
    v3.publish("sensors/bin", binary, qos=1)
    v5.publish("sensors/v5", "grüße".encode(), qos=1, properties=props(
        PacketTypes.PUBLISH, ContentType="text/plain; charset=utf-8",
        UserProperty=[("unit", "celsius"), ("unit", "kelvin"), ("site", "lab")],
        ResponseTopic="replies/v5", CorrelationData=b"\x00\x01corr"))
    v3.publish("sensors/last", b"last", qos=1)

    server.wait_events(lambda e: e.get("topic") == "sensors/last", what="the last message")
    after = now_ms()
    time.sleep(0.2)
    hits = server.hits
    # Batch 1, a web service answering 200: one POST per message, each once.
    assert [h.json.get("topic") for h in hits] == \
        ["sensors/a", "sensors/bin", "sensors/v5", "sensors/last"], hits

    for h in hits:
        assert h.method == "POST", h
        assert h.path == path, h
        assert h.headers.get("content-type", "").split(";")[0].strip() == "application/json", h.headers
        assert h.headers.get("host") == f"127.0.0.1:{server.port}", h.headers
        assert int(h.headers["content-length"]) == len(h.body), h.headers
        assert h.headers.get("x-culex-signature") == signature(h.body), \
            f"signature {h.headers.get('x-culex-signature')!r}, expected {signature(h.body)!r}"
        assert isinstance(h.json, dict), f"batch 1 posts one JSON object: {h}"
        e = h.json
        assert set(e) == MESSAGE_KEYS, e
        assert e["event"] == "message" and e["qos"] == 1 and e["retain"] is False, e
        assert isinstance(e["timestamp"], int) and before - 1000 <= e["timestamp"] <= after + 1000, \
            (before, e["timestamp"], after)

    text, binmsg, v5msg, _ = (h.json for h in hits)
    assert (text["payload"], text["payload_encoding"], text["properties"]) == ("hello", "text", {}), text
    assert binmsg["payload_encoding"] == "base64", binmsg
    assert base64.b64decode(binmsg["payload"]) == binary, binmsg
    assert (v5msg["payload"], v5msg["payload_encoding"]) == ("grüße", "text"), v5msg
    assert v5msg["properties"] == {
        "content_type": "text/plain; charset=utf-8",
        "response_topic": "replies/v5",
        "correlation_data": base64.b64encode(b"\x00\x01corr").decode(),
        "user_properties": [{"name": "unit", "value": "celsius"},
                            {"name": "unit", "value": "kelvin"},
                            {"name": "site", "value": "lab"}],
    }, v5msg
    # The filter kept elsewhere/a out.
    assert not [h for h in hits if b"outside the filter" in h.body], hits
    # The connection is kept open between posts (HTTP/1.1 keep-alive).
    assert len({h.conn for h in hits}) == 1, hits
    info = api.bridge("hook")
    assert info["type"] == "http" and info["messages_out"] == 4, info


# ---------------------------------------------------------------------------
# 2. Client events


def test_client_events_posted_in_order(hook_server, culex, peers):
    server = hook_server()
    broker, api = culex(hook_block(
        "hook", server.url("/ev"), bridge_events="message,connected,disconnected,subscribed"))
    c3 = peers(broker, version=3, connect=False, client_id=unique_client_id("e3"))
    c3.client.username_pw_set("alice")
    c3.connect()
    addr3 = "%s:%d" % c3.client.socket().getsockname()[:2]
    c5 = peers(broker, version=5, client_id=unique_client_id("e5"))
    addr5 = "%s:%d" % c5.client.socket().getsockname()[:2]
    c3.subscribe([("x/#", 0), ("y/+", 1)])
    c5.subscribe("sensors/#", 2)
    c5.publish("sensors/ev", b"m", qos=1)
    c3.disconnect()
    c5.disconnect()

    ids = {c3.client_id, c5.client_id}
    server.wait_events(lambda e: e.get("event") == "disconnected" and e.get("client_id") in ids,
                       count=2, what="both disconnected events")
    time.sleep(0.2)
    events = server.events()
    client_events = [e for e in events if e["event"] != "message"]
    # Only our two clients: not the webhook's own local session.
    assert {e["client_id"] for e in client_events} == ids, client_events
    for e in client_events:
        assert isinstance(e["timestamp"], int), e

    e3 = [e for e in client_events if e["client_id"] == c3.client_id]
    e5 = [e for e in client_events if e["client_id"] == c5.client_id]
    assert [e["event"] for e in e3] == ["connected", "subscribed", "disconnected"], e3
    assert [e["event"] for e in e5] == ["connected", "subscribed", "disconnected"], e5

    conn3, sub3, disc3 = e3
    assert {k: v for k, v in conn3.items() if k != "timestamp"} == {
        "event": "connected", "client_id": c3.client_id, "address": addr3,
        "protocol": "mqtt 3.1.1", "username": "alice"}, conn3
    assert {k: v for k, v in sub3.items() if k != "timestamp"} == {
        "event": "subscribed", "client_id": c3.client_id,
        "filters": [{"filter": "x/#", "qos": 0}, {"filter": "y/+", "qos": 1}]}, sub3
    assert set(disc3) == {"event", "client_id", "reason", "timestamp"}, disc3
    assert isinstance(disc3["reason"], str) and disc3["reason"], disc3

    conn5, sub5, _ = e5
    assert (conn5["protocol"], conn5["username"], conn5["address"]) == ("mqtt 5.0", None, addr5), conn5
    assert sub5["filters"] == [{"filter": "sensors/#", "qos": 2}], sub5
    # Messages still flow alongside.
    assert [m["payload"] for m in messages(events, "sensors/ev")] == ["m"], events


def test_without_bridge_events_only_messages_are_posted(hook_server, culex, peers):
    server = hook_server()
    broker, api = culex(hook_block("hook", server.url("/only")))
    c = peers(broker, version=5)
    c.subscribe("sensors/#", 1)
    c.publish("sensors/only", b"one", qos=1)
    c.disconnect()
    c2 = peers(broker, version=3)
    c2.publish("sensors/only", b"two", qos=1)
    server.wait_events(lambda e: e.get("payload") == "two")
    time.sleep(SETTLE)
    events = server.events()
    assert [e["event"] for e in events] == ["message", "message"], events
    assert [e["payload"] for e in events] == ["one", "two"], events


# ---------------------------------------------------------------------------
# 3. Batching


def test_batches_are_arrays_with_every_message_once_in_order(hook_server, culex, peers):
    server = hook_server()
    server.delay = 0.15  # a slow web service: messages pile up behind each post
    broker, api = culex(hook_block("hook", server.url("/batch"), bridge_batch=5,
                                   bridge_hmac_secret=SECRET))
    pubs = [peers(broker, version=3), peers(broker, version=5)]
    infos = []
    for i in range(6):
        for n, p in enumerate(pubs):
            infos.append(p.publish(f"sensors/p{n}", f"p{n}-{i}".encode(), qos=1, wait=False))
    for info in infos:
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    server.wait(lambda s: len(s.events()) >= 12, what="12 events")
    time.sleep(SETTLE)
    hits = server.hits
    for h in hits:
        assert h.status == 200 and h.path == "/batch", h
        assert h.headers.get("x-culex-signature") == signature(h.body), h
        assert isinstance(h.json, list), f"bridge_batch 5 posts JSON arrays: {h}"
        assert 1 <= len(h.json) <= 5, h
    assert any(len(h.json) > 1 for h in hits), f"no post carried more than one event: {hits}"
    payloads = [e["payload"] for e in server.events()]
    assert sorted(payloads) == sorted(f"p{n}-{i}" for n in range(2) for i in range(6)), payloads
    for n in range(2):
        mine = [p for p in payloads if p.startswith(f"p{n}-")]
        assert mine == [f"p{n}-{i}" for i in range(6)], payloads


# ---------------------------------------------------------------------------
# 4. Failures delay, lose nothing


def seqs(server):
    return {int(e["payload"].split("-")[1]) for e in server.events() if e.get("event") == "message"}


def test_failing_web_service_delays_but_loses_nothing(hook_server, culex, peers):
    server = hook_server()
    broker, api = culex(hook_block("hook", server.url("/seq"), bridge_timeout=2))
    pub = peers(broker, version=3)
    pub.publish("sensors/seq", b"seq-999", qos=1)
    server.wait(lambda s: 999 in seqs(s), what="the first message")

    # Phase 1: the web service answers 500.
    server.fail(500)
    for n in range(30):
        pub.publish("sensors/seq", f"seq-{n}".encode(), qos=1)
        time.sleep(0.05)
    info = api.wait_bridge("hook", lambda b: b["last_error"] and "500" in b["last_error"],
                           "last_error naming the 500")
    assert info["state"] in ("waiting", "connecting", "connected"), info
    assert info["queued"] > 0, info
    assert not set(range(30)) & seqs(server), "accepted while failing?"
    failed = [h for h in server.hits if h.status == 500]
    assert failed, server.hits
    server.recover()
    server.wait(lambda s: set(range(30)) <= seqs(s), timeout=15,
                what="every sequence number of phase 1")
    api.wait_bridge("hook", lambda b: b["state"] in ("connected", "idle") and b["queued"] == 0,
                    "back to connected/idle with nothing queued")

    # Phase 2: the port refuses connections.
    server.refuse()
    for n in range(30, 60):
        pub.publish("sensors/seq", f"seq-{n}".encode(), qos=1)
        time.sleep(0.05)
    info = api.wait_bridge(
        "hook", lambda b: b["last_error"] and "500" not in b["last_error"],
        "last_error of the refused connection")
    assert info["queued"] > 0, info
    assert info["state"] in ("waiting", "connecting"), info
    server.recover()
    server.wait(lambda s: set(range(30, 60)) <= seqs(s), timeout=15,
                what="every sequence number of phase 2")
    info = api.wait_bridge("hook", lambda b: b["state"] in ("connected", "idle") and b["queued"] == 0,
                           "back to connected/idle with nothing queued")
    assert info["messages_out"] >= 61, info
    assert seqs(server) == set(range(60)) | {999}


# ---------------------------------------------------------------------------
# 5. https


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Two independent CAs from scripts/gen-certs: ``good`` signed the server's
    certificate (for localhost), ``other`` did not."""
    out = {}
    for name in ("good", "other"):
        d = tmp_path_factory.mktemp(f"certs-{name}")
        done = subprocess.run([str(REPO_ROOT / "scripts" / "gen-certs"), str(d)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"gen-certs: {done.stdout}{done.stderr}"
        out[name] = d
    return out


def tls_server(hook_server, certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["good"] / "server.pem", certs["good"] / "server.key")
    return hook_server(ctx)


def test_https_with_the_right_ca(hook_server, culex, peers, certs):
    server = tls_server(hook_server, certs)
    url = server.url("/x", host="localhost")
    broker, api = culex(hook_block("hook", url, bridge_cafile=certs["good"] / "ca.pem",
                                   bridge_hmac_secret=SECRET))
    assert api.bridge("hook")["tls"] is True
    pub = peers(broker, version=5)
    for n in range(3):
        pub.publish("sensors/tls", f"tls-{n}".encode(), qos=1)
    server.wait(lambda s: len(s.events()) >= 3, what="3 posts over TLS")
    hits = server.hits
    assert [h.json["payload"] for h in hits] == ["tls-0", "tls-1", "tls-2"], hits
    for h in hits:
        assert h.path == "/x" and h.headers.get("x-culex-signature") == signature(h.body), h
    assert len({h.conn for h in hits}) == 1, f"TLS connection not kept open: {hits}"


def test_https_with_a_wrong_ca_posts_nothing(hook_server, culex, peers, certs):
    server = tls_server(hook_server, certs)
    url = server.url("/x", host="localhost")
    broker, api = culex(hook_block("hook", url, bridge_cafile=certs["other"] / "ca.pem"))
    pub = peers(broker, version=5)
    pub.publish("sensors/tls", b"must not arrive", qos=1)
    info = api.wait_bridge("hook", lambda b: b["last_error"], "last_error")
    assert_serves(broker, peers)
    time.sleep(SETTLE)
    assert server.hits == [], server.hits
    assert server.errors >= 1, "the server saw no (failed) TLS connection"
    assert info["queued"] >= 1 or api.bridge("hook")["queued"] >= 1, info


# ---------------------------------------------------------------------------
# 6. Webhooks over the API


def test_webhook_added_and_deleted_over_the_api(hook_server, culex, peers):
    server = hook_server()
    broker, api = culex()
    r = api.request("POST", "bridges", {"name": "h2", "bridge_type": "http",
                                        "bridge_url": server.url("/h"), "topic": ["a/# out 1"]})
    assert r.status == 201, r
    assert (r.json["name"], r.json["type"]) == ("h2", "http"), r
    pub = peers(broker, version=3)
    pub.publish("a/one", b"via api", qos=1)
    pub.publish("b/one", b"outside", qos=1)
    pub.publish("a/two", b"\xff\xfe", qos=0)
    server.wait(lambda s: len(s.events()) >= 2, what="2 posts")
    time.sleep(0.2)
    hits = server.hits
    assert [h.path for h in hits] == ["/h", "/h"], hits
    first, second = (h.json for h in hits)
    assert set(first) == MESSAGE_KEYS, first
    assert (first["topic"], first["qos"], first["payload"], first["payload_encoding"]) == \
        ("a/one", 1, "via api", "text"), first
    assert (second["topic"], second["qos"], second["payload"], second["payload_encoding"]) == \
        ("a/two", 0, base64.b64encode(b"\xff\xfe").decode(), "base64"), second
    assert "x-culex-signature" not in hits[0].headers, "signed without bridge_hmac_secret"

    r = api.request("DELETE", "bridges/h2")
    assert r.status == 204, r
    assert api.request("GET", "bridges/h2").status == 404
    pub.publish("a/after", b"after delete", qos=1)
    time.sleep(SETTLE)
    assert not [h for h in server.hits if b"after delete" in h.body], server.hits
    assert_serves(broker, peers)


# ---------------------------------------------------------------------------
# 7. Bad input


def test_closed_port_keeps_broker_serving(culex, peers):
    port = free_port()
    broker, api = culex(hook_block("hook", f"http://127.0.0.1:{port}/nobody"))
    pub = peers(broker, version=3)
    pub.publish("sensors/x", b"nobody listens", qos=1)
    info = api.wait_bridge("hook", lambda b: b["last_error"], "last_error")
    assert info["state"] in ("waiting", "connecting"), info
    assert_serves(broker, peers)
    info = api.bridge("hook")
    assert info["queued"] >= 1, info


BAD_DEFINITIONS = [
    pytest.param({"bridge_url": "ftp://127.0.0.1:1/x"}, "bridge_url", id="not-http"),
    pytest.param({"bridge_url": "http://"}, "bridge_url", id="no-host"),
    pytest.param({"bridge_url": "http://127.0.0.1:99999/x"}, "bridge_url", id="bad-port"),
    pytest.param({"bridge_url": "https://localhost:1/x"}, "bridge_cafile", id="https-without-cafile"),
    pytest.param({"bridge_batch": 0}, "bridge_batch", id="batch-0"),
    pytest.param({"bridge_events": "message,published"}, "bridge_events", id="unknown-event"),
    pytest.param({"address": "127.0.0.1:1883"}, "address", id="address-with-http"),
]


def test_invalid_webhook_definitions_are_refused(culex):
    broker, api = culex()
    for param in BAD_DEFINITIONS:
        extra, word = param.values
        body = {"name": f"bad-{param.id}", "bridge_type": "http",
                "bridge_url": "http://127.0.0.1:1/x", "topic": ["a/# out 1"]}
        body.update(extra)
        r = api.request("POST", "bridges", body)
        assert r.status == 400, f"{param.id}: {body} -> {r}"
        doc = r.json
        assert doc.get("error") == "bad_request", f"{param.id}: {r}"
        assert isinstance(doc.get("detail"), str) and word in doc["detail"], f"{param.id}: {r}"
    listed = api.request("GET", "bridges")
    assert listed.status == 200 and listed.json["total"] == 0, listed
