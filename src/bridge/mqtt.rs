//! One MQTT bridge: the client of a remote broker on one side, a session of this broker's
//! engine on the other, and the relay of every packet between them.
//!
//! | state        | event                                  | next                          |
//! |--------------|----------------------------------------|-------------------------------|
//! | Waiting      | its time comes                         | Connecting (`Connect` out)    |
//! | Connecting   | transport up                           | AwaitConnAck (CONNECT sent)   |
//! | AwaitConnAck | CONNACK accepted                       | Active (local session opened) |
//! | Active       | PINGRESP missing, DISCONNECT, garbage  | Waiting (after the backoff)   |
//! | any          | transport down, connect timeout        | Waiting                       |
//! | any          | stop                                   | Stopped                       |
//!
//! The local session exists exactly while the remote one is up: when the remote broker goes
//! away the local connection is closed and its persistent session keeps what is to go out
//! (bounded by the broker's queue limits); it is opened again, with the same client id and
//! without a clean start, after the next CONNACK, and the engine sends again what the
//! remote broker had not acknowledged. Packet identifiers pass through unchanged: the
//! engine's identifiers towards the local session become the bridge's towards the remote
//! broker, and the remote broker's towards the bridge become the local session's towards
//! the engine. Sans-IO: the reactor owns the socket and feeds the engine.

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use super::{filters, map_topic, open_local_session, LocalSession};
use crate::clock::Millis;
use crate::codec::mqtt::{
    Ack, Connect, Disconnect, Packet, Properties, Props, ProtocolVersion, Publish, QoS, ReasonCode,
    SubOptions, Subscribe, Will,
};
use crate::config::bridge::{BridgeConfig, BridgeProtocol, RemoteAddress};
use crate::engine::event::{ConnId, Input, ListenerId};
use crate::engine::session::EXPIRY_NEVER;
use crate::rng::Rng;

/// The listener the engine sees the local sessions of bridges come from.
pub const BRIDGE_LISTENER: ListenerId = ListenerId(u32::MAX);

/// Time for the transport and the CONNACK, from the start of a connection attempt.
const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// How far from the engine's latest identifier the bridge's own SUBSCRIBE to the remote
/// broker takes its identifier, so the two do not meet while the SUBACK is on its way
/// (the engine hands out identifiers in sequence).
const SUBSCRIBE_ID_DISTANCE: u16 = 32_768;

/// Where a bridge is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not connected; the next attempt starts at `until`.
    Waiting { until: Millis },
    /// The reactor is opening the transport (TCP, TLS, WebSocket handshakes).
    Connecting { since: Millis },
    /// CONNECT sent, CONNACK awaited.
    AwaitConnAck { since: Millis },
    /// Connected both ways.
    Active,
    /// Deleted, or the broker is shutting down.
    Stopped,
}

/// What the bridge asks of the reactor.
#[derive(Debug)]
pub enum Output {
    /// Open a transport to this address, then call [`Bridge::transport_up`] or
    /// [`Bridge::transport_down`].
    Connect(RemoteAddress),
    /// Send a packet to the remote broker.
    Send(Packet),
    /// Close the remote transport once what was sent is written. No
    /// [`Bridge::transport_down`] is expected for it.
    Close,
    /// Feed the engine on behalf of the local session.
    Engine(Input),
    /// Publish the bridge's connection state on this broker, retained (as the broker: the
    /// topic is under `$SYS`, where clients may not publish).
    Notify { topic: String, up: bool },
}

/// Counts for the API.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub connects: u64,
    pub messages_out: u64,
    pub messages_in: u64,
    /// Connections lost or attempts that failed.
    pub failures: u64,
}

pub struct Bridge {
    config: BridgeConfig,
    state: State,
    rng: Rng,
    /// The address of the current or last attempt.
    address: usize,
    /// The last reconnect delay, for the backoff.
    delay_ms: u64,
    /// The local session's connection, while it is open.
    local: Option<ConnId>,
    /// The connection id the local session takes at the next CONNACK.
    next_local: Option<ConnId>,
    /// The remote broker's Maximum Packet Size.
    remote_max_packet: u32,
    /// QoS 2 messages from the remote broker that no mapping carried: answered here.
    dropped_qos2: BTreeSet<u16>,
    /// Outgoing QoS 2 messages the bridge completed itself (too large for the remote broker):
    /// the engine's PUBREL for them is answered here.
    local_qos2: BTreeSet<u16>,
    /// Outgoing QoS 1 and 2 messages not yet acknowledged by the remote broker, and the
    /// latest identifier the engine used.
    out_ids: BTreeSet<u16>,
    last_out_id: u16,
    /// The remote SUBSCRIBE is sent once the engine has resent its in-flight messages, so
    /// that its identifier is chosen among those free.
    subscribe_pending: bool,
    /// The largest number of unreleased QoS 2 messages the engine takes from the session.
    local_receive_max: u16,
    last_sent: Millis,
    ping_sent: Option<Millis>,
    out: VecDeque<Output>,
    counters: Counters,
    last_error: Option<String>,
}

