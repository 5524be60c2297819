//! The MQTT-SN bridge driven with encoded datagrams and times, no sockets.

use super::*;
use crate::bridge::mqtt::BRIDGE_LISTENER;
use crate::config::bridge::{Direction, SnBridgeConfig, TopicMapping};

fn mapping(pattern: &str, direction: Direction, qos: QoS, prefixes: (&str, &str)) -> TopicMapping {
    TopicMapping {
        pattern: pattern.into(),
        direction,
        qos,
        local_prefix: prefixes.0.into(),
        remote_prefix: prefixes.1.into(),
    }
}

fn config() -> BridgeConfig {
    let mut c = BridgeConfig::new("sn", "gw", 1883);
    let p = ("site/", "gw/");
    c.topics = vec![
        mapping("s/#", Direction::Out, QoS::AtLeastOnce, p),
        mapping("cmd/#", Direction::In, QoS::ExactlyOnce, p),
        mapping("ab", Direction::Both, QoS::AtLeastOnce, ("", "")),
        mapping("status", Direction::In, QoS::AtLeastOnce, p),
    ];
    c.keepalive_secs = 60;
    c.kind = BridgeKind::MqttSn(SnBridgeConfig {
        multicast_group: None,
        search_radius: 1,
        gateway_id: None,
        dtls: None,
        predefined: Vec::new(),
    });
    c
}

fn discovery(gateway_id: Option<u8>) -> BridgeConfig {
    let mut c = config();
    c.addresses.clear();
    c.kind = BridgeKind::MqttSn(SnBridgeConfig {
        multicast_group: "225.1.1.1:1883".parse().ok(),
        search_radius: 2,
        gateway_id,
        dtls: None,
        predefined: Vec::new(),
    });
    c
}

fn enc(msg: &Message<'_>) -> Vec<u8> {
    encode(msg)
}

fn drain(b: &mut SnBridge) -> Vec<SnOutput> {
    std::iter::from_fn(|| b.poll()).collect()
}

/// The messages to the gateway.
fn sent(out: &[SnOutput]) -> Vec<Message<'_>> {
    out.iter()
        .filter_map(|o| match o {
            SnOutput::ToGateway(bytes) => match sn::decode(bytes) {
                Ok(Frame::Message(m)) => Some(m),
                other => panic!("{other:?}"),
            },
            _ => None,
        })
        .collect()
}

