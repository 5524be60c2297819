//! MQTT-SN bridges in the loop: the UDP socket of each (and, for gateway discovery, a socket
//! joined to the multicast group), datagrams in and out, and the gateway address in use.
//!
//! Owns those sockets and, for a bridge with DTLS, its association with the gateway (the
//! discovery datagrams on the group stay in the clear). It must never interpret an MQTT-SN
//! message (the bridge does) and never queue datagrams beyond the turn: they are sent after
//! the turn's commit, like the gateway's, so an acknowledgement never leaves before what it
//! acknowledges is stored.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::udp::{bind_udp, join_group, set_ttl};
use super::Reactor;
use crate::clock::Millis;
use crate::transport::dtls::{ClientCredentials, DtlsClient};

/// Datagrams read from one bridge socket per turn; the rest wait for the next turn.
const DATAGRAMS_PER_TURN: usize = 256;

/// Tokens per bridge slot: its socket and its group socket.
pub(super) const TOKENS_PER_BRIDGE: usize = 2;

/// The sockets of one MQTT-SN bridge.
pub(super) struct SnSockets {
    socket: UdpSocket,
    group_socket: Option<UdpSocket>,
    group: Option<SocketAddr>,
    /// Where datagrams for the gateway go: the configured address, or the one found.
    gateway: Option<SocketAddr>,
    /// The source of the datagram being handed to the bridge.
    source: Option<SocketAddr>,
    /// DTLS to the gateway: the credentials, and the association once the gateway is known.
    credentials: Option<ClientCredentials>,
    dtls: Option<DtlsClient>,
    seed: u64,
}

impl SnSockets {
    /// Binds the bridge's socket (any port, the family of the gateway or group) and, for
    /// discovery, joins the group; registers them under `token` and `token + 1`.
    pub(super) fn open(
        gateway: Option<SocketAddr>,
        group: Option<SocketAddr>,
        credentials: Option<ClientCredentials>,
        seed: u64,
        registry: &mio::Registry,
        token: usize,
    ) -> io::Result<Self> {
        let v6 = gateway.or(group).is_some_and(|a| a.is_ipv6());
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let mut socket = bind_udp(SocketAddr::new(any, 0), false)?;
        registry.register(&mut socket, Token(token), Interest::READABLE)?;
        let mut group_socket = None;
        if let Some(group) = group {
            set_ttl(&socket, group, 1)?;
            let mut s = join_group(group, None, 1)?;
            registry.register(&mut s, Token(token + 1), Interest::READABLE)?;
            group_socket = Some(s);
        }
        Ok(Self {
            socket,
            group_socket,
            group,
            gateway,
            source: None,
            credentials,
            dtls: None,
            seed,
        })
    }

    /// The DTLS association with the gateway, started when first needed.
    fn dtls(&mut self, now: Millis) -> Option<&mut DtlsClient> {
        let (Some(credentials), Some(gateway)) = (self.credentials.as_ref(), self.gateway) else {
            return None;
        };
        if self.dtls.is_none() {
            self.seed = self.seed.wrapping_add(1);
            match DtlsClient::new(credentials, gateway, now, self.seed) {
                Ok(c) => self.dtls = Some(c),
                Err(e) => {
                    log::warn!("DTLS to the MQTT-SN gateway {gateway}: {e}");
                    return None;
                }
            }
        }
        self.dtls.as_mut()
    }

    /// The datagrams the DTLS association has for the wire.
    fn drain_dtls(&mut self, out: &mut Vec<Vec<u8>>) {
        if let Some(d) = self.dtls.as_mut() {
            while let Some(datagram) = d.poll_transmit() {
                out.push(datagram);
            }
            if let Some(why) = d.take_failure() {
                log::warn!("DTLS to the MQTT-SN gateway: {why}");
                // A new association starts with the next message.
                self.dtls = None;
            }
        }
    }

    pub(super) fn dtls_deadline(&self) -> Option<Millis> {
        self.dtls.as_ref().and_then(DtlsClient::next_deadline)
    }

    pub(super) fn close(&mut self, registry: &mio::Registry) {
        let _ = registry.deregister(&mut self.socket);
        if let Some(s) = self.group_socket.as_mut() {
            let _ = registry.deregister(s);
        }
    }
}

impl Reactor {
    /// The bridge slot and socket behind `token`, if it is a bridge socket's.
    pub(super) fn bridge_udp_token(&self, token: Token) -> Option<(usize, bool)> {
        let offset = token.0.checked_sub(self.bridge_udp_base)?;
        let slot = offset / TOKENS_PER_BRIDGE;
        (token.0 < self.conn_base).then_some((slot, offset % TOKENS_PER_BRIDGE == 1))
    }

    /// The token of a bridge slot's socket.
    pub(super) fn bridge_udp_token_of(&self, slot: usize) -> usize {
        self.bridge_udp_base + slot * TOKENS_PER_BRIDGE
    }

