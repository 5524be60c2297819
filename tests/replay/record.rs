//! The scenarios of the recorded traces in `tests/traces/`: raw clients that build their
//! packets with culex's codec and wait for every answer before the next step, so that the
//! order of the trace is the scenario's alone. Every client leaves before the scenario
//! ends: a trace must not end with the broker's shutdown, which no other broker replays.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use culex::codec::mqtt::{
    self, Ack, ConnAck, Connect, Disconnect, Packet, Props, ProtocolVersion, Publish, QoS,
    ReasonCode, SubOptions, Subscribe, Unsubscribe, Will,
};
use culex::codec::mqttsn as sn;

/// How long a client waits for a packet.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A scenario: its trace file name and what it does against the broker on this port.
pub(crate) type Scenario = (&'static str, fn(u16));

pub(crate) const SCENARIOS: &[Scenario] = &[
    ("v311_pubsub", v311_pubsub),
    ("v5_properties", v5_properties),
    ("will", will),
    ("session_present", session_present),
    ("keep_alive_clock", keep_alive_clock),
];

struct Client {
    stream: TcpStream,
    version: ProtocolVersion,
    inbound: Vec<u8>,
}

fn connect_packet(version: ProtocolVersion, id: &str, clean: bool, keep_alive: u16) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive,
        properties: Props::none(),
        client_id: id.to_owned(),
        will: None,
        username: None,
        password: None,
        bridge: false,
    }
}

fn publish(topic: &str, payload: &[u8], qos: QoS, id: u16, retain: bool) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: Rc::from(topic),
        packet_id: id,
        properties: Props::none(),
        payload: Rc::from(payload),
    }
}

fn subscribe(id: u16, filter: &str, qos: QoS) -> Subscribe {
    Subscribe {
        packet_id: id,
        properties: Props::none(),
        filters: vec![(
            filter.to_owned(),
            SubOptions {
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
            },
        )],
    }
}

fn disconnect() -> Packet {
    Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Props::none(),
    })
}

