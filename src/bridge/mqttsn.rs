//! One MQTT-SN bridge: culex as an MQTT-SN 1.2 client of a remote gateway on one side, a
//! session of this broker's engine on the other, and the relay of every message between
//! them.
//!
//! | state      | event                                          | next                     |
//! |------------|------------------------------------------------|--------------------------|
//! | waiting    | its time comes, gateway known                  | connecting (CONNECT out) |
//! | waiting    | its time comes, no address configured          | searching                |
//! | searching  | GWINFO or ADVERTISE of an acceptable gateway   | connecting               |
//! | connecting | CONNACK accepted                               | connected (local opened) |
//! | connected  | retries spent, DISCONNECT, PINGRESP missing    | waiting (the backoff)    |
//! | any        | stop                                           | stopped                  |
//!
//! As with MQTT bridges the local session is persistent and exists exactly while the
//! gateway connection is up; what the gateway has not acknowledged stays in it and is sent
//! again after the next CONNACK. MQTT-SN has one message in flight at a time, so the local
//! session announces a receive maximum of 1, and the bridge's own REGISTER and SUBSCRIBE
//! messages wait their turn in the same line. Message ids are the engine's packet ids both
//! ways; the bridge's own messages take ids from a counter of their own (only the message
//! in flight is ever matched against an acknowledgement). Topic ids belong to the
//! connection: learnt from REGACK, SUBACK and the gateway's REGISTER, forgotten when it
//! ends; predefined topic ids, agreed with the gateway, need no REGISTER and stay.
//! Two-character topics travel as short topic names. QoS -1 is not used: the bridge keeps
//! a connection; an incoming QoS -1 message is taken as QoS 0.
//!
//! Sans-IO: datagrams and time come in, [`SnOutput`]s go out; the reactor owns the socket,
//! the multicast group and DTLS. A GWINFO sent by another client on behalf of a gateway
//! (with the gateway's address inside) is not used: only gateways answering for themselves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::{filters, map_topic, open_local_session, LocalSession};
use crate::clock::Millis;
use crate::codec::mqtt::topic::valid_topic_name;
use crate::codec::mqtt::{Ack, Packet, Props, Publish, QoS};
use crate::codec::mqttsn::{
    self as sn, Flags, Frame, Message, ReturnCode, SnQos, SubTopic, TopicIdType,
};
use crate::config::bridge::{BridgeConfig, BridgeKind};
use crate::engine::event::{ConnId, Input};
use crate::rng::Rng;
use topics::{TopicRef, Topics};

mod topics;

/// Tretry: the wait for an acknowledgement (or a CONNACK, or a PINGRESP) before sending again.
pub const RETRY_MS: u64 = 10_000;
/// Nretry: sends after the first before the gateway is taken as lost.
pub const RETRY_COUNT: u32 = 5;
/// The longest random delay before the first SEARCHGW, and the first wait after one.
pub const SEARCH_DELAY_MS: u64 = 5_000;
/// The longest wait between two SEARCHGW messages.
pub const SEARCH_INTERVAL_MAX_MS: u64 = 900_000;
/// Messages that wait for the one in flight; QoS 0 messages beyond are dropped (QoS 1 and 2
/// are bounded by the local session's receive maximum).
const MAX_QUEUED: usize = 1_000;
/// Topic ids the gateway may register; beyond, REGISTER is answered "congestion".
const MAX_TOPICS: usize = 1_024;
/// The largest payload of a PUBLISH: a datagram less the 3-octet length, the type, the
/// flags, the topic id and the message id.
const MAX_DATA: usize = sn::MAX_DATAGRAM - 9;
/// Why a connection ended when the gateway ended it.
const GONE: &str = "disconnected by the gateway";
/// Where the bridge's own message ids start, away from the engine's first packet ids.
const OWN_IDS_FROM: u16 = 0x8000;
/// The topic of work that names none.
const NO_TOPIC: TopicRef = (TopicIdType::Normal, 0);

