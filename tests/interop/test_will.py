"""Will messages: abnormal close, clean DISCONNECT, v5 will delay and reason 0x04."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from interop_util import RawClient, props, unique_client_id

VERSIONS = [pytest.param(3, id="v311"), pytest.param(5, id="v5")]


def will_client(broker, topic, version=5, will_delay=None, session_expiry=None, qos=1,
                retain=False, client_id=None):
    raw = RawClient(broker)
    will = {"topic": topic, "payload": b"gone", "qos": qos, "retain": retain}
    conn_props = None
    if version == 5:
        if will_delay is not None:
            will["properties"] = props(PacketTypes.WILLMESSAGE, WillDelayInterval=will_delay)
        if session_expiry is not None:
            conn_props = props(PacketTypes.CONNECT, SessionExpiryInterval=session_expiry)
    connack = raw.connect(client_id or unique_client_id("w"), version=version, will=will,
                          properties=conn_props)
    assert connack.reason_code == 0
    return raw


@pytest.mark.parametrize("version", VERSIONS)
def test_will_published_when_connection_drops_without_disconnect(broker, connect, topic, version):
    sub = connect(version=version)
    sub.subscribe(topic, 1)
    raw = will_client(broker, topic, version=version)

    raw.abort()

    msg = sub.wait_message()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (topic, b"gone", 1, False)


@pytest.mark.parametrize("version", VERSIONS)
def test_will_not_published_on_clean_disconnect(broker, connect, topic, version):
    sub = connect(version=version)
    sub.subscribe(topic, 1)
    raw = will_client(broker, topic, version=version)

    raw.disconnect()  # returns once the broker has closed the connection
    connect(version=version).publish(topic, b"marker", qos=1)

    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_will_is_kept_for_later_subscribers(broker, connect, topic, version):
    raw = will_client(broker, topic, version=version, retain=True)
    watcher = connect(version=version)
    watcher.subscribe(topic, 1)
    raw.abort()
    watcher.wait_message()

    late = connect(version=version)
    late.subscribe(topic, 1)
    msg = late.wait_message()
    assert (msg.payload, msg.retain) == (b"gone", True)
    watcher.publish(topic, b"", qos=1, retain=True)


def test_disconnect_with_will_message_reason_sends_will(broker, connect, topic):
    sub = connect(version=5)
    sub.subscribe(topic, 1)
    raw = will_client(broker, topic, version=5)

    raw.disconnect(reason_code=0x04)

    msg = sub.wait_message()
    assert (msg.topic, msg.payload) == (topic, b"gone")


def test_will_delay_interval_postpones_will(broker, connect, topic):
    delay = 2
    sub = connect(version=5)
    sub.subscribe(topic, 1)
    raw = will_client(broker, topic, version=5, will_delay=delay, session_expiry=60)

    raw.abort()
    closed_at = time.monotonic()

    sub.wait_message(timeout=delay + 8)
    elapsed = time.monotonic() - closed_at
    assert elapsed >= delay - 0.5, f"will sent after {elapsed:.2f} s, before its {delay} s delay"


def test_will_sent_when_session_expires_before_will_delay(broker, connect, topic):
    # The will goes out at the earlier of will delay and session end [MQTT-3.1.3-9].
    sub = connect(version=5)
    sub.subscribe(topic, 1)
    raw = will_client(broker, topic, version=5, will_delay=120, session_expiry=1)

    raw.abort()

    msg = sub.wait_message(timeout=10)
    assert msg.payload == b"gone"


def test_will_delay_cancelled_by_reconnect_within_delay(broker, connect, topic):
    delay = 2
    sub = connect(version=5)
    sub.subscribe(topic, 1)
    client_id = unique_client_id("w")
    raw = will_client(broker, topic, version=5, will_delay=delay, session_expiry=60,
                      client_id=client_id)

    raw.abort()
    back = connect(version=5, client_id=client_id, clean=False,
                   properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert back.session_present

    time.sleep(delay + 1.5)  # past the point where the will would have gone out
    back.publish(topic, b"marker", qos=1)
    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]
    back.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
