//! Engine flows end to end in virtual time.

use super::*;
use crate::codec::mqtt::Disconnect;

#[test]
fn qos2_inbound_is_delivered_exactly_once() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V311, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.connect(2, "pub", ProtocolVersion::V311, true);
    let a = h.publish(2, "t", b"x", QoS::ExactlyOnce, 7);
    assert_eq!(publishes(&a, 1).len(), 1);
    assert!(matches!(sent(&a, 2)[0], Packet::PubRec(r) if r.packet_id == 7));
    let mut again = publish("t", b"x", QoS::ExactlyOnce, 7, false);
    again.dup = true;
    let a = h.packet(2, Packet::Publish(again));
    assert!(
        publishes(&a, 1).is_empty(),
        "a resend before PUBREL is not delivered again"
    );
    assert!(matches!(sent(&a, 2)[0], Packet::PubRec(_)));
    let a = h.packet(2, Packet::PubRel(ack(7)));
    assert!(matches!(sent(&a, 2)[0], Packet::PubComp(c) if c.reason == ReasonCode::Success));
}

#[test]
fn qos2_outbound_flow_and_window() {
    let mut h = Harness::with(Limits {
        max_inflight_messages: 1,
        ..Limits::default()
    });
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.connect(2, "pub", ProtocolVersion::V5, true);
    let a1 = h.publish(2, "t", b"1", QoS::ExactlyOnce, 1);
    h.packet(2, Packet::PubRel(ack(1)));
    let a2 = h.publish(2, "t", b"2", QoS::ExactlyOnce, 2);
    let first = publishes(&a1, 1);
    assert_eq!(first.len(), 1);
    assert!(
        publishes(&a2, 1).is_empty(),
        "window of one holds the second message back"
    );
    let id = first[0].packet_id;
    let a = h.packet(1, Packet::PubRec(ack(id)));
    assert!(matches!(sent(&a, 1)[0], Packet::PubRel(r) if r.packet_id == id));
    let a = h.packet(1, Packet::PubComp(ack(id)));
    let next = publishes(&a, 1);
    assert_eq!(next.len(), 1);
    assert_eq!(&*next[0].payload, b"2");
}

#[test]
fn keep_alive_closes_after_one_and_a_half_periods() {
    let mut h = Harness::new();
    let mut c = connect("k", ProtocolVersion::V5, true);
    c.keep_alive = 10;
    h.connect_with(1, c);
    assert!(!closes(&h.advance_to(14_000), 1));
    let a = h.advance_to(15_000);
    assert!(closes(&a, 1));
    assert!(
        matches!(sent(&a, 1)[0], Packet::Disconnect(d) if d.reason == ReasonCode::KeepAliveTimeout)
    );
}

#[test]
fn activity_postpones_keep_alive() {
    let mut h = Harness::new();
    let mut c = connect("k", ProtocolVersion::V311, true);
    c.keep_alive = 10;
    h.connect_with(1, c);
    h.advance_to(9_000);
    h.packet(1, Packet::PingReq);
    assert!(!closes(&h.advance_to(20_000), 1));
    assert!(closes(&h.advance_to(24_000), 1));
}

#[test]
fn will_is_published_on_loss_and_not_on_normal_disconnect() {
    let mut h = Harness::new();
    h.connect(1, "watcher", ProtocolVersion::V311, true);
    h.subscribe(1, "wills/#", QoS::AtMostOnce);
    let mut c = connect("w", ProtocolVersion::V311, true);
    c.will = Some(will("wills/w", None));
    h.connect_with(2, c.clone());
    let a = h.closed(2);
    assert_eq!(publishes(&a, 1).len(), 1);
    h.connect_with(3, c);
    let d = Disconnect {
        reason: ReasonCode::Success,
        properties: Props::none(),
    };
    let a = h.packet(3, Packet::Disconnect(d));
    assert!(publishes(&a, 1).is_empty());
}

