"""Publish/subscribe at every QoS, for MQTT 3.1.1 and 5.0."""

import itertools

import pytest

VERSIONS = [pytest.param(3, id="v311"), pytest.param(5, id="v5")]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_subscription_granted_requested_qos(connect, topic, version, sub_qos):
    sub = connect(version=version)
    assert sub.subscribe(topic, sub_qos) == [sub_qos]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("pub_qos,sub_qos", list(itertools.product([0, 1, 2], repeat=2)))
def test_message_delivered_at_minimum_of_publish_and_subscribe_qos(connect, topic, version, pub_qos, sub_qos):
    sub = connect(version=version)
    pub = connect(version=version)
    sub.subscribe(topic, sub_qos)

    pub.publish(topic, b"hello %d" % pub_qos, qos=pub_qos)

    msg = sub.wait_message()
    assert msg.topic == topic
    assert msg.payload == b"hello %d" % pub_qos
    assert msg.qos == min(pub_qos, sub_qos)
    assert msg.retain is False


@pytest.mark.parametrize("version", VERSIONS)
def test_wildcard_subscriptions_match(connect, topic, version):
    sub = connect(version=version)
    pub = connect(version=version)
    sub.subscribe(f"{topic}/+/leaf", 1)
    sub.subscribe(f"{topic}/multi/#", 1)

    pub.publish(f"{topic}/a/leaf", b"plus", qos=1)
    pub.publish(f"{topic}/a/other", b"no match", qos=1)
    pub.publish(f"{topic}/multi/x/y", b"hash", qos=1)
    pub.publish(f"{topic}/multi", b"hash parent", qos=1)

    msgs = sub.wait_messages(3)
    assert sorted(m.payload for m in msgs) == [b"hash", b"hash parent", b"plus"]


@pytest.mark.parametrize("version", VERSIONS)
def test_unsubscribed_client_receives_nothing_more(connect, topic, version):
    sub = connect(version=version)
    pub = connect(version=version)
    sub.subscribe(topic, 1)
    sub.subscribe(f"{topic}/marker", 1)
    sub.unsubscribe(topic)

    pub.publish(topic, b"after unsubscribe", qos=1)
    pub.publish(f"{topic}/marker", b"marker", qos=1)

    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [1, 2])
def test_many_messages_arrive_in_order_without_loss_or_duplicates(connect, topic, version, qos):
    count = 200
    sub = connect(version=version)
    pub = connect(version=version)
    sub.subscribe(topic, qos)

    infos = [pub.publish(topic, b"%06d" % i, qos=qos, wait=False) for i in range(count)]
    for info in infos:
        info.wait_for_publish(10)

    msgs = sub.wait_messages(count, timeout=30)
    assert [m.payload for m in msgs] == [b"%06d" % i for i in range(count)]
    assert {m.qos for m in msgs} == {qos}
    # Nothing extra arrives after the last one either.
    pub.publish(topic, b"end", qos=qos)
    assert len(sub.wait_payload(b"end")) == count + 1