/// What the bridge asks of the reactor.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SnOutput {
    /// A datagram to the gateway in use (the configured address, or the one discovery found).
    ToGateway(Vec<u8>),
    /// A datagram to the multicast group (SEARCHGW).
    ToGroup(Vec<u8>),
    /// The gateway to use from now on is the source of the datagram just handed in
    /// (discovery).
    UseSource,
    /// Feed the engine on behalf of the local session.
    Engine(Input),
    /// Publish the bridge's connection state on this broker, retained.
    Notify { topic: String, up: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not connected; the next attempt (or search) starts at this time.
    Waiting(Millis),
    /// Looking for a gateway: the next SEARCHGW at this time, then this many ms later.
    Searching(Millis, u64),
    /// CONNECT sent again at this time; sent this many times after the first.
    Connecting(Millis, u32),
    Connected,
    Stopped,
}

/// Work for the gateway: waiting in line, or in flight.
#[derive(Debug)]
enum Work {
    /// A SUBSCRIBE of an incoming mapping's filter.
    Subscribe(String, QoS),
    /// A REGISTER of an outgoing message's topic (never queued: the message is).
    Register(String),
    /// A message from the engine, its topic already the remote one; `true` once its topic
    /// was registered anew after an "invalid topic id".
    Publish(Box<Publish>, bool),
    /// The release of an outgoing QoS 2 message.
    PubRel(u16),
}

/// The one message in flight, sent again until acknowledged.
#[derive(Debug)]
struct InFlight {
    work: Work,
    msg_id: u16,
    /// The topic id a PUBLISH names.
    topic: TopicRef,
    tries: u32,
    due: Millis,
}

pub struct SnBridge {
    config: BridgeConfig,
    /// Discovery: whether there is a multicast group, the SEARCHGW radius, the gateway id
    /// to accept (any when `None`).
    group: bool,
    radius: u8,
    gateway_id: Option<u8>,
    phase: Phase,
    rng: Rng,
    /// The last reconnect delay, for the backoff.
    delay_ms: u64,
    /// Whether the gateway to use is known: configured, or found by discovery.
    gateway_known: bool,
    /// The local session's connection, while it is open.
    local: Option<ConnId>,
    /// The connection id the local session takes at the next CONNACK.
    next_local: Option<ConnId>,
    /// Topic ids: predefined, and of this connection.
    topics: Topics,
    queue: VecDeque<Work>,
    in_flight: Option<InFlight>,
    /// Incoming QoS 1 messages the engine has yet to acknowledge: their topic ids, which
    /// PUBACK names.
    in_qos1: BTreeMap<u16, u16>,
    /// Incoming QoS 2 messages that no mapping carried: answered here.
    dropped_qos2: BTreeSet<u16>,
    /// Outgoing QoS 2 messages completed here: the engine's PUBREL is answered here.
    local_qos2: BTreeSet<u16>,
    next_own_id: u16,
    last_sent: Millis,
    /// PINGREQ outstanding: when last sent, and the sends after the first.
    ping: Option<(Millis, u32)>,
    out: VecDeque<SnOutput>,
    counters: (u64, u64, u64),
    last_error: Option<String>,
}

