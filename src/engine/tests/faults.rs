//! The fault rules the engine decides: a refused CONNECT, the reason code forced on a
//! PUBLISH, and what the reactor is told to do with outgoing packets.

use super::*;
use crate::fault::{FaultId, Kind, Spec, Target};

fn add(h: &mut Harness, kind: Kind, target: Target, reason: Option<u64>) {
    let spec = Spec::new(kind, target, None, None, reason).expect("valid spec");
    h.engine.add_fault(spec).expect("room");
}

fn client(id: &str) -> Target {
    Target::Client(Rc::from(id))
}

#[test]
fn a_refused_connect_is_closed_without_connack_and_the_session_stays() {
    let mut h = Harness::new();
    let mut c = connect("kept", ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = Some(60);
    h.connect_with(1, c);
    h.subscribe(1, "a/b", QoS::AtLeastOnce);
    h.closed(1);
    add(&mut h, Kind::Refuse, client("kept"), None);
    for conn in [2, 3] {
        let actions = h.connect(conn, "kept", ProtocolVersion::V5, false);
        assert!(sent(&actions, conn).is_empty(), "no CONNACK");
        assert!(closes(&actions, conn));
        h.closed(conn);
    }
    let s = h.engine.session("kept").expect("session left as it was");
    assert_eq!((s.conn, s.subscriptions), (None, 1));
    assert_eq!(h.engine.faults().rules().len(), 1, "until removed");
    let actions = h.connect(4, "other", ProtocolVersion::V5, true);
    assert_eq!(connack(&actions, 4).1, ReasonCode::Success);
    h.engine.remove_fault(FaultId(1));
    let actions = h.connect(5, "kept", ProtocolVersion::V5, false);
    assert!(connack(&actions, 5).0, "session present");
}

#[test]
fn a_forced_error_reason_refuses_the_message_and_closes_a_311_client() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "a/#", QoS::AtLeastOnce);
    h.connect(2, "pub5", ProtocolVersion::V5, true);
    add(&mut h, Kind::Reason, client("pub5"), Some(0x87));
    let actions = h.publish(2, "a/b", b"x", QoS::AtMostOnce, 0);
    assert_eq!(
        publishes(&actions, 1).len(),
        1,
        "QoS 0 does not use the rule"
    );
    let actions = h.publish(2, "a/b", b"x", QoS::AtLeastOnce, 5);
    assert!(matches!(
        sent(&actions, 2).as_slice(),
        [Packet::PubAck(a)] if a.reason == ReasonCode::NotAuthorized && a.packet_id == 5
    ));
    assert!(publishes(&actions, 1).is_empty(), "not delivered");
    let actions = h.publish(2, "a/b", b"y", QoS::AtLeastOnce, 6);
    assert!(matches!(
        sent(&actions, 2).as_slice(),
        [Packet::PubAck(a)] if a.reason == ReasonCode::Success
    ));
    assert_eq!(publishes(&actions, 1).len(), 1);

    h.connect(3, "pub3", ProtocolVersion::V311, true);
    add(&mut h, Kind::Reason, client("pub3"), Some(0x80));
    let actions = h.publish(3, "a/b", b"z", QoS::ExactlyOnce, 7);
    assert!(sent(&actions, 3).is_empty(), "3.1.1 has no reason codes");
    assert!(closes(&actions, 3));
    assert!(publishes(&actions, 1).is_empty());
}

#[test]
fn a_forced_success_reason_delivers_and_answers_with_it() {
    let mut h = Harness::new();
    h.connect(1, "sub", ProtocolVersion::V5, true);
    h.subscribe(1, "a/#", QoS::AtMostOnce);
    h.connect(2, "pub", ProtocolVersion::V5, true);
    add(&mut h, Kind::Reason, client("pub"), Some(0x10));
    let actions = h.publish(2, "a/b", b"x", QoS::ExactlyOnce, 9);
    assert!(matches!(
        sent(&actions, 2).as_slice(),
        [Packet::PubRec(a)] if a.reason == ReasonCode::NoMatchingSubscribers
    ));
    assert_eq!(publishes(&actions, 1).len(), 1);
    assert!(h.engine.faults().is_empty());
}

#[test]
fn outgoing_rules_see_a_client_from_its_connack_on() {
    let mut h = Harness::new();
    let listener = Target::Listener {
        id: ListenerId(0),
        port: 1883,
    };
    let spec = Spec::new(Kind::Drop, client("c"), Some(5), None, None).expect("valid");
    h.engine.add_fault(spec).expect("room");
    h.open(1);
    assert_eq!(h.engine.fault_outgoing(h.now, ConnId(1)).drop, None);
    h.packet(
        1,
        Packet::Connect(Box::new(connect("c", ProtocolVersion::V5, true))),
    );
    assert_eq!(
        h.engine.fault_outgoing(h.now, ConnId(1)).drop,
        Some(FaultId(1))
    );
    assert_eq!(
        h.engine.fault_outgoing(h.now, ConnId(9)).drop,
        None,
        "unknown conn"
    );
    add(&mut h, Kind::Refuse, listener, None);
    assert_eq!(
        h.engine.fault_refuses_accept(ListenerId(0)),
        Some(FaultId(2))
    );
    assert_eq!(h.engine.fault_refuses_accept(ListenerId(1)), None);
}
