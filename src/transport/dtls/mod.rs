//! DTLS 1.2 for MQTT-SN listeners: one [`DtlsServer`] per listener holds the stateless cookie
//! gate and the bounded table of per-peer associations, driven without I/O.
//!
//! The server owns no socket and reads no clock. The reactor hands it each datagram with the
//! time, sends what [`DtlsServer::poll_transmit`] returns, and calls [`DtlsServer::tick`] when
//! [`DtlsServer::next_deadline`] is reached. It must never log (it reports [`DtlsEvent`]s),
//! never panic on a datagram, and never keep state for a peer that has not returned a valid
//! cookie: a ClientHello without one is answered from the gate, anything else from an unknown
//! address is dropped.
//!
//! How the reactor drives it, after every mutation draining the outputs (the engine's rule):
//!
//! ```text
//! // a datagram arrived on the listener's socket
//! for payload in dtls.receive(now, from, &buf[..n]) { gateway.handle(now, from, &payload) }
//! // the gateway wants to send MQTT-SN bytes to a peer
//! dtls.send(now, to, &bytes)?;
//! // the listener's timer fired
//! dtls.tick(now);
//! // then, every time
//! while let Some((to, datagram)) = dtls.poll_transmit() { socket.send_to(&datagram, to) }
//! while let Some(event) = dtls.poll_event() { log it; tell the gateway of Closed peers }
//! arm the listener's timer at dtls.next_deadline()
//! ```
//!
//! Peer life cycle:
//!
//! | state        | entered by                          | left by                                |
//! |--------------|-------------------------------------|----------------------------------------|
//! | (none)       | start; any removal                  | ClientHello with a valid cookie        |
//! | handshaking  | valid cookie, table not full        | handshake done / failed / timed out    |
//! | established  | handshake done (`Established`)      | close_notify, restart, idle (`Closed`) |
//!
//! The gate's HelloVerifyRequest is the only cookie round a client sees. The crate always
//! runs its own cookie exchange, so a new association is shown the client's first
//! ClientHello (rebuilt from the one carrying the cookie) and is made to draw the gate's
//! cookie as its own (`DtlsConfig::handshake_for`); the HelloVerifyRequest it then produces is
//! dropped, and the real ClientHello answers it. Per-peer state therefore exists only for
//! addresses that received the gate's reply, and is bounded by `max_peers`; a half-open peer
//! is dropped after `handshake_timeout_ms`, an established one after `idle_timeout_ms`.
//!
//! A ClientHello with a valid cookie from an established peer (a client that restarted)
//! replaces its association; one without a valid cookie gets a HelloVerifyRequest and leaves
//! the association alone. A record an established association cannot use is dropped, never
//! answered: anyone can forge the peer's address.
//!
//! The client side of one association to a gateway is [`DtlsClient`] (in [`client`]).
//!
//! The crate itself logs through `log` under the target `rtc_dtls` (debug and warn); the
//! reactor's logger decides what of it is shown.

pub mod client;
mod config;
mod cookie;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtc_dtls::endpoint::{Endpoint, EndpointEvent};

pub use client::{ClientCredentials, DtlsClient};
pub use config::{
    certificate_config, dtls_config, parse_psk_file, psk_config, DtlsConfig, ReadFile,
    DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS,
};

use crate::clock::{Clock, Millis};
use cookie::CookieGate;

/// Largest application payload sent in one record (RFC 6347 4.1: 2^14 bytes of plaintext).
pub const RECORD_PAYLOAD_MAX: usize = 16 * 1024;

/// What happened to a peer, for the reactor to log and pass on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed: application data flows both ways.
    Established { peer: SocketAddr },
    /// An established association ended; the gateway should forget the peer.
    Closed { peer: SocketAddr, reason: String },
    /// A peer that proved its address was not let in: its handshake failed or timed out, or
    /// the table was full.
    Refused { peer: SocketAddr, reason: String },
}

/// Counts of datagrams the server turned away without creating state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateCounters {
    /// HelloVerifyRequests sent by the gate.
    pub hello_verify_requests: u64,
    /// Datagrams dropped: badly framed, not a ClientHello from an unknown address, a
    /// ClientHello the gate could not use, or a record an established association rejected.
    pub dropped: u64,
}

