"""The HTTP API (``protocol http`` listeners) seen by real peers: paho-mqtt
clients do things over MQTT, and curl or Python's http.client read and change
the broker through the API.

Every test starts its own culex with an MQTT listener and an API listener
(``http_broker_factory``), so the counts the API reports are exact.  The API
is culex's own: the module is skipped with ``INTEROP_BROKER=mosquitto``.
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from interop_util import Peer, RawClient, prop, props, publish_props, wait_for

BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
pytestmark = pytest.mark.skipif(BROKER_KIND != "culex", reason="the HTTP API is culex's own")

TIMEOUT = 10
API = "/api/v1/"
TOKEN = "s3cret-token-" + uuid.uuid4().hex
ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type",
    431: "request_header_fields_too_large", 505: "http_version_not_supported",
}


# ---------------------------------------------------------------------------
# HTTP clients: Python's http.client and the curl binary


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def assert_error(resp, status):
    """An error answer: the status and a JSON body ``{error, detail}``."""
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json
    assert body["error"] == ERROR_CODES[status], resp
    assert isinstance(body["detail"], str) and body["detail"], resp
    return body


class Api:
    """http.client requests to one API listener (a new connection each)."""

    def __init__(self, broker, token=None):
        self.host = broker.host
        self.port = broker.http_port
        self.token = token

    def request(self, method, path, body=None, headers=None, content_type="application/json"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        hdrs = {}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        try:
            conn.request(method, API + path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def get(self, path, status=200):
        resp = self.request("GET", path)
        assert resp.status == status, f"GET {path}: {resp}"
        return resp.json if status == 200 else resp

    def post(self, path, body, status=200):
        resp = self.request("POST", path, body)
        assert resp.status == status, f"POST {path} {body}: {resp}"
        return resp.json if resp.body else None

    def put(self, path, body, status=200):
        resp = self.request("PUT", path, body)
        assert resp.status == status, f"PUT {path} {body}: {resp}"
        return resp.json if resp.body else None

    def delete(self, path, status=204):
        resp = self.request("DELETE", path)
        assert resp.status == status, f"DELETE {path}: {resp}"
        if status == 204:
            assert resp.body == b"", resp
        return resp


def curl(broker, method, path, *args, token=None, data=None, data_file=None,
         content_type="application/json"):
    """Run the curl binary; return the last response (after any 100 Continue)."""
    if shutil.which("curl") is None:
        pytest.fail("curl not found (apt-get install curl)", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="culex-curl-") as d:
        head, body = os.path.join(d, "head"), os.path.join(d, "body")
        cmd = ["curl", "-sS", "--http1.1", "--max-time", str(TIMEOUT), "-D", head, "-o", body]
        if method == "HEAD":
            cmd.append("-I")
        else:
            cmd += ["-X", method]
        if token is not None:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        if data is not None or data_file is not None:
            cmd += ["-H", f"Content-Type: {content_type}"]
            cmd += ["--data-binary", data if data is not None else "@" + data_file]
        cmd += list(args)
        cmd.append(f"http://{broker.host}:{broker.http_port}{API}{path}")
        done = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT + 5)
        raw = open(head, "rb").read() if os.path.exists(head) else b""
        content = open(body, "rb").read() if os.path.exists(body) else b""
    blocks = [b for b in raw.split(b"\r\n\r\n") if b.startswith(b"HTTP/")]
    assert blocks, f"curl got no response: rc={done.returncode} {done.stderr!r}"
    lines = blocks[-1].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(part.strip() for part in l.split(":", 1)) for l in lines[1:] if ":" in l]
    resp = Response(status, headers, content)
    resp.status_line = lines[0]
    resp.curl_rc = done.returncode
    resp.all_blocks = blocks
    return resp


# ---------------------------------------------------------------------------
# MQTT peers


@pytest.fixture
def peers():
    """``peers(target, version=5, username=None, **Peer kwargs)``: a connected paho
    client (``connect=False`` leaves it unconnected); all closed at the end."""
    made = []

    def make(target, version=5, username=None, connect=True, **kw):
        kw.setdefault("client_id", None)
        peer = Peer(target, version=version, **kw)
        if username is not None:
            peer.client.username_pw_set(username)
        made.append(peer)
        if connect:
            peer.connect()
        return peer

    yield make
    for peer in made:
        peer.close()


def expiry(seconds):
    return props(PacketTypes.CONNECT, SessionExpiryInterval=seconds)


def at(port, host="127.0.0.1"):
    """Something a Peer can connect to: a host and a port."""
    return SimpleNamespace(host=host, port=port)


def local_address(peer):
    host, port = peer.client.socket().getsockname()[:2]
    return f"{host}:{port}"


def by_id(items, key="client_id"):
    return {item[key]: item for item in items}


def metric(text, name):
    m = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
    assert m, f"no {name} sample in the metrics:\n{text}"
    return float(m.group(1))


# ---------------------------------------------------------------------------
# What clients did, as the API reports it


def test_api_reports_connected_clients_subscriptions_and_sessions(http_broker_factory, peers, topic):
    broker = http_broker_factory()
    api = Api(broker)
    tag = uuid.uuid4().hex[:8]
    a_id, b_id = f"a-{tag}", f"b-{tag}"

    a = peers(broker, version=3, client_id=a_id, username="alice", keepalive=30,
              will={"topic": f"{topic}/will/a", "payload": b"gone a", "qos": 1, "retain": False})
    assert a.subscribe(f"{topic}/a", 1) == [1]
    assert a.subscribe(f"{topic}/+/b", 2) == [2]

    will_props = props(PacketTypes.WILLMESSAGE, WillDelayInterval=5)
    b = peers(broker, version=5, client_id=b_id, username="bob", keepalive=45,
              properties=expiry(300),
              will={"topic": f"{topic}/will/b", "payload": b"gone b!", "qos": 2, "retain": True,
                    "properties": will_props})
    opts = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=2)
    assert b.subscribe(f"{topic}/opts", options=opts,
                       properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7)) == [1]
    assert b.subscribe(f"{topic}/zero", 0) == [0]

    # GET clients: both, ordered by client id, as they connected.
    page = api.get("clients")
    assert (page["total"], page["offset"], page["limit"]) == (2, 0, 100), page
    assert [c["client_id"] for c in page["items"]] == [a_id, b_id]
    ca, cb = page["items"]
    assert ca["protocol"] == "mqtt" and ca["version"] == "3.1.1", ca
    assert cb["protocol"] == "mqtt" and cb["version"] == "5.0", cb
    assert (ca["username"], ca["keepalive"], ca["subscription_count"]) == ("alice", 30, 2), ca
    assert (cb["username"], cb["keepalive"], cb["subscription_count"]) == ("bob", 45, 2), cb
    assert ca["listener"] == cb["listener"] == broker.port
    assert ca["address"] == local_address(a) and cb["address"] == local_address(b)
    assert ca["session_expiry_interval"] == 0, ca
    assert cb["session_expiry_interval"] == 300, cb
    # clean_start is optional in a summary; when given, it is what the clients asked for.
    assert ca.get("clean_start", True) is True and cb.get("clean_start", True) is True
    assert ca["connection"] != cb["connection"]
    for c in (ca, cb):
        assert (c["inflight"], c["queued"]) == (0, 0), c

    # GET clients/{id}: the detail adds subscriptions and the will.
    da = api.get(f"clients/{a_id}")
    assert {k: da[k] for k in ca} == ca
    assert da["will"] == {"topic": f"{topic}/will/a", "qos": 1, "retain": False,
                          "payload_size": 6, "delay_interval": 0}
    assert sorted((s["filter"], s["qos"]) for s in da["subscriptions"]) == \
        sorted([(f"{topic}/a", 1), (f"{topic}/+/b", 2)])
    db = api.get(f"clients/{b_id}")
    assert db["will"] == {"topic": f"{topic}/will/b", "qos": 2, "retain": True,
                          "payload_size": 7, "delay_interval": 5}
    subs = by_id(db["subscriptions"], "filter")
    assert subs[f"{topic}/opts"] == {
        "client_id": b_id, "filter": f"{topic}/opts", "qos": 1, "no_local": True,
        "retain_as_published": True, "retain_handling": 2, "identifier": 7}
    assert subs[f"{topic}/zero"] == {
        "client_id": b_id, "filter": f"{topic}/zero", "qos": 0, "no_local": False,
        "retain_as_published": False, "retain_handling": 0, "identifier": None}
    assert_error(api.get("clients/nobody-" + tag, status=404), 404)

    # GET subscriptions, all and of one client.
    assert api.get("subscriptions")["total"] == 4
    mine = api.get(f"subscriptions?client_id={a_id}")
    assert mine["total"] == 2 and {s["client_id"] for s in mine["items"]} == {a_id}
    assert {s["filter"]: s["qos"] for s in mine["items"]} == {f"{topic}/a": 1, f"{topic}/+/b": 2}
    assert all(s["identifier"] is None and not s["no_local"] for s in mine["items"])

    # GET sessions: both connected.
    sessions = by_id(api.get("sessions")["items"])
    assert set(sessions) == {a_id, b_id}
    assert sessions[b_id]["connected"] is True and sessions[b_id]["connection"] == cb["connection"]
    assert sessions[b_id]["expiry_interval"] == 300 and sessions[b_id]["expires_in_secs"] is None

    # Counters and metrics.
    info = api.get("broker")
    assert isinstance(info["version"], str) and info["uptime_secs"] >= 0
    counters = info["counters"]
    assert counters["clients_connected"] == 2, counters
    assert (counters["sessions"], counters["sessions_offline"], counters["subscriptions"]) == (2, 0, 4)
    ports = {(l["port"], l["protocol"]) for l in info["listeners"]}
    assert {(broker.port, "mqtt"), (broker.http_port, "http")} <= ports
    metrics = api.request("GET", "metrics")
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain"), metrics
    assert metric(metrics.body.decode(), "culex_clients_connected") == 2

    # b leaves with a normal DISCONNECT: its session (expiry 300 s) stays, offline.
    b.disconnect()
    wait_for(lambda: api.get("broker")["counters"]["clients_connected"] == 1,
             message="clients_connected to drop to 1")
    assert_error(api.get(f"clients/{b_id}", status=404), 404)
    assert [c["client_id"] for c in api.get("clients")["items"]] == [a_id]
    sb = api.get(f"sessions/{b_id}")
    assert sb["connected"] is False and sb["connection"] is None, sb
    assert sb["expiry_interval"] == 300 and 0 < sb["expires_in_secs"] <= 300, sb
    assert sb["subscription_count"] == 2, sb
    counters = api.get("broker")["counters"]
    assert (counters["sessions"], counters["sessions_offline"]) == (2, 1), counters
    assert metric(curl(broker, "GET", "metrics").body.decode(), "culex_clients_connected") == 1


def test_api_lists_retained_messages_by_filter(http_broker_factory, peers, topic):
    broker = http_broker_factory()
    api = Api(broker)
    pub = peers(broker, version=5)
    pub.publish(f"{topic}/x/1", b"one", qos=0, retain=True)
    pub.publish(f"{topic}/x/2", b"\xff\x00\x01", qos=1, retain=True)
    pub.publish(f"{topic}/y/1", b"three", qos=1, retain=True,
                properties=publish_props(ContentType="text/plain", MessageExpiryInterval=600))
    pub.publish(f"{topic}/not-retained", b"gone", qos=1)
    wait_for(lambda: api.get(f"retained?filter={topic}/%23")["total"] == 3,
             message="3 retained messages")

    plus = api.get(f"retained?filter={topic}/x/+")
    assert plus["total"] == 2 and len(plus["items"]) == 2, plus
    items = by_id(plus["items"], "topic")
    assert items[f"{topic}/x/1"]["payload"] == "one"
    assert items[f"{topic}/x/1"]["payload_encoding"] == "text"
    assert (items[f"{topic}/x/1"]["qos"], items[f"{topic}/x/1"]["payload_size"]) == (0, 3)
    binary = items[f"{topic}/x/2"]
    assert binary["payload_encoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == b"\xff\x00\x01"
    assert (binary["qos"], binary["payload_size"], binary["expires_in_secs"]) == (1, 3, None)

    # The same through curl, '#' written as %23.
    resp = curl(broker, "GET", f"retained?filter={quote(topic)}/%23")
    assert resp.status == 200, resp
    every = by_id(resp.json["items"], "topic")
    assert set(every) == {f"{topic}/x/1", f"{topic}/x/2", f"{topic}/y/1"}
    y = every[f"{topic}/y/1"]
    assert y["payload"] == "three" and y["properties"].get("content_type") == "text/plain", y
    assert 0 < y["expires_in_secs"] <= 600, y

    assert api.get(f"retained?filter={topic}/%2B/1")["total"] == 2
    assert api.get("retained")["total"] >= 3
    assert api.get("broker")["counters"]["retained_messages"] >= 3
    assert_error(api.get(f"retained?filter={topic}/%23/x", status=400), 400)


def test_api_pages_lists(http_broker_factory, peers):
    broker = http_broker_factory()
    api = Api(broker)
    tag = uuid.uuid4().hex[:8]
    ids = [f"pg{i}-{tag}" for i in range(5)]
    for cid in reversed(ids):
        peers(broker, version=3, client_id=cid)

    first = api.get("clients?limit=2")
    assert (first["total"], first["offset"], first["limit"]) == (5, 0, 2)
    assert [c["client_id"] for c in first["items"]] == ids[:2]
    second = api.get("clients?offset=2&limit=2")
    assert (second["total"], second["offset"], second["limit"]) == (5, 2, 2)
    assert [c["client_id"] for c in second["items"]] == ids[2:4]
    last = api.get("clients?offset=4&limit=2")
    assert [c["client_id"] for c in last["items"]] == ids[4:]
    past = api.get("clients?offset=9")
    assert past["total"] == 5 and past["items"] == []
    assert [c["client_id"] for c in api.get("clients?limit=1000")["items"]] == ids

    sessions = api.get("sessions?offset=1&limit=3")
    assert sessions["total"] == 5 and len(sessions["items"]) == 3
    assert api.get("subscriptions?limit=1") == {"total": 0, "offset": 0, "limit": 1, "items": []}

    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=two", "offset=", "colour=red"):
        assert_error(api.get(f"clients?{bad}", status=400), 400)
    assert_error(curl(broker, "GET", "sessions?limit=5000"), 400)


# ---------------------------------------------------------------------------
# Disconnecting clients


def watcher_of(peers, broker, will_topic):
    watcher = peers(broker, version=5)
    watcher.subscribe(will_topic, 1)
    return watcher


def test_delete_client_disconnects_v5_with_reason_and_publishes_will(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    watcher = watcher_of(peers, broker, f"{topic}/will/#")

    victim = peers(broker, version=5, properties=expiry(300),
                   will={"topic": f"{topic}/will/v5", "payload": b"v5 gone", "qos": 1})
    resp = curl(broker, "DELETE", f"clients/{victim.client_id}?reason_code=152", token=TOKEN)
    assert resp.status == 204 and resp.body == b"", resp
    gone = victim.wait_disconnect()
    assert gone.from_server and gone.reason_code == 0x98, gone
    assert watcher.wait_message(f"{topic}/will/v5").payload == b"v5 gone"
    assert_error(api.get(f"clients/{victim.client_id}", status=404), 404)
    # The session stays, per its expiry interval.
    session = api.get(f"sessions/{victim.client_id}")
    assert session["connected"] is False and session["expiry_interval"] == 300, session
    assert_error(curl(broker, "DELETE", f"clients/{victim.client_id}", token=TOKEN), 404)

    # Another reason code, and the default (0x98 Administrative action).
    other = peers(broker, version=5)
    api.delete(f"clients/{other.client_id}?reason_code={0x8B}")
    d = other.wait_disconnect()
    assert d.from_server and d.reason_code == 0x8B, d
    plain = peers(broker, version=5)
    api.delete(f"clients/{plain.client_id}")
    d = plain.wait_disconnect()
    assert d.from_server and d.reason_code == 0x98, d

    # Not a reason code a server may send: refused, the client stays.
    kept = peers(broker, version=5)
    for bad in ("4", "256", "-1", "x"):
        assert_error(api.request("DELETE", f"clients/{kept.client_id}?reason_code={bad}"), 400)
    assert api.get(f"clients/{kept.client_id}")["client_id"] == kept.client_id
    assert kept.client.is_connected()


def test_delete_client_disconnects_v311_and_publishes_will(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    watcher = watcher_of(peers, broker, f"{topic}/will")
    victim = peers(broker, version=3, will={"topic": f"{topic}/will", "payload": b"311 gone", "qos": 1})
    api.delete(f"clients/{victim.client_id}")
    d = victim.wait_disconnect()
    assert not d.from_server, "a 3.1.1 client has no DISCONNECT from the server"
    assert watcher.wait_message(f"{topic}/will").payload == b"311 gone"
    assert api.get("broker")["counters"]["clients_connected"] == 1


# ---------------------------------------------------------------------------
# Publishing and retained messages


def test_post_publish_reaches_v5_subscriber_with_properties(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    sub = peers(broker, version=5)
    opts = SubscribeOptions(qos=2, retainAsPublished=True)
    assert sub.subscribe(f"{topic}/#", options=opts) == [2]

    result = api.post("publish", {
        "topic": f"{topic}/text", "payload": "héllo wörld", "qos": 1, "retain": True,
        "properties": {
            "payload_format_indicator": 1, "message_expiry_interval": 120,
            "content_type": "text/plain; charset=utf-8", "response_topic": f"{topic}/reply",
            "correlation_data": base64.b64encode(b"\x00corr\xff").decode(),
            "user_properties": [["k1", "v1"], ["k1", "again"], ["k2", ""]],
        },
    })
    assert result == {"topic": f"{topic}/text", "qos": 1, "retain": True,
                      "payload_size": len("héllo wörld".encode())}
    msg = sub.wait_message(f"{topic}/text")
    assert (msg.payload, msg.qos, msg.retain) == ("héllo wörld".encode(), 1, True)
    p = msg.properties
    assert prop(p, "PayloadFormatIndicator") == 1
    assert 0 < prop(p, "MessageExpiryInterval") <= 120
    assert prop(p, "ContentType") == "text/plain; charset=utf-8"
    assert prop(p, "ResponseTopic") == f"{topic}/reply"
    assert prop(p, "CorrelationData") == b"\x00corr\xff"
    assert prop(p, "UserProperty") == [("k1", "v1"), ("k1", "again"), ("k2", "")]

    binary = bytes(range(256))
    result = api.post("publish", {
        "topic": f"{topic}/bin", "payload": base64.b64encode(binary).decode(),
        "payload_encoding": "base64", "qos": 2,
        "properties": {"user_properties": [{"name": "n", "value": "v"}]},
    })
    assert result == {"topic": f"{topic}/bin", "qos": 2, "retain": False, "payload_size": 256}
    msg = sub.wait_message(f"{topic}/bin")
    assert (msg.payload, msg.qos, msg.retain) == (binary, 2, False)
    assert prop(msg.properties, "UserProperty") == [("n", "v")]
    assert prop(msg.properties, "ContentType") is None

    # Defaults: empty payload, QoS 0, through curl.
    resp = curl(broker, "POST", "publish", token=TOKEN, data=json.dumps({"topic": f"{topic}/empty"}))
    assert resp.status == 200 and resp.json == {"topic": f"{topic}/empty", "qos": 0, "retain": False,
                                                "payload_size": 0}, resp
    msg = sub.wait_message(f"{topic}/empty")
    assert (msg.payload, msg.qos) == (b"", 0)

    # The retained one is listed, with its properties; deleting it works once.
    listed = api.get(f"retained?filter={topic}/text")
    assert listed["total"] == 1, listed
    r = listed["items"][0]
    assert (r["topic"], r["payload"], r["payload_encoding"], r["qos"]) == \
        (f"{topic}/text", "héllo wörld", "text", 1)
    assert r["properties"]["content_type"] == "text/plain; charset=utf-8"
    assert r["properties"]["user_properties"] == [
        {"name": "k1", "value": "v1"}, {"name": "k1", "value": "again"}, {"name": "k2", "value": ""}]
    late = peers(broker, version=5)
    late.subscribe(f"{topic}/text", 1)
    assert late.wait_message(f"{topic}/text").retain is True

    api.delete(f"retained?topic={quote(topic, safe='')}%2Ftext")
    assert api.get(f"retained?filter={topic}/%23")["total"] == 0
    assert_error(api.request("DELETE", f"retained?topic={topic}/text"), 404)
    later = peers(broker, version=5)
    later.subscribe(f"{topic}/text", 1)
    later.publish(f"{topic}/text", b"marker", qos=1)
    assert [m.payload for m in later.wait_payload(b"marker")] == [b"marker"]

    for bad in ("retained", f"retained?topic={topic}/%23", f"retained?topic={topic}/%2B/x"):
        assert_error(api.request("DELETE", bad), 400)
    for bad in ({"topic": "a/#"}, {"topic": ""}, {"topic": "a", "qos": 3},
                {"topic": "a", "payload": "!!", "payload_encoding": "base64"},
                {"topic": "a", "payload_encoding": "hex"}, {"payload": "no topic"},
                {"topic": "a", "retain": "yes"}, {"topic": "a", "properties": {"colour": 1}}):
        assert_error(api.request("POST", "publish", bad), 400)


# ---------------------------------------------------------------------------
# Sessions


def test_delete_session_ends_offline_persistent_session(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    cid = f"sess-{uuid.uuid4().hex[:8]}"
    first = peers(broker, version=5, client_id=cid, properties=expiry(600))
    first.subscribe(topic, 1)
    first.disconnect()
    s = api.get(f"sessions/{cid}")
    assert s["connected"] is False and s["subscription_count"] == 1, s

    pub = peers(broker, version=5)
    pub.publish(topic, b"queued for nobody", qos=1)
    wait_for(lambda: api.get(f"sessions/{cid}")["queued"] == 1, message="the message to be queued")

    resp = curl(broker, "DELETE", f"sessions/{cid}", token=TOKEN)
    assert resp.status == 204, resp
    assert_error(api.get(f"sessions/{cid}", status=404), 404)
    assert_error(api.request("DELETE", f"sessions/{cid}"), 404)
    assert cid not in by_id(api.get("sessions")["items"])

    again = peers(broker, version=5, client_id=cid, clean=False, properties=expiry(600))
    assert again.session_present is False
    time.sleep(0.3)
    assert again.received() == []


def test_delete_session_of_connected_client_disconnects_it(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    watcher = watcher_of(peers, broker, f"{topic}/will")
    cid = f"sess-{uuid.uuid4().hex[:8]}"
    victim = peers(broker, version=3, client_id=cid, clean=False,
                   will={"topic": f"{topic}/will", "payload": b"session ended", "qos": 1})
    victim.subscribe(topic, 1)
    api.delete(f"sessions/{cid}")
    victim.wait_disconnect()
    assert watcher.wait_message(f"{topic}/will").payload == b"session ended"
    assert_error(api.get(f"sessions/{cid}", status=404), 404)
    again = peers(broker, version=3, client_id=cid, clean=False)
    assert again.session_present is False


# ---------------------------------------------------------------------------
# Listeners at run time


def connection_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listeners_opened_and_closed_at_run_time(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)

    created = api.post("listeners", {"port": 0, "protocol": "mqtt"}, status=201)
    port = created["port"]
    assert port not in (0, broker.port, broker.http_port), created
    assert (created["protocol"], created["address"], created["tls"]) == ("mqtt", "127.0.0.1", False)
    assert created["max_connections"] is None and created["mount_point"] is None

    client = peers(at(port), version=5)
    client.subscribe(topic, 1)
    peers(broker, version=3).publish(topic, b"across listeners", qos=1)
    assert client.wait_message(topic).payload == b"across listeners"

    listed = by_id(api.get("listeners")["items"], "port")
    assert listed[port]["protocol"] == "mqtt" and listed[port]["connections"] == 1, listed
    assert listed[broker.http_port]["protocol"] == "http"
    assert listed[broker.port]["protocol"] == "mqtt"

    # A chosen port, through curl.
    chosen = free_port()
    resp = curl(broker, "POST", "listeners", token=TOKEN,
                data=json.dumps({"port": chosen, "address": "127.0.0.1", "max_connections": 5}))
    assert resp.status == 201 and resp.json["port"] == chosen, resp
    assert resp.json["max_connections"] == 5
    peers(at(chosen), version=3).publish(topic, b"via chosen", qos=1)
    assert client.wait_messages(2, topic)[-1].payload == b"via chosen"

    # Port in use, bad requests.
    assert_error(api.request("POST", "listeners", {"port": broker.port}), 409)
    for bad in ({"port": 70000}, {"port": 0, "protocol": "gopher"}, {"port": 0, "address": "localhost"},
                {"port": 0, "colour": "red"}, {"port": "1883"}):
        assert_error(api.request("POST", "listeners", bad), 400)

    # Closing: new connections are refused, the accepted one stays.
    api.delete(f"listeners/{port}")
    assert connection_refused(port)
    assert port not in by_id(api.get("listeners")["items"], "port")
    assert_error(api.request("DELETE", f"listeners/{port}"), 404)
    peers(broker, version=5).publish(topic, b"still here", qos=1)
    assert client.wait_messages(3, topic)[-1].payload == b"still here"
    assert_error(api.request("DELETE", f"listeners/{broker.http_port}"), 409)
    api.delete(f"listeners/{chosen}")
    assert connection_refused(chosen)


def test_http_listener_opened_at_run_time_with_its_own_token(http_broker_factory, tmp_path):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    other_token = "other-" + uuid.uuid4().hex
    token_file = tmp_path / "other.token"
    token_file.write_text(other_token + "\n")
    created = api.post("listeners", {"port": 0, "protocol": "http",
                                     "http_token_file": str(token_file)}, status=201)
    assert created["protocol"] == "http", created
    second = at(created["port"])
    second.http_port = created["port"]

    assert Api(second, other_token).get("broker")["counters"]["clients_connected"] == 0
    assert_error(Api(second, TOKEN).request("GET", "broker"), 401)
    assert_error(Api(second).request("GET", "broker"), 401)
    # A listener cannot close itself, the other one can.
    assert_error(Api(second, other_token).request("DELETE", f"listeners/{created['port']}"), 409)
    api.delete(f"listeners/{created['port']}")
    assert connection_refused(created["port"])
    assert api.get("broker")["counters"]["clients_connected"] == 0

    missing = api.request("POST", "listeners", {"port": 0, "protocol": "http",
                                                "http_token_file": str(tmp_path / "missing")})
    assert_error(missing, 400)


def test_websockets_listener_opened_at_run_time(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    created = api.post("listeners", {"port": 0, "protocol": "websockets"}, status=201)
    assert created["protocol"] == "websockets", created

    ws = peers(at(created["port"]), version=5, connect=False)
    ws.client.transport = "websockets"
    ws.client.ws_set_options(path="/mqtt")
    ws.connect()
    ws.subscribe(topic, 1)
    peers(broker, version=5).publish(topic, b"to the websocket", qos=1)
    assert ws.wait_message(topic).payload == b"to the websocket"
    client = by_id(api.get("clients")["items"])[ws.client_id]
    assert client["listener"] == created["port"]

    api.delete(f"listeners/{created['port']}")
    assert connection_refused(created["port"])


# ---------------------------------------------------------------------------
# Run-time configuration


def _raw_subscribe(raw, topic_filter, qos):
    body = struct.pack("!H", 1) + b"\x00" + struct.pack("!H", len(topic_filter)) + \
        topic_filter.encode() + bytes([qos])
    raw.sock.sendall(bytes([0x82, len(body)]) + body)
    kind, _, payload = raw.read_packet()
    assert kind == 9 and payload[-1] == qos, (kind, payload)


def _read_publishes(raw, quiet=0.5):
    """PUBLISH packets that arrive until nothing comes for ``quiet`` seconds: [(pid, payload)]."""
    got = []
    raw.sock.settimeout(quiet)
    try:
        while True:
            kind, flags, body = raw.read_packet()
            assert kind == 3, f"expected PUBLISH, got type {kind}"
            tlen = struct.unpack("!H", body[:2])[0]
            pos = 2 + tlen
            pid = struct.unpack("!H", body[pos:pos + 2])[0]
            pos += 2
            plen, shift = 0, 0
            while True:  # v5 property length
                byte = body[pos]
                pos += 1
                plen |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            got.append((pid, bytes(body[pos + plen:])))
    except socket.timeout:
        pass
    finally:
        raw.sock.settimeout(TIMEOUT)
    return got


def test_put_config_limits_inflight_messages(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    api = Api(broker, TOKEN)
    before = api.get("config")
    after = api.put("config", {"max_inflight_messages": 2})
    assert after["max_inflight_messages"] == 2
    assert {k: v for k, v in after.items() if k != "max_inflight_messages"} == \
        {k: v for k, v in before.items() if k != "max_inflight_messages"}
    assert api.get("config") == after

    # A subscriber that does not acknowledge gets two messages at a time.
    raw = RawClient(broker)
    slow_id = f"slow-{uuid.uuid4().hex[:8]}"
    assert raw.connect(slow_id, version=5).reason_code == 0
    _raw_subscribe(raw, topic, 1)
    pub = peers(broker, version=5)
    for i in range(10):
        pub.publish(topic, b"m%d" % i, qos=1)

    received = []
    window = _read_publishes(raw)
    assert [p for _, p in window] == [b"m0", b"m1"], window
    received += window
    # The API shows the same: two in flight, the rest queued.
    held = api.get(f"clients/{slow_id}")
    assert (held["inflight"], held["queued"]) == (2, 8), held
    session = api.get(f"sessions/{slow_id}")
    assert (session["inflight"], session["queued"]) == (2, 8), session
    while len(received) < 10:
        for pid, _ in window:
            raw.sock.sendall(bytes([0x40, 2]) + struct.pack("!H", pid))
        window = _read_publishes(raw)
        assert 0 < len(window) <= 2, f"after acknowledging, expected 1 or 2 more, got {window}"
        received += window
    assert [p for _, p in received] == [b"m%d" % i for i in range(10)]
    raw.sock.close()

    for bad in ({"max_inflight_messages": 2, "colour": "red"}, {"max_inflight_messages": "2"},
                {"max_inflight_messages": 70000}, {"max_qos": 3}, {"max_packet_size": 5}):
        assert_error(api.request("PUT", "config", bad), 400)
    assert_error(api.request("PUT", "config", "max_inflight_messages=3", content_type="text/plain"), 415)
    assert api.get("config") == after


# ---------------------------------------------------------------------------
# Tokens


def test_token_required_when_token_file_is_set(http_broker_factory):
    broker = http_broker_factory(token=TOKEN)

    missing = curl(broker, "GET", "broker")
    assert_error(missing, 401)
    assert missing.headers["www-authenticate"] == 'Bearer realm="culex"', missing
    wrong = curl(broker, "GET", "broker", token=TOKEN + "x")
    assert_error(wrong, 401)
    assert wrong.headers["www-authenticate"] == 'Bearer realm="culex", error="invalid_token"', wrong
    assert_error(Api(broker, "").request("GET", "clients"), 401)
    assert_error(Api(broker).request("GET", "clients", headers={"Authorization": f"Basic {TOKEN}"}), 401)
    assert_error(Api(broker).request("POST", "publish", {"topic": "t"}), 401)

    ok = curl(broker, "GET", "broker", token=TOKEN)
    assert ok.status == 200 and ok.json["counters"]["clients_connected"] == 0, ok
    assert Api(broker, TOKEN).request("GET", "metrics").status == 200
    assert Api(broker, TOKEN).post("publish", {"topic": "t"})["topic"] == "t"

    spec = curl(broker, "GET", "openapi.json")
    assert spec.status == 200, spec
    assert spec.json["openapi"].startswith("3.") and "/api/v1/broker" in spec.json["paths"]


def test_without_token_file_reads_are_open_and_writes_forbidden(http_broker_factory, peers, topic):
    broker = http_broker_factory()
    api = Api(broker)
    sub = peers(broker, version=5)
    sub.subscribe(topic, 0)
    assert api.get("broker")["counters"]["clients_connected"] == 1
    assert curl(broker, "GET", "config").status == 200

    assert_error(curl(broker, "POST", "publish", data=json.dumps({"topic": topic})), 403)
    assert_error(api.request("PUT", "config", {"max_inflight_messages": 3}), 403)
    assert_error(api.request("DELETE", f"clients/{sub.client_id}"), 403)
    assert_error(api.request("DELETE", f"retained?topic={topic}"), 403)
    assert_error(api.request("POST", "listeners", {"port": 0}), 403)
    time.sleep(0.3)
    assert sub.received() == [] and sub.client.is_connected()
    assert api.get("config")["max_inflight_messages"] != 3


# ---------------------------------------------------------------------------
# HTTP errors, through curl


def test_responses_carry_the_standard_headers(http_broker_factory):
    broker = http_broker_factory(token=TOKEN)
    for path in ("broker", "nowhere"):
        resp = curl(broker, "GET", path, token=TOKEN)
        assert resp.status_line.startswith("HTTP/1.1 "), resp
        assert resp.headers.get("content-type", "").startswith("application/json"), resp
        assert int(resp.headers["content-length"]) == len(resp.body), resp
        assert resp.headers.get("server", "").startswith("culex/"), resp
        assert "date" in resp.headers, resp
    metrics = curl(broker, "GET", "metrics", token=TOKEN)
    # Prometheus' own exposition type; a charset parameter may follow.
    assert metrics.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), metrics
    for path in ("broker", "clients", "sessions", "subscriptions", "retained", "listeners", "config",
                 "metrics", "openapi.json"):
        # Raw, to see that nothing follows the head.
        with socket.create_connection((broker.host, broker.http_port), timeout=TIMEOUT) as sock:
            sock.sendall(f"HEAD {API}{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Connection: close\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and rest == b"", (path, raw)
        assert re.search(rb"(?i)\r\ncontent-length: *[1-9]", head), (path, raw)
    # Last, so that the checks above run whatever happens here.
    for path in ("broker", "nowhere", "metrics"):
        resp = curl(broker, "GET", path, token=TOKEN)
        assert resp.headers.get("cache-control") == "no-store", (path, resp.headers)


def test_http_errors_through_curl(http_broker_factory):
    broker = http_broker_factory(token=TOKEN)
    assert curl(broker, "GET", "broker", token=TOKEN).status == 200

    assert_error(curl(broker, "GET", "nowhere", token=TOKEN), 404)
    assert_error(curl(broker, "GET", "clients/a/b", token=TOKEN), 404)

    wrong = curl(broker, "POST", "broker", token=TOKEN, data="{}")
    assert_error(wrong, 405)
    assert "GET" in wrong.headers["allow"], wrong
    wrong = curl(broker, "PATCH", "config", token=TOKEN, data="{}")
    assert_error(wrong, 405)
    assert {"GET", "PUT"} <= {m.strip() for m in wrong.headers["allow"].split(",")}, wrong

    body = json.dumps({"topic": "errors/t"})
    assert_error(curl(broker, "POST", "publish", token=TOKEN, data=body, content_type="text/plain"), 415)
    assert_error(curl(broker, "POST", "publish", token=TOKEN, data=body,
                      content_type="application/x-www-form-urlencoded"), 415)
    charset = curl(broker, "POST", "publish", token=TOKEN, data=body,
                   content_type="application/json; charset=utf-8")
    assert charset.status == 200, charset
    assert_error(curl(broker, "POST", "publish", token=TOKEN, data='{"topic": "errors/t",'), 400)
    assert_error(curl(broker, "POST", "publish", token=TOKEN, data="[1, 2]"), 400)
    assert_error(curl(broker, "POST", "publish", token=TOKEN,
                      data=json.dumps({"topic": "errors/t", "colour": "red"})), 400)
    assert_error(curl(broker, "PUT", "config", token=TOKEN, data=json.dumps({"sys_intervall": 5})), 400)

    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(json.dumps({"topic": "errors/big", "payload": "x" * (1024 * 1024 + 100)}))
        f.flush()
        assert_error(curl(broker, "POST", "publish", token=TOKEN, data_file=f.name), 413)

    # The API still answers after all that.
    assert curl(broker, "GET", "broker", token=TOKEN).status == 200


# ---------------------------------------------------------------------------
# schemathesis: generated requests against the published OpenAPI document


def schemathesis_cli():
    """The schemathesis command, or the same through this Python when its script
    is not on PATH."""
    exe = shutil.which("schemathesis")
    if exe is not None:
        return [exe]
    try:
        import schemathesis.cli  # noqa: F401
    except ImportError:
        pytest.fail("schemathesis is not installed (scripts/test installs it)", pytrace=False)
    return [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"]


def test_schemathesis_finds_no_server_error_or_schema_violation(http_broker_factory, peers, topic):
    broker = http_broker_factory(token=TOKEN)
    # Some live state for the generated requests to meet.
    sub = peers(broker, version=5, client_id="schema-sub", properties=expiry(3600))
    sub.subscribe(f"{topic}/#", 1)
    v3 = peers(broker, version=3, client_id="schema-v3", username="u",
               will={"topic": f"{topic}/will", "payload": b"w", "qos": 1})
    v3.subscribe(f"{topic}/+/x", 2)
    v3.publish(f"{topic}/retained/text", b"kept", qos=1, retain=True)
    v3.publish(f"{topic}/retained/bin", b"\xff\xfe", qos=0, retain=True)
    gone = peers(broker, version=5, client_id="schema-offline", properties=expiry(3600))
    gone.subscribe(f"{topic}/offline", 1)
    gone.disconnect()

    url = f"http://127.0.0.1:{broker.http_port}/api/v1/openapi.json"
    with tempfile.TemporaryDirectory(prefix="culex-st-") as d:
        cmd = schemathesis_cli() + ["run", url,
               "--checks", "not_a_server_error,response_schema_conformance",
               "--header", f"Authorization: Bearer {TOKEN}",
               "--max-examples", "30", "--seed", os.environ.get("SCHEMATHESIS_SEED", "1"), "--workers", "1",
               "--request-timeout", "10", "--max-failures", "20",
               "--report-dir", d]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=d,
                                  env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})
        except subprocess.TimeoutExpired as e:
            print(e.stdout, e.stderr)
            pytest.fail("schemathesis did not finish within 150 s")
    print(done.stdout)
    print(done.stderr)
    assert broker.proc.poll() is None, "the broker exited during the schemathesis run"
    assert done.returncode == 0, f"schemathesis exited with {done.returncode}:\n{done.stdout[-8000:]}"