impl SnBridge {
    /// A bridge that makes its first attempt (or starts its search) at `now`. The engine's
    /// receive maximum does not matter: the gateway sends one message at a time.
    pub fn new(config: BridgeConfig, seed: u64, now: Millis, _local_receive_max: u16) -> Self {
        let (group, radius, gateway_id, topics) = match &config.kind {
            BridgeKind::MqttSn(s) => (
                s.multicast_group.is_some(),
                s.search_radius,
                s.gateway_id,
                Topics::new(&s.predefined),
            ),
            _ => (false, 1, None, Topics::default()),
        };
        Self {
            gateway_known: !config.addresses.is_empty(),
            config,
            group,
            radius,
            gateway_id,
            phase: Phase::Waiting(now),
            rng: Rng::new(seed),
            delay_ms: 0,
            local: None,
            next_local: None,
            topics,
            queue: VecDeque::new(),
            in_flight: None,
            in_qos1: BTreeMap::new(),
            dropped_qos2: BTreeSet::new(),
            local_qos2: BTreeSet::new(),
            next_own_id: OWN_IDS_FROM,
            last_sent: now,
            ping: None,
            out: VecDeque::new(),
            counters: (0, 0, 0),
            last_error: None,
        }
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// `searching`, `connecting`, `connected`, `waiting` or `stopped`.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Waiting(_) => "waiting",
            Phase::Searching(..) => "searching",
            Phase::Connecting(..) => "connecting",
            Phase::Connected => "connected",
            Phase::Stopped => "stopped",
        }
    }

    /// Connections made, messages sent to the gateway, messages received from it.
    pub fn counters(&self) -> (u64, u64, u64) {
        self.counters
    }

    /// Why the last attempt or connection ended, if one did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The connection ids the bridge holds: its local session's, and the one its next
    /// local session will take.
    pub fn held_ids(&self) -> [Option<ConnId>; 2] {
        [self.local, self.next_local]
    }

    /// Whether the bridge needs [`Self::set_local_id`] before its next CONNACK.
    pub fn wants_local_id(&self) -> bool {
        self.next_local.is_none()
    }

    /// The connection id the local session takes at the next CONNACK (each id serves one
    /// connection: give a new one after each loss).
    pub fn set_local_id(&mut self, local: ConnId) {
        self.next_local = Some(local);
    }

    /// The next output. Poll until `None`, feeding the engine as asked in between: the
    /// engine's answers come back through [`Self::from_engine`] and add to the outputs.
    pub fn poll(&mut self) -> Option<SnOutput> {
        self.out.pop_front()
    }

    /// When [`Self::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.phase {
            Phase::Waiting(until) => Some(until),
            Phase::Searching(next, _) => Some(next),
            Phase::Connecting(due, _) => Some(due),
            Phase::Connected => {
                let flight = self.in_flight.as_ref().map(|f| f.due);
                let ping = match (self.ping, self.keepalive_ms()) {
                    (Some((at, _)), _) => Some(at.saturating_add_ms(RETRY_MS)),
                    (None, Some(ka)) => Some(self.last_sent.saturating_add_ms(ka)),
                    (None, None) => None,
                };
                [flight, ping].into_iter().flatten().min()
            }
            Phase::Stopped => None,
        }
    }

    fn keepalive_ms(&self) -> Option<u64> {
        let secs = u64::from(self.config.keepalive_secs);
        (secs > 0).then_some(secs * 1000)
    }

    /// Fires what is due at `now`: an attempt, a search, a retry, a PINGREQ.
    pub fn tick(&mut self, now: Millis) {
        match self.phase {
            Phase::Waiting(until) if until <= now => {
                if self.gateway_known {
                    self.connect(now, 0);
                } else if self.group {
                    let next = now.saturating_add_ms(self.rng.below(SEARCH_DELAY_MS + 1));
                    let interval = SEARCH_DELAY_MS;
                    self.phase = Phase::Searching(next, interval);
                } else {
                    self.last_error = Some("no address and no multicast group".to_owned());
                    self.phase = Phase::Stopped;
                }
            }
            Phase::Searching(next, interval) if next <= now => {
                log::debug!("bridge {}: searching for a gateway", self.config.name);
                let msg = Message::SearchGw {
                    radius: self.radius,
                };
                self.out.push_back(SnOutput::ToGroup(encode(&msg)));
                let next = now.saturating_add_ms(interval);
                let interval = interval.saturating_mul(2).min(SEARCH_INTERVAL_MAX_MS);
                self.phase = Phase::Searching(next, interval);
            }
            Phase::Connecting(due, tries) if due <= now => {
                if tries >= RETRY_COUNT {
                    self.fail(now, "no CONNACK from the gateway".to_owned(), false);
                } else {
                    self.connect(now, tries + 1);
                }
            }
            Phase::Connected => self.connected_timers(now),
            _ => {}
        }
    }

    fn connected_timers(&mut self, now: Millis) {
        if let Some(f) = self.in_flight.as_mut().filter(|f| f.due <= now) {
            if f.tries >= RETRY_COUNT {
                let why = "no acknowledgement from the gateway after retries".to_owned();
                return self.fail(now, why, true);
            }
            f.tries += 1;
            f.due = now.saturating_add_ms(RETRY_MS);
            let bytes = encode_flight(f, true, &self.topics);
            self.send_bytes(now, bytes);
        }
        match self.ping {
            Some((at, tries)) if now.since(at) >= RETRY_MS => {
                if tries >= RETRY_COUNT {
                    return self.fail(now, "no PINGRESP from the gateway".to_owned(), false);
                }
                self.ping = Some((now, tries + 1));
                self.send(now, &Message::PingReq { client_id: None });
            }
            None if self
                .keepalive_ms()
                .is_some_and(|ka| now.since(self.last_sent) >= ka) =>
            {
                self.ping = Some((now, 0));
                self.send(now, &Message::PingReq { client_id: None });
            }
            _ => {}
        }
    }

    /// Sends CONNECT (again when `tries` > 0) and waits for CONNACK.
    fn connect(&mut self, now: Millis, tries: u32) {
        if tries == 0 {
            log::info!("bridge {}: connecting to the gateway", self.config.name);
        }
        self.phase = Phase::Connecting(now.saturating_add_ms(RETRY_MS), tries);
        let msg = Message::Connect {
            flags: Flags {
                clean_session: self.config.cleansession,
                ..Flags::default()
            },
            protocol_id: 0x01,
            duration: self.config.keepalive_secs,
            client_id: self.config.remote_clientid.as_bytes(),
        };
        let bytes = encode(&msg);
        self.send_bytes(now, bytes);
    }

    /// A datagram from the gateway in use (`from_gateway`) or from another address (a
    /// GWINFO or ADVERTISE while searching). What is not valid MQTT-SN is dropped.
    pub fn datagram(&mut self, now: Millis, from_gateway: bool, bytes: &[u8]) {
        let msg = match sn::decode(bytes) {
            Ok(Frame::Message(m)) => m,
            Ok(Frame::Encapsulated(_)) => return,
            Err(e) => {
                log::debug!("bridge {}: bad datagram: {e}", self.config.name);
                return;
            }
        };
        match self.phase {
            Phase::Searching(..) => self.discovered(now, msg),
            Phase::Connecting(..) if from_gateway => match msg {
                Message::ConnAck { code } => match code {
                    ReturnCode::Accepted => self.connected(now),
                    _ => self.fail(now, format!("refused: {code:?}"), false),
                },
                Message::Disconnect { .. } => self.fail(now, GONE.to_owned(), false),
                _ => {}
            },
            Phase::Connected if from_gateway => self.gateway_message(now, msg),
            _ => {}
        }
    }

    /// A message heard while searching: a gateway answering or advertising itself.
    fn discovered(&mut self, now: Millis, msg: Message<'_>) {
        let gw_id = match msg {
            Message::GwInfo { gw_id, gw_add: [] } => gw_id,
            Message::Advertise { gw_id, .. } => gw_id,
            _ => return,
        };
        if self.gateway_id.is_some_and(|id| id != gw_id) {
            return;
        }
        log::info!("bridge {}: found gateway {gw_id}", self.config.name);
        self.gateway_known = true;
        self.out.push_back(SnOutput::UseSource);
        self.connect(now, 0);
    }

    /// A message of the gateway while connected.
    fn gateway_message(&mut self, now: Millis, msg: Message<'_>) {
        match msg {
            Message::Register {
                topic_id,
                msg_id,
                topic_name,
            } => {
                let name = std::str::from_utf8(topic_name)
                    .ok()
                    .filter(|n| valid_topic_name(n));
                let code = match name {
                    None => ReturnCode::NotSupported,
                    Some(_) if self.topics.learnt() >= MAX_TOPICS => ReturnCode::Congestion,
                    Some(n) => {
                        self.topics.learn(topic_id, n.to_owned());
                        ReturnCode::Accepted
                    }
                };
                let ack = Message::RegAck {
                    topic_id,
                    msg_id,
                    code,
                };
                self.send(now, &ack);
            }
            Message::RegAck {
                topic_id,
                msg_id,
                code,
            } => {
                let Some(Work::Register(topic)) =
                    self.take_flight(msg_id, |w| matches!(w, Work::Register(_)))
                else {
                    return;
                };
                if code == ReturnCode::Accepted {
                    self.topics.learn(topic_id, topic);
                } else if let Some(Work::Publish(p, _)) = self.queue.pop_front() {
                    log::info!("bridge {}: REGISTER {topic} refused", self.config.name);
                    self.ack_locally(&p);
                }
            }
            Message::Publish {
                flags,
                topic_id,
                msg_id,
                data,
            } => self.incoming(now, flags, topic_id, msg_id, data),
            Message::PubAck {
                topic_id,
                msg_id,
                code,
            } => self.puback(now, topic_id, msg_id, code),
            Message::PubRec { msg_id } => {
                let matched = self.take_flight(
                    msg_id,
                    |w| matches!(w, Work::Publish(p, _) if p.qos == QoS::ExactlyOnce),
                );
                if matched.is_some() {
                    self.engine_packet(Packet::PubRec(Ack::success(msg_id)));
                }
            }
            Message::PubRel { msg_id } => {
                if self.dropped_qos2.remove(&msg_id) {
                    self.send(now, &Message::PubComp { msg_id });
                } else {
                    self.engine_packet(Packet::PubRel(Ack::success(msg_id)));
                }
            }
            Message::PubComp { msg_id } => {
                let matched = self.take_flight(msg_id, |w| matches!(w, Work::PubRel(_)));
                if matched.is_some() {
                    self.engine_packet(Packet::PubComp(Ack::success(msg_id)));
                }
            }
            Message::SubAck {
                topic_id,
                msg_id,
                code,
                ..
            } => {
                let Some(Work::Subscribe(filter, _)) =
                    self.take_flight(msg_id, |w| matches!(w, Work::Subscribe(..)))
                else {
                    return;
                };
                if code != ReturnCode::Accepted {
                    let bridge = &self.config.name;
                    log::warn!("bridge {bridge}: subscription to {filter} refused: {code:?}");
                } else if topic_id != 0
                    && matches!(self.topics.sub_topic(&filter), SubTopic::Name(_))
                    && !filter.contains(['+', '#'])
                {
                    self.topics.learn(topic_id, filter);
                }
            }
            Message::PingReq { .. } => self.send(now, &Message::PingResp),
            Message::PingResp => self.ping = None,
            Message::Disconnect { .. } => self.fail(now, GONE.to_owned(), false),
            _ => {}
        }
        self.pump(now);
    }

    /// The in-flight message, if `matches` says it is the one acknowledged; the next job
    /// may then go.
    fn take_flight(&mut self, msg_id: u16, matches: impl Fn(&Work) -> bool) -> Option<Work> {
        let found = self.in_flight.as_ref();
        if !found.is_some_and(|f| f.msg_id == msg_id && matches(&f.work)) {
            return None;
        }
        self.in_flight.take().map(|f| f.work)
    }

    /// PUBACK of the outgoing message in flight: done, or refused.
    fn puback(&mut self, now: Millis, topic_id: u16, msg_id: u16, code: ReturnCode) {
        let flight = self.in_flight.as_ref().filter(|f| f.msg_id == msg_id);
        let topic = flight.map_or((TopicIdType::Normal, topic_id), |f| f.topic);
        if code == ReturnCode::InvalidTopicId && topic.0 == TopicIdType::Normal {
            // Forgotten, also for a QoS 0 message (none in flight): registered again.
            self.topics.forget(topic_id);
        }
        let Some(Work::Publish(p, again)) =
            self.take_flight(msg_id, |w| matches!(w, Work::Publish(..)))
        else {
            return;
        };
        match code {
            ReturnCode::Accepted if p.qos == QoS::AtLeastOnce => {
                self.engine_packet(Packet::PubAck(Ack::success(msg_id)));
            }
            // A QoS 2 message acknowledged as if QoS 1: the gateway has it.
            ReturnCode::Accepted => self.ack_locally(&p),
            // The gateway forgot the topic id: registered once more, then sent again.
            ReturnCode::InvalidTopicId if !again => self.queue.push_front(Work::Publish(p, true)),
            // Sent again after Tretry, as if unacknowledged.
            ReturnCode::Congestion => {
                let due = now.saturating_add_ms(RETRY_MS);
                let work = Work::Publish(p, again);
                self.in_flight = Some(InFlight {
                    work,
                    msg_id,
                    topic,
                    tries: 0,
                    due,
                });
            }
            _ => {
                let name = &self.config.name;
                log::info!("bridge {name}: the gateway refused a message: {code:?}");
                self.ack_locally(&p);
            }
        }
    }

    /// A PUBLISH of the gateway: to the engine under its local topic, or answered here.
    fn incoming(&mut self, now: Millis, flags: Flags, topic_id: u16, msg_id: u16, data: &[u8]) {
        // QoS -1 is for clients without a connection: taken as 0.
        let qos = QoS::from_u8(flags.qos.bits()).unwrap_or(QoS::AtMostOnce);
        let Some(name) = self.topics.name(flags.topic_id_type, topic_id) else {
            return self.send(now, &puback(topic_id, msg_id, ReturnCode::InvalidTopicId));
        };
        let Some(topic) = map_topic(&self.config.topics, &name, false) else {
            let bridge = &self.config.name;
            log::debug!("bridge {bridge}: no mapping takes {name} from the gateway");
            match qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => self.send(now, &puback(topic_id, msg_id, ReturnCode::Accepted)),
                QoS::ExactlyOnce => {
                    self.dropped_qos2.insert(msg_id);
                    self.send(now, &Message::PubRec { msg_id });
                }
            }
            return;
        };
        self.counters.2 += 1;
        if qos == QoS::AtLeastOnce {
            self.in_qos1.insert(msg_id, topic_id);
        }
        let p = Publish {
            dup: flags.dup,
            qos,
            retain: flags.retain,
            topic: topic.into(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { msg_id },
            properties: Props::none(),
            payload: Rc::from(data),
        };
        self.engine_packet(Packet::Publish(p));
    }

    /// The packets the engine sends to the local session.
    pub fn from_engine(&mut self, now: Millis, packet: Packet) {
        if self.phase != Phase::Connected {
            return;
        }
        match packet {
            Packet::Publish(p) => self.relay_out(p),
            Packet::PubRel(a) if self.local_qos2.remove(&a.packet_id) => {
                self.engine_packet(Packet::PubComp(Ack::success(a.packet_id)));
            }
            Packet::PubRel(a) => self.queue.push_back(Work::PubRel(a.packet_id)),
            // Acknowledgements of the gateway's messages.
            Packet::PubAck(a) => {
                let topic_id = self.in_qos1.remove(&a.packet_id).unwrap_or(0);
                let code = match a.reason.is_error() {
                    false => ReturnCode::Accepted,
                    true => ReturnCode::NotSupported,
                };
                self.send(now, &puback(topic_id, a.packet_id, code));
            }
            Packet::PubRec(Ack { packet_id, .. }) => {
                self.send(now, &Message::PubRec { msg_id: packet_id });
            }
            Packet::PubComp(Ack { packet_id, .. }) => {
                self.send(now, &Message::PubComp { msg_id: packet_id });
            }
            Packet::ConnAck(ack) if ack.reason.is_error() => {
                let why = format!("the local session was refused: {}", ack.reason.text());
                self.fail(now, why, true);
            }
            Packet::SubAck(ack) if ack.reasons.iter().any(|r| r.is_error()) => {
                log::warn!("bridge {}: a local subscription was refused", self.name());
            }
            Packet::Disconnect(d) => {
                let why = format!("the local session was disconnected: {}", d.reason.text());
                self.fail(now, why, true);
            }
            _ => {}
        }
        self.pump(now);
    }

    /// A message of the local session's subscriptions, for the gateway.
    fn relay_out(&mut self, p: Publish) {
        let Some(topic) = map_topic(&self.config.topics, &p.topic, true) else {
            return self.ack_locally(&p);
        };
        let bridge = &self.config.name;
        if p.payload.len() > MAX_DATA {
            log::info!(
                "bridge {bridge}: a message on {} is too large; dropped",
                p.topic
            );
            return self.ack_locally(&p);
        }
        if p.qos == QoS::AtMostOnce && self.queue.len() >= MAX_QUEUED {
            log::debug!("bridge {bridge}: queue full, a QoS 0 message dropped");
            return;
        }
        let p = Publish {
            topic: topic.into(),
            properties: Props::none(),
            ..p
        };
        self.queue.push_back(Work::Publish(Box::new(p), false));
    }

    /// Sends what waits, while nothing is in flight: QoS 0 messages go at once, the rest
    /// one at a time, each topic registered first where it has no id yet.
    fn pump(&mut self, now: Millis) {
        while self.phase == Phase::Connected && self.in_flight.is_none() {
            let Some(work) = self.queue.pop_front() else {
                return;
            };
            let (msg_id, topic) = match &work {
                Work::Publish(p, again) => {
                    let Some(topic) = self.topics.publish_ref(&p.topic) else {
                        let register = Work::Register(p.topic.to_string());
                        self.queue.push_front(work);
                        let msg_id = self.own_id();
                        self.start(now, register, msg_id, NO_TOPIC);
                        continue;
                    };
                    self.counters.1 += 1;
                    if p.qos == QoS::AtMostOnce {
                        let bytes = publish_bytes(p, topic, *again);
                        self.send_bytes(now, bytes);
                        continue;
                    }
                    (p.packet_id, topic)
                }
                Work::PubRel(msg_id) => (*msg_id, NO_TOPIC),
                Work::Subscribe(..) | Work::Register(_) => (self.own_id(), NO_TOPIC),
            };
            self.start(now, work, msg_id, topic);
        }
    }

    fn start(&mut self, now: Millis, work: Work, msg_id: u16, topic: TopicRef) {
        let due = now.saturating_add_ms(RETRY_MS);
        let flight = InFlight {
            work,
            msg_id,
            topic,
            tries: 0,
            due,
        };
        let bytes = encode_flight(&flight, false, &self.topics);
        self.send_bytes(now, bytes);
        self.in_flight = Some(flight);
    }

    fn own_id(&mut self) -> u16 {
        let id = self.next_own_id;
        self.next_own_id = self.next_own_id.wrapping_add(1).max(OWN_IDS_FROM);
        id
    }

    /// Completes a QoS 1 or 2 delivery of the engine without the gateway.
    fn ack_locally(&mut self, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.engine_packet(Packet::PubAck(Ack::success(p.packet_id))),
            // The engine's PUBREL that follows is answered here too.
            QoS::ExactlyOnce => {
                self.local_qos2.insert(p.packet_id);
                self.engine_packet(Packet::PubRec(Ack::success(p.packet_id)));
            }
        }
    }

    /// The engine closed the local session's connection.
    pub fn local_closed(&mut self, now: Millis) {
        let Some(local) = self.local.take() else {
            return;
        };
        // The engine forgets the connection once told it is closed.
        self.out.push_back(SnOutput::Engine(Input::Closed {
            conn: local,
            reason: "closed by the broker",
        }));
        if self.phase == Phase::Connected {
            self.fail(now, "the local session was closed".to_owned(), true);
        }
    }

    /// Ends the bridge: DISCONNECT to the gateway, the local session closed (its
    /// persistent session stays unless the caller ends it).
    pub fn stop(&mut self, now: Millis) {
        if matches!(self.phase, Phase::Connected | Phase::Connecting(..)) {
            self.send(now, &Message::Disconnect { duration: None });
        }
        self.close_local();
        self.reset();
        self.phase = Phase::Stopped;
    }

    /// CONNACK accepted: the local session opens and the gateway subscriptions start.
    fn connected(&mut self, now: Millis) {
        let Some(local) = self.next_local.take() else {
            return self.fail(now, "no local connection id".to_owned(), true);
        };
        log::info!("bridge {}: connected to the gateway", self.config.name);
        self.phase = Phase::Connected;
        self.counters.0 += 1;
        self.delay_ms = 0;
        self.reset();
        self.local = Some(local);
        let spec = LocalSession {
            // One message in flight, as MQTT-SN has.
            receive_max: 1,
            max_packet: None,
            // What the bridge brings in must not go straight back out.
            no_local: true,
            retain_handling: 1,
        };
        let peer = format!("bridge {}", self.config.name);
        for input in open_local_session(&self.config, local, &peer, spec) {
            self.out.push_back(SnOutput::Engine(input));
        }
        for (filter, qos) in filters(&self.config.topics, false) {
            self.queue.push_back(Work::Subscribe(filter, qos));
        }
        if self.config.notifications {
            self.notify_local(true);
        }
        self.pump(now);
    }

    /// Forgets what belongs to one gateway connection.
    fn reset(&mut self) {
        self.topics.clear();
        self.queue.clear();
        self.in_flight = None;
        self.in_qos1.clear();
        self.dropped_qos2.clear();
        self.ping = None;
    }

    /// The connection is lost or given up: the local session is closed, and the next
    /// attempt waits for the backoff (and searches again without a configured address).
    /// `tell` sends DISCONNECT to a gateway that may still be listening.
    fn fail(&mut self, now: Millis, why: String, tell: bool) {
        log::warn!("bridge {}: {why}", self.config.name);
        self.last_error = Some(why);
        if tell && matches!(self.phase, Phase::Connected | Phase::Connecting(..)) {
            self.send(now, &Message::Disconnect { duration: None });
        }
        self.close_local();
        self.reset();
        self.gateway_known = !self.config.addresses.is_empty();
        let delay = self.backoff_ms();
        self.phase = Phase::Waiting(now.saturating_add_ms(delay));
    }

    /// The next reconnect delay, as MQTT bridges have it: `restart_timeout` alone is
    /// constant; with a cap it grows with random jitter between the base and three times the
    /// last delay, up to the cap.
    fn backoff_ms(&mut self) -> u64 {
        self.delay_ms = super::backoff_ms(&self.config, self.delay_ms, &mut self.rng);
        self.delay_ms
    }

    /// Closes the local session's connection, with the state notification.
    fn close_local(&mut self) {
        let Some(local) = self.local.take() else {
            return;
        };
        if self.config.notifications {
            self.notify_local(false);
        }
        self.out.push_back(SnOutput::Engine(Input::Closed {
            conn: local,
            reason: "bridge disconnected",
        }));
    }

    fn notify_local(&mut self, up: bool) {
        self.out.push_back(SnOutput::Notify {
            topic: self.config.notification_topic.clone(),
            up,
        });
    }

    fn engine_packet(&mut self, packet: Packet) {
        if let Some(conn) = self.local {
            self.out
                .push_back(SnOutput::Engine(Input::Packet { conn, packet }));
        }
    }

    fn send(&mut self, now: Millis, msg: &Message<'_>) {
        let bytes = encode(msg);
        self.send_bytes(now, bytes);
    }

    fn send_bytes(&mut self, now: Millis, bytes: Vec<u8>) {
        self.last_sent = now;
        self.out.push_back(SnOutput::ToGateway(bytes));
    }
}

