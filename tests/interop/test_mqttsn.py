"""The MQTT-SN 1.2 gateway (UDP) with a third-party MQTT-SN client.

The MQTT-SN side is ``mqtt-sn-12`` from PyPI (``SnLibClient``): CONNECT with
a will, REGISTER, PUBLISH at QoS -1, 0, 1 and 2 (normal, short and predefined
topic ids), SUBSCRIBE by name, wildcard filter, short name or predefined id,
and receiving what it subscribed to at QoS 0.  That library never
acknowledges a QoS 1 or 2 message it receives and cannot put its client id
in PINGREQ, so receiving at QoS 1 and 2 and the sleeping client use
``SnRawClient`` (hand-built datagrams).  The MQTT side is paho-mqtt, 5.0 and
3.1.1, on the broker's TCP listener: both share one topic space with the
gateway's clients.
"""

import time

import pytest

from interop_util import Peer, unique_topic
from mqttsn_peer import (
    PINGRESP,
    PUBLISH,
    SnLibClient,
    SnRawClient,
    short_id,
)
from transport_broker import Listener, TransportBroker

pytestmark = pytest.mark.culex_only(reason="mosquitto has no MQTT-SN gateway")

VERSIONS = (5, 3)
# Predefined topic ids of the gateway: one the client publishes to, one it subscribes to.
PUB_ID, SUB_ID = 5, 6
WILL_KEEPALIVE = 2
# What the gateway's timer and the scheduler may add to 1.5 times the keep alive.
WILL_SLACK = 2.0
QUIET = 0.5


@pytest.fixture(scope="module")
def predefined():
    return {PUB_ID: unique_topic("sn-predefined-pub"), SUB_ID: unique_topic("sn-predefined-sub")}


@pytest.fixture(scope="module")
def sn_broker(tmp_path_factory, predefined):
    """The broker with a TCP listener ("mqtt") and an MQTT-SN gateway ("sn")."""
    topics = tmp_path_factory.mktemp("mqttsn") / "predefined.txt"
    topics.write_text("".join(f"{i} {name}\n" for i, name in predefined.items()))
    listeners = [
        Listener("mqtt"),
        Listener("sn", protocol="mqttsn", options={"predefined_topics": str(topics)}),
    ]
    # No TLS listener: no certificates needed.
    b = TransportBroker(listeners, certs=None).start()
    yield b
    b.stop()


@pytest.fixture
def paho(sn_broker):
    """``paho(version)``: a connected paho client on the TCP listener."""
    peers = []

    def make(version=5, **kw):
        peer = Peer(sn_broker["mqtt"], version=version, **kw)
        peers.append(peer)
        peer.connect()
        return peer

    yield make
    for peer in peers:
        peer.close()


