//! Gateway flows in virtual time, with the real engine behind it: MQTT-SN datagrams in, the
//! datagrams the gateway answers asserted, and an MQTT 3.1.1 client on the engine's other
//! side to exchange messages with.

mod bounds;
mod flows;

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Gateway, GatewayConfig, Output};
use crate::clock::Millis;
use crate::codec::mqtt::{
    Connect, Packet, Props, ProtocolVersion, Publish, QoS, SubOptions, Subscribe,
};
use crate::codec::mqttsn::{self as sn, Flags, Message, ReturnCode, SnQos, TopicIdType};
use crate::engine::event::{Action, ConnId, Input, ListenerId};
use crate::engine::limits::Limits;
use crate::engine::Engine;
use crate::rng::Rng;

/// The MQTT listener of the engine is 0; the gateway's is 1.
const SN_LISTENER: ListenerId = ListenerId(1);
/// The engine connection of the MQTT 3.1.1 client on the other side.
const MQTT_CONN: ConnId = ConnId(1);

struct Harness {
    engine: Engine,
    gateway: Gateway,
    now: Millis,
    next_conn: u64,
    /// Datagrams the gateway sent, by destination.
    sent: BTreeMap<SocketAddr, Vec<Vec<u8>>>,
    multicast: Vec<Vec<u8>>,
    /// Packets the engine sent to the MQTT client.
    mqtt_in: Vec<Packet>,
    /// Connection ids the gateway gave back without the engine having seen them.
    released: Vec<ConnId>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config() -> GatewayConfig {
    GatewayConfig {
        listener: SN_LISTENER,
        gateway_id: 7,
        retry_ms: 1_000,
        retry_count: 2,
        sleep_buffer: 4,
        max_clients: 3,
        predefined: vec![(5, "pre/defined".to_owned())],
        advertise_interval: 0,
        seed: 1,
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: GatewayConfig) -> Self {
        let mut engine = Engine::new(Limits::default(), Rng::new(1));
        engine.set_gateway_listeners(vec![false, true]);
        let mut h = Self {
            engine,
            gateway: Gateway::new(config, Millis(0)),
            now: Millis(0),
            next_conn: 100,
            sent: BTreeMap::new(),
            multicast: Vec::new(),
            mqtt_in: Vec::new(),
            released: Vec::new(),
        };
        h.engine_input(Input::Opened {
            conn: MQTT_CONN,
            listener: ListenerId(0),
            peer: "tcp client".into(),
        });
        let connect = Connect {
            protocol: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            properties: Props::none(),
            client_id: "mqtt-side".to_owned(),
            will: None,
            username: None,
            password: None,
            bridge: false,
        };
        h.mqtt(Packet::Connect(Box::new(connect)));
        h.mqtt_in.clear();
        h
    }

    /// Feeds the engine and routes its actions: the gateway's to the gateway, the MQTT
    /// client's to `mqtt_in`; then drains the gateway.
    fn engine_input(&mut self, input: Input) {
        self.engine.handle(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.engine.poll_action() {
                progressed = true;
                let conn = match &action {
                    Action::Send { conn, .. }
                    | Action::Close { conn }
                    | Action::SetVersion { conn, .. }
                    | Action::SetMaxPacketSize { conn, .. } => *conn,
                };
                if self.gateway.owns(conn) {
                    self.gateway.from_engine(self.now, action);
                } else if let Action::Send { packet, .. } = action {
                    self.mqtt_in.push(packet);
                }
            }
            while let Some(out) = self.gateway.poll() {
                progressed = true;
                match out {
                    Output::Datagram { to, bytes } | Output::Discovery { to, bytes } => {
                        self.sent.entry(to).or_default().push(bytes)
                    }
                    Output::Multicast { bytes } => self.multicast.push(bytes),
                    Output::Engine(input) => self.engine.handle(self.now, input),
                    Output::Release(conn) => self.released.push(conn),
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn mqtt(&mut self, packet: Packet) {
        self.engine_input(Input::Packet {
            conn: MQTT_CONN,
            packet,
        });
    }

    fn mqtt_subscribe(&mut self, filter: &str, qos: QoS) {
        let options = SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        };
        self.mqtt(Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Props::none(),
            filters: vec![(filter.to_owned(), options)],
        }));
        self.mqtt_in.clear();
    }

    fn mqtt_publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        self.mqtt(Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: Rc::from(topic),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 9 },
            properties: Props::none(),
            payload: Rc::from(payload),
        }));
    }

    /// The PUBLISHes the MQTT client received, as (topic, payload), and forgets them.
    fn mqtt_received(&mut self) -> Vec<(String, Vec<u8>)> {
        let got = self
            .mqtt_in
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.topic.to_string(), p.payload.to_vec())),
                _ => None,
            })
            .collect();
        self.mqtt_in.clear();
        got
    }

    fn datagram(&mut self, port: u16, bytes: &[u8]) {
        let next = &mut self.next_conn;
        let mut ids = || {
            *next += 1;
            ConnId(*next)
        };
        self.gateway.datagram(self.now, addr(port), bytes, &mut ids);
        self.drain();
    }

    fn send(&mut self, port: u16, msg: &Message<'_>) {
        let mut bytes = Vec::new();
        sn::encode(msg, &mut bytes);
        self.datagram(port, &bytes);
    }

    /// What the gateway sent to `port` since the last call, decoded to owned debug text
    /// for easy comparison, and the raw bytes.
    fn take(&mut self, port: u16) -> Vec<Vec<u8>> {
        self.sent.remove(&addr(port)).unwrap_or_default()
    }

    /// Asserts the gateway sent exactly these messages to `port`.
    fn expect(&mut self, port: u16, expected: &[Message<'_>]) {
        let got = self.take(port);
        let want: Vec<Vec<u8>> = expected
            .iter()
            .map(|m| {
                let mut b = Vec::new();
                sn::encode(m, &mut b);
                b
            })
            .collect();
        let show = |v: &[Vec<u8>]| -> Vec<String> {
            v.iter()
                .map(|b| match sn::decode(b) {
                    Ok(f) => format!("{f:?}"),
                    Err(e) => format!("undecodable {b:02x?}: {e}"),
                })
                .collect()
        };
        assert_eq!(show(&got), show(&want));
    }

    /// Moves virtual time forward, firing the gateway's and the engine's timers.
    fn advance(&mut self, ms: u64) {
        let end = self.now.saturating_add_ms(ms);
        loop {
            let next = [self.gateway.next_deadline(), self.engine.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(d) if d <= end => {
                    self.now = self.now.max(d);
                    if self.gateway.next_deadline().is_some_and(|g| g <= self.now) {
                        self.gateway.tick(self.now);
                    }
                    if self.engine.next_deadline().is_some_and(|e| e <= self.now) {
                        self.engine.handle(self.now, Input::Tick);
                    }
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// CONNECT and CONNACK, no will.
    fn connect(&mut self, port: u16, id: &str, clean: bool, duration: u16) {
        let flags = Flags {
            clean_session: clean,
            ..Flags::default()
        };
        self.send(
            port,
            &Message::Connect {
                flags,
                protocol_id: 1,
                duration,
                client_id: id.as_bytes(),
            },
        );
        self.expect(
            port,
            &[Message::ConnAck {
                code: ReturnCode::Accepted,
            }],
        );
    }

    /// REGISTER from the client; returns the topic id of the REGACK.
    fn register(&mut self, port: u16, name: &str, msg_id: u16) -> u16 {
        self.send(
            port,
            &Message::Register {
                topic_id: 0,
                msg_id,
                topic_name: name.as_bytes(),
            },
        );
        let got = self.take(port);
        assert_eq!(got.len(), 1);
        match sn::decode(&got[0]) {
            Ok(sn::Frame::Message(Message::RegAck {
                topic_id,
                msg_id: m,
                code: ReturnCode::Accepted,
            })) if m == msg_id => topic_id,
            other => panic!("no REGACK: {other:?}"),
        }
    }
}

fn qos_flags(qos: SnQos, id_type: TopicIdType) -> Flags {
    Flags {
        qos,
        topic_id_type: id_type,
        ..Flags::default()
    }
}

fn owned(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}
