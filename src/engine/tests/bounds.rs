//! The broker-wide bounds in virtual time: `connect_timeout`, `max_topic_levels` (and the
//! 65,535 bytes of a mounted topic), `max_subscriptions` and `max_queued_memory`.

use super::*;
use crate::engine::bounds::QUEUE_ENTRY_OVERHEAD;

fn disconnect_reason(actions: &[Action], conn: u64) -> Option<ReasonCode> {
    sent(actions, conn).into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

fn suback_reasons(actions: &[Action], conn: u64) -> Vec<ReasonCode> {
    sent(actions, conn)
        .into_iter()
        .find_map(|p| match p {
            Packet::SubAck(s) => Some(s.reasons.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SUBACK to {conn}: {actions:?}"))
}

fn subscribe_many(h: &mut Harness, conn: u64, filters: &[&str]) -> Vec<ReasonCode> {
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    };
    let s = Subscribe {
        packet_id: 9,
        properties: Props::none(),
        filters: filters.iter().map(|f| (f.to_string(), opts)).collect(),
    };
    let a = h.packet(conn, Packet::Subscribe(s));
    suback_reasons(&a, conn)
}

fn puback_reason(actions: &[Action], conn: u64) -> Option<ReasonCode> {
    sent(actions, conn).into_iter().find_map(|p| match p {
        Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
}

#[test]
fn connect_timeout_is_the_configured_one() {
    let mut h = Harness::with(Limits {
        connect_timeout: 2,
        ..Limits::default()
    });
    h.open(1);
    assert!(!closes(&h.advance_to(1_999), 1));
    assert!(closes(&h.advance_to(2_000), 1));
    // A connection that completed CONNECT in time is not closed at its deadline.
    h.connect(2, "c", ProtocolVersion::V5, true);
    assert!(!closes(&h.advance_to(10_000), 2));
}

#[test]
fn connect_timeout_default_is_ten_seconds() {
    let mut h = Harness::new();
    h.open(1);
    assert!(!closes(&h.advance_to(9_999), 1));
    assert!(closes(&h.advance_to(10_000), 1));
}

#[test]
fn publish_with_too_many_levels_is_refused_like_an_invalid_topic() {
    let mut h = Harness::with(Limits {
        max_topic_levels: 3,
        ..Limits::default()
    });
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "#", QoS::AtMostOnce);
    h.connect(2, "v5", ProtocolVersion::V5, true);
    let a = h.publish(2, "a/b/c", b"x", QoS::AtMostOnce, 0);
    assert_eq!(publishes(&a, 1).len(), 1);
    assert!(!closes(&a, 2));
    let a = h.publish(2, "a/b/c/d", b"x", QoS::AtLeastOnce, 1);
    assert!(publishes(&a, 1).is_empty());
    assert_eq!(disconnect_reason(&a, 2), Some(ReasonCode::TopicNameInvalid));
    assert!(closes(&a, 2));
    h.connect(3, "v3", ProtocolVersion::V311, true);
    let a = h.publish(3, "////", b"x", QoS::AtMostOnce, 0);
    assert!(publishes(&a, 1).is_empty());
    assert_eq!(disconnect_reason(&a, 3), None);
    assert!(closes(&a, 3));
}

#[test]
fn zero_topic_levels_means_no_bound_but_the_bytes() {
    let mut h = Harness::with(Limits {
        max_topic_levels: 0,
        ..Limits::default()
    });
    let deep = "a/".repeat(1000) + "z";
    assert!(h.engine.topic_within_bounds(&deep));
    assert!(!h.engine.topic_within_bounds(&"x".repeat(65_536)));
    h.engine.limits.max_topic_levels = 128;
    assert!(!h.engine.topic_within_bounds(&deep));
    assert!(h.engine.topic_within_bounds(&("a/".repeat(127) + "z")));
    assert!(!h.engine.topic_within_bounds(&("a/".repeat(128) + "z")));
}

#[test]
fn a_mount_point_cannot_push_a_topic_past_65535_bytes() {
    let mut h = Harness::new();
    h.engine.set_mount_points(vec![Some("m/".to_owned())]);
    h.connect(1, "mounted", ProtocolVersion::V5, true);
    let topic = "x".repeat(65_534);
    let a = h.publish(1, &topic, b"x", QoS::AtMostOnce, 0);
    assert_eq!(disconnect_reason(&a, 1), Some(ReasonCode::TopicNameInvalid));
    h.connect(2, "sub", ProtocolVersion::V5, true);
    let filter = "y".repeat(65_534);
    let reasons = subscribe_many(&mut h, 2, &[&filter, "ok"]);
    assert_eq!(
        reasons,
        vec![ReasonCode::TopicFilterInvalid, ReasonCode::GrantedQos1]
    );
}

#[test]
fn filter_with_too_many_levels_gets_topic_filter_invalid() {
    let mut h = Harness::with(Limits {
        max_topic_levels: 3,
        ..Limits::default()
    });
    h.connect(1, "v5", ProtocolVersion::V5, true);
    let reasons = subscribe_many(
        &mut h,
        1,
        &["a/b/#", "a/b/c/#", "$share/g/a/+/c", "+/+/+/+"],
    );
    assert_eq!(
        reasons,
        vec![
            ReasonCode::GrantedQos1,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::GrantedQos1,
            ReasonCode::TopicFilterInvalid,
        ]
    );
    h.connect(2, "v3", ProtocolVersion::V311, true);
    let reasons = subscribe_many(&mut h, 2, &["a/b/c/d"]);
    // Encoded 0x80 in 3.1.1.
    assert_eq!(reasons, vec![ReasonCode::UnspecifiedError]);
    assert!(h
        .engine
        .sessions
        .iter()
        .all(|(_, s)| s.subscriptions.len() <= 2));
}

#[test]
fn subscriptions_past_the_bound_get_quota_exceeded() {
    let mut h = Harness::with(Limits {
        max_subscriptions: 2,
        ..Limits::default()
    });
    h.connect(1, "c", ProtocolVersion::V5, true);
    let granted = ReasonCode::GrantedQos1;
    let quota = ReasonCode::QuotaExceeded;
    // A filter the session holds already is not a new subscription, even twice in a packet.
    let reasons = subscribe_many(&mut h, 1, &["a", "b", "c", "a", "b"]);
    assert_eq!(reasons, vec![granted, granted, quota, granted, granted]);
    let reasons = subscribe_many(&mut h, 1, &["$share/g/a", "b"]);
    assert_eq!(reasons, vec![quota, granted]);
    let u = Unsubscribe {
        packet_id: 3,
        properties: Props::none(),
        filters: vec!["a".to_owned()],
    };
    h.packet(1, Packet::Unsubscribe(u));
    assert_eq!(subscribe_many(&mut h, 1, &["d", "e"]), vec![granted, quota]);
    // The bound is per client.
    h.connect(2, "other", ProtocolVersion::V311, true);
    assert_eq!(
        subscribe_many(&mut h, 2, &["a", "b", "c"]),
        vec![granted, granted, quota]
    );
}

#[test]
fn zero_subscriptions_bound_means_none() {
    let mut h = Harness::with(Limits {
        max_subscriptions: 0,
        ..Limits::default()
    });
    h.connect(1, "c", ProtocolVersion::V5, true);
    let filters: Vec<String> = (0..50).map(|i| format!("f/{i}")).collect();
    let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
    let reasons = subscribe_many(&mut h, 1, &refs);
    assert!(reasons.iter().all(|r| *r == ReasonCode::GrantedQos1));
}

/// A v5 subscriber with a window of one that never acknowledges, a v5 and a 3.1.1
/// publisher, and a budget of three queued entries of 10 bytes.
fn memory_setup() -> Harness {
    let mut h = Harness::with(Limits {
        max_inflight_messages: 1,
        max_queued_memory: 3 * (10 + QUEUE_ENTRY_OVERHEAD),
        ..Limits::default()
    });
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "v5", ProtocolVersion::V5, true);
    h.connect(3, "v3", ProtocolVersion::V311, true);
    h
}

#[test]
fn queue_memory_budget_refuses_without_losing_anything_acknowledged() {
    let mut h = memory_setup();
    for id in 1..=4 {
        let a = h.publish(2, "t", b"0123456789", QoS::AtLeastOnce, id);
        assert_eq!(puback_reason(&a, 2), Some(ReasonCode::Success));
    }
    // One in flight, three queued: the budget is spent.
    assert_eq!(h.engine.queued_memory(), 3 * (10 + QUEUE_ENTRY_OVERHEAD));
    assert_eq!(h.engine.queued_memory(), h.engine.queued_memory_recount());
    let dropped = h.engine.stats().publish_dropped;
    let a = h.publish(2, "t", b"0123456789", QoS::AtLeastOnce, 5);
    assert_eq!(puback_reason(&a, 2), Some(ReasonCode::QuotaExceeded));
    assert!(!closes(&a, 2));
    let a = h.publish(2, "t", b"0123456789", QoS::ExactlyOnce, 6);
    let pubrec = sent(&a, 2).into_iter().find_map(|p| match p {
        Packet::PubRec(r) => Some(r.reason),
        _ => None,
    });
    assert_eq!(pubrec, Some(ReasonCode::QuotaExceeded));
    // A 3.1.1 publisher is not acknowledged and is closed: it sends again after reconnecting.
    let a = h.publish(3, "t", b"0123456789", QoS::AtLeastOnce, 7);
    assert_eq!(puback_reason(&a, 3), None);
    assert!(closes(&a, 3));
    // QoS 0 is dropped.
    let a = h.publish(2, "t", b"q0", QoS::AtMostOnce, 0);
    assert!(sent(&a, 2).is_empty() && sent(&a, 1).is_empty());
    assert_eq!(h.engine.stats().publish_dropped, dropped + 4);
    assert_eq!(h.engine.queued_memory(), 3 * (10 + QUEUE_ENTRY_OVERHEAD));

    // The subscriber reads: every acknowledged message arrives, and room comes back.
    let mut got = Vec::new();
    let mut next = 1;
    for _ in 0..4 {
        let a = h.packet(1, Packet::PubAck(ack(next)));
        for p in publishes(&a, 1) {
            got.push(p.payload.clone());
            next = p.packet_id;
        }
    }
    assert_eq!(got.len(), 3, "the three queued after the first in flight");
    assert_eq!(h.engine.queued_memory(), 0);
    let a = h.publish(2, "t", b"0123456789", QoS::AtLeastOnce, 8);
    assert_eq!(puback_reason(&a, 2), Some(ReasonCode::Success));
}

#[test]
fn queue_memory_is_released_when_a_session_ends() {
    let mut h = memory_setup();
    for id in 1..=3 {
        h.publish(2, "t", b"0123456789", QoS::AtLeastOnce, id);
    }
    assert_eq!(h.engine.queued_memory(), 2 * (10 + QUEUE_ENTRY_OVERHEAD));
    h.closed(1);
    assert_eq!(h.engine.queued_memory(), 0);
    assert_eq!(h.engine.queued_memory_recount(), 0);
}

#[test]
fn queue_memory_bound_off_accepts_everything() {
    let mut h = Harness::with(Limits {
        max_inflight_messages: 1,
        max_queued_memory: 0,
        ..Limits::default()
    });
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", ProtocolVersion::V5, true);
    for id in 1..=50 {
        let a = h.publish(2, "t", b"0123456789", QoS::AtLeastOnce, id);
        assert_eq!(puback_reason(&a, 2), Some(ReasonCode::Success));
    }
    assert_eq!(h.engine.queued_memory(), 49 * (10 + QUEUE_ENTRY_OVERHEAD));
    assert_eq!(h.engine.queued_memory(), h.engine.queued_memory_recount());
}
