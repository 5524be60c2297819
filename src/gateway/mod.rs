//! The MQTT-SN 1.2 gateway: a sans-IO state machine between UDP datagrams and the engine.
//!
//! Every MQTT-SN client becomes an ordinary engine connection and session: the gateway turns
//! its messages into MQTT 5.0 packets (CONNECT with receive maximum 1, PUBLISH with the topic
//! name its topic id stands for, ...) and the engine's packets back into MQTT-SN messages,
//! registering topic ids with the client where needed. What MQTT has no word for stays here:
//! topic id registries, the will dialogue, sleeping clients and their buffers, keep alive,
//! and retransmission of what the gateway sends.
//!
//! Owns the per-listener client table and its bounds. It must never touch a socket, read the
//! clock or draw randomness on its own: datagrams and time come in, datagrams and engine
//! inputs go out through [`Gateway::poll`].

mod client;
mod convert;

#[cfg(test)]
mod tests;

use core::net::SocketAddr;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;

use crate::clock::Millis;
use crate::codec::mqtt::{self as mqtt, Packet, QoS};
use crate::codec::mqttsn::{self as sn, Frame, Message, ReturnCode};
use crate::engine::event::{Action, ConnId, Input, ListenerId};
use crate::rng::Rng;
use client::{Client, Phase};

/// Registrations one client may hold; a REGISTER beyond is refused with "congestion".
pub const MAX_TOPICS_PER_CLIENT: usize = 1024;

/// Other gateways remembered from their ADVERTISE and GWINFO messages (for bridges).
pub const MAX_KNOWN_GATEWAYS: usize = 64;

/// Longest wait before GWINFO answers a SEARCHGW. The spec asks for a random delay so that
/// the gateways (and clients) that hear the search do not all answer at once.
pub const GWINFO_DELAY_MAX_MS: u64 = 200;

/// Clients a listener serves when no `max_clients` is configured: the table must be bounded
/// whatever the configuration, or a CONNECT flood from many addresses would grow it forever.
pub const DEFAULT_MAX_CLIENTS: usize = 65_536;

/// Settings of one MQTT-SN listener, as the gateway needs them.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listener: ListenerId,
    pub gateway_id: u8,
    /// Tretry: wait for an acknowledgement before sending again.
    pub retry_ms: u64,
    /// Nretry: sends after the first before the client is taken as lost.
    pub retry_count: u32,
    /// Messages kept for a sleeping client (and queued behind a registration).
    pub sleep_buffer: usize,
    pub max_clients: usize,
    /// Predefined topic ids, the same for every client of the listener.
    pub predefined: Vec<(u16, String)>,
    /// Seconds between ADVERTISE messages; 0 for none.
    pub advertise_interval: u32,
    /// Seed of the gateway's random source (the GWINFO delay).
    pub seed: u64,
}

/// Another gateway heard on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownGateway {
    pub addr: SocketAddr,
    /// Its address as announced in GWINFO, if any.
    pub announced: Vec<u8>,
    pub last_seen: Millis,
    /// The ADVERTISE interval it announced, in seconds.
    pub duration: Option<u16>,
}

/// Where a client is: an address, and behind a forwarder the wireless node id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub addr: SocketAddr,
    pub node: Option<Rc<[u8]>>,
}

impl Peer {
    fn name(&self) -> Rc<str> {
        match &self.node {
            None => Rc::from(format!("udp {}", self.addr)),
            Some(node) => {
                let hex: String = node.iter().map(|b| format!("{b:02x}")).collect();
                Rc::from(format!("udp {} node {hex}", self.addr))
            }
        }
    }
}

/// What the gateway asks of the reactor. Moved once from the gateway to the reactor and
/// never stored in bulk, like the engine's inputs.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Output {
    /// Send one datagram.
    Datagram { to: SocketAddr, bytes: Vec<u8> },
    /// Send one datagram to the listener's multicast group, if it has one.
    Multicast { bytes: Vec<u8> },
    /// Send one discovery datagram (GWINFO) in the clear, even on a DTLS listener: a client
    /// searches for its gateway before any handshake.
    Discovery { to: SocketAddr, bytes: Vec<u8> },
    /// Feed this to the engine.
    Engine(Input),
    /// The connection id of a client that went before reaching the engine may be given out
    /// again.
    Release(ConnId),
}