fn to_engine(out: &[SnOutput]) -> Vec<&Input> {
    out.iter()
        .filter_map(|o| match o {
            SnOutput::Engine(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn engine_packets(out: &[SnOutput]) -> Vec<&Packet> {
    to_engine(out)
        .into_iter()
        .filter_map(|i| match i {
            Input::Packet { packet, .. } => Some(packet),
            _ => None,
        })
        .collect()
}

fn publish(topic: &str, qos: QoS, id: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Props::none(),
        payload: Rc::from(&b"x"[..]),
    })
}

fn connack() -> Vec<u8> {
    enc(&Message::ConnAck {
        code: ReturnCode::Accepted,
    })
}

/// A bridge through its CONNACK, with the outputs of the way.
fn connected(config: BridgeConfig) -> (SnBridge, Vec<SnOutput>) {
    let mut b = SnBridge::new(config, 7, Millis(0), 20);
    b.set_local_id(ConnId(99));
    b.tick(Millis(0));
    let mut out = drain(&mut b);
    b.datagram(Millis(1), true, &connack());
    out.extend(drain(&mut b));
    assert_eq!(b.state_name(), "connected");
    (b, out)
}

/// A connected bridge whose gateway subscriptions are all granted: `gw/status` gets topic
/// id 9, the wildcard filter none.
fn ready() -> SnBridge {
    let (mut b, mut out) = connected(config());
    let mut filters = Vec::new();
    while let Some(&Message::Subscribe { msg_id, topic, .. }) = sent(&out).last() {
        filters.push(topic.to_owned_topic());
        let topic_id = if topic == SubTopic::Name(b"gw/status") {
            9
        } else {
            0
        };
        let ack = Message::SubAck {
            flags: Flags::default(),
            topic_id,
            msg_id,
            code: ReturnCode::Accepted,
        };
        b.datagram(Millis(2), true, &enc(&ack));
        out = drain(&mut b);
    }
    assert_eq!(filters, ["gw/cmd/#", "short ab", "gw/status"]);
    b
}

trait Named {
    fn to_owned_topic(&self) -> String;
}

impl Named for SubTopic<'_> {
    fn to_owned_topic(&self) -> String {
        match self {
            SubTopic::Name(n) => String::from_utf8_lossy(n).into_owned(),
            SubTopic::Short(s) => format!("short {}", String::from_utf8_lossy(s)),
            SubTopic::Predefined(id) => format!("predefined {id}"),
        }
    }
}

fn state_is_lost(b: &SnBridge, out: &[SnOutput]) {
    assert_eq!(b.state_name(), "waiting");
    assert!(out
        .iter()
        .any(|o| matches!(o, SnOutput::Notify { up: false, .. })));
    assert!(to_engine(out).iter().any(|i| matches!(
        i,
        Input::Closed {
            conn: ConnId(99),
            ..
        }
    )));
}

#[test]
fn connect_opens_the_local_session_and_subscribes_on_the_gateway() {
    let (b, out) = connected(config());
    let Message::Connect {
        flags,
        protocol_id,
        duration,
        client_id,
    } = sent(&out)[0]
    else {
        panic!("CONNECT first: {out:?}");
    };
    assert_eq!((flags.clean_session, protocol_id, duration), (false, 1, 60));
    assert_eq!(client_id, b"culex.sn");
    let inputs = to_engine(&out);
    assert!(matches!(
        inputs[0],
        Input::Opened { conn: ConnId(99), listener, .. } if *listener == BRIDGE_LISTENER
    ));
    assert!(matches!(inputs[1], Input::PeerIdentity { .. }));
    let packets = engine_packets(&out);
    let Packet::Connect(local) = packets[0] else {
        panic!("{packets:?}");
    };
    assert!(!local.clean_start && local.client_id == "local.culex.sn");
    assert_eq!(local.properties.receive_maximum, Some(1));
    let Packet::Subscribe(s) = packets[1] else {
        panic!("{packets:?}");
    };
    let local: Vec<_> = s
        .filters
        .iter()
        .map(|(f, o)| (f.as_str(), o.no_local))
        .collect();
    assert_eq!(local, [("site/s/#", true), ("ab", true)]);
    assert!(out
        .iter()
        .any(|o| matches!(o, SnOutput::Notify { up: true, .. })));
    // One gateway SUBSCRIBE at a time: the first incoming filter.
    let msgs = sent(&out);
    assert!(matches!(
        msgs[1..],
        [Message::Subscribe { flags, topic: SubTopic::Name(b"gw/cmd/#"), .. }]
            if flags.qos == SnQos::ExactlyOnce
    ));
    assert_eq!(b.counters(), (1, 0, 0));
    ready();
}

#[test]
fn outgoing_qos1_registers_first_and_is_acknowledged_locally_after_the_puback() {
    let mut b = ready();
    b.from_engine(Millis(5), publish("site/s/t", QoS::AtLeastOnce, 7));
    let out = drain(&mut b);
    let [Message::Register {
        topic_id: 0,
        msg_id,
        topic_name: b"gw/s/t",
    }] = sent(&out)[..]
    else {
        panic!("{out:?}");
    };
    let regack = Message::RegAck {
        topic_id: 5,
        msg_id,
        code: ReturnCode::Accepted,
    };
    b.datagram(Millis(6), true, &enc(&regack));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish { flags, topic_id: 5, msg_id: 7, data: b"x" }]
            if flags.qos == SnQos::AtLeastOnce && flags.topic_id_type == TopicIdType::Normal
    ));
    assert!(engine_packets(&out).is_empty(), "no local PUBACK yet");
    let puback = puback(5, 7, ReturnCode::Accepted);
    b.datagram(Millis(7), true, &enc(&puback));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubAck(a)] if a.packet_id == 7));
    // The topic id is known now: no second REGISTER.
    b.from_engine(Millis(8), publish("site/s/t", QoS::AtLeastOnce, 8));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish {
            topic_id: 5,
            msg_id: 8,
            ..
        }]
    ));
    assert_eq!(b.counters().1, 2);
}

