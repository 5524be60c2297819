//! Engine tests in virtual time: inputs at chosen instants, actions asserted, no sockets.

mod admin;
mod bounds;
mod faults;
mod flows;
mod persistence;

use std::rc::Rc;

use super::event::{Action, ConnId, Input, ListenerId, Peer};
use super::limits::Limits;
use super::Engine;
use crate::clock::Millis;
use crate::codec::mqtt::{
    Ack, Connect, Packet, Properties, Props, ProtocolVersion, Publish, QoS, ReasonCode, SubOptions,
    Subscribe, Unsubscribe, Will,
};
use crate::rng::Rng;

/// An engine plus a virtual clock, and helpers that speak for clients.
struct Harness {
    engine: Engine,
    now: Millis,
}

impl Harness {
    fn new() -> Self {
        Self::with(Limits::default())
    }

    fn with(limits: Limits) -> Self {
        Self {
            engine: Engine::new(limits, Rng::new(1)),
            now: Millis(0),
        }
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        self.engine.handle(self.now, input);
        std::iter::from_fn(|| self.engine.poll_action()).collect()
    }

    /// Moves time to `ms` and fires every timer due on the way, returning the actions.
    fn advance_to(&mut self, ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(d) = self.engine.next_deadline() {
            if d.0 > ms {
                break;
            }
            self.now = self.now.max(d);
            out.extend(self.input(Input::Tick));
        }
        self.now = Millis(ms);
        out
    }

    fn packet(&mut self, conn: u64, packet: Packet) -> Vec<Action> {
        self.input(Input::Packet {
            conn: ConnId(conn),
            packet,
        })
    }

    fn open(&mut self, conn: u64) {
        let peer = Peer::V4 {
            ip: [127, 0, 0, 1],
            port: 40000 + conn as u16,
        };
        let a = self.input(Input::Opened {
            conn: ConnId(conn),
            listener: ListenerId(0),
            peer,
        });
        assert!(a.is_empty());
    }

    fn connect_with(&mut self, conn: u64, c: Connect) -> Vec<Action> {
        self.open(conn);
        self.packet(conn, Packet::Connect(Box::new(c)))
    }

    fn connect(
        &mut self,
        conn: u64,
        id: &str,
        version: ProtocolVersion,
        clean: bool,
    ) -> Vec<Action> {
        self.connect_with(conn, connect(id, version, clean))
    }

    fn subscribe(&mut self, conn: u64, filter: &str, qos: QoS) -> Vec<Action> {
        let opts = SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        };
        let s = Subscribe {
            packet_id: 1,
            properties: Props::none(),
            filters: vec![(filter.to_string(), opts)],
        };
        self.packet(conn, Packet::Subscribe(s))
    }

    fn publish(
        &mut self,
        conn: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        id: u16,
    ) -> Vec<Action> {
        self.packet(
            conn,
            Packet::Publish(publish(topic, payload, qos, id, false)),
        )
    }

    fn closed(&mut self, conn: u64) -> Vec<Action> {
        self.input(Input::Closed {
            conn: ConnId(conn),
            reason: "test",
        })
    }
}

fn connect(id: &str, protocol: ProtocolVersion, clean_start: bool) -> Connect {
    Connect {
        protocol,
        clean_start,
        keep_alive: 0,
        properties: Props::none(),
        client_id: id.to_string(),
        will: None,
        username: None,
        password: None,
        bridge: false,
    }
}

fn will(topic: &str, delay: Option<u32>) -> Will {
    let properties = Properties {
        will_delay_interval: delay,
        ..Properties::default()
    };
    Will {
        topic: topic.into(),
        payload: b"gone".to_vec(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: properties.into(),
    }
}

fn publish(topic: &str, payload: &[u8], qos: QoS, packet_id: u16, retain: bool) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: topic.into(),
        packet_id,
        properties: Props::none(),
        payload: payload.into(),
    }
}

fn ack(id: u16) -> Ack {
    Ack {
        packet_id: id,
        reason: ReasonCode::Success,
        properties: Props::none(),
    }
}

/// The packets sent to `conn` among `actions`.
fn sent(actions: &[Action], conn: u64) -> Vec<&Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, packet } if c.0 == conn => Some(packet),
            _ => None,
        })
        .collect()
}

fn publishes(actions: &[Action], conn: u64) -> Vec<&Publish> {
    sent(actions, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn closes(actions: &[Action], conn: u64) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c } if c.0 == conn))
}

fn connack(actions: &[Action], conn: u64) -> (bool, ReasonCode, Properties) {
    sent(actions, conn)
        .into_iter()
        .find_map(|p| match p {
            Packet::ConnAck(c) => Some((c.session_present, c.reason, (*c.properties).clone())),
            _ => None,
        })
        .expect("a CONNACK")
}

/// Every connection carries one: the broker's memory per idle connection rests on it.
#[test]
fn a_connection_entry_stays_small() {
    assert!(
        size_of::<super::Conn>() <= 64,
        "{}",
        size_of::<super::Conn>()
    );
}