impl Bridge {
    /// A bridge that makes its first attempt at `now`. `local_receive_max` is the engine's
    /// receive maximum (its `max_inflight_messages`), announced to a 5.0 remote broker.
    pub fn new(config: BridgeConfig, seed: u64, now: Millis, local_receive_max: u16) -> Self {
        Self {
            config,
            state: State::Waiting { until: now },
            rng: Rng::new(seed),
            address: 0,
            delay_ms: 0,
            local: None,
            next_local: None,
            remote_max_packet: u32::MAX,
            dropped_qos2: BTreeSet::new(),
            local_qos2: BTreeSet::new(),
            out_ids: BTreeSet::new(),
            last_out_id: 0,
            subscribe_pending: false,
            local_receive_max: local_receive_max.max(1),
            last_sent: now,
            ping_sent: None,
            out: VecDeque::new(),
            counters: Counters::default(),
            last_error: None,
        }
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Why the last attempt or connection ended, if one did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The address in use or last tried.
    pub fn address(&self) -> Option<&RemoteAddress> {
        self.config.addresses.get(self.address)
    }

    /// The connection ids the bridge holds: its local session's, and the one its next
    /// local session will take.
    pub fn held_ids(&self) -> [Option<ConnId>; 2] {
        [self.local, self.next_local]
    }

    /// The local session's connection, while open.
    pub fn local_conn(&self) -> Option<ConnId> {
        self.local
    }

    /// The next output. Poll until `None`, feeding the engine as asked in between: the
    /// engine's answers come back through [`Self::from_engine`] and add to the outputs.
    pub fn poll(&mut self) -> Option<Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        if self.subscribe_pending && self.state == State::Active {
            self.subscribe_pending = false;
            return self.remote_subscribe();
        }
        None
    }

    /// The SUBSCRIBE of the incoming mappings, with an identifier no outgoing message uses.
    fn remote_subscribe(&mut self) -> Option<Output> {
        let remote = filters(&self.config.topics, false);
        if remote.is_empty() {
            return None;
        }
        let v5 = self.config.protocol == BridgeProtocol::V5;
        let opts = |qos| SubOptions {
            qos,
            no_local: v5 && self.config.try_private,
            retain_as_published: v5,
            retain_handling: 0,
        };
        let mut id = self.last_out_id.wrapping_add(SUBSCRIBE_ID_DISTANCE).max(1);
        while self.out_ids.contains(&id) {
            id = id.wrapping_add(1).max(1);
        }
        let s = Subscribe {
            packet_id: id,
            properties: Props::none(),
            filters: remote.into_iter().map(|(f, q)| (f, opts(q))).collect(),
        };
        Some(Output::Send(Packet::Subscribe(s)))
    }

