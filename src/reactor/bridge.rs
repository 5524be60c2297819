//! Bridges in the loop: the reactor's side of `bridge::Link` (MQTT bridges and webhooks).
//! It opens each bridge's connection to its remote end (TCP, TLS, WebSocket, secure
//! WebSocket), feeds what is read there to the bridge (MQTT packets, or HTTP response bytes),
//! writes what the bridge sends, passes the bridge's inputs for its local session to the
//! engine and the engine's answers back, and hands client events to webhooks.
//!
//! Owns the bridge table and the link between a bridge, its remote connection (a `Conn` in
//! the slab, read and written like any other) and its local session's connection id (known
//! to the engine only). Every call into a bridge is followed by [`Reactor::pump_bridges`],
//! which carries out what the bridge asked, in order. Remote addresses are resolved when the
//! bridge is created (at start-up, or an IP address over the API), never in the loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;

use mio::{Interest, Token};

use super::bridge_udp::SnSockets;
use super::conn::{CloseReason, Conn, ConnState};
use super::Reactor;
use crate::api::BridgeInfo;
use crate::bridge::link::{Link, Out};
use crate::bridge::mqtt::Bridge;
use crate::bridge::mqttsn::SnBridge;
use crate::bridge::webhook::Webhook;
use crate::clock::Millis;
use crate::codec::mqtt::{Packet, Props, ProtocolVersion, QoS};
use crate::config::bridge::{BridgeConfig, BridgeKind, BridgeProtocol, BridgeTransport, SnDtls};
use crate::engine::event::{Action, ConnId, Input, ListenerId};
use crate::engine::message::Message;
use crate::transport::dtls::ClientCredentials;
use crate::transport::tls_config::client_config;
use crate::transport::{ReadOutcome, TcpTransport, Transport, READ_CHUNK};

/// Bridges at once, from the configuration and the API together.
pub(super) const BRIDGES_MAX: usize = 64;

/// One bridge and what the reactor keeps for it.
pub(super) struct BridgeSlot {
    pub(super) link: Link,
    /// The resolved addresses, one list per configured address.
    resolved: Vec<Vec<SocketAddr>>,
    /// The TLS client configuration, built once.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The remote connection, while one is open or opening.
    remote: Option<ConnId>,
    /// The remote connection's handshakes are done and the bridge was told.
    up: bool,
    /// The sockets of an MQTT-SN bridge.
    pub(super) udp: Option<SnSockets>,
}

/// What a remote connection's `Conn` knows of its bridge.
#[derive(Debug, Clone, Copy)]
pub(super) struct BridgeLink {
    /// The bridge's key in `Reactor::bridges` (a word narrower than `usize`: one per
    /// connection).
    slot: u32,
    /// The bridge closed it itself: no `transport_down` when it goes.
    pub(super) closed_by_bridge: bool,
}

impl BridgeLink {
    fn new(slot: usize) -> Self {
        Self {
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            closed_by_bridge: false,
        }
    }

    pub(super) fn slot(&self) -> usize {
        self.slot as usize
    }
}

impl BridgeSlot {
    /// Resolves the addresses and builds the TLS configuration of `config`. `may_resolve`:
    /// host names may be looked up (at start-up); otherwise only IP addresses and
    /// `localhost` are taken, so the loop never waits for a name server.
    pub(super) fn new(
        config: BridgeConfig,
        seed: u64,
        now: Millis,
        receive_max: u16,
        may_resolve: bool,
        local: ConnId,
        wall_ms_at_zero: u64,
    ) -> io::Result<Self> {
        let mut resolved = Vec::with_capacity(config.addresses.len());
        for a in &config.addresses {
            let host = a.host.trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
                vec![SocketAddr::new(ip, a.port)]
            } else if host.eq_ignore_ascii_case("localhost") {
                vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port)]
            } else if may_resolve {
                (host, a.port).to_socket_addrs()?.collect()
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("address {host}: an IP address or localhost is needed here"),
                ));
            };
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("address {host}: no IP address"),
                ));
            }
            resolved.push(addrs);
        }
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(client_config(t)?),
        };
        let link = match config.kind {
            BridgeKind::MqttSn(_) => {
                Link::MqttSn(Box::new(SnBridge::new(config, seed, now, receive_max)))
            }
            BridgeKind::Mqtt => Link::Mqtt(Box::new(Bridge::new(config, seed, now, receive_max))),
            BridgeKind::Http(_) => Link::Http(Box::new(Webhook::new(
                config,
                seed,
                now,
                local,
                wall_ms_at_zero,
            ))),
        };
        Ok(Self {
            link,
            resolved,
            tls,
            remote: None,
            up: false,
            udp: None,
        })
    }
}

