//! MQTT-SN listeners: their UDP sockets (and multicast group sockets), datagrams in and out,
//! and the routing of engine actions and timers to each listener's gateway.
//!
//! Owns the sockets and one receive buffer. It must never interpret a datagram (the gateway
//! does), never block, and never queue datagrams: a datagram the socket cannot take now is
//! dropped, as UDP may drop it anyway, and the gateway's retransmissions recover what
//! needed an acknowledgement.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use super::listener::resolve;
use super::Reactor;
use crate::api::ListenerInfo;
use crate::clock::Millis;
use crate::config::{ListenerConfig, ListenerProtocol, MqttSnConfig};
use crate::engine::event::{Action, ListenerId};
use crate::gateway::{Gateway, GatewayConfig, Output, DEFAULT_MAX_CLIENTS};
use crate::transport::dtls::{DtlsConfig, DtlsEvent, DtlsServer};

/// Datagrams taken from one socket per loop turn; the rest wait for the next turn.
const DATAGRAMS_PER_TURN: usize = 256;

/// Largest datagram received; MQTT-SN's 3-byte length form cannot name more.
const DATAGRAM_MAX: usize = 65_535;

/// Receive buffer asked of the kernel for a listener socket (it grants at most
/// net.core.rmem_max): many clients sending at once must not overflow the default ~200 KiB
/// while the loop serves other sockets.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

pub(super) struct SnListener {
    pub(super) gateway: Gateway,
    /// DTLS between the socket and the gateway, on a listener with certificates or keys.
    dtls: Option<DtlsServer>,
    socket: UdpSocket,
    /// A second socket bound to the multicast group's port, joined to the group, so that
    /// SEARCHGW sent to the group is heard.
    group_socket: Option<UdpSocket>,
    group: Option<SocketAddr>,
    /// The address bound, and the listener's mount point, for the API.
    local: SocketAddr,
    mount_point: Option<String>,
}

/// MQTT-SN peers a trace numbers; later ones are traced as peer 0, like the multicast group.
pub(super) const TRACE_PEERS_MAX: usize = 65_536;

/// Tokens per MQTT-SN listener: its socket and its group socket.
pub(super) const TOKENS_PER_SN_LISTENER: usize = 2;

/// Binds the MQTT-SN listener `index` of the configuration and registers its sockets under
/// `token` and `token + 1`. `dtls` is the listener's DTLS configuration, if it has one.
#[allow(clippy::too_many_arguments)]
pub(super) fn bind(
    config: &ListenerConfig,
    sn: &MqttSnConfig,
    index: usize,
    registry: &Registry,
    token: usize,
    now: Millis,
    seed: u64,
    dtls: Option<DtlsConfig>,
) -> io::Result<SnListener> {
    let addr = resolve(config)?;
    let dual = config.bind_address.is_none() && config.socket_domain.is_none();
    let mut socket = bind_udp(addr, dual)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on udp {addr}: {e}")))?;
    registry.register(&mut socket, Token(token), Interest::READABLE)?;
    let local = socket.local_addr()?;
    log::info!("listening on {local} (mqttsn, udp)");
    let mut group_socket = None;
    if let Some(group) = sn.multicast_group {
        let interface = sn.multicast_interface.as_deref();
        let mut s = join_group(group, interface, sn.multicast_ttl)
            .map_err(|e| io::Error::new(e.kind(), format!("multicast group {group}: {e}")))?;
        registry.register(&mut s, Token(token + 1), Interest::READABLE)?;
        set_ttl(&socket, group, sn.multicast_ttl)?;
        log::info!("listener {}: joined multicast group {group}", config.port);
        group_socket = Some(s);
    }
    let max_clients = sn.max_clients.map_or(DEFAULT_MAX_CLIENTS, |m| {
        usize::try_from(m).unwrap_or(usize::MAX)
    });
    let gateway = Gateway::new(
        GatewayConfig {
            listener: ListenerId(u32::try_from(index).unwrap_or(u32::MAX)),
            gateway_id: sn.gateway_id,
            retry_ms: u64::from(sn.retry_interval) * 1000,
            retry_count: sn.retry_count,
            sleep_buffer: usize::try_from(sn.sleep_buffer).unwrap_or(usize::MAX),
            max_clients,
            predefined: sn.predefined_topics.clone(),
            // ADVERTISE goes to the group only: without one there is nowhere to send it.
            advertise_interval: if sn.multicast_group.is_some() {
                sn.advertise_interval
            } else {
                0
            },
            seed,
        },
        now,
    );
    let dtls = match dtls {
        None => None,
        Some(d) => Some(
            DtlsServer::new(d, seed.rotate_left(7), max_clients).map_err(|e| {
                io::Error::new(e.kind(), format!("listener {}: DTLS: {e}", config.port))
            })?,
        ),
    };
    if dtls.is_some() {
        log::info!("listener {}: MQTT-SN over DTLS 1.2", config.port);
    }
    Ok(SnListener {
        gateway,
        dtls,
        socket,
        group_socket,
        group: sn.multicast_group,
        local,
        mount_point: config.mount_point.clone(),
    })
}

