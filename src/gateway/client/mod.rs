//! One MQTT-SN client of the gateway: its phase, topic registry, will, outbound queue and the
//! one message it has in flight; and the gateway's handling of its messages and of the
//! engine's packets for it.
//!
//! Owns nothing outside the client table. It must never let a queue or registry grow past
//! its bound, and never leave the engine waiting: every engine connection it opens is closed
//! with `Input::Closed` when the client goes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::convert;
use super::{Gateway, Output, Peer, MAX_TOPICS_PER_CLIENT};
use crate::clock::Millis;
use crate::codec::mqtt::{self as mqtt, Ack, Packet, QoS, ReasonCode, SubOptions};
use crate::codec::mqttsn::{self as sn, Flags, Message, ReturnCode, SubTopic, TopicIdType};
use crate::engine::event::{ConnId, Input};

mod outbound;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// CONNECT had the will flag: WILLTOPIC is awaited.
    WillTopic,
    /// WILLMSG is awaited.
    WillMsg,
    /// The engine has the CONNECT; its CONNACK is awaited.
    Connecting,
    Active,
    /// Sleeping (DISCONNECT with a duration): messages are kept for it.
    Asleep,
    /// Woken by a PINGREQ: receiving what was kept, then PINGRESP and asleep again.
    Awake,
    /// DISCONNECT was received; the engine is closing the connection.
    Disconnecting,
}

/// The will the client gave, kept by the gateway so WILLTOPICUPD and WILLMSGUPD can change it.
#[derive(Clone, Debug)]
struct Will {
    topic: Rc<str>,
    qos: QoS,
    retain: bool,
    payload: Rc<[u8]>,
}

/// Something the engine sent that the client must receive, in order.
#[derive(Debug)]
enum Out {
    /// Boxed: a sleeping client may hold many, and most of a PUBLISH's size is properties
    /// that are nearly always empty.
    Publish(Box<mqtt::Publish>),
    PubRel(u16),
}

/// The one message the gateway waits an acknowledgement for.
#[derive(Debug)]
struct InFlight {
    kind: InFlightKind,
    tries: u32,
    due: Millis,
}

#[derive(Debug)]
enum InFlightKind {
    Register {
        msg_id: u16,
        topic_id: u16,
        name: Rc<str>,
    },
    Publish {
        flags: Flags,
        topic_id: u16,
        msg_id: u16,
        payload: Rc<[u8]>,
    },
    PubRel {
        msg_id: u16,
    },
}

impl InFlightKind {
    fn message(&self, again: bool) -> Message<'_> {
        match self {
            Self::Register {
                msg_id,
                topic_id,
                name,
            } => Message::Register {
                topic_id: *topic_id,
                msg_id: *msg_id,
                topic_name: name.as_bytes(),
            },
            Self::Publish {
                flags,
                topic_id,
                msg_id,
                payload,
            } => Message::Publish {
                flags: Flags {
                    dup: again,
                    ..*flags
                },
                topic_id: *topic_id,
                msg_id: *msg_id,
                data: payload,
            },
            Self::PubRel { msg_id } => Message::PubRel { msg_id: *msg_id },
        }
    }
}

pub(super) struct Client {
    pub(super) conn: ConnId,
    pub(super) client_id: Rc<str>,
    pub(super) phase: Phase,
    clean: bool,
    /// Keep alive (active) or sleep duration (asleep), in milliseconds; 0 for none.
    duration_ms: u64,
    /// When the current phase's clock started: the last message, or falling asleep.
    since: Millis,
    will: Option<Will>,
    topics: BTreeMap<u16, Rc<str>>,
    topic_ids: BTreeMap<Rc<str>, u16>,
    next_topic_id: u16,
    next_msg_id: u16,
    queue: VecDeque<Out>,
    in_flight: Option<InFlight>,
    /// Topic ids of the client's QoS 1 PUBLISHes, for the PUBACK the engine's ack becomes.
    publish_topics: BTreeMap<u16, u16>,
    /// Topic ids to put in the SUBACK of each pending SUBSCRIBE.
    subscribe_topics: BTreeMap<u16, u16>,
    /// QoS 2 messages the client refused: the engine's PUBREL is answered here.
    refused_qos2: BTreeSet<u16>,
    /// The earliest deadline of this client in the gateway's timer heap, if any.
    pub(super) armed: Option<Millis>,
}