@pytest.fixture
def sn_lib(sn_broker):
    """``sn_lib(keepalive=30)``: an mqtt-sn-12 client of the gateway (not yet connected)."""
    clients = []

    def make(**kw):
        client = SnLibClient(sn_broker["sn"], **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sn_raw(sn_broker, predefined):
    """``sn_raw()``: a hand-driven MQTT-SN client of the gateway."""
    clients = []

    def make():
        client = SnRawClient(sn_broker["sn"], predefined)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def seen(msgs):
    """What a paho subscriber received, in a stable order."""
    return sorted((m.topic, m.payload, m.qos, m.retain) for m in msgs)


def lib_seen(msgs):
    return sorted((m.topic_name, m.payload, m.qos, m.retain) for m in msgs)


# ---------------------------------------------------------------------------
# MQTT-SN publishers, MQTT subscribers


def test_sn_publish_qos_0_1_2_reaches_paho_subscribers(sn_lib, paho, topic):
    v5 = paho(5)
    assert v5.subscribe(topic, 2) == [2]
    v311 = paho(3)
    assert v311.subscribe(topic, 1) == [1]
    sn = sn_lib()
    sn.connect()

    topic_id = sn.register(topic)
    assert 0 < topic_id < 0xFFFF
    # The library registers the name again for each PUBLISH: the same id comes back.
    ids = [sn.publish(topic, b"sn-q%d" % qos, qos) for qos in (0, 1, 2)]
    assert ids == [topic_id] * 3

    assert seen(v5.wait_messages(3)) == [
        (topic, b"sn-q0", 0, False), (topic, b"sn-q1", 1, False), (topic, b"sn-q2", 2, False)]
    # Granted QoS 1: the QoS 2 message arrives at QoS 1.
    assert seen(v311.wait_messages(3)) == [
        (topic, b"sn-q0", 0, False), (topic, b"sn-q1", 1, False), (topic, b"sn-q2", 1, False)]
    sn.disconnect()


# ---------------------------------------------------------------------------
# MQTT publishers, MQTT-SN subscribers


def test_sn_subscriber_receives_from_paho_publishers(sn_lib, paho, topic):
    sn = sn_lib()
    sn.connect()
    sn.subscribe(topic, 0)

    expected = []
    for version in VERSIONS:
        pub = paho(version)
        for qos in (0, 1, 2):
            payload = b"v%d-q%d" % (version, qos)
            pub.publish(topic, payload, qos=qos)
            # The subscription is QoS 0: every message arrives at QoS 0.
            expected.append((topic, payload, 0, False))

    assert lib_seen(sn.wait_messages(6)) == sorted(expected)
    assert len(sn.poll_for(QUIET)) == 6
    sn.disconnect()


def test_sn_wildcard_subscription_gets_topics_registered(sn_lib, paho, topic):
    sn = sn_lib()
    sn.connect()
    sn.subscribe(f"{topic}/+/state", 0)

    paho(5).publish(f"{topic}/kitchen/state", b"on", qos=1)
    paho(3).publish(f"{topic}/hall/state", b"off", qos=1)
    paho(5).publish(f"{topic}/hall/other", b"not matched", qos=1)

    # Names known only through the gateway's REGISTERs, which the library answered.
    msgs = sn.wait_messages(2)
    assert lib_seen(msgs) == [(f"{topic}/hall/state", b"off", 0, False),
                              (f"{topic}/kitchen/state", b"on", 0, False)]
    ids = {m.topic_id for m in msgs}
    assert len(ids) == 2 and 0 not in ids
    assert len(sn.poll_for(QUIET)) == 2
    sn.disconnect()


@pytest.mark.parametrize("sub_qos", [1, 2])
def test_sn_subscriber_acknowledges_qos_1_and_2(sn_raw, paho, topic, sub_qos):
    sn = sn_raw()
    assert sn.connect() == 0
    code, granted, topic_id = sn.subscribe(topic, sub_qos)
    assert (code, granted) == (0, sub_qos)
    assert topic_id > 0

    expected = []
    for version in VERSIONS:
        pub = paho(version)
        for qos in (0, 1, 2):
            payload = b"v%d-q%d" % (version, qos)
            pub.publish(topic, payload, qos=qos)
            expected.append((topic, payload, min(qos, sub_qos), False))

    # The gateway has one message in flight at a time: all six arrive only if
    # each PUBACK, PUBREC and PUBCOMP was taken.
    msgs = sn.wait_publishes(6)
    sn.pump(QUIET)
    assert sorted((m.topic, m.payload, m.qos, m.retain) for m in sn.publishes) == sorted(expected)
    assert all(m.topic_id == topic_id for m in msgs)
    sn.disconnect()


# ---------------------------------------------------------------------------
# Retained messages


def test_paho_retained_reaches_later_sn_subscriber(sn_lib, paho, topic):
    v5, v311 = paho(5), paho(3)
    v5.publish(f"{topic}/v5", b"kept by v5", qos=1, retain=True)
    v311.publish(f"{topic}/v311/x", b"kept by v311", qos=1, retain=True)

    sn = sn_lib()
    sn.connect()
    sn.subscribe(f"{topic}/v5", 0)
    # The library drops a PUBLISH that arrives while it waits for a SUBACK:
    # take the first retained message before subscribing again.
    sn.wait_messages(1)
    sn.subscribe(f"{topic}/v311/+", 0)
    sn.wait_messages(2)
    v5.publish(f"{topic}/v5", b"live", qos=1)

    assert lib_seen(sn.wait_messages(3)) == [
        (f"{topic}/v311/x", b"kept by v311", 0, True),
        (f"{topic}/v5", b"kept by v5", 0, True),
        (f"{topic}/v5", b"live", 0, False),
    ]
    sn.disconnect()
    for t in (f"{topic}/v5", f"{topic}/v311/x"):
        v5.publish(t, b"", qos=1, retain=True)


def test_sn_retained_reaches_later_paho_subscribers(sn_lib, paho, topic):
    sn = sn_lib()
    sn.connect()
    sn.publish(topic, b"sn state", qos=1, retain=True)
    sn.disconnect()

    v5 = paho(5)
    v5.subscribe(topic, 1)
    v311 = paho(3)
    v311.subscribe(topic, 0)
    assert seen(v5.wait_messages(1)) == [(topic, b"sn state", 1, True)]
    assert seen(v311.wait_messages(1)) == [(topic, b"sn state", 0, True)]
    v5.publish(topic, b"", qos=1, retain=True)


# ---------------------------------------------------------------------------
# Predefined and short topic ids, QoS -1


def test_predefined_topic_ids_both_ways(sn_lib, paho, predefined):
    v5 = paho(5)
    v5.subscribe(predefined[PUB_ID], 1)
    sn = sn_lib()
    sn.connect()

    # No REGISTER: the id is configured on the gateway.
    sn.publish_predefined(PUB_ID, b"by id", qos=1)
    assert seen(v5.wait_messages(1)) == [(predefined[PUB_ID], b"by id", 1, False)]

    sn.subscribe_predefined(SUB_ID, 0)
    paho(3).publish(predefined[SUB_ID], b"to id", qos=1)
    (msg,) = sn.wait_messages(1)
    assert (msg.topic_id, msg.payload, msg.qos, msg.retain) == (SUB_ID, b"to id", 0, False)
    sn.disconnect()


def test_short_topic_names_both_ways(sn_lib, paho):
    # Two-character topics are one namespace shared by all tests: each uses its own.
    v311 = paho(3)
    v311.subscribe("pA", 1)
    sn = sn_lib()
    sn.connect()

    # Two characters: the library sends the name itself as the topic id.
    sn.publish("pA", b"short out", qos=1)
    assert seen(v311.wait_messages(1)) == [("pA", b"short out", 1, False)]

    sn.subscribe("sA", 0)
    paho(5).publish("sA", b"short in", qos=1)
    (msg,) = sn.wait_messages(1)
    assert (msg.topic_id, msg.payload, msg.qos) == (short_id("sA"), b"short in", 0)
    sn.disconnect()


def test_qos_minus_one_publish_reaches_paho(sn_lib, paho, predefined):
    subs = [paho(version) for version in VERSIONS]
    for sub in subs:
        sub.subscribe(predefined[PUB_ID], 1)
        sub.subscribe("mA", 1)

    # QoS -1: no CONNECT, no acknowledgement.
    sn = sn_lib()
    sn.publish_predefined(PUB_ID, b"fire and forget", qos=-1)
    sn.publish_short("mA", b"short and forget", qos=-1)

    for sub in subs:
        assert seen(sub.wait_messages(2)) == sorted([
            (predefined[PUB_ID], b"fire and forget", 0, False),
            ("mA", b"short and forget", 0, False),
        ])


# ---------------------------------------------------------------------------
# Will


def test_will_published_when_sn_client_goes_silent(sn_lib, paho, topic):
    subs = {version: paho(version) for version in VERSIONS}
    for sub in subs.values():
        sub.subscribe(topic, 1)
    sn = sn_lib(keepalive=WILL_KEEPALIVE)
    sn.connect(will={"topic": topic, "payload": "sn client lost", "qos": 1})

    sn.close()  # no DISCONNECT, no PINGREQ: the client just stops
    silent_at = time.monotonic()

    limit = 1.5 * WILL_KEEPALIVE + WILL_SLACK
    for sub in subs.values():
        msg = sub.wait_message(timeout=limit + 1)
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == (topic, b"sn client lost", 1, False)
    elapsed = time.monotonic() - silent_at
    assert WILL_KEEPALIVE <= elapsed <= limit, f"will after {elapsed:.2f} s"


def test_will_not_published_after_sn_disconnect(sn_lib, paho, topic):
    sub = paho(5)
    sub.subscribe(topic, 1)
    sn = sn_lib(keepalive=WILL_KEEPALIVE)
    sn.connect(will={"topic": topic, "payload": "sn client lost", "qos": 1})

    sn.disconnect()
    # Past the point where a lost client's will would have gone out.
    time.sleep(1.5 * WILL_KEEPALIVE + 1)
    paho(3).publish(topic, b"marker", qos=1)

    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]