pub struct Gateway {
    config: GatewayConfig,
    predefined: BTreeMap<u16, Rc<str>>,
    predefined_ids: BTreeMap<Rc<str>, u16>,
    clients: BTreeMap<Peer, Client>,
    by_conn: BTreeMap<ConnId, Peer>,
    /// Client deadlines, earliest first. Entries are never removed in place: a popped entry
    /// whose client moved its deadline later is armed again (see [`Gateway::arm`]), so the
    /// loop never scans the client table.
    timers: BinaryHeap<Reverse<(Millis, Peer)>>,
    /// The engine connection that carries QoS -1 publications, opened on first use.
    anonymous: Option<ConnId>,
    out: VecDeque<Output>,
    next_advertise: Option<Millis>,
    /// GWINFO answers waiting for their random delay: (due, searcher).
    gwinfo_due: Vec<(Millis, Peer)>,
    /// Other gateways, by gateway id.
    known: BTreeMap<u8, KnownGateway>,
    rng: Rng,
    /// Messages that could not be decoded, for the log's rate and for tests.
    pub dropped: u64,
}

impl Gateway {
    pub fn new(config: GatewayConfig, now: Millis) -> Self {
        let predefined: BTreeMap<u16, Rc<str>> = config
            .predefined
            .iter()
            .map(|(id, name)| (*id, Rc::from(name.as_str())))
            .collect();
        let predefined_ids = predefined.iter().map(|(id, n)| (n.clone(), *id)).collect();
        let next_advertise = (config.advertise_interval > 0).then_some(now);
        let rng = Rng::new(config.seed);
        Self {
            config,
            predefined,
            predefined_ids,
            clients: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            timers: BinaryHeap::new(),
            anonymous: None,
            out: VecDeque::new(),
            next_advertise,
            gwinfo_due: Vec::new(),
            known: BTreeMap::new(),
            rng,
            dropped: 0,
        }
    }

    pub fn listener(&self) -> ListenerId {
        self.config.listener
    }

