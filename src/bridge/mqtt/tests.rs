//! The bridge state machine driven with packets and times, no sockets.

use super::*;
use crate::codec::mqtt::{ConnAck, SubAck};
use crate::config::bridge::{Direction, TopicMapping};

fn config() -> BridgeConfig {
    let mut c = BridgeConfig::new("b1", "127.0.0.1", 1883);
    c.addresses.push(RemoteAddress {
        host: "127.0.0.2".into(),
        port: 1884,
    });
    c.topics = vec![
        TopicMapping {
            pattern: "s/#".into(),
            direction: Direction::Out,
            qos: QoS::AtLeastOnce,
            local_prefix: "site/".into(),
            remote_prefix: "gw/".into(),
        },
        TopicMapping {
            pattern: "cmd/#".into(),
            direction: Direction::In,
            qos: QoS::ExactlyOnce,
            local_prefix: "site/".into(),
            remote_prefix: "gw/".into(),
        },
    ];
    c.keepalive_secs = 10;
    c
}

fn drain(b: &mut Bridge) -> Vec<Output> {
    std::iter::from_fn(|| b.poll()).collect()
}

fn sent(out: &[Output]) -> Vec<&Packet> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn to_engine(out: &[Output]) -> Vec<&Input> {
    out.iter()
        .filter_map(|o| match o {
            Output::Engine(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn engine_packets(out: &[Output]) -> Vec<&Packet> {
    to_engine(out)
        .into_iter()
        .filter_map(|i| match i {
            Input::Packet { packet, .. } => Some(packet),
            _ => None,
        })
        .collect()
}

fn connack() -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Props::none(),
    })
}

fn publish(topic: &str, qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Props::none(),
        payload: Rc::from(&b"x"[..]),
    }
}

/// A bridge through its CONNACK, with the outputs of the way.
fn active() -> (Bridge, Vec<Output>) {
    let mut b = Bridge::new(config(), 7, Millis(0), 20);
    b.tick(Millis(0));
    let mut out = drain(&mut b);
    b.transport_up(Millis(1), ConnId(99));
    out.extend(drain(&mut b));
    b.remote_packet(Millis(2), connack());
    out.extend(drain(&mut b));
    assert_eq!(b.state(), State::Active);
    (b, out)
}

#[test]
fn connecting_sends_connect_with_the_bridge_bit_and_opens_the_local_session() {
    let (_, out) = active();
    assert!(matches!(&out[0], Output::Connect(a) if a.host == "127.0.0.1" && a.port == 1883));
    let Packet::Connect(c) = sent(&out)[0] else {
        panic!("CONNECT first: {out:?}");
    };
    assert!(c.bridge && !c.clean_start && c.client_id == "culex.b1");
    let will = c.will.as_ref().expect("state will");
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("$SYS/broker/connection/culex.b1/state", &b"0"[..])
    );
    let inputs = to_engine(&out);
    let Input::Opened { conn, listener, .. } = inputs[0] else {
        panic!("local session opened first: {inputs:?}");
    };
    assert_eq!((*conn, *listener), (ConnId(99), BRIDGE_LISTENER));
    assert!(matches!(inputs[1], Input::PeerIdentity { .. }));
    let packets = engine_packets(&out);
    let Packet::Connect(local) = packets[0] else {
        panic!("local CONNECT: {packets:?}");
    };
    assert_eq!(local.client_id, "local.culex.b1");
    assert!(!local.clean_start);
    let Packet::Subscribe(s) = packets[1] else {
        panic!("local SUBSCRIBE: {packets:?}");
    };
    assert_eq!(s.filters[0].0, "site/s/#");
    assert!(s.filters[0].1.no_local);
    // The remote SUBSCRIBE goes last, for the incoming mapping.
    let Some(Packet::Subscribe(r)) = sent(&out).last().copied() else {
        panic!("remote SUBSCRIBE last: {out:?}");
    };
    assert_eq!(r.filters[0].0, "gw/cmd/#");
    assert_eq!(r.filters[0].1.qos, QoS::ExactlyOnce);
    assert_ne!(r.packet_id, 0);
}

#[test]
fn outgoing_qos1_is_acknowledged_locally_only_after_the_remote_broker() {
    let (mut b, _) = active();
    b.from_engine(
        Millis(5),
        Packet::Publish(publish("site/s/t", QoS::AtLeastOnce, 7)),
    );
    let out = drain(&mut b);
    let Packet::Publish(p) = sent(&out)[0] else {
        panic!("{out:?}");
    };
    assert_eq!((&*p.topic, p.packet_id), ("gw/s/t", 7));
    assert!(engine_packets(&out).is_empty(), "no local PUBACK yet");
    b.remote_packet(Millis(6), Packet::PubAck(Ack::success(7)));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubAck(a)] if a.packet_id == 7));
}

#[test]
fn incoming_qos2_flows_through_the_engine() {
    let (mut b, _) = active();
    b.remote_packet(
        Millis(5),
        Packet::Publish(publish("gw/cmd/go", QoS::ExactlyOnce, 3)),
    );
    let out = drain(&mut b);
    let Packet::Publish(p) = engine_packets(&out)[0] else {
        panic!("{out:?}");
    };
    assert_eq!((&*p.topic, p.packet_id), ("site/cmd/go", 3));
    b.from_engine(Millis(6), Packet::PubRec(Ack::success(3)));
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PubRec(a)] if a.packet_id == 3));
    b.remote_packet(Millis(7), Packet::PubRel(Ack::success(3)));
    assert!(matches!(
        engine_packets(&drain(&mut b))[..],
        [Packet::PubRel(_)]
    ));
    b.from_engine(Millis(8), Packet::PubComp(Ack::success(3)));
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PubComp(_)]));
}