#[test]
fn outgoing_qos2_full_flow() {
    let mut b = ready();
    b.from_engine(Millis(5), publish("site/s/u", QoS::ExactlyOnce, 3));
    let out = drain(&mut b);
    let [Message::Register { msg_id, .. }] = sent(&out)[..] else {
        panic!("{out:?}");
    };
    let regack = Message::RegAck {
        topic_id: 6,
        msg_id,
        code: ReturnCode::Accepted,
    };
    b.datagram(Millis(6), true, &enc(&regack));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish { flags, topic_id: 6, msg_id: 3, .. }]
            if flags.qos == SnQos::ExactlyOnce
    ));
    b.datagram(Millis(7), true, &enc(&Message::PubRec { msg_id: 3 }));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubRec(a)] if a.packet_id == 3));
    b.from_engine(Millis(8), Packet::PubRel(Ack::success(3)));
    let out = drain(&mut b);
    assert!(matches!(sent(&out)[..], [Message::PubRel { msg_id: 3 }]));
    b.datagram(Millis(9), true, &enc(&Message::PubComp { msg_id: 3 }));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubComp(a)] if a.packet_id == 3));
}

#[test]
fn incoming_qos1_after_the_gateways_register() {
    let mut b = ready();
    let register = Message::Register {
        topic_id: 3,
        msg_id: 1,
        topic_name: b"gw/cmd/go",
    };
    b.datagram(Millis(5), true, &enc(&register));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::RegAck {
            topic_id: 3,
            msg_id: 1,
            code: ReturnCode::Accepted
        }]
    ));
    let flags = Flags {
        qos: SnQos::AtLeastOnce,
        ..Flags::default()
    };
    let p = Message::Publish {
        flags,
        topic_id: 3,
        msg_id: 11,
        data: b"go",
    };
    b.datagram(Millis(6), true, &enc(&p));
    let out = drain(&mut b);
    let [Packet::Publish(p)] = engine_packets(&out)[..] else {
        panic!("{out:?}");
    };
    assert_eq!(
        (&*p.topic, p.packet_id, &p.payload[..]),
        ("site/cmd/go", 11, &b"go"[..])
    );
    assert!(sent(&out).is_empty(), "acknowledged once the engine has it");
    b.from_engine(Millis(7), Packet::PubAck(Ack::success(11)));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::PubAck {
            topic_id: 3,
            msg_id: 11,
            code: ReturnCode::Accepted
        }]
    ));
    // An unknown topic id is refused.
    let p = Message::Publish {
        flags,
        topic_id: 4,
        msg_id: 12,
        data: b"",
    };
    b.datagram(Millis(8), true, &enc(&p));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::PubAck {
            topic_id: 4,
            msg_id: 12,
            code: ReturnCode::InvalidTopicId
        }]
    ));
    assert_eq!(b.counters().2, 1);
}

#[test]
fn suback_topic_ids_and_short_topics() {
    let mut b = ready();
    // `gw/status` got topic id 9 in its SUBACK.
    let p = Message::Publish {
        flags: Flags::default(),
        topic_id: 9,
        msg_id: 0,
        data: b"on",
    };
    b.datagram(Millis(5), true, &enc(&p));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::Publish(p)] if &*p.topic == "site/status"));
    // A short topic name both ways, never registered.
    let short = u16::from_be_bytes(*b"ab");
    let flags = Flags {
        qos: SnQos::AtLeastOnce,
        topic_id_type: TopicIdType::Short,
        ..Flags::default()
    };
    let p = Message::Publish {
        flags,
        topic_id: short,
        msg_id: 21,
        data: b"1",
    };
    b.datagram(Millis(6), true, &enc(&p));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::Publish(p)] if &*p.topic == "ab"));
    b.from_engine(Millis(7), publish("ab", QoS::AtLeastOnce, 4));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish { flags, topic_id, msg_id: 4, .. }]
            if flags.topic_id_type == TopicIdType::Short && topic_id == short
    ));
}