impl Client {
    fn new(conn: ConnId, client_id: Rc<str>, clean: bool, duration_s: u16, now: Millis) -> Self {
        Self {
            conn,
            client_id,
            phase: Phase::Connecting,
            clean,
            duration_ms: u64::from(duration_s) * 1000,
            since: now,
            will: None,
            topics: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            next_topic_id: 1,
            next_msg_id: 1,
            queue: VecDeque::new(),
            in_flight: None,
            publish_topics: BTreeMap::new(),
            subscribe_topics: BTreeMap::new(),
            refused_qos2: BTreeSet::new(),
            armed: None,
        }
    }

    /// When the client must next be looked at: a retransmission, or its liveness.
    pub(super) fn deadline(&self) -> Option<Millis> {
        let retry = self.in_flight.as_ref().map(|f| f.due);
        let live = self.liveness_deadline();
        match (retry, live) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// 1.5 times the keep alive or sleep duration after the phase's clock started (the
    /// tolerance MQTT gives keep alive); the handshake phases get the same span as a
    /// retransmission series.
    fn liveness_deadline(&self) -> Option<Millis> {
        match self.phase {
            Phase::WillTopic | Phase::WillMsg | Phase::Connecting | Phase::Disconnecting => {
                Some(self.since.saturating_add_ms(60_000))
            }
            Phase::Active | Phase::Asleep | Phase::Awake if self.duration_ms > 0 => Some(
                self.since
                    .saturating_add_ms(self.duration_ms.saturating_mul(3) / 2),
            ),
            _ => None,
        }
    }

    /// The topic id of `name` for this client, registering a new one. `None` when the
    /// client holds as many registrations as allowed.
    fn register(&mut self, name: &Rc<str>) -> Option<u16> {
        if let Some(id) = self.topic_ids.get(name) {
            return Some(*id);
        }
        if self.topics.len() >= MAX_TOPICS_PER_CLIENT {
            return None;
        }
        // Ids are handed out in order, skipping 0 (reserved) and ids still in use.
        let mut id = self.next_topic_id;
        while id == 0 || self.topics.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_topic_id = id.wrapping_add(1);
        self.topics.insert(id, name.clone());
        self.topic_ids.insert(name.clone(), id);
        Some(id)
    }

    fn next_msg_id(&mut self) -> u16 {
        let id = self.next_msg_id;
        self.next_msg_id = match id.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        id
    }
}

/// A client's QoS as MQTT-SN flags for an outgoing PUBLISH.
fn publish_flags(p: &mqtt::Publish, topic_id_type: TopicIdType) -> Flags {
    Flags {
        dup: false,
        qos: convert::sn_qos(p.qos),
        retain: p.retain,
        topic_id_type,
        ..Flags::default()
    }
}

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_connect(
        &mut self,
        now: Millis,
        peer: Peer,
        flags: Flags,
        protocol_id: u8,
        duration: u16,
        client_id: &[u8],
        new_conn: &mut dyn FnMut() -> ConnId,
    ) {
        let refuse = |gw: &mut Self, code: ReturnCode, why: &str| {
            log::info!("{}: MQTT-SN CONNECT refused: {why}", peer.name());
            gw.send(&peer, &Message::ConnAck { code });
        };
        if protocol_id != 0x01 {
            return refuse(self, ReturnCode::NotSupported, "unknown protocol id");
        }
        let id = match std::str::from_utf8(client_id) {
            Ok(id) if !id.is_empty() && id.len() <= 23 => Rc::<str>::from(id),
            _ => {
                return refuse(
                    self,
                    ReturnCode::NotSupported,
                    "client id not 1 to 23 bytes",
                )
            }
        };
        if let Some(old) = self.clients.get_mut(&peer) {
            // A sleeping or active client that comes back with the same session: no new
            // engine connection, just active again (spec 6.14).
            let resumable = matches!(old.phase, Phase::Active | Phase::Asleep | Phase::Awake);
            if resumable && old.client_id == id && !flags.clean_session && !flags.will {
                old.phase = Phase::Active;
                old.duration_ms = u64::from(duration) * 1000;
                old.since = now;
                self.send(
                    &peer,
                    &Message::ConnAck {
                        code: ReturnCode::Accepted,
                    },
                );
                self.pump(now, &peer);
                return;
            }
            // Otherwise the old connection ends quietly; the new one replaces it.
            self.drop_client(&peer, "replaced by a new CONNECT", false);
        }
        if self.clients.len() >= self.config.max_clients {
            return refuse(self, ReturnCode::Congestion, "too many clients");
        }
        let conn = new_conn();
        let mut client = Client::new(conn, id, flags.clean_session, duration, now);
        if flags.will {
            client.phase = Phase::WillTopic;
            self.clients.insert(peer.clone(), client);
            self.by_conn.insert(conn, peer.clone());
            self.send(&peer, &Message::WillTopicReq);
            return;
        }
        self.clients.insert(peer.clone(), client);
        self.by_conn.insert(conn, peer.clone());
        self.start_session(now, &peer);
    }

