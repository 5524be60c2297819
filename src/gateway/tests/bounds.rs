//! The engine's broker-wide bounds seen by MQTT-SN clients: they are engine sessions, so
//! `max_subscriptions` (refused as congestion) and `max_topic_levels` apply to them.

use super::*;

const C: u16 = 5100;

fn subscribe(h: &mut Harness, msg_id: u16, name: &[u8]) -> ReturnCode {
    h.send(
        C,
        &Message::Subscribe {
            flags: qos_flags(SnQos::AtLeastOnce, TopicIdType::Normal),
            msg_id,
            topic: sn::SubTopic::Name(name),
        },
    );
    let got = h.take(C);
    match got.first().map(|d| sn::decode(d)) {
        Some(Ok(sn::Frame::Message(Message::SubAck {
            code, msg_id: m, ..
        }))) if m == msg_id => code,
        other => panic!("no SUBACK: {other:?}"),
    }
}

#[test]
fn subscriptions_past_the_bound_are_refused_as_congestion() {
    let mut h = Harness::new();
    let limits = Limits {
        max_subscriptions: 2,
        ..Limits::default()
    };
    h.engine.set_limits(h.now, limits);
    h.connect(C, "sn-subs", true, 60);
    assert_eq!(subscribe(&mut h, 1, b"room/1"), ReturnCode::Accepted);
    assert_eq!(subscribe(&mut h, 2, b"room/2"), ReturnCode::Accepted);
    assert_eq!(subscribe(&mut h, 3, b"room/3"), ReturnCode::Congestion);
    // The same filter again is not a new subscription.
    assert_eq!(subscribe(&mut h, 4, b"room/1"), ReturnCode::Accepted);
}

#[test]
fn a_deep_topic_filter_is_refused() {
    let mut h = Harness::new();
    let limits = Limits {
        max_topic_levels: 2,
        ..Limits::default()
    };
    h.engine.set_limits(h.now, limits);
    h.connect(C, "sn-deep", true, 60);
    assert_eq!(subscribe(&mut h, 1, b"a/b"), ReturnCode::Accepted);
    assert_eq!(subscribe(&mut h, 2, b"a/b/c"), ReturnCode::NotSupported);
}
