//! The broker engine: every MQTT rule, no I/O.
//!
//! The engine is a sans-IO state machine. The reactor feeds it [`Input`]s, each with the
//! current time as a value, and after every [`Engine::handle`] call drains
//! [`Engine::poll_action`] until it returns `None`, then reads [`Engine::next_deadline`] to know
//! when to call again with [`Input::Tick`]. The engine never holds a socket, a file, a clock
//! or a thread; everything it decides leaves as an [`Action`]. Randomness (assigned client
//! identifiers) comes from the seeded [`Rng`] it is given.
//!
//! Flows live one per file: `connect` (CONNECT, takeover, CONNACK), `publish` (inbound
//! PUBLISH and PUBREL), `deliver` (routing, outbound QoS flows, queues), `subscribe`
//! (SUBSCRIBE, UNSUBSCRIBE, retained on subscribe), `sys` (`$SYS`), `access` (passwords
//! at CONNECT, ACL checks). This file holds the
//! tables and the connection life cycle:
//!
//! | state         | event                         | next                              |
//! |---------------|-------------------------------|-----------------------------------|
//! | (none)        | Opened                        | AwaitConnect                      |
//! | AwaitConnect  | CONNECT accepted              | Active (session attached)         |
//! | AwaitConnect  | anything else, deadline       | Closing                           |
//! | Active        | DISCONNECT, violation, timeout| Closing (session detached)        |
//! | any           | Closed                        | (removed)                         |

pub mod access;
pub mod bounds;
pub mod conn_id;
pub mod durable;
pub mod event;
pub mod limits;
pub mod message;
pub mod retained;
pub mod session;
pub mod timers;
pub mod topic_tree;

mod admin;
mod connect;
mod deliver;
mod fault;
pub mod inspect;
mod persist;
mod publish;

mod subscribe;
mod sys;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use slab::Slab;

use crate::clock::Millis;
use crate::codec::mqtt::{encoded_len, Disconnect, Packet, Props, ProtocolVersion, ReasonCode};
use crate::rng::Rng;
use conn_id::ConnMap;
use durable::{Change, Journal};
use event::{Action, ConnId, Input, ListenerId, Peer, Traffic};
use limits::Limits;
use retained::Retained;
use session::Session;
use timers::{SessionSlot, TimerKey, Timers};
use topic_tree::{Match, SessionKey, TopicTree};

/// The largest step of the virtual clock one request may ask for: a day.
pub const CLOCK_ADVANCE_MAX_MS: u64 = 86_400_000;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    AwaitConnect,
    /// The slot of the attached session in `Engine::sessions`.
    Active(SessionSlot),
    Closing,
}

#[derive(Debug)]
struct Conn {
    peer: Peer,
    listener: ListenerId,
    state: ConnState,
    version: ProtocolVersion,
    /// Keep alive in ms as granted (0: none).
    keep_alive_ms: u32,
    last_seen: Millis,
    /// Names few connections have, boxed so that the others carry one word for them.
    names: Option<Box<ConnNames>>,
    /// Whether a gateway in front of the engine watches the client's liveness (MQTT-SN).
    gateway: bool,
    /// The client is another broker's 3.1.1 bridge (the bridge bit of its CONNECT).
    bridge: bool,
    /// The broker's own client (the local session of a bridge): no keep alive imposed.
    internal: bool,
}

#[derive(Debug, Default)]
struct ConnNames {
    /// The user name the transport established (client certificate), if any.
    identity: Option<Rc<str>>,
    /// The listener's `mount_point`, as it was when the connection was accepted.
    mount: Option<Rc<str>>,
}

impl Conn {
    fn identity(&self) -> Option<&Rc<str>> {
        self.names.as_ref().and_then(|n| n.identity.as_ref())
    }

    fn mount(&self) -> Option<&Rc<str>> {
        self.names.as_ref().and_then(|n| n.mount.as_ref())
    }
}