impl Reactor {
    /// Adds a bridge; it connects at once. Fails when the table is full or the name taken.
    pub(super) fn add_bridge(
        &mut self,
        config: BridgeConfig,
        may_resolve: bool,
    ) -> Result<usize, String> {
        if self.bridges.len() >= BRIDGES_MAX {
            return Err(format!("{BRIDGES_MAX} bridges exist already"));
        }
        if self.bridge_slot(&config.name).is_some() {
            return Err(format!("a bridge named {:?} exists already", config.name));
        }
        let name = config.name.clone();
        let seed = self.bridge_seed ^ (self.bridges.len() as u64).rotate_left(40);
        let receive_max = match self.limits.max_inflight_messages {
            0 => u16::MAX,
            n => n,
        };
        let local = self.conn_ids.alloc();
        let wall = self.clock.wall_start_ms();
        let slot = BridgeSlot::new(
            config,
            seed,
            self.now,
            receive_max,
            may_resolve,
            local,
            wall,
        )
        .map_err(|e| {
            self.conn_ids.release(local);
            format!("bridge {name}: {e}")
        })?;
        if slot.link.wants_events() {
            self.engine.enable_notices();
        }
        let c = slot.link.config();
        if c.max_queued_messages > 0 {
            self.engine
                .set_queue_limit(&c.local_clientid, Some(c.max_queued_messages));
        }
        let key = self.bridges.vacant_key();
        let token = self.bridge_udp_token_of(key);
        let mut slot = slot;
        if let BridgeKind::MqttSn(sn) = &slot.link.config().kind {
            let gateway = slot.resolved.first().and_then(|list| list.first()).copied();
            let server_name = slot
                .link
                .config()
                .addresses
                .first()
                .map(|a| a.host.clone())
                .unwrap_or_default();
            let credentials = sn.dtls.as_ref().map(|d| match d {
                SnDtls::Certificates(t) => ClientCredentials::Certificates {
                    cafile: t.cafile.clone(),
                    insecure: t.insecure,
                    certfile: t.certfile.clone(),
                    keyfile: t.keyfile.clone(),
                    server_name,
                },
                SnDtls::Psk { identity, key } => ClientCredentials::Psk {
                    identity: identity.clone(),
                    key: key.clone(),
                },
            });
            let registry = self.poll.registry();
            let sockets = SnSockets::open(
                gateway,
                sn.multicast_group,
                credentials,
                seed,
                registry,
                token,
            )
            .map_err(|e| format!("bridge {name}: {e}"))?;
            slot.udp = Some(sockets);
        }
        let key = self.bridges.insert(slot);
        self.bridge_dirty.push(key);
        self.bridge_tick(key);
        Ok(key)
    }

    /// The slot of the bridge called `name`.
    pub(super) fn bridge_slot(&self, name: &str) -> Option<usize> {
        self.bridges
            .iter()
            .find(|(_, s)| s.link.name() == name)
            .map(|(k, _)| k)
    }

    /// Stops a bridge and forgets it. Its local session is ended too unless `keep_queue`.
    pub(super) fn remove_bridge(&mut self, key: usize, keep_queue: bool) {
        let Some(slot) = self.bridges.get_mut(key) else {
            return;
        };
        let now = self.now;
        slot.link.stop(now);
        let local_id = slot.link.config().local_clientid.clone();
        self.bridge_dirty.push(key);
        self.pump_bridges();
        if let Some(mut slot) = self.bridges.try_remove(key) {
            if let Some(remote) = slot.remote {
                self.close_bridge_conn(remote);
            }
            if let Some(u) = slot.udp.as_mut() {
                u.close(self.poll.registry());
            }
            // An id handed out for a local session that never opened would otherwise keep
            // its slot (one still open in the engine is told apart by its sequence number).
            for id in slot.link.held_ids().into_iter().flatten() {
                self.conn_ids.release(id);
            }
            log::info!("bridge {} removed", slot.link.name());
        }
        self.bridge_locals.retain(|_, &mut b| b != key);
        if !keep_queue {
            self.engine.set_queue_limit(&local_id, None);
            self.engine.admin_end_session(now, &local_id);
            while let Some(action) = self.engine.poll_action() {
                self.apply(action);
            }
        }
    }