#[test]
fn an_invalid_topic_id_is_registered_again() {
    let mut b = ready();
    b.from_engine(Millis(5), publish("site/s/t", QoS::AtLeastOnce, 7));
    let out = drain(&mut b);
    let [Message::Register { msg_id, .. }] = sent(&out)[..] else {
        panic!("{out:?}");
    };
    let regack = |msg_id| Message::RegAck {
        topic_id: 5,
        msg_id,
        code: ReturnCode::Accepted,
    };
    b.datagram(Millis(6), true, &enc(&regack(msg_id)));
    drain(&mut b);
    let refused = Message::PubAck {
        topic_id: 5,
        msg_id: 7,
        code: ReturnCode::InvalidTopicId,
    };
    b.datagram(Millis(7), true, &enc(&refused));
    let out = drain(&mut b);
    let [Message::Register {
        msg_id,
        topic_name: b"gw/s/t",
        ..
    }] = sent(&out)[..]
    else {
        panic!("{out:?}");
    };
    b.datagram(Millis(8), true, &enc(&regack(msg_id)));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish { msg_id: 7, .. }]
    ));
    // Refused twice: completed here, not sent forever.
    b.datagram(Millis(9), true, &enc(&refused));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubAck(a)] if a.packet_id == 7));
}

#[test]
fn keepalive_pings_and_the_gateway_is_lost_after_the_retries() {
    let mut b = ready();
    let due = b.next_deadline().expect("ping due");
    assert_eq!(due, Millis(60_002));
    b.tick(due);
    assert!(matches!(
        sent(&drain(&mut b))[..],
        [Message::PingReq { client_id: None }]
    ));
    b.datagram(Millis(60_010), true, &enc(&Message::PingResp));
    let mut now = Millis(120_002);
    b.tick(now);
    assert!(matches!(
        sent(&drain(&mut b))[..],
        [Message::PingReq { .. }]
    ));
    for _ in 0..RETRY_COUNT {
        now = now.saturating_add_ms(RETRY_MS);
        b.tick(now);
        assert!(matches!(
            sent(&drain(&mut b))[..],
            [Message::PingReq { .. }]
        ));
    }
    now = now.saturating_add_ms(RETRY_MS);
    b.tick(now);
    let out = drain(&mut b);
    state_is_lost(&b, &out);
    assert!(b.last_error().is_some_and(|e| e.contains("PINGRESP")));
}

#[test]
fn unacknowledged_messages_are_sent_again_then_the_gateway_is_lost() {
    let mut b = ready();
    b.from_engine(Millis(5), publish("ab", QoS::AtLeastOnce, 4));
    let out = drain(&mut b);
    assert!(matches!(sent(&out)[..], [Message::Publish { flags, .. }] if !flags.dup));
    let mut now = Millis(5);
    for _ in 0..RETRY_COUNT {
        now = now.saturating_add_ms(RETRY_MS);
        assert_eq!(b.next_deadline(), Some(now));
        b.tick(now);
        let out = drain(&mut b);
        assert!(matches!(sent(&out)[..], [Message::Publish { flags, msg_id: 4, .. }] if flags.dup));
    }
    b.tick(now.saturating_add_ms(RETRY_MS));
    let out = drain(&mut b);
    state_is_lost(&b, &out);
    assert!(matches!(
        sent(&out)[..],
        [Message::Disconnect { duration: None }]
    ));
    assert!(b.last_error().is_some_and(|e| e.contains("retries")));
}