/// What the engine needs to know of a listener.
#[derive(Debug, Default, Clone)]
struct ListenerRole {
    mount: Option<Rc<str>>,
    gateway: bool,
    internal: bool,
}

/// Counters behind `$SYS`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub connections_max: usize,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_dropped: u64,
    pub traffic: Traffic,
}

pub struct Engine {
    limits: Limits,
    rng: Rng,
    now: Millis,
    conns: ConnMap<Conn>,
    /// Connections in state `Active` (a session attached), kept as they change so that
    /// counting them costs nothing per CONNECT.
    active_conns: usize,
    sessions: Slab<Session>,
    by_client_id: BTreeMap<Rc<str>, SessionKey>,
    next_uid: u64,
    tree: TopicTree,
    retained: Retained,
    timers: Timers,
    actions: VecDeque<Action>,
    journal: Journal,
    /// Reads of stored queues, for the reactor to serve before the turn's commit.
    queue_loads: Vec<durable::QueueLoad>,
    stats: Stats,
    shutting_down: bool,
    /// Reused by routing so that matching allocates nothing in the steady state.
    match_buf: Vec<Match>,
    /// The topic of a PUBLISH named by its alias alone, shared rather than allocated per
    /// delivery.
    empty_topic: Rc<str>,
    /// Queue bounds of particular sessions (a bridge's `bridge_max_queued_messages`), in
    /// place of `max_queued_messages`.
    queue_limits: BTreeMap<Rc<str>, usize>,
    /// `$CONTROL` topics are served (deterministic mode), and the requests not yet taken.
    controls_enabled: bool,
    controls: Vec<event::Control>,
    /// Client events for webhooks, when enabled.
    notices: Option<Vec<event::Notice>>,
    /// Each listener's `mount_point`, and whether its clients' liveness is watched by a
    /// gateway in front of the engine (MQTT-SN: the engine imposes no keep alive of its own).
    listeners: BTreeMap<ListenerId, ListenerRole>,
    /// Fault injection rules asked for over the API (see [`crate::fault`]).
    faults: crate::fault::FaultTable,
    /// Password files and ACLs in force (see `access.rs`).
    guards: access::Guards,
    /// The totals behind the broker-wide bounds (see [`bounds`]).
    bounds: bounds::Bounds,
}