#[test]
fn unmapped_remote_messages_are_answered_by_the_bridge() {
    let (mut b, _) = active();
    b.remote_packet(
        Millis(5),
        Packet::Publish(publish("other", QoS::ExactlyOnce, 4)),
    );
    let out = drain(&mut b);
    assert!(engine_packets(&out).is_empty());
    assert!(matches!(sent(&out)[..], [Packet::PubRec(a)] if a.packet_id == 4));
    b.remote_packet(Millis(6), Packet::PubRel(Ack::success(4)));
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PubComp(a)] if a.packet_id == 4));
    b.remote_packet(
        Millis(7),
        Packet::Publish(publish("other", QoS::AtLeastOnce, 5)),
    );
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PubAck(a)] if a.packet_id == 5));
}

#[test]
fn losing_the_remote_closes_the_local_session_and_backs_off() {
    let (mut b, _) = active();
    b.transport_down(Millis(1_000), "reset");
    let out = drain(&mut b);
    assert!(engine_packets(&out).is_empty());
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Notify { up: false, .. })));
    assert!(to_engine(&out).iter().any(|i| matches!(
        i,
        Input::Closed {
            conn: ConnId(99),
            ..
        }
    )));
    let State::Waiting { until } = b.state() else {
        panic!("{:?}", b.state());
    };
    let wait = until.since(Millis(1_000));
    assert!((5_000..=30_000).contains(&wait), "{wait}");
    // Once connected, the first address is tried again (no round robin).
    assert_eq!(b.address().map(|a| a.port), Some(1883));
    // Later engine actions for the old session are ignored.
    b.from_engine(
        Millis(1_001),
        Packet::Publish(publish("site/s/t", QoS::AtMostOnce, 0)),
    );
    assert!(drain(&mut b).is_empty());
}

#[test]
fn a_failed_attempt_moves_to_the_next_address_and_the_delay_grows_to_the_cap() {
    let mut b = Bridge::new(config(), 1, Millis(0), 20);
    let mut now = Millis(0);
    let mut ports = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..8 {
        b.tick(now);
        let out = drain(&mut b);
        let Some(Output::Connect(a)) = out.first() else {
            panic!("{out:?}");
        };
        ports.push(a.port);
        b.transport_down(now, "refused");
        let State::Waiting { until } = b.state() else {
            panic!();
        };
        waits.push(until.since(now));
        now = until;
    }
    assert_eq!(ports, [1883, 1884, 1883, 1884, 1883, 1884, 1883, 1884]);
    assert!(
        waits.iter().all(|w| (5_000..=30_000).contains(w)),
        "{waits:?}"
    );
    assert!(waits.iter().any(|&w| w > 5_000), "{waits:?}");
}

#[test]
fn keepalive_pings_and_gives_up_without_an_answer() {
    let (mut b, _) = active();
    b.tick(Millis(10_002));
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PingReq]));
    b.remote_packet(Millis(10_010), Packet::PingResp);
    b.tick(Millis(20_002));
    assert!(matches!(sent(&drain(&mut b))[..], [Packet::PingReq]));
    b.tick(Millis(30_002));
    let out = drain(&mut b);
    assert!(out.iter().any(|o| matches!(o, Output::Close)));
    assert!(matches!(b.state(), State::Waiting { .. }));
    assert!(b.last_error().is_some_and(|e| e.contains("PINGRESP")));
}

#[test]
fn a_refused_connack_and_a_silent_remote_are_failures() {
    let mut b = Bridge::new(config(), 7, Millis(0), 20);
    b.tick(Millis(0));
    b.transport_up(Millis(1), ConnId(5));
    drain(&mut b);
    b.remote_packet(
        Millis(2),
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::NotAuthorized,
            properties: Props::none(),
        }),
    );
    assert!(drain(&mut b).iter().any(|o| matches!(o, Output::Close)));
    assert!(b.last_error().is_some_and(|e| e.contains("refused")));
    let State::Waiting { until } = b.state() else {
        panic!();
    };
    b.tick(until);
    drain(&mut b);
    b.tick(until.saturating_add_ms(CONNECT_TIMEOUT_MS));
    assert!(drain(&mut b).iter().any(|o| matches!(o, Output::Close)));
    assert!(b.last_error().is_some_and(|e| e.contains("in time")));
}

#[test]
fn stop_disconnects_and_closes_the_local_session() {
    let (mut b, _) = active();
    b.remote_packet(
        Millis(3),
        Packet::SubAck(SubAck {
            packet_id: 1,
            properties: Props::none(),
            reasons: vec![ReasonCode::GrantedQos2],
        }),
    );
    b.stop(Millis(4));
    let out = drain(&mut b);
    // The remote state goes to 0 first: a clean DISCONNECT discards the will.
    assert!(matches!(
        sent(&out)[..],
        [Packet::Publish(p), Packet::Disconnect(_)] if &p.payload[..] == b"0" && p.retain
    ));
    assert!(out.iter().any(|o| matches!(o, Output::Close)));
    assert!(to_engine(&out)
        .iter()
        .any(|i| matches!(i, Input::Closed { .. })));
    assert_eq!(b.state(), State::Stopped);
    assert_eq!(b.next_deadline(), None);
}