pub(super) fn bind_udp(addr: SocketAddr, dual: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual)?;
    }
    socket.set_nonblocking(true)?;
    // Best effort: a smaller buffer only means earlier drops under load.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// A socket on the group's port that receives what is sent to the group.
pub(super) fn join_group(
    group: SocketAddr,
    interface: Option<&str>,
    ttl: u32,
) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    // Several gateways (and clients) on one host share the group's port.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    match group.ip() {
        IpAddr::V4(ip) => {
            let any = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), group.port());
            socket.bind(&any.into())?;
            let local = match interface {
                None => Ipv4Addr::UNSPECIFIED,
                Some(text) => text.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("multicast_interface {text}: not an IPv4 address"),
                    )
                })?,
            };
            socket.join_multicast_v4(&ip, &local)?;
            socket.set_multicast_loop_v4(true)?;
            socket.set_multicast_ttl_v4(ttl)?;
        }
        IpAddr::V6(ip) => {
            let any = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), group.port());
            socket.set_only_v6(true)?;
            socket.bind(&any.into())?;
            let index = match interface {
                None => 0,
                Some(text) => text.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("multicast_interface {text}: not an interface index"),
                    )
                })?,
            };
            socket.join_multicast_v6(&ip, index)?;
            socket.set_multicast_loop_v6(true)?;
            socket.set_multicast_hops_v6(ttl)?;
        }
    }
    Ok(UdpSocket::from_std(socket.into()))
}

pub(super) fn set_ttl(socket: &UdpSocket, group: SocketAddr, ttl: u32) -> io::Result<()> {
    let s = socket2::SockRef::from(socket);
    match group {
        SocketAddr::V4(_) => {
            s.set_multicast_ttl_v4(ttl)?;
            s.set_multicast_loop_v4(true)
        }
        SocketAddr::V6(_) => {
            s.set_multicast_hops_v6(ttl)?;
            s.set_multicast_loop_v6(true)
        }
    }
}

impl Reactor {
    /// The MQTT-SN listener and socket behind `token`, if it is one of theirs.
    pub(super) fn sn_token(&self, token: Token) -> Option<(usize, bool)> {
        let offset = token.0.checked_sub(self.sn_base)?;
        let index = offset / TOKENS_PER_SN_LISTENER;
        (index < self.sn.len()).then_some((index, offset % TOKENS_PER_SN_LISTENER == 1))
    }