impl Client {
    /// Connects, sends `connect` and returns the client with the CONNACK.
    fn open(port: u16, connect: Connect) -> (Self, ConnAck) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to culex");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = Self {
            stream,
            version: connect.protocol,
            inbound: Vec::new(),
        };
        c.send(&Packet::Connect(Box::new(connect)));
        match c.recv() {
            Packet::ConnAck(a) => (c, a),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, packet: &Packet) {
        let mut bytes = Vec::new();
        mqtt::encode(packet, self.version, &mut bytes);
        self.stream.write_all(&bytes).expect("send");
    }

    fn recv(&mut self) -> Packet {
        loop {
            if let Ok(Some(f)) = mqtt::probe(&self.inbound) {
                if f.total_len() <= self.inbound.len() {
                    let frame: Vec<u8> = self.inbound.drain(..f.total_len()).collect();
                    return mqtt::decode(&frame, self.version).expect("a valid packet");
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the broker closed the connection"),
                Ok(n) => self.inbound.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading: {e}"),
            }
        }
    }

    fn recv_publish(&mut self) -> Publish {
        match self.recv() {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    fn expect_closed(&mut self) {
        let mut chunk = [0u8; 64];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) => panic!("waiting for the close: {e}"),
            }
        }
    }

    /// DISCONNECT, then the broker's close.
    fn leave(mut self) {
        self.send(&disconnect());
        self.expect_closed();
    }

    /// QoS 1 from this client: PUBLISH, PUBACK.
    fn publish1(&mut self, p: Publish) {
        let id = p.packet_id;
        self.send(&Packet::Publish(p));
        match self.recv() {
            Packet::PubAck(a) => assert_eq!(a.packet_id, id),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// Receives a QoS 1 PUBLISH and acknowledges it; a PINGREQ answered after the PUBACK
    /// shows the broker has read it, so that what other clients do next comes after it in
    /// the trace on every recording.
    fn receive1(&mut self) -> Publish {
        let p = self.recv_publish();
        self.send(&Packet::PubAck(Ack::success(p.packet_id)));
        self.send(&Packet::PingReq);
        assert!(matches!(self.recv(), Packet::PingResp));
        p
    }
}

/// MQTT 3.1.1: retained, QoS 0, 1 and 2 in both directions, unsubscribe, disconnect.
fn v311_pubsub(port: u16) {
    let v = ProtocolVersion::V311;
    let (mut publisher, _) = Client::open(port, connect_packet(v, "pub311", true, 60));
    publisher.publish1(publish("t311/retained", b"kept", QoS::AtLeastOnce, 1, true));
    let (mut sub, _) = Client::open(port, connect_packet(v, "sub311", true, 60));
    sub.send(&Packet::Subscribe(subscribe(1, "t311/#", QoS::ExactlyOnce)));
    assert!(matches!(sub.recv(), Packet::SubAck(_)));
    let retained = sub.receive1();
    assert!(retained.retain);
    // QoS 0 has no answer on the publisher's side: the subscriber's receipt is the step.
    publisher.send(&Packet::Publish(publish(
        "t311/zero",
        b"0",
        QoS::AtMostOnce,
        0,
        false,
    )));
    assert_eq!(sub.recv_publish().qos, QoS::AtMostOnce);
    publisher.publish1(publish("t311/one", b"1", QoS::AtLeastOnce, 2, false));
    sub.receive1();
    // QoS 2 from the publisher: PUBLISH, PUBREC, PUBREL, PUBCOMP.
    publisher.send(&Packet::Publish(publish(
        "t311/two",
        b"2",
        QoS::ExactlyOnce,
        3,
        false,
    )));
    assert!(matches!(publisher.recv(), Packet::PubRec(_)));
    publisher.send(&Packet::PubRel(Ack::success(3)));
    assert!(matches!(publisher.recv(), Packet::PubComp(_)));
    // QoS 2 to the subscriber: PUBLISH, PUBREC, PUBREL, PUBCOMP.
    let p = sub.recv_publish();
    assert_eq!(p.qos, QoS::ExactlyOnce);
    sub.send(&Packet::PubRec(Ack::success(p.packet_id)));
    assert!(matches!(sub.recv(), Packet::PubRel(_)));
    sub.send(&Packet::PubComp(Ack::success(p.packet_id)));
    sub.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 2,
        properties: Props::none(),
        filters: vec!["t311/#".to_owned()],
    }));
    assert!(matches!(sub.recv(), Packet::UnsubAck(_)));
    publisher.publish1(publish("t311/one", b"unheard", QoS::AtLeastOnce, 4, false));
    sub.send(&Packet::PingReq);
    assert!(matches!(sub.recv(), Packet::PingResp));
    sub.leave();
    publisher.leave();
}

/// MQTT 5.0: subscription identifier, message expiry, user property and the other message
/// properties, a topic alias from the client, topic aliases towards the client, no matching
/// subscribers, an assigned client identifier.
fn v5_properties(port: u16) {
    let v = ProtocolVersion::V5;
    let mut c = connect_packet(v, "sub5", true, 60);
    c.properties.topic_alias_maximum = Some(4);
    let (mut sub, _) = Client::open(port, c);
    let mut s = subscribe(1, "t5/#", QoS::AtLeastOnce);
    s.properties.subscription_identifiers = vec![7];
    sub.send(&Packet::Subscribe(s));
    assert!(matches!(sub.recv(), Packet::SubAck(_)));
    let (mut publisher, _) = Client::open(port, connect_packet(v, "pub5", true, 60));
    let mut p = publish("t5/props", b"{\"v\":1}", QoS::AtLeastOnce, 1, false);
    p.properties.message_expiry_interval = Some(120);
    p.properties.user_properties = vec![("origin".to_owned(), "replay".to_owned())];
    p.properties.content_type = Some("application/json".to_owned());
    p.properties.response_topic = Some("t5/reply".to_owned());
    p.properties.correlation_data = Some(b"c1".to_vec());
    p.properties.payload_format_indicator = Some(1);
    publisher.publish1(p);
    let got = sub.receive1();
    assert_eq!(got.properties.subscription_identifiers, vec![7]);
    // A topic alias set by the client, then used alone.
    let mut p = publish("t5/alias", b"first", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(p));
    sub.recv_publish();
    let mut p = publish("", b"second", QoS::AtMostOnce, 0, false);
    p.properties.topic_alias = Some(1);
    publisher.send(&Packet::Publish(p));
    sub.recv_publish();
    // Nobody subscribes there: PUBACK 0x10.
    publisher.publish1(publish("nobody/here", b"x", QoS::AtLeastOnce, 2, false));
    let (anonymous, ack) = Client::open(port, connect_packet(v, "", true, 60));
    assert!(ack.properties.assigned_client_identifier.is_some());
    anonymous.leave();
    sub.leave();
    publisher.leave();
}

