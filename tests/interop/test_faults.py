"""Fault injection (``/api/v1/faults``) seen by paho-mqtt clients: one test per
kind of fault, each added over the HTTP API and observed through paho's own
callbacks (messages lost, late or twice, connections closed or refused, PUBACK
reason codes, DISCONNECT reasons).

Every test starts its own culex with an API listener (``http_broker_factory``).
The API is culex's own: the module is skipped with ``INTEROP_BROKER=mosquitto``.
"""

import http.client
import json
import os
import threading
import time
import uuid

import pytest
from paho.mqtt.packettypes import PacketTypes

from interop_util import Peer, props, wait_for

BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
pytestmark = pytest.mark.skipif(BROKER_KIND != "culex", reason="the HTTP API is culex's own")

TOKEN = "fault-token-" + uuid.uuid4().hex
SESSION_TAKEN_OVER = 0x8E
QUOTA_EXCEEDED = 0x97


def api(broker, method, path, body=None):
    """One request to the API; returns (status, JSON body or None)."""
    conn = http.client.HTTPConnection(broker.host, broker.http_port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, "/api/v1/" + path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)
    finally:
        conn.close()


def add_fault(broker, **rule):
    status, body = api(broker, "POST", "faults", rule)
    assert status == 201, (status, body)
    assert body["kind"] == rule["kind"], body
    return body


@pytest.fixture
def broker(http_broker_factory):
    return http_broker_factory(token=TOKEN)


@pytest.fixture
def peers():
    made = []

    def make(target, version=5, connect=True, **kw):
        kw.setdefault("client_id", None)
        peer = Peer(target, version=version, **kw)
        made.append(peer)
        if connect:
            peer.connect()
        return peer

    yield make
    for peer in made:
        peer.close()


def test_drop_loses_the_next_message_and_delivers_the_following(broker, peers, topic):
    sub = peers(broker)
    sub.subscribe(topic, 0)
    add_fault(broker, kind="drop", client_id=sub.client_id, count=1)
    pub = peers(broker)
    pub.publish(topic, b"lost")
    pub.publish(topic, b"kept")
    sub.wait_payload(b"kept")
    time.sleep(0.3)
    assert [m.payload for m in sub.received()] == [b"kept"]
    assert api(broker, "GET", "faults")[1]["total"] == 0, "a used-up rule is gone"


def test_delay_holds_a_message_for_its_delay(broker, peers, topic):
    sub = peers(broker)
    sub.subscribe(topic, 1)
    add_fault(broker, kind="delay", client_id=sub.client_id, delay_ms=600)
    pub = peers(broker)
    start = time.monotonic()
    pub.publish(topic, b"late", qos=1)
    pub.publish(topic, b"behind", qos=1)
    msgs = sub.wait_messages(2)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.6, f"arrived after {elapsed:.3f} s"
    # The second message was not delayed itself, but waits behind the first.
    assert [m.payload for m in msgs] == [b"late", b"behind"]


def test_duplicate_delivers_a_qos1_message_twice_the_copy_with_dup(broker, peers, topic):
    sub = peers(broker)
    seen = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        with lock:
            seen.append((bytes(msg.payload), msg.qos, bool(msg.dup), msg.mid))

    sub.subscribe(topic, 1)
    sub.client.on_message = on_message
    add_fault(broker, kind="duplicate", client_id=sub.client_id)
    pub = peers(broker)
    pub.publish(topic, b"twice", qos=1)
    wait_for(lambda: len(seen) >= 2, message="two deliveries")
    time.sleep(0.3)
    (p1, q1, dup1, mid1), (p2, q2, dup2, mid2) = seen
    assert (p1, q1, dup1) == (b"twice", 1, False)
    assert (p2, q2, dup2) == (b"twice", 1, True)
    assert mid1 == mid2, "the copy is a resend of the same packet"