/// One association the crate holds, as the server tracks it.
#[derive(Debug)]
struct Peer {
    established: bool,
    /// When the peer's valid cookie arrived.
    since: Millis,
    /// When the last authenticated datagram (or handshake progress) arrived.
    last_heard: Millis,
    /// The crate's retransmission timer, if armed.
    retransmit_at: Option<Millis>,
}

/// The DTLS server side of one MQTT-SN listener.
pub struct DtlsServer {
    config: DtlsConfig,
    gate: CookieGate,
    endpoint: Endpoint,
    peers: BTreeMap<SocketAddr, Peer>,
    max_peers: usize,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<DtlsEvent>,
    counters: GateCounters,
    /// Culex time 0 as an `Instant`, which is what the crate counts in.
    origin: Instant,
}

impl std::fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsServer")
            .field("peers", &self.peers)
            .field("max_peers", &self.max_peers)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl DtlsServer {
    /// A server for one listener. `seed` keys the cookie hash (from the broker's seeded
    /// source); `max_peers` bounds the associations, half-open ones included.
    pub fn new(config: DtlsConfig, seed: u64, max_peers: usize) -> io::Result<Self> {
        let gate = CookieGate::new(seed, config.crypto()).map_err(io::Error::other)?;
        let endpoint = Endpoint::new(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            Default::default(),
            None,
        );
        Ok(Self {
            config,
            gate,
            endpoint,
            peers: BTreeMap::new(),
            max_peers,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: GateCounters::default(),
            origin: instant_origin(),
        })
    }

    /// A datagram from `from`. Returns the application data it carried (MQTT-SN bytes), in
    /// order; replies are queued for [`Self::poll_transmit`].
    pub fn receive(&mut self, now: Millis, from: SocketAddr, datagram: &[u8]) -> Vec<Vec<u8>> {
        if !cookie::well_framed(datagram) {
            self.counters.dropped += 1;
            return Vec::new();
        }
        let established = self.peers.get(&from).map(|p| p.established);
        if let Some(hello) = cookie::client_hello(datagram) {
            if !self.gate.valid(now, from, &hello) {
                let reply = self.gate.hello_verify_request(now, from, &hello);
                self.counters.hello_verify_requests += 1;
                self.transmits.push_back((from, reply));
                return Vec::new();
            }
            match established {
                // A retransmitted ClientHello of a handshake in progress.
                Some(false) => {}
                Some(true) => {
                    // The client lost its association (a restart) and proved its address
                    // again: the old keys are of no use to it.
                    self.remove(now, from, false);
                    self.events.push_back(DtlsEvent::Closed {
                        peer: from,
                        reason: "the client started a new handshake".to_owned(),
                    });
                    return self.admit(now, from, &hello, datagram);
                }
                None => return self.admit(now, from, &hello, datagram),
            }
        } else if established.is_none() {
            self.counters.dropped += 1;
            return Vec::new();
        }
        self.feed(now, from, datagram)
    }

    /// Creates the association of a peer whose ClientHello carried a valid cookie.
    fn admit(
        &mut self,
        now: Millis,
        from: SocketAddr,
        hello: &cookie::ClientHello<'_>,
        datagram: &[u8],
    ) -> Vec<Vec<u8>> {
        // The crate can only take up a handshake whose cookie round was the first one.
        if hello.message_seq != 1 {
            self.counters.dropped += 1;
            return Vec::new();
        }
        if self.peers.len() >= self.max_peers {
            self.events.push_back(DtlsEvent::Refused {
                peer: from,
                reason: format!("too many DTLS peers (max {})", self.max_peers),
            });
            return Vec::new();
        }
        let handshake = match self.config.handshake_for(hello.cookie) {
            Ok(h) => h,
            Err(reason) => {
                self.events
                    .push_back(DtlsEvent::Refused { peer: from, reason });
                return Vec::new();
            }
        };
        self.endpoint.set_server_config(Some(handshake));
        self.peers.insert(
            from,
            Peer {
                established: false,
                since: now,
                last_heard: now,
                retransmit_at: None,
            },
        );
        // The crate first sees the ClientHello it would have answered with a
        // HelloVerifyRequest; that answer, already given by the gate, is not sent again.
        self.drain_transmits();
        let first = cookie::first_hello(hello);
        let at = self.instant(now);
        let primed = self.endpoint.read(at, from, None, first.as_slice().into());
        self.endpoint.set_server_config(None);
        while self.endpoint.poll_transmit().is_some() {}
        if let Err(e) = primed {
            self.remove(now, from, false);
            self.events.push_back(DtlsEvent::Refused {
                peer: from,
                reason: e.to_string(),
            });
            return Vec::new();
        }
        self.feed(now, from, datagram)
    }

    /// Hands a datagram to the association of `from`, which exists.
    fn feed(&mut self, now: Millis, from: SocketAddr, datagram: &[u8]) -> Vec<Vec<u8>> {
        let at = self.instant(now);
        let result = self.endpoint.read(at, from, None, datagram.into());
        let mut data = Vec::new();
        let events = match result {
            Ok(events) => events,
            Err(_) if self.established(from) => {
                // The crate answers a record it cannot decrypt under a pre-shared key with a
                // fatal alert, so one datagram with the client's address forged would end
                // the association. The record is dropped and the alert with it; a client
                // that really gave up starts a new handshake, which replaces the
                // association, or goes idle.
                while self.endpoint.poll_transmit().is_some() {}
                self.counters.dropped += 1;
                return data;
            }
            Err(e) => {
                self.drain_transmits();
                self.fail(now, from, e.to_string());
                return data;
            }
        };
        self.drain_transmits();
        let progressed = !events.is_empty();
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    if let Some(peer) = self.peers.get_mut(&from) {
                        peer.established = true;
                    }
                    self.events.push_back(DtlsEvent::Established { peer: from });
                }
                EndpointEvent::ApplicationData(bytes) => data.push(bytes.to_vec()),
                EndpointEvent::PeerClosed => {
                    // The crate has already dropped the association and queued its reply.
                    self.drain_transmits();
                    self.peers.remove(&from);
                    self.events.push_back(DtlsEvent::Closed {
                        peer: from,
                        reason: "closed by the client".to_owned(),
                    });
                }
                _ => {}
            }
        }
        let retransmit_at = self.retransmit_at(from);
        if let Some(peer) = self.peers.get_mut(&from) {
            // Forged records are discarded by the crate without an event; they must not keep
            // an association alive.
            if progressed || !peer.established {
                peer.last_heard = now;
            }
            peer.retransmit_at = retransmit_at;
        }
        data
    }

    /// Ends the association of `peer` after the crate reported `reason`.
    fn fail(&mut self, now: Millis, peer: SocketAddr, reason: String) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let event = if state.established {
            DtlsEvent::Closed { peer, reason }
        } else {
            DtlsEvent::Refused { peer, reason }
        };
        self.remove(now, peer, true);
        self.events.push_back(event);
    }

    /// Drops the association of `peer`; `notify` sends the peer a close_notify.
    fn remove(&mut self, now: Millis, peer: SocketAddr, notify: bool) {
        self.peers.remove(&peer);
        let at = self.instant(now);
        self.drain_transmits();
        let _ = self.endpoint.stop(at, peer);
        if notify {
            self.drain_transmits();
        } else {
            while self.endpoint.poll_transmit().is_some() {}
        }
    }

    /// Encrypts `data` for the established peer `to` and queues the record.
    pub fn send(&mut self, now: Millis, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        if !self.established(to) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no DTLS association with {to}"),
            ));
        }
        if data.len() > RECORD_PAYLOAD_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes do not fit in one DTLS record", data.len()),
            ));
        }
        let at = self.instant(now);
        let result = self.endpoint.write(at, to, data);
        self.drain_transmits();
        result.map_err(|e| io::Error::other(format!("DTLS send to {to}: {e}")))
    }

    /// Ends the association with `peer` at the reactor's request, sending a close_notify.
    /// No event follows. Returns whether there was one.
    pub fn close(&mut self, now: Millis, peer: SocketAddr) -> bool {
        let known = self.peers.contains_key(&peer);
        if known {
            self.remove(now, peer, true);
        }
        known
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// When [`Self::tick`] next has work: a retransmission, a handshake or idle timeout.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.peers.values().map(|p| self.deadline(p)).min()
    }

    fn deadline(&self, peer: &Peer) -> Millis {
        let expiry = if peer.established {
            peer.last_heard
                .saturating_add_ms(self.config.idle_timeout_ms)
        } else {
            peer.since
                .saturating_add_ms(self.config.handshake_timeout_ms)
        };
        peer.retransmit_at.map_or(expiry, |r| r.min(expiry))
    }

    /// Retransmits handshake flights that are due and drops peers that timed out.
    pub fn tick(&mut self, now: Millis) {
        let due: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| self.deadline(p) <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            let Some(peer) = self.peers.get(&addr) else {
                continue;
            };
            if peer.established && now.since(peer.last_heard) >= self.config.idle_timeout_ms {
                self.remove(now, addr, true);
                self.events.push_back(DtlsEvent::Closed {
                    peer: addr,
                    reason: "idle".to_owned(),
                });
                continue;
            }
            if !peer.established && now.since(peer.since) >= self.config.handshake_timeout_ms {
                self.remove(now, addr, false);
                self.events.push_back(DtlsEvent::Refused {
                    peer: addr,
                    reason: "handshake timed out".to_owned(),
                });
                continue;
            }
            let at = self.instant(now);
            let result = self.endpoint.handle_timeout(addr, at);
            self.drain_transmits();
            if let Err(e) = result {
                self.fail(now, addr, format!("handshake failed: {e}"));
                continue;
            }
            let retransmit_at = self.retransmit_at(addr);
            if let Some(peer) = self.peers.get_mut(&addr) {
                peer.retransmit_at = retransmit_at;
            }
        }
    }

    /// Whether `peer` has completed its handshake.
    pub fn established(&self, peer: SocketAddr) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.established)
    }

    /// Associations held, half-open ones included.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// What the gate turned away.
    pub fn counters(&self) -> GateCounters {
        self.counters
    }

    /// The DER of an established peer's certificate (verified when the listener has a CA).
    pub fn peer_certificate(&self, peer: SocketAddr) -> Option<Vec<u8>> {
        if !self.established(peer) {
            return None;
        }
        let state = self.endpoint.get_connection_state(peer)?;
        state.peer_certificates.first().cloned()
    }

    /// The identity an established peer used with a pre-shared key.
    pub fn psk_identity(&self, peer: SocketAddr) -> Option<Vec<u8>> {
        if !self.established(peer) {
            return None;
        }
        let state = self.endpoint.get_connection_state(peer)?;
        (state.is_cipher_suite_psk() && !state.identity_hint.is_empty())
            .then(|| state.identity_hint.clone())
    }

    fn drain_transmits(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmits
                .push_back((t.transport.peer_addr, t.message.to_vec()));
        }
    }

    fn retransmit_at(&self, peer: SocketAddr) -> Option<Millis> {
        let at = self.endpoint.poll_timeout(&peer)?;
        Some(millis_at(self.origin, at))
    }

    fn instant(&self, now: Millis) -> Instant {
        instant_at(self.origin, now)
    }
}

/// The crate's `Instant` for culex time `now`, counted from `origin`.
fn instant_at(origin: Instant, now: Millis) -> Instant {
    // Clamped to a century, far beyond any run, so the addition cannot overflow.
    let ms = now.0.min(100 * 365 * 24 * 3_600_000);
    origin
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(origin)
}

/// Culex time of the crate's `Instant` `at`, counted from `origin`; rounded up, so that a
/// tick at the deadline is never early for the crate.
fn millis_at(origin: Instant, at: Instant) -> Millis {
    let ms = at
        .saturating_duration_since(origin)
        .as_nanos()
        .div_ceil(1_000_000);
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// An arbitrary `Instant` standing for culex time 0. The crate only adds intervals to the
/// times it is given and compares them, so its behaviour depends on culex time alone, and a
/// virtual clock drives it as well as the system one.
fn instant_origin() -> Instant {
    match Clock::system() {
        Clock::System { start, .. } => start,
        // `Clock::system` builds a system clock; this arm is there for the type only.
        Clock::Virtual { .. } => unreachable!("Clock::system returned a virtual clock"),
    }
}

#[cfg(test)]
mod tests;
