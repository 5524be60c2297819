"""Retained messages, and the MQTT 5.0 retain subscription options."""

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

VERSIONS = [pytest.param(3, id="v311"), pytest.param(5, id="v5")]


def retained_payloads(msgs):
    return [(m.payload, m.retain) for m in msgs]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_delivered_on_subscribe_with_retain_flag(connect, topic, version):
    pub = connect(version=version)
    pub.publish(topic, b"state", qos=1, retain=True)

    sub = connect(version=version)
    sub.subscribe(topic, 1)

    msg = sub.wait_message()
    assert (msg.topic, msg.payload, msg.retain, msg.qos) == (topic, b"state", True, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_delivered_at_subscription_qos(connect, topic, version):
    pub = connect(version=version)
    pub.publish(topic, b"state", qos=2, retain=True)

    sub = connect(version=version)
    sub.subscribe(topic, 0)

    msg = sub.wait_message()
    assert (msg.payload, msg.retain, msg.qos) == (b"state", True, 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_replaced_by_newer_one(connect, topic, version):
    pub = connect(version=version)
    pub.publish(topic, b"old", qos=1, retain=True)
    pub.publish(topic, b"new", qos=1, retain=True)

    sub = connect(version=version)
    sub.subscribe(topic, 1)
    sub.subscribe(f"{topic}/marker", 1)
    pub.publish(f"{topic}/marker", b"marker", qos=1)

    msgs = sub.wait_payload(b"marker")
    assert retained_payloads(msgs) == [(b"new", True), (b"marker", False)]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_message_cleared_by_empty_payload(connect, topic, version):
    pub = connect(version=version)
    pub.publish(topic, b"doomed", qos=1, retain=True)
    pub.publish(topic, b"", qos=1, retain=True)

    sub = connect(version=version)
    sub.subscribe(topic, 1)
    pub.publish(topic, b"live", qos=1)

    msgs = sub.wait_payload(b"live")
    assert retained_payloads(msgs) == [(b"live", False)]


@pytest.mark.parametrize("version", VERSIONS)
def test_wildcard_subscription_receives_every_matching_retained_message(connect, topic, version):
    pub = connect(version=version)
    for leaf in ("a", "b", "c"):
        pub.publish(f"{topic}/{leaf}", leaf.encode(), qos=1, retain=True)

    sub = connect(version=version)
    sub.subscribe(f"{topic}/+", 1)

    msgs = sub.wait_messages(3)
    assert sorted((m.topic, m.payload, m.retain) for m in msgs) == [
        (f"{topic}/{leaf}", leaf.encode(), True) for leaf in ("a", "b", "c")]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_publish_forwarded_to_existing_subscriber_without_retain_flag(connect, topic, version):
    # 3.1.1 [MQTT-3.3.1-9]; in 5.0 the same holds when Retain As Published is 0.
    sub = connect(version=version)
    sub.subscribe(topic, 1)
    pub = connect(version=version)

    pub.publish(topic, b"fresh", qos=1, retain=True)

    msg = sub.wait_message()
    assert (msg.payload, msg.retain) == (b"fresh", False)


def test_retain_handling_0_sends_retained_on_every_subscribe(connect, topic):
    pub = connect(version=5)
    pub.publish(topic, b"state", qos=1, retain=True)

    sub = connect(version=5)
    opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE)
    sub.subscribe(topic, options=opts)
    sub.wait_messages(1)
    sub.subscribe(topic, options=opts)

    msgs = sub.wait_messages(2)
    assert retained_payloads(msgs) == [(b"state", True), (b"state", True)]


def test_retain_handling_1_sends_retained_only_for_new_subscription(connect, topic):
    pub = connect(version=5)
    pub.publish(topic, b"state", qos=1, retain=True)

    sub = connect(version=5)
    opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    sub.subscribe(topic, options=opts)
    sub.wait_messages(1)
    sub.subscribe(topic, options=opts)  # already exists: no retained message
    pub.publish(topic, b"live", qos=1)

    msgs = sub.wait_payload(b"live")
    assert retained_payloads(msgs) == [(b"state", True), (b"live", False)]


def test_retain_handling_2_never_sends_retained(connect, topic):
    pub = connect(version=5)
    pub.publish(topic, b"state", qos=1, retain=True)

    sub = connect(version=5)
    sub.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
    pub.publish(topic, b"live", qos=1)

    msgs = sub.wait_payload(b"live")
    assert retained_payloads(msgs) == [(b"live", False)]


def test_retain_as_published_keeps_retain_flag_on_forwarded_message(connect, topic):
    rap = connect(version=5)
    rap.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
    plain = connect(version=5)
    plain.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=False))
    pub = connect(version=5)

    pub.publish(topic, b"retained", qos=1, retain=True)
    pub.publish(topic, b"not retained", qos=1, retain=False)

    assert retained_payloads(rap.wait_messages(2)) == [(b"retained", True), (b"not retained", False)]
    assert retained_payloads(plain.wait_messages(2)) == [(b"retained", False), (b"not retained", False)]


def test_retained_message_sent_on_subscribe_has_retain_flag_even_without_rap(connect, topic):
    pub = connect(version=5)
    pub.publish(topic, b"state", qos=1, retain=True)

    sub = connect(version=5)
    sub.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=False))

    assert retained_payloads(sub.wait_messages(1)) == [(b"state", True)]
