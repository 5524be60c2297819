//! Operator commands and the read-only views, as the HTTP API uses them.

use super::*;
use crate::engine::event::{Notice, Peer};
use crate::engine::message::Message;

fn v5_with_will_and_expiry(id: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = connect(id, ProtocolVersion::V5, true);
    c.will = Some(will("wills/x", Some(delay)));
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn operator_message(topic: &str, retain: bool) -> Message {
    Message {
        topic: topic.into(),
        payload: Rc::from(&b"hi"[..]),
        qos: QoS::AtLeastOnce,
        retain,
        properties: Props::none(),
        expires_at: None,
        origin: None,
    }
}

#[test]
fn disconnect_sends_the_chosen_reason_and_publishes_the_will() {
    let mut h = Harness::new();
    h.connect(1, "watcher", ProtocolVersion::V5, true);
    h.subscribe(1, "wills/#", QoS::AtMostOnce);
    h.connect_with(2, v5_with_will_and_expiry("kicked", 0, 60));
    assert!(h.engine.client("kicked").is_some());
    h.engine
        .admin_disconnect(h.now, "kicked", ReasonCode::ServerBusy);
    let actions: Vec<Action> = std::iter::from_fn(|| h.engine.poll_action()).collect();
    let to_kicked = sent(&actions, 2);
    assert!(matches!(
        to_kicked.as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::ServerBusy
    ));
    assert!(closes(&actions, 2));
    assert_eq!(publishes(&actions, 1).len(), 1, "the will goes out");
    // The session outlives the connection, as its expiry says.
    assert!(h.engine.client("kicked").is_none());
    let s = h.engine.session("kicked").expect("session kept");
    assert_eq!((s.conn, s.expires_in_secs), (None, Some(60)));
    assert!(!h
        .engine
        .admin_disconnect(h.now, "kicked", ReasonCode::ServerBusy));
}

#[test]
fn ending_an_offline_session_publishes_its_delayed_will() {
    let mut h = Harness::new();
    h.connect(1, "watcher", ProtocolVersion::V5, true);
    h.subscribe(1, "wills/#", QoS::AtMostOnce);
    h.connect_with(2, v5_with_will_and_expiry("gone", 30, 300));
    h.subscribe(2, "a/b", QoS::AtLeastOnce);
    h.closed(2);
    assert_eq!(h.engine.counts().sessions_offline, 1);
    assert_eq!(h.engine.subscriptions(Some("gone")).count(), 1);
    assert!(h.engine.admin_end_session(h.now, "gone"));
    let actions: Vec<Action> = std::iter::from_fn(|| h.engine.poll_action()).collect();
    assert_eq!(
        publishes(&actions, 1).len(),
        1,
        "the delayed will goes out now"
    );
    assert!(h.engine.session("gone").is_none());
    assert_eq!(h.engine.subscriptions(None).count(), 1);
    assert!(!h.engine.admin_end_session(h.now, "gone"));
}

#[test]
fn operator_publish_is_routed_retained_and_cleared() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V311, true);
    h.subscribe(1, "op/#", QoS::AtLeastOnce);
    h.engine
        .admin_publish(h.now, operator_message("op/x", true));
    let actions: Vec<Action> = std::iter::from_fn(|| h.engine.poll_action()).collect();
    let got = publishes(&actions, 1);
    assert_eq!(got.len(), 1);
    assert_eq!((&*got[0].topic, got[0].qos), ("op/x", QoS::AtLeastOnce));
    assert_eq!(h.engine.retained_matching("op/+", h.now).count(), 1);
    assert!(h.engine.admin_clear_retained(h.now, "op/x"));
    assert!(!h.engine.admin_clear_retained(h.now, "op/x"));
    assert_eq!(
        h.engine
            .retained_matching("#", h.now)
            .filter(|m| &*m.topic == "op/x")
            .count(),
        0
    );
}

#[test]
fn views_list_clients_in_client_id_order() {
    let mut h = Harness::new();
    for (conn, id) in [(1, "b"), (2, "a"), (3, "c")] {
        h.connect(conn, id, ProtocolVersion::V311, true);
    }
    let ids: Vec<String> = h
        .engine
        .clients()
        .map(|c| c.client_id.to_string())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let c = h.engine.client("a").expect("connected");
    assert_eq!(
        (c.conn, c.version, c.gateway),
        (ConnId(2), ProtocolVersion::V311, false)
    );
    assert_eq!(h.engine.counts().clients_connected, 3);
}

#[test]
fn notices_tell_connections_subscriptions_and_ends_when_enabled() {
    let mut h = Harness::new();
    h.connect(1, "quiet", ProtocolVersion::V311, true);
    assert!(h.engine.take_notices().is_empty(), "off by default");
    h.engine.enable_notices();
    h.connect(2, "loud", ProtocolVersion::V5, true);
    h.subscribe(2, "a/+", QoS::AtLeastOnce);
    h.closed(2);
    let notices = h.engine.take_notices();
    let expected_peer = Peer::V4 {
        ip: [127, 0, 0, 1],
        port: 40002,
    };
    assert_eq!(expected_peer.to_string(), "127.0.0.1:40002");
    assert_eq!(
        notices,
        vec![
            Notice::Connected {
                client_id: "loud".into(),
                peer: expected_peer,
                version: ProtocolVersion::V5,
                username: None,
            },
            Notice::Subscribed {
                client_id: "loud".into(),
                filters: vec![("a/+".to_owned(), 1)],
            },
            Notice::Disconnected {
                client_id: "loud".into(),
                reason: "test".to_owned(),
            },
        ]
    );
    assert!(!h.engine.has_notices());
}

#[test]
fn a_particular_queue_bound_replaces_the_broker_one() {
    let mut h = Harness::new();
    h.connect(1, "bridge-local", ProtocolVersion::V311, false);
    h.subscribe(1, "q/#", QoS::AtLeastOnce);
    h.closed(1);
    h.engine.set_queue_limit("bridge-local", Some(2));
    h.connect(2, "pub", ProtocolVersion::V311, true);
    for id in 1..=3 {
        h.publish(2, "q/x", b"m", QoS::AtLeastOnce, id);
    }
    assert_eq!(h.engine.session("bridge-local").map(|s| s.queued), Some(2));
    h.engine.set_queue_limit("bridge-local", None);
    h.publish(2, "q/x", b"m", QoS::AtLeastOnce, 4);
    assert_eq!(h.engine.session("bridge-local").map(|s| s.queued), Some(3));
}
