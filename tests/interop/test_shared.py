"""Shared subscriptions ($share/<group>/<filter>)."""

import uuid

from interop_util import wait_for


def group_name():
    return "g" + uuid.uuid4().hex[:8]


def test_shared_subscription_distributes_each_message_to_exactly_one_member(connect, topic):
    count = 40
    share = f"$share/{group_name()}/{topic}"
    members = [connect(version=5), connect(version=5)]
    for m in members:
        assert m.subscribe(share, 1) == [1]
    pub = connect(version=5)

    for i in range(count):
        pub.publish(topic, b"%03d" % i, qos=1)

    def total():
        return sum(len(m.received()) for m in members)

    wait_for(lambda: total() >= count, message=f"{count} messages across the group")
    payloads = [msg.payload for m in members for msg in m.received()]
    assert sorted(payloads) == [b"%03d" % i for i in range(count)]
    for m in members:
        assert m.received(), "every member of the group should get some of the messages"
        assert all(msg.topic == topic for msg in m.received())


def test_shared_and_plain_subscribers_both_receive(connect, topic):
    shared = connect(version=5)
    shared.subscribe(f"$share/{group_name()}/{topic}", 1)
    plain = connect(version=5)
    plain.subscribe(topic, 1)
    pub = connect(version=5)

    pub.publish(topic, b"for everyone", qos=1)

    for peer in (shared, plain):
        msg = peer.wait_message()
        assert (msg.topic, msg.payload) == (topic, b"for everyone")


def test_two_share_groups_each_receive_a_copy(connect, topic):
    a = connect(version=5)
    a.subscribe(f"$share/{group_name()}/{topic}", 1)
    b = connect(version=5)
    b.subscribe(f"$share/{group_name()}/{topic}", 1)

    connect(version=5).publish(topic, b"one per group", qos=1)

    assert a.wait_message().payload == b"one per group"
    assert b.wait_message().payload == b"one per group"


def test_shared_subscription_with_wildcard_filter(connect, topic):
    member = connect(version=5)
    member.subscribe(f"$share/{group_name()}/{topic}/#", 1)

    connect(version=5).publish(f"{topic}/deep/leaf", b"wild", qos=1)

    msg = member.wait_message()
    assert (msg.topic, msg.payload) == (f"{topic}/deep/leaf", b"wild")