    /// Whether the engine connection is one of this gateway's clients.
    pub fn owns(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn) || self.anonymous == Some(conn)
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest time [`Gateway::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let clients = self.timers.peek().map(|Reverse((at, _))| *at);
        let gwinfo = self.gwinfo_due.iter().map(|(due, _)| *due);
        clients
            .into_iter()
            .chain(gwinfo)
            .chain(self.next_advertise)
            .min()
    }

    /// Puts the client's deadline in the timer heap when it is earlier than the one already
    /// there. Activity only moves a deadline later, so busy clients add no entries.
    fn arm(&mut self, peer: &Peer) {
        let Some(client) = self.clients.get_mut(peer) else {
            return;
        };
        let Some(due) = client.deadline() else {
            return;
        };
        if client.armed.is_none_or(|armed| due < armed) {
            client.armed = Some(due);
            self.timers.push(Reverse((due, peer.clone())));
        }
    }

    /// One datagram from `from`. `new_conn` gives engine connection ids for new clients.
    pub fn datagram(
        &mut self,
        now: Millis,
        from: SocketAddr,
        bytes: &[u8],
        new_conn: &mut dyn FnMut() -> ConnId,
    ) {
        match sn::decode(bytes) {
            Ok(Frame::Message(msg)) => {
                let peer = Peer {
                    addr: from,
                    node: None,
                };
                self.message(now, peer, msg, new_conn);
            }
            Ok(Frame::Encapsulated(e)) => match sn::decode_message(e.inner) {
                Ok(msg) => {
                    let peer = Peer {
                        addr: from,
                        node: Some(Rc::from(e.node_id)),
                    };
                    self.message(now, peer, msg, new_conn);
                }
                Err(err) => self.bad(from, &err.to_string()),
            },
            Err(err) => self.bad(from, &err.to_string()),
        }
    }

    fn bad(&mut self, from: SocketAddr, why: &str) {
        self.dropped += 1;
        log::info!("udp {from}: MQTT-SN datagram dropped: {why}");
    }

    /// Sends `msg` to `peer`, through its forwarder when it has one.
    fn send(&mut self, peer: &Peer, msg: &Message<'_>) {
        let mut bytes = Vec::with_capacity(sn::encoded_len(msg) + 8);
        match &peer.node {
            None => sn::encode(msg, &mut bytes),
            Some(node) => sn::encode_encapsulated(0, node, msg, &mut bytes),
        }
        self.out.push_back(Output::Datagram {
            to: peer.addr,
            bytes,
        });
    }

    fn engine(&mut self, input: Input) {
        self.out.push_back(Output::Engine(input));
    }

    fn message(
        &mut self,
        now: Millis,
        peer: Peer,
        msg: Message<'_>,
        new_conn: &mut dyn FnMut() -> ConnId,
    ) {
        let key = peer.clone();
        match msg {
            Message::SearchGw { .. } => {
                // One answer per searcher at a time: a SEARCHGW flood cannot grow the list.
                if !self.gwinfo_due.iter().any(|(_, p)| *p == peer) && self.gwinfo_due.len() < 64 {
                    let delay = self.rng.below(GWINFO_DELAY_MAX_MS + 1);
                    self.gwinfo_due.push((now.saturating_add_ms(delay), peer));
                }
            }
            // Other gateways' announcements are recorded for bridges.
            Message::Advertise { gw_id, duration } => {
                self.remember(gw_id, &peer, &[], Some(duration), now)
            }
            Message::GwInfo { gw_id, gw_add } => self.remember(gw_id, &peer, gw_add, None, now),
            Message::Connect {
                flags,
                duration,
                client_id,
                protocol_id,
            } => self.on_connect(now, peer, flags, protocol_id, duration, client_id, new_conn),
            Message::Publish {
                flags,
                topic_id,
                data,
                ..
            } if flags.qos == sn::SnQos::MinusOne => {
                self.publish_minus_one(peer, flags, topic_id, data, new_conn)
            }
            Message::PingReq {
                client_id: Some(id),
            } if !self.clients.contains_key(&peer) => {
                // A sleeping client may wake up from a new address (spec 6.14).
                self.wake_elsewhere(now, peer, id);
            }
            other => match self.clients.get_mut(&peer) {
                Some(_) => self.client_message(now, &peer, other),
                None => self.unknown_peer(&peer, other),
            },
        }
        self.arm(&key);
    }

    fn remember(
        &mut self,
        gw_id: u8,
        peer: &Peer,
        announced: &[u8],
        duration: Option<u16>,
        now: Millis,
    ) {
        if gw_id == self.config.gateway_id && announced.is_empty() && duration.is_none() {
            // Our own GWINFO, looped back by the group.
            return;
        }
        if !self.known.contains_key(&gw_id) && self.known.len() >= MAX_KNOWN_GATEWAYS {
            return;
        }
        let entry = self.known.entry(gw_id).or_insert_with(|| KnownGateway {
            addr: peer.addr,
            announced: Vec::new(),
            last_seen: now,
            duration: None,
        });
        entry.addr = peer.addr;
        entry.last_seen = now;
        if !announced.is_empty() {
            entry.announced = announced.to_vec();
        }
        if duration.is_some() {
            entry.duration = duration;
        }
    }

    /// Other gateways heard so far, by gateway id.
    pub fn known_gateways(&self) -> &BTreeMap<u8, KnownGateway> {
        &self.known
    }

    /// A message from an address with no client: only a gentle refusal, no state.
    fn unknown_peer(&mut self, peer: &Peer, msg: Message<'_>) {
        log::debug!("{}: MQTT-SN {msg:?} from an unknown client", peer.name());
        match msg {
            Message::Publish {
                topic_id, msg_id, ..
            } => {
                let nack = Message::PubAck {
                    topic_id,
                    msg_id,
                    code: ReturnCode::InvalidTopicId,
                };
                self.send(peer, &nack);
            }
            Message::PingReq { .. } | Message::Disconnect { .. } => {
                self.send(peer, &Message::Disconnect { duration: None });
            }
            _ => self.send(peer, &Message::Disconnect { duration: None }),
        }
    }

    /// Feeds `action` (for a connection this gateway owns) in from the engine.
    pub fn from_engine(&mut self, now: Millis, action: Action) {
        match action {
            Action::Send { conn, packet } => {
                if self.anonymous == Some(conn) {
                    return;
                }
                if let Some(peer) = self.by_conn.get(&conn).cloned() {
                    self.engine_packet(now, &peer, packet);
                    self.arm(&peer);
                }
            }
            Action::Close { conn } => self.engine_close(conn),
            Action::SetVersion { .. } | Action::SetMaxPacketSize { .. } => {}
        }
    }

    /// The engine closed the connection (takeover, refusal, shutdown): the client is told,
    /// forgotten, and the engine hears that the connection is gone.
    fn engine_close(&mut self, conn: ConnId) {
        if self.anonymous == Some(conn) {
            self.anonymous = None;
        } else if let Some(peer) = self.by_conn.remove(&conn) {
            if let Some(client) = self.clients.get(&peer) {
                if client.conn == conn {
                    if client.phase != Phase::Disconnecting {
                        self.send(&peer, &Message::Disconnect { duration: None });
                    }
                    self.clients.remove(&peer);
                }
            }
        } else {
            return;
        }
        self.engine(Input::Closed {
            conn,
            reason: "closed by the broker",
        });
    }

    /// Clean shutdown: every client is told.
    pub fn shutdown(&mut self) {
        let peers: Vec<Peer> = self.clients.keys().cloned().collect();
        for peer in peers {
            self.send(&peer, &Message::Disconnect { duration: None });
        }
    }

    /// Time passed: retransmissions, keep alive and sleep expiry, ADVERTISE, GWINFO.
    pub fn tick(&mut self, now: Millis) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.gwinfo_due)
            .into_iter()
            .partition(|(d, _)| *d <= now);
        self.gwinfo_due = later;
        for (_, peer) in due {
            let info = Message::GwInfo {
                gw_id: self.config.gateway_id,
                gw_add: &[],
            };
            let mut bytes = Vec::with_capacity(sn::encoded_len(&info) + 8);
            match &peer.node {
                None => sn::encode(&info, &mut bytes),
                Some(node) => sn::encode_encapsulated(0, node, &info, &mut bytes),
            }
            self.out.push_back(Output::Discovery {
                to: peer.addr,
                bytes,
            });
        }
        if let Some(due) = self.next_advertise.filter(|d| *d <= now) {
            let interval = self.config.advertise_interval;
            let duration = u16::try_from(interval).unwrap_or(u16::MAX);
            let mut bytes = Vec::new();
            sn::encode(
                &Message::Advertise {
                    gw_id: self.config.gateway_id,
                    duration,
                },
                &mut bytes,
            );
            self.out.push_back(Output::Multicast { bytes });
            let next = due.saturating_add_secs(u64::from(interval));
            self.next_advertise = Some(if next <= now {
                now.saturating_add_secs(u64::from(interval))
            } else {
                next
            });
        }
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, peer))) = self.timers.pop() else {
                break;
            };
            let Some(client) = self.clients.get_mut(&peer) else {
                // The client is gone, or moved to another address with its own entry.
                continue;
            };
            client.armed = None;
            if client.deadline().is_some_and(|d| d <= now) {
                self.client_timers(now, &peer);
            }
            self.arm(&peer);
        }
    }

    /// A QoS -1 PUBLISH: predefined or short topic only, from anyone, at most once.
    fn publish_minus_one(
        &mut self,
        peer: Peer,
        flags: sn::Flags,
        topic_id: u16,
        data: &[u8],
        new_conn: &mut dyn FnMut() -> ConnId,
    ) {
        let topic = match flags.topic_id_type {
            sn::TopicIdType::Predefined => self.predefined.get(&topic_id).cloned(),
            sn::TopicIdType::Short => convert::short_name(topic_id),
            sn::TopicIdType::Normal => None,
        };
        let Some(topic) = topic else {
            log::info!(
                "{}: QoS -1 PUBLISH to unknown topic id {topic_id}",
                peer.name()
            );
            return;
        };
        let conn = match self.anonymous {
            Some(conn) => conn,
            None => {
                let conn = new_conn();
                self.anonymous = Some(conn);
                self.engine(Input::Opened {
                    conn,
                    listener: self.config.listener,
                    peer: crate::engine::event::Peer::name("udp (QoS -1 publishers)"),
                });
                let id = format!("culex-mqttsn-{}-qos-1", self.config.listener.0);
                let connect = convert::engine_connect(id, true, None);
                self.engine(Input::Packet {
                    conn,
                    packet: connect,
                });
                conn
            }
        };
        let publish = mqtt::Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: flags.retain,
            topic,
            packet_id: 0,
            properties: mqtt::Props::none(),
            payload: Rc::from(data),
        };
        self.engine(Input::Packet {
            conn,
            packet: Packet::Publish(publish),
        });
    }
}