def test_close_after_closes_the_connection_without_disconnect(broker, peers, topic):
    sub = peers(broker)
    sub.subscribe(topic, 0)
    add_fault(broker, kind="close_after", client_id=sub.client_id, count=2)
    pub = peers(broker)
    for payload in (b"1", b"2", b"3"):
        pub.publish(topic, payload)
    d = sub.wait_disconnect()
    assert not d.from_server, "no DISCONNECT packet: the connection was just closed"
    assert [m.payload for m in sub.received()] == [b"1", b"2"]


def test_refuse_closes_new_connections_on_a_listener_and_of_a_client(broker, peers):
    add_fault(broker, kind="refuse", listener=broker.port, count=1)
    refused = peers(broker, connect=False)
    try:
        connack = refused.connect(expect_success=False, timeout=5)
    except OSError:
        connack = None
    assert connack is None, "closed before any CONNACK"
    peers(broker)  # the rule is used up

    rule = add_fault(broker, kind="refuse", client_id="refused-id")
    assert rule["count"] is None, "until removed"
    for _ in range(2):
        p = peers(broker, connect=False, client_id="refused-id")
        assert p.connect(expect_success=False, timeout=5) is None
        assert p.disconnects and not p.disconnects[0].from_server
    assert api(broker, "DELETE", f"faults/{rule['id']}")[0] == 204
    peers(broker, client_id="refused-id")


def test_reason_answers_the_next_publish_with_the_chosen_code(broker, peers, topic):
    sub = peers(broker)
    sub.subscribe(topic, 1)
    pub = peers(broker)
    acks = {}
    done = threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties):
        acks[mid] = reason_code
        done.set()

    pub.client.on_publish = on_publish
    add_fault(broker, kind="reason", client_id=pub.client_id, reason_code=QUOTA_EXCEEDED)
    info = pub.client.publish(topic, b"refused", qos=1)
    assert done.wait(10), "no PUBACK"
    assert acks[info.mid].value == QUOTA_EXCEEDED
    assert str(acks[info.mid]) == "Quota exceeded"
    done.clear()
    info = pub.client.publish(topic, b"accepted", qos=1)
    assert done.wait(10), "no PUBACK"
    assert acks[info.mid].value == 0
    sub.wait_payload(b"accepted")
    assert [m.payload for m in sub.received()] == [b"accepted"], "the refused one is not delivered"


def test_reason_error_disconnects_a_311_publisher(broker, peers, topic):
    sub = peers(broker)
    sub.subscribe(topic, 1)
    pub = peers(broker, version=3)
    add_fault(broker, kind="reason", client_id=pub.client_id, reason_code=0x80)
    pub.client.publish(topic, b"refused", qos=1)
    d = pub.wait_disconnect()
    assert not d.from_server
    time.sleep(0.3)
    assert sub.received() == []


def test_takeover_disconnects_with_session_taken_over_and_keeps_the_session(broker, peers):
    client = peers(broker, properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    status, _ = api(broker, "POST", "faults", {"kind": "takeover", "client_id": client.client_id})
    assert status == 204
    d = client.wait_disconnect()
    assert d.from_server and d.reason_code == SESSION_TAKEN_OVER
    status, session = api(broker, "GET", f"sessions/{client.client_id}")
    assert status == 200 and session["client_id"] == client.client_id
    status, error = api(broker, "POST", "faults", {"kind": "takeover", "client_id": "nobody"})
    assert (status, error["error"]) == (404, "not_found")


def test_bad_fault_requests_are_refused_naming_the_field(broker):
    status, error = api(broker, "POST", "faults", {"kind": "foo", "client_id": "c"})
    assert status == 400
    assert error["detail"].startswith('kind: unknown fault kind "foo"; known: drop, delay')
    status, error = api(broker, "POST", "faults",
                        {"kind": "reason", "client_id": "c", "reason_code": 2})
    assert status == 400 and error["detail"].startswith("reason_code: 2 is not a PUBACK")
    assert api(broker, "DELETE", "faults/12345")[0] == 404