#[test]
fn disconnect_from_the_gateway_backs_off_and_reconnects() {
    let mut b = ready();
    b.datagram(
        Millis(1_000),
        true,
        &enc(&Message::Disconnect { duration: None }),
    );
    let out = drain(&mut b);
    state_is_lost(&b, &out);
    assert!(sent(&out).is_empty());
    let until = b.next_deadline().expect("a next attempt");
    assert!(
        (5_000..=30_000).contains(&until.since(Millis(1_000))),
        "{until:?}"
    );
    // Later engine actions for the old session are ignored.
    b.from_engine(Millis(1_001), publish("site/s/t", QoS::AtMostOnce, 0));
    assert!(drain(&mut b).is_empty());
    assert!(b.wants_local_id());
    b.set_local_id(ConnId(100));
    b.tick(until);
    assert!(matches!(
        sent(&drain(&mut b))[..],
        [Message::Connect { .. }]
    ));
    b.datagram(until, true, &connack());
    let out = drain(&mut b);
    assert!(matches!(
        to_engine(&out)[0],
        Input::Opened {
            conn: ConnId(100),
            ..
        }
    ));
    assert_eq!(b.counters().0, 2);
}

#[test]
fn a_silent_gateway_is_retried_with_a_growing_backoff() {
    let mut config = config();
    config.restart_timeout_base_secs = 5;
    config.restart_timeout_cap_secs = Some(30);
    let mut b = SnBridge::new(config, 1, Millis(0), 20);
    let mut now = Millis(0);
    let mut waits = Vec::new();
    for _ in 0..6 {
        b.tick(now);
        for _ in 0..RETRY_COUNT {
            now = now.saturating_add_ms(RETRY_MS);
            b.tick(now);
        }
        let connects = sent(&drain(&mut b))
            .iter()
            .filter(|m| matches!(m, Message::Connect { .. }))
            .count();
        assert_eq!(connects, 1 + RETRY_COUNT as usize);
        now = now.saturating_add_ms(RETRY_MS);
        b.tick(now);
        assert_eq!(b.state_name(), "waiting");
        let until = b.next_deadline().expect("next attempt");
        waits.push(until.since(now));
        now = until;
    }
    assert!(
        waits.iter().all(|w| (5_000..=30_000).contains(w)),
        "{waits:?}"
    );
    assert!(waits.iter().any(|&w| w > 5_000), "{waits:?}");
    assert!(b.last_error().is_some_and(|e| e.contains("CONNACK")));
    // A refused CONNACK is a failure too.
    b.tick(now);
    b.datagram(
        now,
        true,
        &enc(&Message::ConnAck {
            code: ReturnCode::Congestion,
        }),
    );
    assert_eq!(b.state_name(), "waiting");
    assert!(b
        .last_error()
        .is_some_and(|e| e.contains("refused: Congestion")));
}