/// A will published when its client's connection drops, and none after a DISCONNECT.
fn will(port: u16) {
    let v = ProtocolVersion::V311;
    let (mut watcher, _) = Client::open(port, connect_packet(v, "watcher", true, 60));
    watcher.send(&Packet::Subscribe(subscribe(1, "will/#", QoS::AtLeastOnce)));
    assert!(matches!(watcher.recv(), Packet::SubAck(_)));
    let with_will = |id: &str| {
        let mut c = connect_packet(v, id, true, 60);
        c.will = Some(Will {
            topic: format!("will/{id}"),
            payload: b"gone".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Props::none(),
        });
        c
    };
    let (lost, _) = Client::open(port, with_will("lost"));
    lost.stream.shutdown(Shutdown::Both).expect("close");
    drop(lost);
    let p = watcher.receive1();
    assert_eq!(&*p.topic, "will/lost");
    let (polite, _) = Client::open(port, with_will("polite"));
    polite.leave();
    watcher.send(&Packet::PingReq);
    assert!(matches!(watcher.recv(), Packet::PingResp));
    watcher.leave();
}

/// A persistent session keeps its subscription and queues for its client while away;
/// CONNACK says session present on the return (3.1.1 and 5.0).
fn session_present(port: u16) {
    for (v, id) in [
        (ProtocolVersion::V311, "away311"),
        (ProtocolVersion::V5, "away5"),
    ] {
        let mut c = connect_packet(v, id, false, 60);
        if v == ProtocolVersion::V5 {
            c.clean_start = true;
            c.properties.session_expiry_interval = Some(300);
        }
        let (mut away, ack) = Client::open(port, c.clone());
        assert!(!ack.session_present);
        let topic = format!("session/{id}");
        away.send(&Packet::Subscribe(subscribe(1, &topic, QoS::AtLeastOnce)));
        assert!(matches!(away.recv(), Packet::SubAck(_)));
        away.leave();
        let (mut publisher, _) = Client::open(port, connect_packet(v, "sender", true, 60));
        publisher.publish1(publish(&topic, b"while away", QoS::AtLeastOnce, 1, false));
        publisher.leave();
        c.clean_start = false;
        let (mut back, ack) = Client::open(port, c.clone());
        assert!(ack.session_present);
        assert_eq!(&*back.receive1().payload, b"while away");
        back.leave();
        // A clean start ends the session.
        c.clean_start = true;
        c.properties.session_expiry_interval = None;
        let (clean, ack) = Client::open(port, c);
        assert!(!ack.session_present);
        clean.leave();
    }
}

/// The virtual clock, moved by a `$CONTROL/clock/advance` PUBLISH, runs out a keep alive:
/// the broker closes that connection (5.0: DISCONNECT 0x8D first).
fn keep_alive_clock(port: u16) {
    let v = ProtocolVersion::V5;
    let (mut idle, _) = Client::open(port, connect_packet(v, "idle", true, 10));
    let (mut ctl, _) = Client::open(port, connect_packet(v, "ctl", true, 0));
    ctl.publish1(publish(
        "$CONTROL/clock/advance",
        b"16000",
        QoS::AtLeastOnce,
        1,
        false,
    ));
    assert!(matches!(idle.recv(), Packet::Disconnect(_)));
    idle.expect_closed();
    ctl.leave();
}