    /// The earliest deadline of any bridge.
    pub(super) fn bridge_deadline(&self) -> Option<Millis> {
        let dtls = self
            .bridges
            .iter()
            .filter_map(|(_, s)| s.udp.as_ref().and_then(SnSockets::dtls_deadline));
        self.bridges
            .iter()
            .filter_map(|(_, s)| s.link.next_deadline())
            .chain(dtls)
            .min()
    }

    /// Step 4 for the bridges: fires what is due.
    pub(super) fn bridge_timers(&mut self) {
        self.bridge_dtls_timers();
        let now = self.now;
        let due: Vec<usize> = self
            .bridges
            .iter()
            .filter(|(_, s)| s.link.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k)
            .collect();
        for key in due {
            if let (Some(t), Some(slot)) = (self.trace.as_mut(), self.bridges.get(key)) {
                let event = crate::trace::Event::Timer {
                    timer: "bridge",
                    conn: None,
                    listener: None,
                    bridge: Some(slot.link.name()),
                };
                t.record(now, &event);
            }
            self.bridge_tick(key);
        }
    }

    fn bridge_tick(&mut self, key: usize) {
        let now = self.now;
        if let Some(slot) = self.bridges.get_mut(key) {
            slot.link.tick(now);
            self.bridge_dirty.push(key);
        }
        self.pump_bridges();
    }