    /// Reads datagrams from one socket until it would block or the turn's budget is used.
    pub(super) fn read_datagrams(&mut self, index: usize, group: bool) {
        let mut buf = std::mem::take(&mut self.udp_buf);
        buf.resize(DATAGRAM_MAX, 0);
        for _ in 0..DATAGRAMS_PER_TURN {
            let Some(listener) = self.sn.get_mut(index) else {
                break;
            };
            let socket = match (&listener.group_socket, group) {
                (Some(s), true) => s,
                _ => &listener.socket,
            };
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.udp_buf = buf;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("MQTT-SN listener {index}: receive failed: {e}");
                    self.udp_buf = buf;
                    return;
                }
            };
            self.traffic.bytes_received += n as u64;
            let conn_ids = &mut self.conn_ids;
            let mut ids = || conn_ids.alloc();
            let from = SocketAddr::new(from.ip().to_canonical(), from.port());
            let id = listener.gateway.listener().0;
            let mut trace = |bytes: &[u8]| {
                if let Some(t) = self.trace.as_mut() {
                    let peer = trace_peer(&mut self.trace_peers, Some(from));
                    let event = crate::trace::Event::DatagramIn {
                        listener: id,
                        peer,
                        bytes,
                    };
                    t.record(self.now, &event);
                }
            };
            match (&mut listener.dtls, group) {
                // Discovery on the group stays in the clear: clients search before any
                // handshake.
                (Some(dtls), false) => {
                    for payload in dtls.receive(self.now, from, &buf[..n]) {
                        trace(&payload);
                        listener
                            .gateway
                            .datagram(self.now, from, &payload, &mut ids);
                    }
                    self.dtls_outputs(index);
                }
                _ => {
                    trace(&buf[..n]);
                    listener
                        .gateway
                        .datagram(self.now, from, &buf[..n], &mut ids)
                }
            }
            self.pump_gateways();
        }
        // Budget used: more may wait, and edge-triggered readiness will not say so again.
        self.sn_read_queue.push((index, group));
        self.udp_buf = buf;
    }

    /// Routes an engine action for a gateway's connection; gives it back if no gateway owns
    /// the connection.
    pub(super) fn gateway_action(&mut self, action: Action) -> Option<Action> {
        let conn = match &action {
            Action::Send { conn, .. }
            | Action::Close { conn }
            | Action::SetVersion { conn, .. }
            | Action::SetMaxPacketSize { conn, .. } => *conn,
        };
        let now = self.now;
        match self.sn.iter_mut().find(|l| l.gateway.owns(conn)) {
            Some(listener) => {
                listener.gateway.from_engine(now, action);
                None
            }
            None => Some(action),
        }
    }

    /// Carries out everything the gateways asked for, until none asks for more.
    pub(super) fn pump_gateways(&mut self) {
        loop {
            let mut progressed = false;
            for index in 0..self.sn.len() {
                while let Some(out) = self.sn.get_mut(index).and_then(|l| l.gateway.poll()) {
                    progressed = true;
                    if self.trace.is_some() {
                        self.trace_output(index, &out);
                    }
                    match out {
                        Output::Engine(input) => self.feed(input),
                        Output::Release(conn) => self.conn_ids.release(conn),
                        Output::Datagram { to, bytes } => self.send_datagram(index, to, bytes),
                        Output::Discovery { to, bytes } => self.send_raw(index, to, bytes),
                        Output::Multicast { bytes } => {
                            if let Some(group) = self.sn.get(index).and_then(|l| l.group) {
                                self.send_raw(index, group, bytes);
                            }
                        }
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Traces a datagram a gateway sends (before DTLS, if any).
    fn trace_output(&mut self, index: usize, out: &Output) {
        let (to, bytes) = match out {
            Output::Engine(_) | Output::Release(_) => return,
            Output::Datagram { to, bytes } | Output::Discovery { to, bytes } => (Some(*to), bytes),
            Output::Multicast { bytes } => (None, bytes),
        };
        let Some(listener) = self.sn.get(index) else {
            return;
        };
        let id = listener.gateway.listener().0;
        let peer = trace_peer(&mut self.trace_peers, to);
        if let Some(t) = self.trace.as_mut() {
            let event = crate::trace::Event::DatagramOut {
                listener: id,
                peer,
                bytes,
            };
            t.record(self.now, &event);
        }
    }

    /// Sends what the listener's DTLS layer has for its peers and logs its events.
    fn dtls_outputs(&mut self, index: usize) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        if let Some(dtls) = self.sn.get_mut(index).and_then(|l| l.dtls.as_mut()) {
            while let Some(t) = dtls.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = dtls.poll_event() {
                events.push(e);
            }
        }
        for (to, datagram) in out {
            self.send_raw(index, to, datagram);
        }
        for event in events {
            match event {
                DtlsEvent::Established { peer } => log::debug!("udp {peer}: DTLS established"),
                DtlsEvent::Closed { peer, reason } => {
                    log::info!("udp {peer}: DTLS closed: {reason}")
                }
                DtlsEvent::Refused { peer, reason } => {
                    log::info!("udp {peer}: DTLS handshake refused: {reason}")
                }
            }
        }
    }

    /// Sends MQTT-SN bytes to a peer: through DTLS on a DTLS listener, else as they are.
    fn send_datagram(&mut self, index: usize, to: SocketAddr, bytes: Vec<u8>) {
        let now = self.now;
        let Some(listener) = self.sn.get_mut(index) else {
            return;
        };
        if let Some(dtls) = listener.dtls.as_mut() {
            if let Err(e) = dtls.send(now, to, &bytes) {
                log::debug!("udp {to}: MQTT-SN message not sent over DTLS: {e}");
            }
            self.dtls_outputs(index);
            return;
        }
        self.send_raw(index, to, bytes);
    }

    /// Queues a datagram for step 7, after the turn's commit.
    fn send_raw(&mut self, index: usize, to: SocketAddr, bytes: Vec<u8>) {
        self.datagrams.push((index, to, bytes));
    }

    /// The MQTT-SN listeners as the API shows them.
    pub(super) fn sn_listener_infos(&self) -> impl Iterator<Item = ListenerInfo> + '_ {
        self.sn.iter().map(|l| ListenerInfo {
            id: l.gateway.listener(),
            port: l.local.port(),
            address: l.local.ip().to_string(),
            protocol: ListenerProtocol::MqttSn,
            tls: l.dtls.is_some(),
            connections: l.gateway.client_count() as u64,
            max_connections: None,
            mount_point: l.mount_point.clone(),
        })
    }

    /// The ports of the MQTT-SN listeners.
    pub(super) fn sn_ports(&self) -> Vec<u16> {
        self.sn.iter().map(|l| l.local.port()).collect()
    }

    /// Step 7 for the MQTT-SN listeners: sends the datagrams queued this turn, in order.
    pub(super) fn send_datagrams(&mut self) {
        let queued = std::mem::take(&mut self.datagrams);
        for (index, to, bytes) in &queued {
            self.send_now(*index, *to, bytes);
        }
        // Keep the allocation for the next turn.
        self.datagrams = queued;
        self.datagrams.clear();
    }

    fn send_now(&mut self, index: usize, to: SocketAddr, bytes: &[u8]) {
        let Some(listener) = self.sn.get(index) else {
            return;
        };
        // A dual-stack socket reaches IPv4 peers through their mapped address.
        let to = match (to, listener.socket.local_addr()) {
            (SocketAddr::V4(v4), Ok(SocketAddr::V6(_))) => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            _ => to,
        };
        match listener.socket.send_to(bytes, to) {
            Ok(n) => self.traffic.bytes_sent += n as u64,
            Err(e) => log::debug!("MQTT-SN listener {index}: datagram to {to} dropped: {e}"),
        }
    }

    /// Step 4 for the gateways: their timers.
    pub(super) fn gateway_timers(&mut self) {
        let now = self.now;
        for index in 0..self.sn.len() {
            let Some(listener) = self.sn.get_mut(index) else {
                continue;
            };
            if listener.gateway.next_deadline().is_some_and(|d| d <= now) {
                if let Some(t) = self.trace.as_mut() {
                    let event = crate::trace::Event::Timer {
                        timer: "gateway",
                        conn: None,
                        listener: Some(listener.gateway.listener().0),
                        bridge: None,
                    };
                    t.record(now, &event);
                }
                listener.gateway.tick(now);
            }
            if let Some(dtls) = listener.dtls.as_mut() {
                if dtls.next_deadline().is_some_and(|d| d <= now) {
                    dtls.tick(now);
                    self.dtls_outputs(index);
                }
            }
        }
        self.pump_gateways();
    }

    pub(super) fn gateway_deadline(&self) -> Option<Millis> {
        let gateways = self.sn.iter().filter_map(|l| l.gateway.next_deadline());
        let dtls = self
            .sn
            .iter()
            .filter_map(|l| l.dtls.as_ref().and_then(DtlsServer::next_deadline));
        gateways.chain(dtls).min()
    }
}

/// The number a trace gives the peer at `addr`: its rank among the peers heard from, from 1;
/// 0 for the multicast group (`None`) and for peers past [`TRACE_PEERS_MAX`].
fn trace_peer(peers: &mut BTreeMap<SocketAddr, u64>, addr: Option<SocketAddr>) -> u64 {
    let Some(addr) = addr else {
        return 0;
    };
    if let Some(n) = peers.get(&addr) {
        return *n;
    }
    if peers.len() >= TRACE_PEERS_MAX {
        return 0;
    }
    let n = peers.len() as u64 + 1;
    peers.insert(addr, n);
    n
}