    /// When [`Self::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.state {
            State::Waiting { until } => Some(until),
            State::Connecting { since } | State::AwaitConnAck { since } => {
                Some(since.saturating_add_ms(CONNECT_TIMEOUT_MS))
            }
            State::Active => {
                let ka = self.keepalive_ms()?;
                Some(match self.ping_sent {
                    Some(at) => at.saturating_add_ms(ka),
                    None => self.last_sent.saturating_add_ms(ka),
                })
            }
            State::Stopped => None,
        }
    }

    fn keepalive_ms(&self) -> Option<u64> {
        match self.config.keepalive_secs {
            0 => None,
            s => Some(u64::from(s) * 1000),
        }
    }

    /// Fires what is due at `now`: an attempt, a timeout, a PINGREQ.
    pub fn tick(&mut self, now: Millis) {
        match self.state {
            State::Waiting { until } if until <= now => {
                let Some(addr) = self.config.addresses.get(self.address).cloned() else {
                    self.state = State::Stopped;
                    return;
                };
                log::info!(
                    "bridge {}: connecting to {}:{}",
                    self.config.name,
                    addr.host,
                    addr.port
                );
                self.state = State::Connecting { since: now };
                self.out.push_back(Output::Connect(addr));
            }
            State::Connecting { since } | State::AwaitConnAck { since }
                if now.since(since) >= CONNECT_TIMEOUT_MS =>
            {
                self.fail(now, "no connection in time".to_owned(), true);
            }
            State::Active => {
                let Some(ka) = self.keepalive_ms() else {
                    return;
                };
                match self.ping_sent {
                    Some(at) if now.since(at) >= ka => {
                        self.fail(now, "no PINGRESP from the remote broker".to_owned(), true)
                    }
                    None if now.since(self.last_sent) >= ka => {
                        self.ping_sent = Some(now);
                        self.send(now, Packet::PingReq);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The transport to the remote broker is up: CONNECT goes out. `local` is the connection
    /// id the local session will take.
    pub fn transport_up(&mut self, now: Millis, local: ConnId) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        self.next_local = Some(local);
        self.state = State::AwaitConnAck { since: now };
        let c = &self.config;
        let v5 = c.protocol == BridgeProtocol::V5;
        let will = (c.notifications && !c.notifications_local_only).then(|| Will {
            topic: c.notification_topic.clone(),
            payload: b"0".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Props::none(),
        });
        let mut properties = Properties::default();
        if v5 {
            properties.session_expiry_interval = (!c.cleansession).then_some(EXPIRY_NEVER);
            properties.receive_maximum = Some(self.local_receive_max);
        }
        let connect = Connect {
            protocol: if v5 {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V311
            },
            clean_start: c.cleansession,
            keep_alive: c.keepalive_secs,
            properties: properties.into(),
            client_id: c.remote_clientid.clone(),
            will,
            username: c.remote_username.clone(),
            password: c.remote_password.clone().map(String::into_bytes),
            bridge: c.try_private && !v5,
        };
        self.send(now, Packet::Connect(Box::new(connect)));
    }

    /// The transport failed or closed (not after an [`Output::Close`] of the bridge's own).
    pub fn transport_down(&mut self, now: Millis, reason: &str) {
        if matches!(self.state, State::Waiting { .. } | State::Stopped) {
            return;
        }
        self.fail(now, reason.to_owned(), false);
    }

    /// A packet from the remote broker.
    pub fn remote_packet(&mut self, now: Millis, packet: Packet) {
        match (self.state, packet) {
            (State::AwaitConnAck { .. }, Packet::ConnAck(ack)) => {
                if ack.reason.is_error() {
                    let why = format!("the remote broker refused: {}", ack.reason.text());
                    self.fail(now, why, true);
                } else {
                    self.connected(now, &ack.properties);
                }
            }
            (State::AwaitConnAck { .. }, other) => {
                let why = format!("unexpected {} before CONNACK", other.name());
                self.fail(now, why, true);
            }
            (State::Active, packet) => self.relay_in(now, packet),
            // Late packets of a connection already given up.
            _ => {}
        }
    }

    /// The packets the engine sends to the local session.
    pub fn from_engine(&mut self, now: Millis, packet: Packet) {
        if self.state != State::Active {
            return;
        }
        match packet {
            Packet::Publish(p) => self.relay_out(now, p),
            Packet::PubRel(a) if self.local_qos2.remove(&a.packet_id) => {
                self.engine_packet(Packet::PubComp(Ack::success(a.packet_id)));
            }
            // Acknowledgements of messages from the remote broker, and the release of an
            // outgoing QoS 2 message.
            p
            @ (Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) | Packet::PubRel(_)) => {
                self.send(now, p)
            }
            Packet::ConnAck(ack) if ack.reason.is_error() => {
                let why = format!("the local session was refused: {}", ack.reason.text());
                self.fail(now, why, true);
            }
            Packet::SubAck(ack) if ack.reasons.iter().any(|r| r.is_error()) => {
                log::warn!(
                    "bridge {}: a local subscription was refused",
                    self.config.name
                );
            }
            Packet::Disconnect(d) => {
                let why = format!("the local session was disconnected: {}", d.reason.text());
                self.fail(now, why, true);
            }
            _ => {}
        }
    }

    /// The engine closed the local session's connection.
    pub fn local_closed(&mut self, now: Millis) {
        let Some(local) = self.local.take() else {
            return;
        };
        // The engine forgets the connection once told it is closed.
        self.out.push_back(Output::Engine(Input::Closed {
            conn: local,
            reason: "closed by the broker",
        }));
        if self.state == State::Active {
            self.fail(now, "the local session was closed".to_owned(), true);
        }
    }

    /// Ends the bridge: a clean DISCONNECT to the remote broker, the local session closed
    /// (its persistent session stays unless the caller ends it).
    pub fn stop(&mut self, now: Millis) {
        if self.state == State::Active {
            // A clean DISCONNECT discards the will that would have said so.
            if self.config.notifications && !self.config.notifications_local_only {
                let p = notification(&self.config.notification_topic, false);
                self.send(now, Packet::Publish(p));
            }
            let d = Disconnect {
                reason: ReasonCode::Success,
                properties: Props::none(),
            };
            self.send(now, Packet::Disconnect(d));
        }
        if !matches!(self.state, State::Waiting { .. } | State::Stopped) {
            self.out.push_back(Output::Close);
        }
        self.close_local();
        self.state = State::Stopped;
    }

    fn connected(&mut self, now: Millis, props: &Properties) {
        let Some(local) = self.next_local.take() else {
            self.fail(now, "no local connection id".to_owned(), true);
            return;
        };
        log::info!("bridge {}: connected", self.config.name);
        self.state = State::Active;
        self.counters.connects += 1;
        self.delay_ms = 0;
        self.ping_sent = None;
        self.dropped_qos2.clear();
        self.remote_max_packet = props.maximum_packet_size.unwrap_or(u32::MAX);
        let remote_receive_max = props.receive_maximum.unwrap_or(u16::MAX);
        // What comes from the remote broker: subscribed once the engine has resent.
        self.subscribe_pending = true;
        self.out_ids.clear();
        // The local session: persistent, so what is to go out waits while the remote
        // broker is away; its window is the remote broker's receive maximum.
        self.local = Some(local);
        let spec = LocalSession {
            receive_max: remote_receive_max,
            max_packet: props.maximum_packet_size,
            // What the bridge brings in must not go straight back out.
            no_local: true,
            retain_handling: 1,
        };
        let peer = format!("bridge {}", self.config.name);
        for input in open_local_session(&self.config, local, &peer, spec) {
            self.out.push_back(Output::Engine(input));
        }
        if self.config.notifications {
            self.notify_local(true);
            if !self.config.notifications_local_only {
                let p = notification(&self.config.notification_topic, true);
                self.send(now, Packet::Publish(p));
            }
        }
    }

    /// A packet from the remote broker while connected.
    fn relay_in(&mut self, now: Millis, packet: Packet) {
        match packet {
            Packet::Publish(p) => {
                let Some(topic) = map_topic(&self.config.topics, &p.topic, false) else {
                    log::debug!(
                        "bridge {}: no mapping takes {} from the remote broker",
                        self.config.name,
                        p.topic
                    );
                    // Acknowledged here: the remote broker must not resend it forever.
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => {
                            self.send(now, Packet::PubAck(Ack::success(p.packet_id)))
                        }
                        QoS::ExactlyOnce => {
                            self.dropped_qos2.insert(p.packet_id);
                            self.send(now, Packet::PubRec(Ack::success(p.packet_id)));
                        }
                    }
                    return;
                };
                self.counters.messages_in += 1;
                let mut properties = p.properties;
                // Only held properties are written: writing through `DerefMut` would allocate.
                if let Some(held) = properties.get_mut() {
                    held.topic_alias = None;
                    held.subscription_identifiers.clear();
                }
                properties.shrink();
                let local = Publish {
                    topic: topic.into(),
                    properties,
                    ..p
                };
                self.engine_packet(Packet::Publish(local));
            }
            Packet::PubRel(a) if self.dropped_qos2.remove(&a.packet_id) => {
                self.send(now, Packet::PubComp(Ack::success(a.packet_id)));
            }
            // Acknowledgements of outgoing messages, and the release of an incoming QoS 2
            // message: the engine's flows go on.
            Packet::PubAck(a) => {
                self.out_done(&a);
                self.engine_packet(Packet::PubAck(a));
            }
            Packet::PubComp(a) => {
                self.out_done(&a);
                self.engine_packet(Packet::PubComp(a));
            }
            Packet::PubRec(a) => {
                if a.reason.is_error() {
                    // A refused QoS 2 message ends at PUBREC.
                    self.out_done(&a);
                }
                self.engine_packet(Packet::PubRec(a));
            }
            p @ Packet::PubRel(_) => self.engine_packet(p),
            Packet::PingResp => self.ping_sent = None,
            Packet::SubAck(ack) => {
                if ack.reasons.iter().any(|r| r.is_error()) {
                    log::warn!(
                        "bridge {}: the remote broker refused a subscription",
                        self.config.name
                    );
                }
            }
            Packet::UnsubAck(_) => {}
            Packet::Disconnect(d) => {
                let why = format!("disconnected by the remote broker: {}", d.reason.text());
                self.fail(now, why, true);
            }
            other => {
                let why = format!("unexpected {} from the remote broker", other.name());
                self.fail(now, why, true);
            }
        }
    }

    /// The remote broker ended the flow of an outgoing message.
    fn out_done(&mut self, a: &Ack) {
        self.out_ids.remove(&a.packet_id);
        if a.reason.is_error() {
            log::info!(
                "bridge {}: the remote broker refused message {}: {}",
                self.config.name,
                a.packet_id,
                a.reason.text()
            );
        }
    }

    /// A message of the local session's subscriptions, for the remote broker.
    fn relay_out(&mut self, now: Millis, p: Publish) {
        let Some(topic) = map_topic(&self.config.topics, &p.topic, true) else {
            // The local subscriptions are those of the mappings: this cannot happen, but a
            // message is never left unacknowledged.
            self.ack_locally(&p);
            return;
        };
        let (p_qos, p_id) = (p.qos, p.packet_id);
        let mut properties = p.properties;
        // Only held properties are written: writing through `DerefMut` would allocate.
        if let Some(held) = properties.get_mut() {
            held.topic_alias = None;
            held.subscription_identifiers.clear();
        }
        properties.shrink();
        if self.config.protocol == BridgeProtocol::V311 {
            properties = Props::none();
        }
        let remote = Publish {
            topic: topic.into(),
            properties,
            ..p
        };
        let packet = Packet::Publish(remote);
        let version = self.remote_version();
        if crate::codec::mqtt::encoded_len(&packet, version) > self.remote_max_packet as usize {
            log::info!(
                "bridge {}: a message on {} is larger than the remote broker takes; dropped",
                self.config.name,
                p.topic
            );
            if let Packet::Publish(p) = &packet {
                self.ack_locally(p);
            }
            return;
        }
        self.counters.messages_out += 1;
        if p_qos != QoS::AtMostOnce {
            self.out_ids.insert(p_id);
            self.last_out_id = p_id;
        }
        self.send(now, packet);
    }

    /// Completes a QoS 1 or 2 delivery of the engine without the remote broker.
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

    fn remote_version(&self) -> ProtocolVersion {
        match self.config.protocol {
            BridgeProtocol::V311 => ProtocolVersion::V311,
            BridgeProtocol::V5 => ProtocolVersion::V5,
        }
    }

    /// The connection is lost or given up: the local session is closed, and the next attempt
    /// waits for the backoff. `close` asks the reactor to close the transport.
    fn fail(&mut self, now: Millis, why: String, close: bool) {
        log::warn!("bridge {}: {why}", self.config.name);
        self.last_error = Some(why);
        self.counters.failures += 1;
        if close {
            self.out.push_back(Output::Close);
        }
        self.close_local();
        self.next_local = None;
        self.ping_sent = None;
        let count = self.config.addresses.len().max(1);
        let was_active = self.state == State::Active;
        self.address = if self.config.round_robin || !was_active {
            // Round robin goes on through the list; otherwise the next address is tried
            // only when this one failed to connect, and the first after a connection.
            (self.address + 1) % count
        } else {
            0
        };
        let delay = self.backoff_ms();
        self.state = State::Waiting {
            until: now.saturating_add_ms(delay),
        };
    }

    /// The next reconnect delay: `restart_timeout` alone is constant; with a cap it grows
    /// with random jitter between the base and three times the last delay, up to the cap.
    fn backoff_ms(&mut self) -> u64 {
        self.delay_ms = super::backoff_ms(&self.config, self.delay_ms, &mut self.rng);
        self.delay_ms
    }

    /// Closes the local session's connection, with the state notification.
    fn close_local(&mut self) {
        let Some(local) = self.local else {
            return;
        };
        if self.config.notifications {
            self.notify_local(false);
        }
        self.local = None;
        self.out.push_back(Output::Engine(Input::Closed {
            conn: local,
            reason: "bridge disconnected",
        }));
    }

    /// Publishes the connection state on this broker, retained.
    fn notify_local(&mut self, up: bool) {
        self.out.push_back(Output::Notify {
            topic: self.config.notification_topic.clone(),
            up,
        });
    }

    fn engine_packet(&mut self, packet: Packet) {
        if let Some(conn) = self.local {
            self.out
                .push_back(Output::Engine(Input::Packet { conn, packet }));
        }
    }

    fn send(&mut self, now: Millis, packet: Packet) {
        self.last_sent = now;
        self.out.push_back(Output::Send(packet));
    }
}

fn notification(topic: &str, up: bool) -> Publish {
    Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: topic.into(),
        packet_id: 0,
        properties: Props::none(),
        payload: Rc::from(if up { &b"1"[..] } else { &b"0"[..] }),
    }
}

#[cfg(test)]
mod tests;