fn encode(msg: &Message<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(sn::encoded_len(msg));
    sn::encode(msg, &mut bytes);
    bytes
}

/// The datagram of the message in flight (DUP set when sent again, where it has one).
fn encode_flight(f: &InFlight, again: bool, topics: &Topics) -> Vec<u8> {
    let msg_id = f.msg_id;
    let msg = match &f.work {
        Work::Subscribe(filter, qos) => {
            // The encoder sets the topic id type from the topic.
            let topic = topics.sub_topic(filter);
            let flags = Flags {
                dup: again,
                qos: SnQos::from_bits(*qos as u8),
                ..Flags::default()
            };
            Message::Subscribe {
                flags,
                msg_id,
                topic,
            }
        }
        Work::Register(topic) => {
            let topic_name = topic.as_bytes();
            Message::Register {
                topic_id: 0,
                msg_id,
                topic_name,
            }
        }
        Work::Publish(p, _) => return publish_bytes(p, f.topic, again),
        Work::PubRel(_) => Message::PubRel { msg_id },
    };
    encode(&msg)
}

/// A PUBLISH of the engine's message, under its topic id (or short name).
fn publish_bytes(p: &Publish, (topic_id_type, topic_id): TopicRef, again: bool) -> Vec<u8> {
    let flags = Flags {
        dup: again || p.dup,
        qos: SnQos::from_bits(p.qos as u8),
        retain: p.retain,
        topic_id_type,
        ..Flags::default()
    };
    let (msg_id, data) = (p.packet_id, &p.payload[..]);
    encode(&Message::Publish {
        flags,
        topic_id,
        msg_id,
        data,
    })
}

fn puback(topic_id: u16, msg_id: u16, code: ReturnCode) -> Message<'static> {
    Message::PubAck {
        topic_id,
        msg_id,
        code,
    }
}

#[cfg(test)]
mod tests;