#[test]
fn discovery_by_gwinfo() {
    let mut b = SnBridge::new(discovery(None), 3, Millis(0), 20);
    b.set_local_id(ConnId(99));
    b.tick(Millis(0));
    assert_eq!(b.state_name(), "searching");
    let first = b.next_deadline().expect("a search");
    assert!(first.0 <= SEARCH_DELAY_MS);
    b.tick(first);
    let out = drain(&mut b);
    let [SnOutput::ToGroup(bytes)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(
        sn::decode(bytes),
        Ok(Frame::Message(Message::SearchGw { radius: 2 }))
    );
    // No answer: searched again later, each wait longer.
    let second = b.next_deadline().expect("a search");
    assert_eq!(second.since(first), SEARCH_DELAY_MS);
    b.tick(second);
    drain(&mut b);
    assert_eq!(
        b.next_deadline().map(|d| d.since(second)),
        Some(2 * SEARCH_DELAY_MS)
    );
    // What other clients send is not an answer.
    b.datagram(second, false, &enc(&Message::SearchGw { radius: 1 }));
    assert!(drain(&mut b).is_empty());
    let gwinfo = Message::GwInfo {
        gw_id: 4,
        gw_add: b"",
    };
    b.datagram(Millis(20_000), false, &enc(&gwinfo));
    let out = drain(&mut b);
    assert!(matches!(out[0], SnOutput::UseSource));
    assert!(matches!(sent(&out)[..], [Message::Connect { .. }]));
    assert_eq!(b.state_name(), "connecting");
    b.datagram(Millis(20_001), true, &connack());
    assert_eq!(b.state_name(), "connected");
}

#[test]
fn discovery_by_advertise_honours_the_gateway_id_and_starts_again_after_a_loss() {
    let mut b = SnBridge::new(discovery(Some(2)), 3, Millis(0), 20);
    b.set_local_id(ConnId(99));
    b.tick(Millis(0));
    let advertise = |gw_id| {
        enc(&Message::Advertise {
            gw_id,
            duration: 900,
        })
    };
    b.datagram(Millis(1), false, &advertise(1));
    assert!(drain(&mut b).is_empty(), "another gateway");
    assert_eq!(b.state_name(), "searching");
    b.datagram(Millis(2), false, &advertise(2));
    assert!(matches!(
        drain(&mut b)[..],
        [SnOutput::UseSource, SnOutput::ToGateway(_)]
    ));
    b.datagram(Millis(3), true, &connack());
    drain(&mut b);
    b.datagram(
        Millis(4),
        true,
        &enc(&Message::Disconnect { duration: None }),
    );
    drain(&mut b);
    let until = b.next_deadline().expect("next attempt");
    b.tick(until);
    assert_eq!(b.state_name(), "searching");
}

#[test]
fn unmapped_incoming_messages_are_answered_by_the_bridge() {
    let mut b = ready();
    let register = Message::Register {
        topic_id: 8,
        msg_id: 2,
        topic_name: b"elsewhere",
    };
    b.datagram(Millis(5), true, &enc(&register));
    drain(&mut b);
    let flags = Flags {
        qos: SnQos::ExactlyOnce,
        ..Flags::default()
    };
    let p = Message::Publish {
        flags,
        topic_id: 8,
        msg_id: 30,
        data: b"",
    };
    b.datagram(Millis(6), true, &enc(&p));
    let out = drain(&mut b);
    assert!(engine_packets(&out).is_empty());
    assert!(matches!(sent(&out)[..], [Message::PubRec { msg_id: 30 }]));
    b.datagram(Millis(7), true, &enc(&Message::PubRel { msg_id: 30 }));
    assert!(matches!(
        sent(&drain(&mut b))[..],
        [Message::PubComp { msg_id: 30 }]
    ));
}

#[test]
fn stop_disconnects_and_closes_the_local_session() {
    let mut b = ready();
    b.stop(Millis(4));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Disconnect { duration: None }]
    ));
    assert!(to_engine(&out)
        .iter()
        .any(|i| matches!(i, Input::Closed { .. })));
    assert!(out
        .iter()
        .any(|o| matches!(o, SnOutput::Notify { up: false, .. })));
    assert_eq!(b.state_name(), "stopped");
    assert_eq!(b.next_deadline(), None);
    b.tick(Millis(1_000_000));
    assert!(drain(&mut b).is_empty());
}

/// [`config`] with predefined topic ids: an outgoing topic, an incoming one under a
/// wildcard mapping, and the remote filter of the `status` mapping.
fn predefined() -> BridgeConfig {
    let mut c = config();
    if let BridgeKind::MqttSn(s) = &mut c.kind {
        s.predefined = vec![
            (3, "gw/s/pre".into()),
            (4, "gw/status".into()),
            (7, "gw/cmd/x".into()),
        ];
    }
    c
}

/// A connected bridge of [`predefined`] whose gateway subscriptions are all granted, with
/// the SUBSCRIBE messages it sent.
fn ready_predefined() -> (SnBridge, Vec<(Flags, String)>) {
    let (mut b, mut out) = connected(predefined());
    let mut subscribed = Vec::new();
    while let Some(&Message::Subscribe {
        flags,
        msg_id,
        topic,
    }) = sent(&out).last()
    {
        subscribed.push((flags, topic.to_owned_topic()));
        let topic_id = match topic {
            SubTopic::Predefined(id) => id,
            _ => 0,
        };
        let ack = Message::SubAck {
            flags: Flags::default(),
            topic_id,
            msg_id,
            code: ReturnCode::Accepted,
        };
        b.datagram(Millis(2), true, &enc(&ack));
        out = drain(&mut b);
    }
    (b, subscribed)
}