impl Engine {
    pub fn new(limits: Limits, rng: Rng) -> Self {
        let mut engine = Self {
            limits,
            rng,
            now: Millis::ZERO,
            conns: ConnMap::default(),
            active_conns: 0,
            sessions: Slab::new(),
            by_client_id: BTreeMap::new(),
            next_uid: 1,
            tree: TopicTree::default(),
            retained: Retained::default(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            journal: Journal::default(),
            queue_loads: Vec::new(),
            stats: Stats::default(),
            shutting_down: false,
            match_buf: Vec::new(),
            empty_topic: Rc::from(""),
            listeners: BTreeMap::new(),
            notices: None,
            controls_enabled: false,
            controls: Vec::new(),
            queue_limits: BTreeMap::new(),
            faults: crate::fault::FaultTable::default(),
            guards: access::Guards::default(),
            bounds: bounds::Bounds::default(),
        };
        engine.sys_start();
        engine
    }

    /// Feeds one input. Drain [`Engine::poll_action`] afterwards.
    pub fn handle(&mut self, now: Millis, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Opened {
                conn,
                listener,
                peer,
            } => self.on_opened(conn, listener, peer),
            Input::PeerIdentity { conn, username } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.names.get_or_insert_with(Default::default).identity = Some(username);
                }
            }
            Input::Packet { conn, packet } => self.on_packet(conn, packet),
            Input::DecodeError { conn, error } => self.on_decode_error(conn, error),
            Input::Closed { conn, reason } => self.on_closed(conn, reason),
            Input::Traffic(t) => {
                self.stats.traffic.bytes_received += t.bytes_received;
                self.stats.traffic.bytes_sent += t.bytes_sent;
            }
            Input::Tick => self.on_tick(),
            Input::Shutdown => self.on_shutdown(),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest time at which [`Input::Tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_deadline()
    }

    /// The timers that `Tick` at `now` would fire, in order (for traces).
    pub fn due_timers(&self, now: Millis, out: &mut Vec<TimerKey>) {
        self.timers.due(now, out);
    }

    /// Replaces the run-time limits. New values apply to new connections at once and to
    /// existing sessions from their next decision (queue bounds, in-flight window, sizes).
    pub fn set_limits(&mut self, now: Millis, limits: Limits) {
        self.now = self.now.max(now);
        let sys_was_off = self.limits.sys_interval == 0;
        self.limits = limits;
        if sys_was_off && self.limits.sys_interval > 0 {
            self.arm_sys();
        }
        let keys: Vec<SessionKey> = self.sessions.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.pump(key);
        }
    }

    /// Sets each listener's `mount_point` (index = listener id), for connections opened
    /// from now on.
    pub fn set_mount_points(&mut self, mount_points: Vec<Option<String>>) {
        for (index, mount) in mount_points.into_iter().enumerate() {
            let id = ListenerId(u32::try_from(index).unwrap_or(u32::MAX));
            self.listeners.entry(id).or_default().mount = mount.map(Rc::from);
        }
    }

    /// Marks the listeners served through a gateway (by index, as in the configuration).
    pub fn set_gateway_listeners(&mut self, gateway: Vec<bool>) {
        for (index, gateway) in gateway.into_iter().enumerate() {
            let id = ListenerId(u32::try_from(index).unwrap_or(u32::MAX));
            self.listeners.entry(id).or_default().gateway = gateway;
        }
    }

    /// A listener opened at run time: its connections get `mount` as their mount point.
    pub fn add_listener(&mut self, id: ListenerId, mount: Option<&str>) {
        let role = ListenerRole {
            mount: mount.map(Rc::from),
            gateway: false,
            internal: false,
        };
        self.listeners.insert(id, role);
    }

    /// The pseudo-listener of the broker's own clients (the local sessions of bridges):
    /// no mount point, no keep alive imposed.
    pub fn add_internal_listener(&mut self, id: ListenerId) {
        let role = ListenerRole {
            mount: None,
            gateway: false,
            internal: true,
        };
        self.listeners.insert(id, role);
    }

    /// A listener closed at run time. Its connections keep what they were opened with.
    pub fn remove_listener(&mut self, id: ListenerId) {
        self.listeners.remove(&id);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True once no connection is left (used to end a shutdown).
    pub fn is_idle(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Starts recording durable changes (a store is attached).
    pub fn enable_journal(&mut self) {
        self.journal.enable();
    }

    /// Bounds the queue of the session `client_id` to `max` messages (0: no bound but bytes)
    /// instead of `max_queued_messages`; `None` removes the particular bound.
    pub fn set_queue_limit(&mut self, client_id: &str, max: Option<usize>) {
        match max {
            Some(n) => {
                self.queue_limits.insert(Rc::from(client_id), n);
            }
            None => {
                self.queue_limits.remove(client_id);
            }
        }
    }

    /// Serves the `$CONTROL` topics (deterministic mode).
    pub fn enable_controls(&mut self) {
        self.controls_enabled = true;
    }

    /// The `$CONTROL` requests received since the last call.
    pub fn take_controls(&mut self) -> Vec<event::Control> {
        std::mem::take(&mut self.controls)
    }

    /// Whether `$CONTROL` requests wait.
    pub fn has_controls(&self) -> bool {
        !self.controls.is_empty()
    }

    /// Starts recording client events ([`event::Notice`]) for [`Self::take_notices`].
    pub fn enable_notices(&mut self) {
        self.notices.get_or_insert_with(Vec::new);
    }

    /// The client events recorded since the last call.
    pub fn take_notices(&mut self) -> Vec<event::Notice> {
        self.notices
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether client events are recorded and some wait.
    pub fn has_notices(&self) -> bool {
        self.notices.as_ref().is_some_and(|n| !n.is_empty())
    }

    /// Moves the durable changes recorded since the last call into `out`.
    pub fn take_changes(&mut self, out: &mut Vec<Change>) {
        self.journal.drain_into(out);
    }

    fn on_opened(&mut self, conn: ConnId, listener: ListenerId, peer: Peer) {
        log::debug!("{conn} ({peer}): connection opened");
        let role = self.listeners.get(&listener).cloned().unwrap_or_default();
        self.conns.insert(
            conn,
            Conn {
                peer,
                listener,
                state: ConnState::AwaitConnect,
                version: ProtocolVersion::V311,
                keep_alive_ms: 0,
                last_seen: self.now,
                names: role.mount.map(|m| {
                    Box::new(ConnNames {
                        identity: None,
                        mount: Some(m),
                    })
                }),
                gateway: role.gateway,
                bridge: false,
                internal: role.internal,
            },
        );
        if self.shutting_down {
            self.close(conn, "server shutting down", None);
            return;
        }
        // `connect_timeout` counts from accept: TLS and WebSocket handshakes included.
        let timeout_ms = u64::from(self.limits.connect_timeout).saturating_mul(1000);
        self.timers.arm(
            self.now.saturating_add_ms(timeout_ms),
            TimerKey::ConnectDeadline(conn),
        );
    }

    fn on_packet(&mut self, conn: ConnId, packet: Packet) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_seen = self.now;
        self.stats.messages_received += 1;
        match c.state {
            ConnState::Closing => {}
            ConnState::AwaitConnect => match packet {
                Packet::Connect(connect) => self.on_connect(conn, *connect),
                other => {
                    // [MQTT-3.1.0-1] the first packet must be CONNECT.
                    let name = other.name();
                    self.violation(conn, ReasonCode::ProtocolError, name, "MQTT-3.1.0-1");
                }
            },
            ConnState::Active(key) => self.on_session_packet(conn, key.key(), packet),
        }
    }

    fn on_session_packet(&mut self, conn: ConnId, key: SessionKey, packet: Packet) {
        match packet {
            Packet::Publish(p) => self.on_publish(conn, key, p),
            Packet::PubAck(a) => self.on_puback(key, a),
            Packet::PubRec(a) => self.on_pubrec(conn, key, a),
            Packet::PubRel(a) => self.on_pubrel(conn, key, a),
            Packet::PubComp(a) => self.on_pubcomp(key, a),
            Packet::Subscribe(s) => self.on_subscribe(conn, key, s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(conn, key, u),
            Packet::PingReq => self.send(conn, Packet::PingResp),
            Packet::Disconnect(d) => self.on_disconnect(conn, key, d),
            Packet::Auth(_) => {
                // No authentication method is offered, so no AUTH exchange can be under way.
                self.violation(
                    conn,
                    ReasonCode::BadAuthenticationMethod,
                    "AUTH",
                    "MQTT-4.12.0-1",
                )
            }
            // [MQTT-3.1.0-2] a second CONNECT is a protocol error.
            Packet::Connect(_) => self.violation(
                conn,
                ReasonCode::ProtocolError,
                "second CONNECT",
                "MQTT-3.1.0-2",
            ),
            other => {
                let name = other.name();
                self.violation(
                    conn,
                    ReasonCode::ProtocolError,
                    name,
                    "server-to-client packet",
                )
            }
        }
    }

    fn on_disconnect(&mut self, conn: ConnId, key: SessionKey, d: Disconnect) {
        let v5 = self.conn_version(conn).is_v5();
        if v5 {
            if let Some(new) = d.properties.session_expiry_interval {
                // [MQTT-3.14.2-2] a zero expiry set at CONNECT cannot be raised at DISCONNECT.
                if self.sessions[key].expiry_secs == 0 && new != 0 {
                    self.violation(
                        conn,
                        ReasonCode::ProtocolError,
                        "DISCONNECT",
                        "MQTT-3.14.2-2",
                    );
                    return;
                }
                self.sessions[key].expiry_secs = self.cap_expiry(new);
            }
        }
        // [MQTT-3.14.4-3] a normal disconnection discards the will; 0x04 keeps it.
        let keep_will = v5 && d.reason == ReasonCode::DisconnectWithWill;
        if !keep_will {
            self.sessions[key].will = None;
        }
        let id = self.sessions[key].client_id.clone();
        let peer = self.peer(conn);
        log::log!(
            self.limits.connection_log_level(),
            "{conn} ({peer}): client {id} disconnected ({})",
            d.reason.text()
        );
        self.detach(conn, key, d.reason.text());
        self.actions.push_back(Action::Close { conn });
    }

    fn on_decode_error(&mut self, conn: ConnId, error: crate::codec::mqtt::DecodeError) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        log::info!("{conn} ({}): bad packet: {error}; closing", c.peer);
        match c.state {
            ConnState::AwaitConnect => {
                if error.kind == crate::codec::mqtt::ErrorKind::UnsupportedProtocolVersion {
                    // [MQTT-3.1.2-2] answer 0x01 in the 3.1.1 form, then close.
                    let ack = crate::codec::mqtt::ConnAck {
                        session_present: false,
                        reason: ReasonCode::UnsupportedProtocolVersion,
                        properties: Props::none(),
                    };
                    self.send(conn, Packet::ConnAck(ack));
                }
                self.close(conn, "bad CONNECT", None);
            }
            ConnState::Active(_) => self.close(conn, "bad packet", Some(error.reason())),
            ConnState::Closing => {}
        }
    }

    fn on_closed(&mut self, conn: ConnId, reason: &'static str) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let ConnState::Active(key) = c.state {
            self.active_conns = self.active_conns.saturating_sub(1);
            let level = self.limits.connection_log_level();
            log::log!(level, "{conn} ({}): connection lost: {reason}", c.peer);
            self.detach(conn, key.key(), reason);
        } else {
            log::debug!("{conn} ({}): closed: {reason}", c.peer);
        }
    }

    fn on_tick(&mut self) {
        while let Some(key) = self.timers.pop_due(self.now) {
            match key {
                TimerKey::ConnectDeadline(conn) => {
                    if self
                        .conns
                        .get(&conn)
                        .is_some_and(|c| c.state == ConnState::AwaitConnect)
                    {
                        if let Some(held_back) = self.bounds.connect_log.pass(self.now) {
                            let secs = self.limits.connect_timeout;
                            let peer = self.peer(conn);
                            log::info!("{conn} ({peer}): no CONNECT within {secs} s{held_back}");
                        }
                        self.close(conn, "no CONNECT in time", None);
                    }
                }
                TimerKey::KeepAlive(conn) => self.check_keep_alive(conn),
                TimerKey::SessionExpiry { uid, key } => self.check_session_expiry(uid, key),
                TimerKey::WillDelay { uid, key } => self.check_will_delay(uid, key),
                TimerKey::Sys => self.sys_tick(),
            }
        }
    }

    fn check_keep_alive(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.keep_alive_ms == 0 || c.state == ConnState::Closing {
            return;
        }
        // [MQTT-3.1.2-24] one and a half times the keep alive without a packet.
        let due = c
            .last_seen
            .saturating_add_ms(u64::from(c.keep_alive_ms) * 3 / 2);
        if due <= self.now {
            self.close(
                conn,
                "keep alive timeout",
                Some(ReasonCode::KeepAliveTimeout),
            );
        } else {
            if let ConnState::Active(key) = c.state {
                // A quiet point: flows left empty by the last messages give their memory back.
                if let Some(s) = self.sessions.get_mut(key.key()) {
                    s.trim_flows();
                }
            }
            self.timers.arm(due, TimerKey::KeepAlive(conn));
        }
    }

    fn on_shutdown(&mut self) {
        self.shutting_down = true;
        let mut conns: Vec<ConnId> = self.conns.keys().collect();
        conns.sort_unstable();
        for conn in conns {
            self.close(
                conn,
                "server shutting down",
                Some(ReasonCode::ServerShuttingDown),
            );
        }
    }

    /// A protocol violation by the peer: logged with the clause, answered per version.
    fn violation(&mut self, conn: ConnId, reason: ReasonCode, what: &str, clause: &str) {
        log::info!(
            "{conn} ({}): protocol violation ({what}) [{clause}]: {}; closing",
            self.peer(conn),
            reason.text()
        );
        self.close(conn, "protocol violation", Some(reason));
    }

    /// Server-initiated close. A v5 client with an attached session is sent DISCONNECT with
    /// `reason` first [MQTT-4.13.1-1]; its session is detached (will published per its
    /// delay) at once, and the connection is removed when the reactor reports it closed.
    fn close(&mut self, conn: ConnId, why: &str, reason: Option<ReasonCode>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let prev = c.state;
        if prev == ConnState::Closing {
            return;
        }
        c.state = ConnState::Closing;
        log::debug!("{conn} ({}): closing: {why}", c.peer);
        if let (ConnState::Active(key), Some(reason)) = (prev, reason) {
            if c.version.is_v5() {
                let d = Disconnect {
                    reason,
                    properties: Props::none(),
                };
                self.send(conn, Packet::Disconnect(d));
            }
            self.detach(conn, key.key(), why);
        } else if let ConnState::Active(key) = prev {
            self.detach(conn, key.key(), why);
        }
        if matches!(prev, ConnState::Active(_)) {
            self.active_conns = self.active_conns.saturating_sub(1);
        }
        self.actions.push_back(Action::Close { conn });
    }

    /// Detaches the session from its connection: the will is published or scheduled, and
    /// the session ends now or is scheduled to expire.
    fn detach(&mut self, conn: ConnId, key: SessionKey, why: &str) {
        let mut was_active = false;
        let internal = self.conns.get_mut(&conn).is_some_and(|c| {
            was_active = matches!(c.state, ConnState::Active(_));
            c.state = ConnState::Closing;
            c.internal
        });
        if was_active {
            self.active_conns = self.active_conns.saturating_sub(1);
        }
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        if s.link.as_ref().map(|l| l.conn) != Some(conn) {
            return;
        }
        if let (Some(notices), false) = (self.notices.as_mut(), internal) {
            notices.push(event::Notice::Disconnected {
                client_id: s.client_id.clone(),
                reason: why.to_owned(),
            });
        }
        s.link = None;
        let uid = s.uid;
        let slot = SessionSlot::new(key);
        let expiry = s.expiry_secs;
        if let Some(w) = s.will.as_mut() {
            // [MQTT-3.1.3-9] the will waits for its delay or the end of the session.
            if w.delay_secs == 0 || expiry == 0 {
                self.publish_will(key);
            } else {
                let delay = w.delay_secs.min(expiry);
                let at = self.now.saturating_add_secs(u64::from(delay));
                w.due = Some(at);
                self.timers.arm(at, TimerKey::WillDelay { uid, key: slot });
            }
        }
        if expiry == 0 {
            self.end_session(key);
            return;
        }
        self.page_out(key);
        // Offline with nothing queued or owed: the flows are not needed until the next
        // message.
        self.sessions[key].trim_flows();
        if expiry != session::EXPIRY_NEVER {
            let at = self.now.saturating_add_secs(u64::from(expiry));
            self.sessions[key].expires_at = Some(at);
            self.timers
                .arm(at, TimerKey::SessionExpiry { uid, key: slot });
        }
        self.save_session(key);
    }

    /// The session a session timer names, if it still exists.
    fn timer_session(&self, uid: u64, slot: SessionSlot) -> Option<&Session> {
        self.sessions.get(slot.key()).filter(|s| s.uid == uid)
    }

    fn check_session_expiry(&mut self, uid: u64, slot: SessionSlot) {
        let Some(s) = self.timer_session(uid, slot) else {
            return;
        };
        if s.link.is_none() && s.expires_at.is_some_and(|at| at <= self.now) {
            log::debug!("session {} expired", s.client_id);
            self.end_session(slot.key());
        }
    }

    fn check_will_delay(&mut self, uid: u64, slot: SessionSlot) {
        let Some(s) = self.timer_session(uid, slot) else {
            return;
        };
        let due = s.will.as_ref().and_then(|w| w.due);
        if s.link.is_none() && due.is_some_and(|at| at <= self.now) {
            self.publish_will(slot.key());
            self.save_session(slot.key());
        }
    }

    /// Publishes the session's will, if it has one, and forgets it.
    fn publish_will(&mut self, key: SessionKey) {
        let s = &mut self.sessions[key];
        let Some(w) = s.will.take() else {
            return;
        };
        if !s.access.can_write(&w.will.topic) {
            // The ACL may have changed since CONNECT checked the will topic.
            log::info!(
                "will of {} on {} not authorized; dropped",
                s.client_id,
                w.will.topic
            );
            return;
        }
        log::debug!("publishing will of {} on {}", s.client_id, w.will.topic);
        let mut properties = w.will.properties;
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|secs| self.now.saturating_add_secs(u64::from(secs)));
        properties.will_delay_interval = None;
        properties.shrink();
        let msg = message::Message {
            topic: w.will.topic.as_str().into(),
            payload: w.will.payload.into(),
            qos: w.will.qos,
            retain: w.will.retain,
            properties,
            expires_at,
            origin: None,
        };
        self.accept_message(Rc::new(msg));
    }

    /// Ends a session: a pending will goes out now, subscriptions leave the tree, and the
    /// session is forgotten.
    fn end_session(&mut self, key: SessionKey) {
        if self.sessions[key]
            .will
            .as_ref()
            .is_some_and(|w| w.due.is_some())
        {
            self.publish_will(key);
        }
        let s = self.sessions.remove(key);
        self.bounds.session_queue_gone(&s);
        for filter in s.subscriptions.keys() {
            let (group, plain) = split_group(filter);
            self.tree.remove(plain, group, key);
        }
        self.by_client_id.remove(&s.client_id);
        if s.durable {
            self.journal.record(|| Change::SessionDeleted {
                client_id: s.client_id.clone(),
            });
        }
    }

    /// Applies `persistent_client_expiration` to a session asking never to expire.
    fn cap_expiry(&self, secs: u32) -> u32 {
        match (secs, self.limits.persistent_client_expiration) {
            (session::EXPIRY_NEVER, Some(cap)) => u32::try_from(cap).unwrap_or(u32::MAX - 1),
            _ => secs,
        }
    }

    /// Queues a packet for a connection, counting it.
    fn send(&mut self, conn: ConnId, packet: Packet) {
        self.stats.messages_sent += 1;
        if matches!(packet, Packet::Publish(_)) {
            self.stats.publish_sent += 1;
        }
        self.actions.push_back(Action::Send { conn, packet });
    }

    fn conn_version(&self, conn: ConnId) -> ProtocolVersion {
        self.conns
            .get(&conn)
            .map_or(ProtocolVersion::V311, |c| c.version)
    }

    fn peer(&self, conn: ConnId) -> Peer {
        self.conns
            .get(&conn)
            .map_or_else(|| Peer::name("?"), |c| c.peer.clone())
    }

    /// Whether `packet` fits within the peer's Maximum Packet Size [MQTT-3.1.2-24].
    fn fits(&self, key: SessionKey, packet: &Packet) -> bool {
        match self.sessions.get(key).and_then(|s| s.link.as_ref()) {
            Some(l) => encoded_len(packet, l.version) <= l.max_packet as usize,
            None => false,
        }
    }
}

/// `$share/GROUP/FILTER` → (Some(GROUP), FILTER); anything else → (None, filter).
fn split_group(filter: &str) -> (Option<&str>, &str) {
    if let Some(rest) = filter.strip_prefix("$share/") {
        if let Some((g, f)) = rest.split_once('/') {
            return (Some(g), f);
        }
    }
    (None, filter)
}