    /// Stops every bridge (shutdown).
    pub(super) fn stop_bridges(&mut self) {
        let now = self.now;
        let keys: Vec<usize> = self.bridges.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(slot) = self.bridges.get_mut(key) {
                slot.link.stop(now);
                self.bridge_dirty.push(key);
            }
        }
        self.pump_bridges();
    }

    /// Carries out what the bridges asked for, until none asks for more.
    pub(super) fn pump_bridges(&mut self) {
        if self.bridge_pumping {
            return;
        }
        self.bridge_pumping = true;
        self.hand_out_local_ids();
        while let Some(key) = self.bridge_dirty.pop() {
            while let Some(out) = self.bridges.get_mut(key).and_then(|s| s.link.poll()) {
                self.bridge_output(key, out);
            }
        }
        self.bridge_pumping = false;
    }

    fn bridge_output(&mut self, key: usize, out: Out) {
        match out {
            Out::Connect(_) => self.open_bridge_conn(key),
            Out::Packet(packet) => {
                if let Some(remote) = self.bridges.get(key).and_then(|s| s.remote) {
                    self.queue_packet(remote, &packet);
                }
            }
            Out::Bytes(bytes) => {
                let remote = self.bridges.get(key).and_then(|s| s.remote);
                if let Some(conn_key) = remote.and_then(|r| self.conn_key_of(r)) {
                    self.queue_bytes(conn_key, &bytes, false);
                }
            }
            Out::Close => {
                if let Some(remote) = self.bridges.get_mut(key).and_then(|s| s.remote.take()) {
                    self.close_bridge_conn(remote);
                }
                if let Some(slot) = self.bridges.get_mut(key) {
                    slot.up = false;
                }
            }
            Out::ToGateway(bytes) => self.bridge_datagram(key, false, bytes),
            Out::ToGroup(bytes) => self.bridge_datagram(key, true, bytes),
            Out::UseSource => self.bridge_use_source(key),
            Out::Notify { topic, up } => {
                let msg = Message {
                    topic: topic.as_str().into(),
                    payload: Rc::from(if up { &b"1"[..] } else { &b"0"[..] }),
                    qos: QoS::AtMostOnce,
                    retain: true,
                    properties: Props::none(),
                    expires_at: None,
                    origin: None,
                };
                self.engine.broker_publish(self.now, msg);
                while let Some(action) = self.engine.poll_action() {
                    self.apply(action);
                }
            }
            Out::Engine(input) => {
                match &input {
                    Input::Opened { conn, .. } => {
                        self.bridge_locals.insert(*conn, key);
                    }
                    Input::Closed { conn, .. } => {
                        self.bridge_locals.remove(conn);
                    }
                    _ => {}
                }
                self.feed(input);
            }
        }
    }

    /// Closes a remote connection at the bridge's request: flushed, then removed.
    fn close_bridge_conn(&mut self, remote: ConnId) {
        let now = self.now;
        let Some(conn_key) = self.conn_key_of(remote) else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(conn_key) {
            if let Some(link) = conn.bridge.as_mut() {
                link.closed_by_bridge = true;
            }
            conn.start_closing(now, CloseReason::BridgeClosed);
            self.close_queue.push(conn_key);
        }
    }

    /// Opens the transport to the bridge's current address.
    fn open_bridge_conn(&mut self, key: usize) {
        let now = self.now;
        let packet_size_max = self.limits.packet_size_max();
        let Some(slot) = self.bridges.get_mut(key) else {
            return;
        };
        let index = slot
            .link
            .address()
            .and_then(|a| slot.link.config().addresses.iter().position(|b| b == a))
            .unwrap_or(0);
        let Some(&addr) = slot.resolved.get(index).and_then(|list| list.first()) else {
            slot.link.transport_down(now, "no address");
            self.bridge_dirty.push(key);
            return;
        };
        let config = slot.link.config();
        let host = config
            .addresses
            .get(index)
            .map_or_else(|| addr.ip().to_string(), |a| a.host.clone());
        let opened = TcpTransport::connect(addr).and_then(|tcp| {
            match (&config.transport, slot.tls.clone()) {
                (BridgeTransport::Tcp, None) => Ok(Transport::client_tcp(tcp)),
                (BridgeTransport::Tcp, Some(tls)) => Transport::client_tls(tcp, tls, &host),
                (BridgeTransport::WebSockets { path }, None) => {
                    let host = format!("{host}:{}", addr.port());
                    Transport::client_ws(tcp, &host, path, packet_size_max)
                }
                (BridgeTransport::WebSockets { path }, Some(tls)) => {
                    Transport::client_wss(tcp, tls, &host, path, packet_size_max)
                }
            }
        });
        let version = match config.protocol {
            BridgeProtocol::V311 => ProtocolVersion::V311,
            BridgeProtocol::V5 => ProtocolVersion::V5,
        };
        let mut transport = match opened {
            Ok(t) => t,
            Err(e) => {
                let why = format!("cannot connect to {addr}: {e}");
                slot.link.transport_down(now, &why);
                self.bridge_dirty.push(key);
                return;
            }
        };
        let id = self.conn_ids.alloc();
        let entry = self.conns.vacant_entry();
        let conn_key = entry.key();
        let token = Token(self.conn_base + conn_key);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut transport, token, interest)
        {
            let why = format!("cannot register the connection to {addr}: {e}");
            if let Some(slot) = self.bridges.get_mut(key) {
                slot.link.transport_down(now, &why);
            }
            self.bridge_dirty.push(key);
            return;
        }
        let peer = super::listener::peer_of(addr);
        let mut conn = Conn::new(id, ListenerId(u32::MAX), peer, transport);
        conn.version = Some(version);
        conn.want_writable = true;
        conn.bridge = Some(BridgeLink::new(key));
        entry.insert(conn);
        self.by_id
            .insert(id, u32::try_from(conn_key).unwrap_or(u32::MAX));
        if let Some(slot) = self.bridges.get_mut(key) {
            slot.remote = Some(id);
            slot.up = false;
        }
        log::debug!("{id} {addr}: bridge connection opening");
    }

    /// After an event on a bridge's connection: once its handshakes are done, the bridge
    /// is told and sends CONNECT. A failed TCP connect closes it.
    pub(super) fn bridge_conn_progress(&mut self, conn_key: usize) {
        let Some(conn) = self.conns.get(conn_key) else {
            return;
        };
        let Some(link) = conn.bridge else {
            return;
        };
        if conn.state != ConnState::Open {
            return;
        }
        let up = self.bridges.get(link.slot()).is_some_and(|s| s.up);
        if up {
            return;
        }
        match conn.transport.connect_result() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                self.io_failed(conn_key, "connect", &e);
                return;
            }
        }
        // The handshakes of the layers above TCP go out with the flush.
        if conn.transport.wants_write() {
            self.flush_queue.push(conn_key);
        }
        if !conn.transport.is_established() {
            return;
        }
        let local = self.conn_ids.alloc();
        let now = self.now;
        if let Some(slot) = self.bridges.get_mut(link.slot()) {
            slot.up = true;
            slot.link.transport_up(now, local);
            self.bridge_dirty.push(link.slot());
        }
        self.pump_bridges();
    }

    /// A packet read on a bridge's remote connection.
    pub(super) fn bridge_packet(&mut self, slot: usize, packet: Packet) {
        let now = self.now;
        if let Some(Link::Mqtt(b)) = self.bridges.get_mut(slot).map(|s| &mut s.link) {
            b.remote_packet(now, packet);
            self.bridge_dirty.push(slot);
        }
        self.pump_bridges();
    }

    /// A bridge's remote connection is gone (read from `remove_conn`).
    pub(super) fn bridge_conn_closed(&mut self, link: BridgeLink, id: ConnId, reason: &str) {
        let now = self.now;
        let Some(slot) = self.bridges.get_mut(link.slot()) else {
            return;
        };
        if slot.remote == Some(id) {
            slot.remote = None;
            slot.up = false;
        }
        if !link.closed_by_bridge {
            slot.link.transport_down(now, reason);
            self.bridge_dirty.push(link.slot());
        }
        self.pump_bridges();
    }

    /// A bridge's remote connection failed with `why`; it is closed at the end of the turn.
    pub(super) fn bridge_conn_failed(&mut self, slot: usize, id: ConnId, why: &str) {
        self.bridge_conn_closed(BridgeLink::new(slot), id, why);
    }

    /// An engine action for a bridge's local session. Returns the action when it is not one.
    pub(super) fn bridge_action(&mut self, action: Action) -> Option<Action> {
        let conn = match &action {
            Action::Send { conn, .. } | Action::Close { conn } => *conn,
            Action::SetVersion { conn, .. } | Action::SetMaxPacketSize { conn, .. } => {
                return if self.bridge_locals.contains_key(conn) {
                    None
                } else {
                    Some(action)
                };
            }
        };
        let Some(&slot) = self.bridge_locals.get(&conn) else {
            return Some(action);
        };
        let now = self.now;
        if let Some(s) = self.bridges.get_mut(slot) {
            match action {
                Action::Send { packet, .. } => s.link.from_engine(now, packet),
                Action::Close { .. } => {
                    let reopen = self.conn_ids.alloc();
                    s.link.local_closed(now, reopen);
                }
                _ => {}
            }
            self.bridge_dirty.push(slot);
        }
        None
    }

    /// The bridges, for the API.
    pub(super) fn bridge_infos(&self) -> Vec<BridgeInfo> {
        self.bridges
            .iter()
            .map(|(_, s)| {
                let st = s.link.status();
                BridgeInfo {
                    config: s.link.config().clone(),
                    state: st.state,
                    address: s.link.address().map(|a| format!("{}:{}", a.host, a.port)),
                    connects: st.connects,
                    messages_out: st.messages_out,
                    messages_in: st.messages_in,
                    failures: st.failures,
                    last_status: st.last_status,
                    last_error: st.last_error,
                }
            })
            .collect()
    }

    /// Hands the engine's client events to the webhooks that post them.
    pub(super) fn bridge_events(&mut self) {
        let notices = self.engine.take_notices();
        if notices.is_empty() {
            return;
        }
        let now = self.now;
        let keys: Vec<usize> = self.bridges.iter().map(|(k, _)| k).collect();
        for notice in &notices {
            for &key in &keys {
                if let Some(slot) = self.bridges.get_mut(key) {
                    slot.link.event(now, notice);
                    self.bridge_dirty.push(key);
                }
            }
        }
        self.pump_bridges();
    }

    /// Reads what a webhook's connection has and hands the bytes to the webhook.
    pub(super) fn read_webhook(&mut self, key: usize) {
        loop {
            if !self.may_read(key, true) {
                return;
            }
            let Some((outcome, _)) = self.read_some(key, READ_CHUNK) else {
                return;
            };
            self.bridge_conn_progress(key);
            let now = self.now;
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Some(link) = conn.bridge else {
                return;
            };
            if let Some(Link::Http(w)) = self.bridges.get_mut(link.slot()).map(|s| &mut s.link) {
                w.received(now, &mut conn.inbound);
                if matches!(outcome, Ok(ReadOutcome::Eof)) {
                    w.end_of_stream(now);
                }
                self.bridge_dirty.push(link.slot());
            }
            self.pump_bridges();
            match outcome {
                Ok(ReadOutcome::Full) => {}
                Ok(ReadOutcome::WouldBlock) => {
                    self.release_idle_buffer(key);
                    return;
                }
                Ok(ReadOutcome::Eof) => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.start_closing(now, CloseReason::WebServiceClosed);
                        self.close_queue.push(key);
                    }
                    return;
                }
                Err(e) => {
                    self.io_failed(key, "read", &e);
                    return;
                }
            }
        }
    }

    /// Whether the connection belongs to a webhook.
    pub(super) fn is_webhook_conn(&self, key: usize) -> bool {
        self.conns
            .get(key)
            .and_then(|c| c.bridge)
            .and_then(|l| self.bridges.get(l.slot()))
            .is_some_and(|s| s.link.is_http())
    }
}