# ---------------------------------------------------------------------------
# Sleeping client


def test_sleeping_sn_client_gets_buffered_messages_on_wake(sn_raw, paho, topic):
    sn = sn_raw()
    assert sn.connect(keepalive=10) == 0
    code, granted, _ = sn.subscribe(topic, 1)
    assert (code, granted) == (0, 1)

    # DISCONNECT with a duration: asleep; the gateway's answer carries no duration.
    assert sn.disconnect(duration=30) == b""
    paho(5).publish(topic, b"first", qos=1)
    paho(3).publish(topic, b"second", qos=0)
    assert sn.pump(QUIET) == [], "the gateway sent to a sleeping client"

    sn.pingreq(with_client_id=True)
    types, _ = sn.collect_until(PINGRESP)
    assert types == [PUBLISH, PUBLISH, PINGRESP], sn.describe()
    assert [(m.topic, m.payload, m.qos) for m in sn.publishes] == [
        (topic, b"first", 1), (topic, b"second", 0)]

    # After the PINGRESP it sleeps again, until the next PINGREQ.
    paho(5).publish(topic, b"third", qos=1)
    assert sn.pump(QUIET) == [], "the gateway sent to a client gone back to sleep"
    sn.pingreq(with_client_id=True)
    types, _ = sn.collect_until(PINGRESP)
    assert types == [PUBLISH, PINGRESP], sn.describe()
    assert sn.publishes[-1].payload == b"third"
    sn.disconnect()