#[test]
fn a_predefined_remote_filter_is_subscribed_by_its_id() {
    let (_, subscribed) = ready_predefined();
    let topics: Vec<_> = subscribed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(topics, ["gw/cmd/#", "short ab", "predefined 4"]);
    let (flags, _) = subscribed[2];
    assert_eq!(flags.topic_id_type, TopicIdType::Predefined);
    assert_eq!(flags.qos, SnQos::AtLeastOnce);
}

#[test]
fn outgoing_predefined_topics_are_published_without_register() {
    let (mut b, _) = ready_predefined();
    b.from_engine(Millis(5), publish("site/s/pre", QoS::AtLeastOnce, 7));
    let out = drain(&mut b);
    let [Message::Publish {
        flags,
        topic_id: 3,
        msg_id: 7,
        data: b"x",
    }] = sent(&out)[..]
    else {
        panic!("{out:?}");
    };
    assert_eq!(flags.topic_id_type, TopicIdType::Predefined);
    let ack = puback(3, 7, ReturnCode::Accepted);
    b.datagram(Millis(6), true, &enc(&ack));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::PubAck(a)] if a.packet_id == 7));
    // A QoS 0 message goes at once, under the same id.
    b.from_engine(Millis(7), publish("site/s/pre", QoS::AtMostOnce, 0));
    let out = drain(&mut b);
    assert!(matches!(
        sent(&out)[..],
        [Message::Publish { flags, topic_id: 3, .. }]
            if flags.topic_id_type == TopicIdType::Predefined
    ));
}

#[test]
fn incoming_predefined_topics_reach_the_engine() {
    let (mut b, _) = ready_predefined();
    let flags = Flags {
        qos: SnQos::AtLeastOnce,
        topic_id_type: TopicIdType::Predefined,
        ..Flags::default()
    };
    let p = Message::Publish {
        flags,
        topic_id: 7,
        msg_id: 30,
        data: b"go",
    };
    b.datagram(Millis(5), true, &enc(&p));
    let out = drain(&mut b);
    assert!(matches!(
        engine_packets(&out)[..],
        [Packet::Publish(p)] if &*p.topic == "site/cmd/x" && p.packet_id == 30
    ));
    b.from_engine(Millis(6), Packet::PubAck(Ack::success(30)));
    let out = drain(&mut b);
    assert_eq!(
        sent(&out),
        [puback(7, 30, ReturnCode::Accepted)],
        "the PUBACK names the predefined id"
    );
    // The subscribed predefined filter, by its id.
    let p = Message::Publish {
        flags: Flags {
            topic_id_type: TopicIdType::Predefined,
            ..Flags::default()
        },
        topic_id: 4,
        msg_id: 0,
        data: b"on",
    };
    b.datagram(Millis(7), true, &enc(&p));
    let out = drain(&mut b);
    assert!(matches!(engine_packets(&out)[..], [Packet::Publish(p)] if &*p.topic == "site/status"));
}

#[test]
fn an_unknown_predefined_topic_id_is_refused() {
    let (mut b, _) = ready_predefined();
    let flags = Flags {
        qos: SnQos::AtLeastOnce,
        topic_id_type: TopicIdType::Predefined,
        ..Flags::default()
    };
    // Ids the predefined table lacks.
    for topic_id in [99, 1] {
        let p = Message::Publish {
            flags,
            topic_id,
            msg_id: 31,
            data: b"?",
        };
        b.datagram(Millis(5), true, &enc(&p));
        let out = drain(&mut b);
        assert!(engine_packets(&out).is_empty(), "{out:?}");
        assert_eq!(
            sent(&out),
            [puback(topic_id, 31, ReturnCode::InvalidTopicId)]
        );
    }
    assert_eq!(b.counters().2, 0);
}
