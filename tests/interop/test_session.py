"""Persistent sessions, session expiry, clean start and session takeover."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from interop_util import RawClient, props, unique_client_id


def expiry(seconds):
    return props(PacketTypes.CONNECT, SessionExpiryInterval=seconds)


# -- MQTT 3.1.1 -------------------------------------------------------------


def test_v311_persistent_session_resumed_with_subscriptions_and_queued_messages(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=3, client_id=cid, clean=False)
    first.subscribe(topic, 1)
    first.disconnect()

    pub = connect(version=3)
    for i in range(3):
        pub.publish(topic, b"offline %d" % i, qos=1)

    second = connect(version=3, client_id=cid, clean=False)
    assert second.session_present is True
    msgs = second.wait_messages(3)
    assert [(m.payload, m.qos) for m in msgs] == [(b"offline %d" % i, 1) for i in range(3)]

    # The subscription survived as well: new messages keep arriving.
    pub.publish(topic, b"online", qos=1)
    assert second.wait_messages(4)[-1].payload == b"online"
    second.disconnect()
    connect(version=3, client_id=cid, clean=True).disconnect()


def test_v311_first_connection_has_no_session_present(connect):
    peer = connect(version=3, client_id=unique_client_id("s"), clean=False)
    assert peer.session_present is False
    peer.disconnect()
    connect(version=3, client_id=peer.client_id, clean=True)


def test_v311_clean_session_discards_previous_session(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=3, client_id=cid, clean=False)
    first.subscribe(topic, 1)
    first.disconnect()

    second = connect(version=3, client_id=cid, clean=True)
    assert second.session_present is False
    connect(version=3).publish(topic, b"nobody listening", qos=1)
    second.subscribe(f"{topic}/marker", 1)
    connect(version=3).publish(f"{topic}/marker", b"marker", qos=1)
    assert [m.payload for m in second.wait_payload(b"marker")] == [b"marker"]


def test_v311_second_connection_with_same_id_takes_over(connect):
    cid = unique_client_id("s")
    first = connect(version=3, client_id=cid)
    second = connect(version=3, client_id=cid)

    first.wait_disconnect()
    assert second.client.is_connected()


# -- MQTT 5.0 ---------------------------------------------------------------


def test_v5_session_resumed_within_session_expiry(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True, properties=expiry(60))
    first.subscribe(topic, 1)
    first.disconnect()

    connect(version=5).publish(topic, b"while away", qos=1)

    second = connect(version=5, client_id=cid, clean=False, properties=expiry(60))
    assert second.session_present is True
    msg = second.wait_message()
    assert (msg.payload, msg.qos) == (b"while away", 1)
    second.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))


def test_v5_session_expiry_zero_discards_session_at_disconnect(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True, properties=expiry(0))
    first.subscribe(topic, 1)
    first.disconnect()

    second = connect(version=5, client_id=cid, clean=False, properties=expiry(0))
    assert second.session_present is False


def test_v5_session_without_expiry_property_ends_at_disconnect(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True)
    first.subscribe(topic, 1)
    first.disconnect()

    second = connect(version=5, client_id=cid, clean=False)
    assert second.session_present is False


def test_v5_session_expiry_set_to_zero_on_disconnect_discards_session(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True, properties=expiry(60))
    first.subscribe(topic, 1)
    first.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))

    second = connect(version=5, client_id=cid, clean=False, properties=expiry(60))
    assert second.session_present is False
    second.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))


def test_v5_clean_start_discards_existing_session(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True, properties=expiry(60))
    first.subscribe(topic, 1)
    first.disconnect()

    second = connect(version=5, client_id=cid, clean=True, properties=expiry(60))
    assert second.session_present is False
    connect(version=5).publish(topic, b"old subscription", qos=1)
    second.subscribe(f"{topic}/marker", 1)
    connect(version=5).publish(f"{topic}/marker", b"marker", qos=1)
    assert [m.payload for m in second.wait_payload(b"marker")] == [b"marker"]
    second.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))


def test_v5_session_expires_after_interval(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, clean=True, properties=expiry(1))
    first.subscribe(topic, 1)
    first.disconnect()

    time.sleep(2.5)
    second = connect(version=5, client_id=cid, clean=False, properties=expiry(1))
    assert second.session_present is False


def test_v5_takeover_closes_first_connection(connect):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid)
    second = connect(version=5, client_id=cid)

    first.wait_disconnect()
    assert second.client.is_connected()


@pytest.mark.culex_only(reason="MQTT-3.1.4-3: the existing client is sent DISCONNECT 0x8E "
                               "(Session taken over); mosquitto 2.0 only closes the socket")
def test_v5_takeover_sends_disconnect_session_taken_over(broker):
    cid = unique_client_id("s")
    first = RawClient(broker)
    assert first.connect(cid, version=5).reason_code == 0
    second = RawClient(broker)
    assert second.connect(cid, version=5).reason_code == 0

    packets = first.wait_closed()
    assert packets, "connection closed without a DISCONNECT packet"
    kind, _, body = packets[0]
    assert kind == 14, f"expected DISCONNECT, got packet type {kind}"
    assert body[:1] == b"\x8e"  # Session taken over
    second.disconnect()


def test_v5_takeover_keeps_session_for_new_connection(connect, topic):
    cid = unique_client_id("s")
    first = connect(version=5, client_id=cid, properties=expiry(60))
    first.subscribe(topic, 1)

    second = connect(version=5, client_id=cid, clean=False, properties=expiry(60))
    assert second.session_present is True
    first.wait_disconnect()
    connect(version=5).publish(topic, b"to the new owner", qos=1)
    assert second.wait_message().payload == b"to the new owner"
    second.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
