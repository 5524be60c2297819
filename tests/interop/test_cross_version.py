"""Messages flow between MQTT 3.1.1 and MQTT 5.0 clients in both directions."""

import pytest

from interop_util import publish_props

DIRECTIONS = [
    pytest.param(5, 3, id="v5-to-v311"),
    pytest.param(3, 5, id="v311-to-v5"),
]


@pytest.mark.parametrize("pub_version,sub_version", DIRECTIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_crosses_protocol_versions(connect, topic, pub_version, sub_version, qos):
    sub = connect(version=sub_version)
    pub = connect(version=pub_version)
    sub.subscribe(topic, 2)

    pub.publish(topic, b"across %d" % qos, qos=qos)

    msg = sub.wait_message()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (topic, b"across %d" % qos, qos, False)


@pytest.mark.parametrize("pub_version,sub_version", DIRECTIONS)
def test_retained_message_crosses_protocol_versions(connect, topic, pub_version, sub_version):
    pub = connect(version=pub_version)
    pub.publish(topic, b"kept", qos=1, retain=True)

    sub = connect(version=sub_version)
    sub.subscribe(topic, 1)

    msg = sub.wait_message()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (topic, b"kept", 1, True)
    pub.publish(topic, b"", qos=1, retain=True)


def test_v5_properties_are_dropped_for_v311_subscriber_but_payload_intact(connect, topic):
    sub = connect(version=3)
    pub = connect(version=5)
    sub.subscribe(topic, 1)

    pub.publish(topic, b"\x00\x01binary\xff", qos=1, properties=publish_props(
        UserProperty=[("k", "v")], ContentType="application/octet-stream", MessageExpiryInterval=60))

    msg = sub.wait_message()
    assert msg.payload == b"\x00\x01binary\xff"
    assert msg.qos == 1