#[test]
fn will_delay_waits_and_reconnection_cancels_it() {
    let mut h = Harness::new();
    h.connect(1, "watcher", ProtocolVersion::V5, true);
    h.subscribe(1, "wills/#", QoS::AtMostOnce);
    let mut c = connect("w", ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(will("wills/w", Some(5)));
    h.connect_with(2, c.clone());
    assert!(publishes(&h.closed(2), 1).is_empty());
    assert!(publishes(&h.advance_to(4_000), 1).is_empty());
    assert_eq!(publishes(&h.advance_to(5_000), 1).len(), 1);
    // Reconnecting within the delay cancels the will.
    h.connect_with(3, c.clone());
    h.closed(3);
    h.advance_to(7_000);
    h.connect_with(4, c);
    assert!(publishes(&h.advance_to(20_000), 1).is_empty());
}

#[test]
fn persistent_session_queues_while_offline() {
    let mut h = Harness::new();
    h.connect(1, "p", ProtocolVersion::V311, false);
    h.subscribe(1, "q", QoS::AtLeastOnce);
    h.closed(1);
    h.connect(2, "pub", ProtocolVersion::V311, true);
    h.publish(2, "q", b"a", QoS::AtLeastOnce, 1);
    h.publish(2, "q", b"b", QoS::AtMostOnce, 0);
    let a = h.connect(3, "p", ProtocolVersion::V311, false);
    assert!(connack(&a, 3).0, "session present");
    let got = publishes(&a, 3);
    assert_eq!(got.len(), 1, "QoS 1 queued, QoS 0 dropped while offline");
    assert_eq!(&*got[0].payload, b"a");
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_on_resume() {
    let mut h = Harness::new();
    let mut c = connect("p", ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = Some(60);
    h.connect_with(1, c.clone());
    h.subscribe(1, "q", QoS::AtLeastOnce);
    h.connect(2, "pub", ProtocolVersion::V5, true);
    let a = h.publish(2, "q", b"a", QoS::AtLeastOnce, 1);
    assert!(publishes(&a, 1).len() == 1 && !publishes(&a, 1)[0].dup);
    let a = h.connect_with(3, c);
    assert!(closes(&a, 1), "takeover closes the first connection");
    assert!(
        matches!(sent(&a, 1)[0], Packet::Disconnect(d) if d.reason == ReasonCode::SessionTakenOver)
    );
    let again = publishes(&a, 3);
    assert_eq!(again.len(), 1);
    assert!(again[0].dup);
}

#[test]
fn session_expires_after_its_interval() {
    let mut h = Harness::new();
    let mut c = connect("e", ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = Some(2);
    h.connect_with(1, c.clone());
    h.closed(1);
    h.advance_to(1_000);
    assert!(
        connack(&h.connect_with(2, c.clone()), 2).0,
        "still there after 1 s"
    );
    h.closed(2);
    h.advance_to(4_000);
    c.clean_start = false;
    assert!(!connack(&h.connect_with(3, c), 3).0, "gone after 2 s");
}

#[test]
fn empty_client_id_is_assigned_from_the_seed() {
    let mut h = Harness::new();
    let a = h.connect(1, "", ProtocolVersion::V5, true);
    let id = connack(&a, 1)
        .2
        .assigned_client_identifier
        .expect("assigned id");
    let mut h2 = Harness::new();
    let a2 = h2.connect(1, "", ProtocolVersion::V5, true);
    assert_eq!(Some(id), connack(&a2, 1).2.assigned_client_identifier);
    let a = h.connect(2, "", ProtocolVersion::V311, false);
    assert_eq!(connack(&a, 2).1, ReasonCode::ClientIdentifierNotValid);
}

#[test]
fn retained_message_is_sent_on_subscribe_and_cleared_by_empty_payload() {
    let mut h = Harness::new();
    h.connect(1, "pub", ProtocolVersion::V311, true);
    h.packet(
        1,
        Packet::Publish(publish("r", b"v", QoS::AtMostOnce, 0, true)),
    );
    h.connect(2, "sub", ProtocolVersion::V5, true);
    let a = h.subscribe(2, "r", QoS::AtLeastOnce);
    let got = publishes(&a, 2);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain);
    h.packet(
        1,
        Packet::Publish(publish("r", b"", QoS::AtMostOnce, 0, true)),
    );
    h.connect(3, "sub2", ProtocolVersion::V5, true);
    assert!(publishes(&h.subscribe(3, "r", QoS::AtLeastOnce), 3).is_empty());
}

#[test]
fn topic_alias_from_client_is_resolved() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V311, true);
    h.subscribe(1, "long/topic", QoS::AtMostOnce);
    h.connect(2, "pub", ProtocolVersion::V5, true);
    let mut p = publish("long/topic", b"1", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    h.packet(2, Packet::Publish(p));
    let mut p = publish("", b"2", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    let a = h.packet(2, Packet::Publish(p));
    assert_eq!(&*publishes(&a, 1)[0].topic, "long/topic");
    let mut p = publish("", b"3", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(11);
    let a = h.packet(2, Packet::Publish(p));
    assert!(
        matches!(sent(&a, 2)[0], Packet::Disconnect(d) if d.reason == ReasonCode::TopicAliasInvalid)
    );
}

#[test]
fn shutdown_sends_server_shutting_down_to_v5_clients() {
    let mut h = Harness::new();
    h.connect(1, "a", ProtocolVersion::V5, true);
    h.connect(2, "b", ProtocolVersion::V311, true);
    let a = h.input(Input::Shutdown);
    let bye = ReasonCode::ServerShuttingDown;
    assert!(matches!(sent(&a, 1)[0], Packet::Disconnect(d) if d.reason == bye));
    assert!(sent(&a, 2).is_empty());
    assert!(closes(&a, 1) && closes(&a, 2));
    h.closed(1);
    h.closed(2);
    assert!(h.engine.is_idle());
}

#[test]
fn mount_point_prefixes_topics_and_is_removed_on_delivery() {
    let mut h = Harness::new();
    h.engine.set_mount_points(vec![Some("site1/".into())]);
    h.connect(1, "mounted", ProtocolVersion::V5, true);
    h.subscribe(1, "sensors/#", QoS::AtMostOnce);
    let a = h.publish(1, "sensors/t", b"20", QoS::AtMostOnce, 0);
    let got = publishes(&a, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(
        &*got[0].topic, "sensors/t",
        "the client sees its own topic space"
    );
    // A client of the same engine outside the mount sees the full topic: route through the
    // retained store, which holds broker-side names.
    h.packet(
        1,
        Packet::Publish(publish("state", b"on", QoS::AtMostOnce, 0, true)),
    );
    h.engine.set_mount_points(vec![None]);
    h.connect(2, "plain", ProtocolVersion::V5, true);
    let a = h.subscribe(2, "site1/#", QoS::AtMostOnce);
    let got = publishes(&a, 2);
    assert_eq!(got.len(), 1);
    assert_eq!(&*got[0].topic, "site1/state");
}

#[test]
fn certificate_identity_admits_a_client_when_anonymous_is_off() {
    let mut h = Harness::with(Limits {
        allow_anonymous: false,
        ..Limits::default()
    });
    let a = h.connect(1, "anon", ProtocolVersion::V5, true);
    assert_eq!(connack(&a, 1).1, ReasonCode::NotAuthorized);
    h.open(2);
    h.input(Input::PeerIdentity {
        conn: ConnId(2),
        username: "device-7".into(),
    });
    let a = h.packet(
        2,
        Packet::Connect(Box::new(connect("dev", ProtocolVersion::V5, true))),
    );
    assert_eq!(connack(&a, 2).1, ReasonCode::Success);
}

#[test]
fn flows_are_made_at_the_first_message_and_dropped_at_a_quiet_point() {
    let mut h = Harness::new();
    let mut c = connect("sub", ProtocolVersion::V311, true);
    c.keep_alive = 10;
    h.connect_with(1, c);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", ProtocolVersion::V311, true);
    let key = h.engine.by_client_id["sub"];
    assert!(h.engine.sessions[key].flows().is_none(), "idle: no flows");
    let a = h.publish(2, "t", b"1", QoS::AtLeastOnce, 1);
    assert_eq!(publishes(&a, 1)[0].packet_id, 1);
    assert_eq!(h.engine.sessions[key].inflight_len(), 1);
    h.packet(1, Packet::PubAck(ack(1)));
    assert!(
        h.engine.sessions[key].flows().is_some(),
        "kept between messages"
    );
    h.advance_to(5_000);
    h.packet(1, Packet::PingReq);
    // The keep alive check at 15 s finds the client alive and its flows empty.
    h.advance_to(15_000);
    assert!(h.engine.sessions[key].flows().is_none());
    let a = h.publish(2, "t", b"2", QoS::AtLeastOnce, 2);
    assert_eq!(publishes(&a, 1)[0].packet_id, 2, "packet ids go on");
    assert_eq!(h.engine.sessions[key].inflight_len(), 1);
}

#[test]
fn inbound_aliases_are_made_at_first_use_within_the_maximum_announced() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V311, true);
    h.subscribe(1, "a/#", QoS::AtMostOnce);
    h.connect(2, "old", ProtocolVersion::V5, true);
    let now = h.now;
    let limits = Limits {
        max_topic_alias: 20,
        ..Limits::default()
    };
    h.engine.set_limits(now, limits);
    // A raised maximum applies to later connections: this one keeps the 10 it was told.
    let mut p = publish("a/b", b"1", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(11);
    let a = h.packet(2, Packet::Publish(p));
    let invalid = |a: &[Action], conn| {
        let reason = ReasonCode::TopicAliasInvalid;
        matches!(sent(a, conn)[0], Packet::Disconnect(d) if d.reason == reason)
    };
    assert!(invalid(&a, 2));
    h.connect(3, "new", ProtocolVersion::V5, true);
    let key = h.engine.by_client_id["new"];
    let aliases = |h: &Harness| {
        let link = h.engine.sessions[key].link.as_ref();
        link.is_some_and(|l| l.aliases.is_some())
    };
    assert!(!aliases(&h), "no alias used yet");
    let mut p = publish("a/b", b"2", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(20);
    h.packet(3, Packet::Publish(p));
    assert!(aliases(&h));
    let mut p = publish("", b"3", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(20);
    let a = h.packet(3, Packet::Publish(p));
    assert_eq!(&*publishes(&a, 1)[0].topic, "a/b");
    let mut p = publish("a/c", b"4", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(21);
    assert!(invalid(&h.packet(3, Packet::Publish(p)), 3));
    // An alias used before any was set is a protocol error, tables or not.
    h.connect(4, "fresh", ProtocolVersion::V5, true);
    let mut p = publish("", b"5", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    let a = h.packet(4, Packet::Publish(p));
    assert!(
        matches!(sent(&a, 4)[0], Packet::Disconnect(d) if d.reason == ReasonCode::ProtocolError)
    );
}