    /// Hands the client to the engine: `Opened`, then the CONNECT that stands for it.
    fn start_session(&mut self, now: Millis, peer: &Peer) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        client.phase = Phase::Connecting;
        client.since = now;
        let (conn, id, clean) = (client.conn, client.client_id.to_string(), client.clean);
        self.engine(Input::Opened {
            conn,
            listener: self.config.listener,
            peer: crate::engine::event::Peer::name(&peer.name()),
        });
        self.engine(Input::Packet {
            conn,
            packet: convert::engine_connect(id, clean, None),
        });
    }

    /// Forgets the client. With `lost`, its will is published first (the client vanished:
    /// keep alive or sleep expired, retransmissions exhausted).
    pub(super) fn drop_client(&mut self, peer: &Peer, reason: &'static str, lost: bool) {
        let Some(client) = self.clients.remove(peer) else {
            return;
        };
        self.by_conn.remove(&client.conn);
        log::info!(
            "{} ({}): MQTT-SN client {} gone: {reason}",
            client.conn,
            peer.name(),
            client.client_id
        );
        let in_engine = !matches!(client.phase, Phase::WillTopic | Phase::WillMsg);
        if !in_engine {
            self.out.push_back(Output::Release(client.conn));
            return;
        }
        if lost {
            if let Some(will) = client.will {
                let publish = mqtt::Publish {
                    dup: false,
                    qos: will.qos,
                    retain: will.retain,
                    topic: will.topic,
                    // The engine takes a QoS 1 or 2 PUBLISH from the connection and acks it
                    // to nobody: an id is needed, any id.
                    packet_id: if will.qos == QoS::AtMostOnce { 0 } else { 1 },
                    properties: mqtt::Props::none(),
                    payload: will.payload,
                };
                self.engine(Input::Packet {
                    conn: client.conn,
                    packet: Packet::Publish(publish),
                });
            }
        }
        self.engine(Input::Closed {
            conn: client.conn,
            reason,
        });
    }

    /// A PINGREQ with a client id from an address the gateway does not know: a sleeping
    /// client that moved. Its entry moves to the new address.
    pub(super) fn wake_elsewhere(&mut self, now: Millis, peer: Peer, id: &[u8]) {
        let found = self
            .clients
            .iter()
            .find(|(_, c)| c.client_id.as_bytes() == id && c.phase == Phase::Asleep)
            .map(|(p, _)| p.clone());
        let Some(old) = found else {
            self.send(&peer, &Message::Disconnect { duration: None });
            return;
        };
        if let Some(mut client) = self.clients.remove(&old) {
            // Its heap entry names the old address: the new one needs its own.
            client.armed = None;
            self.by_conn.insert(client.conn, peer.clone());
            self.clients.insert(peer.clone(), client);
        }
        self.client_message(
            now,
            &peer,
            Message::PingReq {
                client_id: Some(id),
            },
        );
    }

    /// A message from a known client.
    pub(super) fn client_message(&mut self, now: Millis, peer: &Peer, msg: Message<'_>) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        let conn = client.conn;
        if client.phase == Phase::Active {
            client.since = now;
        }
        match (client.phase, msg) {
            (Phase::WillTopic, Message::WillTopic { flags, topic }) => {
                if topic.is_empty() {
                    return self.start_session(now, peer);
                }
                let Some(name) = convert::topic_name(topic) else {
                    log::info!("{}: invalid will topic", peer.name());
                    self.send(
                        peer,
                        &Message::ConnAck {
                            code: ReturnCode::NotSupported,
                        },
                    );
                    self.drop_client(peer, "invalid will topic", false);
                    return;
                };
                client.will = Some(Will {
                    topic: name,
                    qos: convert::qos(flags.qos).unwrap_or(QoS::AtMostOnce),
                    retain: flags.retain,
                    payload: Rc::from(&[][..]),
                });
                client.phase = Phase::WillMsg;
                client.since = now;
                self.send(peer, &Message::WillMsgReq);
            }
            (Phase::WillMsg, Message::WillMsg { msg }) => {
                if let Some(will) = client.will.as_mut() {
                    will.payload = Rc::from(msg);
                }
                self.start_session(now, peer);
            }
            (Phase::WillTopic | Phase::WillMsg | Phase::Connecting, other) => {
                log::debug!("{}: {other:?} before the connection is set up", peer.name());
            }
            (
                _,
                Message::Register {
                    msg_id, topic_name, ..
                },
            ) => {
                let (topic_id, code) = match convert::topic_name(topic_name) {
                    None => (0, ReturnCode::NotSupported),
                    Some(name) => match client.register(&name) {
                        Some(id) => (id, ReturnCode::Accepted),
                        None => (0, ReturnCode::Congestion),
                    },
                };
                self.send(
                    peer,
                    &Message::RegAck {
                        topic_id,
                        msg_id,
                        code,
                    },
                );
            }
            (_, Message::RegAck { msg_id, code, .. }) => {
                let registered = matches!(
                    client.in_flight,
                    Some(InFlight {
                        kind: InFlightKind::Register { msg_id: m, .. },
                        ..
                    }) if m == msg_id
                );
                if registered {
                    if let Some(InFlight {
                        kind: InFlightKind::Register { topic_id, .. },
                        ..
                    }) = client.in_flight.take()
                    {
                        if code != ReturnCode::Accepted {
                            client.forget_topic(topic_id);
                        }
                    }
                    if code != ReturnCode::Accepted {
                        // The client will not take the topic: what waited for it is dropped,
                        // and acknowledged to the engine so nothing stays in flight there.
                        if let Some(Out::Publish(p)) = client.queue.pop_front() {
                            log::info!("{}: topic {} refused by the client", peer.name(), p.topic);
                            self.ack_to_engine(peer, &p);
                        }
                    }
                    self.pump(now, peer);
                }
            }
            (
                _,
                Message::Publish {
                    flags,
                    topic_id,
                    msg_id,
                    data,
                },
            ) => self.client_publish(peer, flags, topic_id, msg_id, data),
            (_, Message::PubAck { msg_id, code, .. }) => {
                let qos1 = client.take_in_flight_publish(msg_id, QoS::AtLeastOnce);
                if let Some((topic_id, id_type)) = qos1 {
                    if code == ReturnCode::InvalidTopicId && id_type == TopicIdType::Normal {
                        client.forget_topic(topic_id);
                    }
                    self.engine_ack(conn, Packet::PubAck, msg_id);
                    self.pump(now, peer);
                } else if code != ReturnCode::Accepted {
                    // A refused QoS 2 PUBLISH is answered with PUBACK too (spec 5.4.13).
                    let qos2 = client.take_in_flight_publish(msg_id, QoS::ExactlyOnce);
                    if let Some((topic_id, id_type)) = qos2 {
                        if id_type == TopicIdType::Normal {
                            client.forget_topic(topic_id);
                        }
                        // The engine's exchange ends as if it went through.
                        client.refused_qos2.insert(msg_id);
                        self.engine_ack(conn, Packet::PubRec, msg_id);
                        self.pump(now, peer);
                    }
                }
            }
            (_, Message::PubRec { msg_id }) => {
                if client
                    .take_in_flight_publish(msg_id, QoS::ExactlyOnce)
                    .is_some()
                {
                    self.engine_ack(conn, Packet::PubRec, msg_id);
                    self.pump(now, peer);
                }
            }
            (_, Message::PubComp { msg_id }) => {
                let done = matches!(
                    client.in_flight,
                    Some(InFlight {
                        kind: InFlightKind::PubRel { msg_id: m },
                        ..
                    }) if m == msg_id
                );
                if done {
                    client.in_flight = None;
                    self.engine_ack(conn, Packet::PubComp, msg_id);
                    self.pump(now, peer);
                }
            }
            (_, Message::PubRel { msg_id }) => self.engine_ack(conn, Packet::PubRel, msg_id),
            (
                _,
                Message::Subscribe {
                    flags,
                    msg_id,
                    topic,
                },
            ) => self.client_subscribe(peer, flags, msg_id, topic),
            (_, Message::Unsubscribe { msg_id, topic, .. }) => {
                let filter = match topic {
                    SubTopic::Name(n) => convert::topic_filter(n),
                    SubTopic::Predefined(id) => self.predefined.get(&id).map(|n| n.to_string()),
                    SubTopic::Short(b) => {
                        convert::short_name(u16::from_be_bytes(b)).map(|n| n.to_string())
                    }
                };
                match filter {
                    Some(f) => self.engine(Input::Packet {
                        conn,
                        packet: Packet::Unsubscribe(mqtt::Unsubscribe {
                            packet_id: msg_id,
                            properties: mqtt::Props::none(),
                            filters: vec![f],
                        }),
                    }),
                    // Nothing can be subscribed under an invalid filter: nothing to remove.
                    None => self.send(peer, &Message::UnsubAck { msg_id }),
                }
            }
            (Phase::Asleep | Phase::Awake, Message::PingReq { .. }) => {
                client.phase = Phase::Awake;
                self.pump(now, peer);
            }
            (_, Message::PingReq { .. }) => self.send(peer, &Message::PingResp),
            (_, Message::Disconnect { duration: Some(d) }) if d > 0 => {
                client.phase = Phase::Asleep;
                client.duration_ms = u64::from(d) * 1000;
                client.since = now;
                self.send(peer, &Message::Disconnect { duration: None });
            }
            (_, Message::Disconnect { .. }) => {
                client.phase = Phase::Disconnecting;
                client.will = None;
                self.send(peer, &Message::Disconnect { duration: None });
                self.engine(Input::Packet {
                    conn,
                    packet: Packet::Disconnect(mqtt::Disconnect {
                        reason: ReasonCode::Success,
                        properties: mqtt::Props::none(),
                    }),
                });
            }
            (_, Message::WillTopicUpd { flags, topic }) => {
                let code = if topic.is_empty() {
                    client.will = None;
                    ReturnCode::Accepted
                } else if let Some(name) = convert::topic_name(topic) {
                    let payload = client
                        .will
                        .as_ref()
                        .map_or_else(|| Rc::from(&[][..]), |w| w.payload.clone());
                    client.will = Some(Will {
                        topic: name,
                        qos: convert::qos(flags.qos).unwrap_or(QoS::AtMostOnce),
                        retain: flags.retain,
                        payload,
                    });
                    ReturnCode::Accepted
                } else {
                    ReturnCode::NotSupported
                };
                self.send(peer, &Message::WillTopicResp { code });
            }
            (_, Message::WillMsgUpd { msg }) => {
                let code = match client.will.as_mut() {
                    Some(will) => {
                        will.payload = Rc::from(msg);
                        ReturnCode::Accepted
                    }
                    None => ReturnCode::NotSupported,
                };
                self.send(peer, &Message::WillMsgResp { code });
            }
            (_, other) => log::debug!("{}: unexpected MQTT-SN {other:?}", peer.name()),
        }
    }

    fn engine_ack(&mut self, conn: ConnId, make: fn(Ack) -> Packet, packet_id: u16) {
        let ack = Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: mqtt::Props::none(),
        };
        self.engine(Input::Packet {
            conn,
            packet: make(ack),
        });
    }

    /// Tells the engine a message for the client is done with, when the client cannot take
    /// it: QoS 1 and 2 would otherwise stay in flight for good.
    fn ack_to_engine(&mut self, peer: &Peer, p: &mqtt::Publish) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        let conn = client.conn;
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.engine_ack(conn, Packet::PubAck, p.packet_id),
            QoS::ExactlyOnce => {
                client.refused_qos2.insert(p.packet_id);
                self.engine_ack(conn, Packet::PubRec, p.packet_id);
            }
        }
    }

    fn client_publish(
        &mut self,
        peer: &Peer,
        flags: Flags,
        topic_id: u16,
        msg_id: u16,
        data: &[u8],
    ) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        let topic = match flags.topic_id_type {
            TopicIdType::Normal => client.topics.get(&topic_id).cloned(),
            TopicIdType::Predefined => self.predefined.get(&topic_id).cloned(),
            TopicIdType::Short => convert::short_name(topic_id),
        };
        let qos = convert::qos(flags.qos);
        let nack = |code| Message::PubAck {
            topic_id,
            msg_id,
            code,
        };
        let (Some(topic), Some(qos)) = (topic, qos) else {
            log::info!("{}: PUBLISH to unknown topic id {topic_id}", peer.name());
            return self.send(peer, &nack(ReturnCode::InvalidTopicId));
        };
        if qos != QoS::AtMostOnce && msg_id == 0 {
            return self.send(peer, &nack(ReturnCode::NotSupported));
        }
        if qos == QoS::AtLeastOnce {
            // Bounded: the client's message ids are 16 bits.
            client.publish_topics.insert(msg_id, topic_id);
        }
        let conn = client.conn;
        let publish = mqtt::Publish {
            dup: flags.dup,
            qos,
            retain: flags.retain,
            topic,
            packet_id: if qos == QoS::AtMostOnce { 0 } else { msg_id },
            properties: mqtt::Props::none(),
            payload: Rc::from(data),
        };
        self.engine(Input::Packet {
            conn,
            packet: Packet::Publish(publish),
        });
    }

    fn client_subscribe(&mut self, peer: &Peer, flags: Flags, msg_id: u16, topic: SubTopic<'_>) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        let refuse = |code| Message::SubAck {
            flags: Flags::default(),
            topic_id: 0,
            msg_id,
            code,
        };
        let Some(qos) = convert::qos(flags.qos) else {
            return self.send(peer, &refuse(ReturnCode::NotSupported));
        };
        let (filter, topic_id) = match topic {
            SubTopic::Name(name) => match convert::topic_filter(name) {
                None => return self.send(peer, &refuse(ReturnCode::NotSupported)),
                Some(f) if convert::has_wildcard(&f) => (f, 0),
                Some(f) => match client.register(&Rc::from(f.as_str())) {
                    Some(id) => (f, id),
                    None => return self.send(peer, &refuse(ReturnCode::Congestion)),
                },
            },
            SubTopic::Predefined(id) => match self.predefined.get(&id) {
                Some(name) => (name.to_string(), id),
                None => return self.send(peer, &refuse(ReturnCode::InvalidTopicId)),
            },
            SubTopic::Short(b) => match convert::short_name(u16::from_be_bytes(b)) {
                Some(name) => (name.to_string(), 0),
                None => return self.send(peer, &refuse(ReturnCode::InvalidTopicId)),
            },
        };
        client.subscribe_topics.insert(msg_id, topic_id);
        let conn = client.conn;
        let options = SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        };
        self.engine(Input::Packet {
            conn,
            packet: Packet::Subscribe(mqtt::Subscribe {
                packet_id: msg_id,
                properties: mqtt::Props::none(),
                filters: vec![(filter, options)],
            }),
        });
    }
}

impl Client {
    /// Ends the in-flight PUBLISH `msg_id` of QoS `qos`, if that is what is in flight, and
    /// returns its topic id and type.
    fn take_in_flight_publish(&mut self, msg_id: u16, qos: QoS) -> Option<(u16, TopicIdType)> {
        let matches = matches!(
            &self.in_flight,
            Some(InFlight {
                kind: InFlightKind::Publish { msg_id: m, flags, .. },
                ..
            }) if *m == msg_id && flags.qos == convert::sn_qos(qos)
        );
        if !matches {
            return None;
        }
        match self.in_flight.take() {
            Some(InFlight {
                kind:
                    InFlightKind::Publish {
                        topic_id, flags, ..
                    },
                ..
            }) => Some((topic_id, flags.topic_id_type)),
            _ => None,
        }
    }

    /// Drops the registration of `topic_id`, so the next message on it registers again.
    fn forget_topic(&mut self, topic_id: u16) {
        if let Some(name) = self.topics.remove(&topic_id) {
            self.topic_ids.remove(&name);
        }
    }
}