    /// Reads the datagrams of a bridge socket and hands each to its bridge.
    pub(super) fn read_bridge_datagrams(&mut self, slot: usize, group: bool) {
        let mut buf = std::mem::take(&mut self.udp_buf);
        buf.resize(65_535, 0);
        for _ in 0..DATAGRAMS_PER_TURN {
            let Some(sockets) = self.bridges.get(slot).and_then(|s| s.udp.as_ref()) else {
                // The bridge is gone: nothing more to read.
                self.udp_buf = buf;
                return;
            };
            let socket = if group {
                match sockets.group_socket.as_ref() {
                    Some(s) => s,
                    None => {
                        self.udp_buf = buf;
                        return;
                    }
                }
            } else {
                &sockets.socket
            };
            let (len, from) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.udp_buf = buf;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("bridge socket read error: {e}");
                    self.udp_buf = buf;
                    return;
                }
            };
            self.traffic.bytes_received += len as u64;
            let now = self.now;
            let Some(s) = self.bridges.get_mut(slot) else {
                self.udp_buf = buf;
                return;
            };
            let from = SocketAddr::new(from.ip().to_canonical(), from.port());
            let from_gateway = s.udp.as_ref().and_then(|u| u.gateway) == Some(from);
            if let Some(u) = s.udp.as_mut() {
                u.source = Some(from);
            }
            if s.link.wants_local_id() {
                s.link.set_local_id(self.conn_ids.alloc());
            }
            let bytes = buf.get(..len).unwrap_or_default();
            let secured = !group && from_gateway;
            let decrypted = match s.udp.as_mut().filter(|u| u.credentials.is_some()) {
                Some(u) if secured => {
                    let data = u
                        .dtls(now)
                        .map(|d| d.receive(now, bytes))
                        .unwrap_or_default();
                    let mut wire = Vec::new();
                    u.drain_dtls(&mut wire);
                    if let Some(to) = u.gateway {
                        self.bridge_datagrams
                            .extend(wire.into_iter().map(|d| (slot, to, d)));
                    }
                    Some(data)
                }
                _ => None,
            };
            match decrypted {
                Some(messages) => {
                    for m in messages {
                        s.link.datagram(now, true, &m);
                    }
                }
                None => s.link.datagram(now, from_gateway, bytes),
            }
            self.bridge_dirty.push(slot);
            self.pump_bridges();
        }
        // More may be waiting and mio will not say so again.
        self.bridge_udp_again.push((slot, group));
        self.udp_buf = buf;
    }

    /// A datagram of a bridge for its gateway, or for its discovery group.
    pub(super) fn bridge_datagram(&mut self, slot: usize, to_group: bool, bytes: Vec<u8>) {
        let Some(u) = self.bridges.get(slot).and_then(|s| s.udp.as_ref()) else {
            return;
        };
        let to = if to_group { u.group } else { u.gateway };
        let Some(to) = to else {
            return;
        };
        // Sent after the turn's commit; an acknowledgement in it waits for the flush.
        self.flush_now |= self.holds_acknowledgements;
        let secured = !to_group && u.credentials.is_some();
        if !secured {
            self.bridge_datagrams.push((slot, to, bytes));
            return;
        }
        let now = self.now;
        let Some(u) = self.bridges.get_mut(slot).and_then(|s| s.udp.as_mut()) else {
            return;
        };
        if let Some(d) = u.dtls(now) {
            if let Err(e) = d.send(now, &bytes) {
                log::debug!("DTLS to the MQTT-SN gateway {to}: {e}");
            }
        }
        let mut wire = Vec::new();
        u.drain_dtls(&mut wire);
        self.bridge_datagrams
            .extend(wire.into_iter().map(|d| (slot, to, d)));
    }

    /// Retransmissions of the bridges' DTLS handshakes.
    pub(super) fn bridge_dtls_timers(&mut self) {
        let now = self.now;
        for (slot, s) in self.bridges.iter_mut() {
            let Some(u) = s.udp.as_mut() else {
                continue;
            };
            if u.dtls_deadline().is_some_and(|d| d <= now) {
                if let Some(d) = u.dtls.as_mut() {
                    d.tick(now);
                }
                let mut wire = Vec::new();
                u.drain_dtls(&mut wire);
                if let Some(to) = u.gateway {
                    self.bridge_datagrams
                        .extend(wire.into_iter().map(|d| (slot, to, d)));
                }
            }
        }
    }

    /// The gateway of a bridge is now the source of the datagram being handled.
    pub(super) fn bridge_use_source(&mut self, slot: usize) {
        if let Some(u) = self.bridges.get_mut(slot).and_then(|s| s.udp.as_mut()) {
            if u.gateway != u.source {
                // An association belongs to one gateway.
                u.dtls = None;
            }
            u.gateway = u.source;
            if let Some(gw) = u.gateway {
                log::info!("bridge slot {slot}: MQTT-SN gateway at {gw}");
            }
        }
    }

    /// Step 7 for the bridges' datagrams.
    pub(super) fn send_bridge_datagrams(&mut self) {
        for (slot, to, bytes) in std::mem::take(&mut self.bridge_datagrams) {
            let Some(u) = self.bridges.get(slot).and_then(|s| s.udp.as_ref()) else {
                continue;
            };
            match u.socket.send_to(&bytes, to) {
                Ok(n) => self.traffic.bytes_sent += n as u64,
                // UDP may drop it anyway; the bridge's retries recover.
                Err(e) => log::debug!("bridge datagram to {to} not sent: {e}"),
            }
        }
    }

    /// Gives every datagram bridge waiting for one the id of its next local session.
    pub(super) fn hand_out_local_ids(&mut self) {
        for (_, s) in self.bridges.iter_mut() {
            if s.link.wants_local_id() {
                s.link.set_local_id(self.conn_ids.alloc());
            }
        }
    }
}