/// Scenarios with MQTT-SN clients: their trace file name and what they do against the
/// broker's MQTT port and MQTT-SN gateway port.
pub(crate) type SnScenario = (&'static str, fn(u16, u16));

pub(crate) const SN_SCENARIOS: &[SnScenario] = &[("mqttsn_pubsub", mqttsn_pubsub)];

/// An MQTT-SN client on its own UDP socket, talking to the gateway.
struct SnPeer {
    sock: std::net::UdpSocket,
}

impl SnPeer {
    fn open(gateway_port: u16) -> Self {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        sock.connect(("127.0.0.1", gateway_port))
            .expect("connect UDP");
        sock.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        Self { sock }
    }

    fn send(&self, m: &sn::Message<'_>) {
        let mut bytes = Vec::new();
        sn::encode(m, &mut bytes);
        self.sock.send(&bytes).expect("send a datagram");
    }

    /// The next datagram, decoded by `f`.
    fn recv<T>(&self, f: impl FnOnce(sn::Message<'_>) -> T) -> T {
        let mut buf = [0u8; 2048];
        let n = self
            .sock
            .recv(&mut buf)
            .expect("a datagram from the gateway");
        match sn::decode(&buf[..n]) {
            Ok(sn::Frame::Message(m)) => f(m),
            other => panic!("not an MQTT-SN message: {other:?}"),
        }
    }
}

/// MQTT-SN and MQTT share one topic space: an MQTT-SN client registers a topic and
/// publishes at QoS 1 to an MQTT subscriber, then subscribes by name and receives, at QoS 1,
/// what an MQTT client publishes there (topic and message ids chosen by the gateway).
fn mqttsn_pubsub(port: u16, sn_port: u16) {
    use sn::{Flags, Message, ReturnCode, SnQos, SubTopic};
    let v = ProtocolVersion::V311;
    let qos1 = Flags {
        qos: SnQos::AtLeastOnce,
        ..Flags::default()
    };
    let (mut sub, _) = Client::open(port, connect_packet(v, "mqtt-sub", true, 60));
    sub.send(&Packet::Subscribe(subscribe(1, "sn/#", QoS::AtLeastOnce)));
    assert!(matches!(sub.recv(), Packet::SubAck(_)));
    let peer = SnPeer::open(sn_port);
    peer.send(&Message::Connect {
        flags: Flags {
            clean_session: true,
            ..Flags::default()
        },
        protocol_id: 1,
        duration: 60,
        client_id: b"sn-recorded",
    });
    peer.recv(|m| assert!(matches!(m, Message::ConnAck { .. }), "{m:?}"));
    peer.send(&Message::Register {
        topic_id: 0,
        msg_id: 1,
        topic_name: b"sn/temperature",
    });
    let topic_id = peer.recv(|m| match m {
        Message::RegAck { topic_id, .. } => topic_id,
        other => panic!("expected REGACK, got {other:?}"),
    });
    peer.send(&Message::Publish {
        flags: qos1,
        topic_id,
        msg_id: 2,
        data: b"21.5",
    });
    peer.recv(|m| assert!(matches!(m, Message::PubAck { .. }), "{m:?}"));
    assert_eq!(&*sub.receive1().payload, b"21.5");
    peer.send(&Message::Subscribe {
        flags: qos1,
        msg_id: 3,
        topic: SubTopic::Name(b"mqtt/command"),
    });
    peer.recv(|m| assert!(matches!(m, Message::SubAck { .. }), "{m:?}"));
    let (mut publisher, _) = Client::open(port, connect_packet(v, "mqtt-pub", true, 60));
    publisher.publish1(publish("mqtt/command", b"on", QoS::AtLeastOnce, 1, false));
    let (topic_id, msg_id) = peer.recv(|m| match m {
        Message::Publish {
            topic_id,
            msg_id,
            data,
            ..
        } => {
            assert_eq!(data, b"on");
            (topic_id, msg_id)
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    });
    peer.send(&Message::PubAck {
        topic_id,
        msg_id,
        code: ReturnCode::Accepted,
    });
    peer.send(&Message::Disconnect { duration: None });
    peer.recv(|m| assert!(matches!(m, Message::Disconnect { .. }), "{m:?}"));
    publisher.leave();
    sub.leave();
}
