//! One connection as the reactor sees it, and the inbound half of its life: reading bytes,
//! cutting them into frames and handing packets to the engine.
//!
//! Owns the per-connection buffers and their bounds. It must never interpret a packet (that
//! is the engine's job) and never buffer more inbound bytes than the frame being assembled
//! plus one read chunk.

use std::io;
use std::mem;
use std::num::NonZeroU32;
use std::rc::Rc;

use mio::Token;

use super::bridge::BridgeLink;
use super::http::HttpConn;
use super::listener::Identity;
use super::Reactor;
use crate::clock::Millis;
use crate::codec::mqtt::{self, DecodeError, ErrorKind, ProtocolVersion};
use crate::engine::event::{ConnId, Input, ListenerId, Peer};
use crate::transport::{ReadOutcome, Transport, READ_CHUNK};

/// Above this many queued outbound bytes a connection is not read until it drains, so a fast
/// publisher is slowed to the pace of its slowest subscriber instead of filling memory.
pub(super) const OUT_BUFFER_SOFT_MAX: usize = 1024 * 1024;

/// Above this many queued outbound bytes the peer is not reading at all; it is dropped.
/// The bound grows with the packet size limit, see [`out_hard_max`].
const OUT_BUFFER_HARD_MAX: usize = 64 * 1024 * 1024;

/// Inbound bytes taken from one connection per loop turn, so one busy peer cannot starve the
/// others; the rest is read next turn.
const READ_BUDGET_PER_TURN: usize = 16 * READ_CHUNK;

/// Packets fed to the engine from one connection per loop turn, for the same reason: small
/// packets are cheap to read but each costs engine work.
const PACKET_BUDGET_PER_TURN: usize = 512;

/// A buffer left with more spare capacity than this once empty is given back to the
/// allocator, so one large packet does not pin memory for the connection's lifetime.
const SPARE_CAPACITY_KEEP: usize = 4 * READ_CHUNK;

/// Why the reactor closes a connection, for the log and the engine (one byte in the
/// connection's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseReason {
    BridgeClosed,
    WebServiceClosed,
    NoCertificateUser,
    BadRemotePacket,
    PeerClosed,
    IoError,
    FaultRule,
    OutputOverflow,
    HttpDone,
    HttpIdle,
    ShuttingDown,
    ClosedByBroker,
}

impl CloseReason {
    pub(super) fn text(self) -> &'static str {
        match self {
            Self::BridgeClosed => "bridge closed",
            Self::WebServiceClosed => "closed by the web service",
            Self::NoCertificateUser => "client certificate without a user name",
            Self::BadRemotePacket => "bad packet from the remote broker",
            Self::PeerClosed => "connection closed by peer",
            Self::IoError => "I/O error",
            Self::FaultRule => "closed by a fault rule",
            Self::OutputOverflow => "output buffer overflow",
            Self::HttpDone => "HTTP connection done",
            Self::HttpIdle => "HTTP keep-alive idle",
            Self::ShuttingDown => "server shutting down",
            Self::ClosedByBroker => "closed by the broker",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnState {
    Open,
    /// No more reads; the queued output is flushed, then the connection is closed.
    Closing {
        since: Millis,
        reason: CloseReason,
    },
    /// The transport failed or the peer is hopeless; closed at the end of the turn unflushed.
    Broken {
        reason: CloseReason,
    },
}

pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) listener: ListenerId,
    pub(super) peer: Peer,
    pub(super) transport: Transport,
    /// `None` until the engine names it; frames then decode as 3.1.1, which CONNECT ignores.
    pub(super) version: Option<ProtocolVersion>,
    /// `None` until the engine names it; the configured limit applies meanwhile.
    pub(super) max_packet: Option<NonZeroU32>,
    pub(super) inbound: Vec<u8>,
    pub(super) outbound: Vec<u8>,
    pub(super) state: ConnState,
    /// False once the input is finished: a decode error, end of stream, or closing.
    pub(super) reading: bool,
    /// Reading stopped because `outbound` passed the soft bound; resumed when it drains.
    pub(super) read_paused: bool,
    /// The last write hit `WouldBlock`; mio reports writability again.
    pub(super) write_blocked: bool,
    /// Whether WRITABLE is part of the registered interest.
    pub(super) want_writable: bool,
    /// The output holds a packet that may leave only once the store has flushed what it
    /// acknowledges: nothing is written until then (later packets wait behind it).
    pub(super) held: bool,
    /// The user name still to take from the client certificate, once the TLS handshake is
    /// done; `Identity::None` when there is none to take (any more).
    pub(super) identity: Identity,
    /// The HTTP state of a connection to an API listener; `None` for MQTT.
    pub(super) http: Option<Box<HttpConn>>,
    /// The bridge of a connection this broker opened to a remote broker.
    pub(super) bridge: Option<BridgeLink>,
    /// Counted in `global_max_connections` (an MQTT connection accepted by a listener).
    pub(super) admitted: bool,
}

impl Conn {
    pub(super) fn new(id: ConnId, listener: ListenerId, peer: Peer, t: Transport) -> Self {
        Self {
            id,
            listener,
            peer,
            transport: t,
            version: None,
            max_packet: None,
            inbound: Vec::new(),
            outbound: Vec::new(),
            state: ConnState::Open,
            reading: true,
            read_paused: false,
            write_blocked: false,
            want_writable: false,
            held: false,
            identity: Identity::None,
            http: None,
            bridge: None,
            admitted: false,
        }
    }

    pub(super) fn version(&self) -> ProtocolVersion {
        self.version.unwrap_or(ProtocolVersion::V311)
    }

    /// Stops reading and queues the close behind the pending output. The first reason wins.
    pub(super) fn start_closing(&mut self, now: Millis, reason: CloseReason) {
        self.reading = false;
        if self.state == ConnState::Open {
            self.state = ConnState::Closing { since: now, reason };
        }
    }

    /// Gives up on the connection: nothing more is read or written, buffers are released.
    pub(super) fn break_off(&mut self, reason: CloseReason) {
        self.reading = false;
        if !matches!(self.state, ConnState::Broken { .. }) {
            self.state = ConnState::Broken { reason };
        }
        self.inbound = Vec::new();
        self.outbound = Vec::new();
    }

    pub(super) fn close_reason(&self) -> &'static str {
        match self.state {
            ConnState::Open => "closed",
            ConnState::Closing { reason, .. } | ConnState::Broken { reason } => reason.text(),
        }
    }
}

/// The outbound bound past which a peer is dropped. It always leaves room for one packet of
/// the largest size the broker accepts on top of the soft bound, so relaying a large but
/// legal message is never mistaken for a peer that stopped reading.
pub(super) fn out_hard_max(packet_size_max: u32) -> usize {
    let largest = usize::try_from(packet_size_max).unwrap_or(usize::MAX);
    OUT_BUFFER_HARD_MAX.max(largest.saturating_add(OUT_BUFFER_SOFT_MAX))
}

/// Gives back the capacity of an emptied buffer that grew past the keep size.
pub(super) fn trim_empty(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > SPARE_CAPACITY_KEEP {
        *buf = Vec::new();
    }
}

/// Output buffers at most this many: enough for the connections written in one turn to hand
/// theirs on, few enough that the pool holds at most 2 MiB.
const POOL_BUFFERS_MAX: usize = 32;

/// Output buffers of connections whose output was all written, for the next connection with
/// output: an idle connection holds no buffer, and a busy one takes a warm buffer each turn
/// instead of allocating one.
#[derive(Default)]
pub(super) struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// A buffer for a connection that has none.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    /// Takes an emptied buffer from its connection; one larger than a connection may keep,
    /// or past the pool's bound, is freed.
    pub(super) fn give(&mut self, buf: &mut Vec<u8>) {
        if !buf.is_empty() || buf.capacity() == 0 {
            return;
        }
        let buf = mem::take(buf);
        if buf.capacity() <= SPARE_CAPACITY_KEEP && self.free.len() < POOL_BUFFERS_MAX {
            self.free.push(buf);
        }
    }
}

/// What the start of an inbound buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Split {
    /// A whole frame of this many bytes.
    Frame(usize),
    /// Not a whole frame yet; up to `room` more bytes may be read.
    Incomplete { room: usize },
    /// The fixed header declares a packet larger than the connection accepts.
    TooLarge,
    /// The fixed header itself is malformed.
    Invalid(DecodeError),
}

/// Looks at the start of `buf`. Pure, so the framing rules can be tested without sockets.
///
/// The read room is what the current frame still lacks plus one read chunk: enough to finish
/// it in one go and to see the next header, never more.
pub(super) fn next_frame(buf: &[u8], max_packet: usize) -> Split {
    match mqtt::probe(buf) {
        Err(e) => Split::Invalid(e),
        Ok(None) => Split::Incomplete { room: READ_CHUNK },
        Ok(Some(frame)) => {
            let total = frame.total_len();
            if total > max_packet {
                Split::TooLarge
            } else if buf.len() >= total {
                Split::Frame(total)
            } else {
                Split::Incomplete {
                    room: total - buf.len() + READ_CHUNK,
                }
            }
        }
    }
}

/// Whether feeding frames waits for the connection's output to drain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pace {
    Backpressure,
    All,
}

const TOO_LARGE: DecodeError = DecodeError {
    kind: ErrorKind::PacketTooLarge,
    clause: "MQTT-3.2.2.3.6",
};

impl Reactor {
    /// The slab key behind a connection token, if that connection still exists.
    pub(super) fn conn_key(&self, token: Token) -> Option<usize> {
        let key = token.0.checked_sub(self.conn_base)?;
        self.conns.contains(key).then_some(key)
    }

    fn max_packet(&self, conn: &Conn) -> usize {
        let limit = conn
            .max_packet
            .map_or_else(|| self.limits.packet_size_max(), NonZeroU32::get);
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Reads what the connection has for us this turn and feeds every whole packet.
    pub(super) fn read_conn(&mut self, key: usize) {
        if self.conns.get(key).is_some_and(|c| c.http.is_some()) {
            return self.read_http(key);
        }
        if self.is_webhook_conn(key) {
            return self.read_webhook(key);
        }
        let mut budget = READ_BUDGET_PER_TURN;
        let mut packets = PACKET_BUDGET_PER_TURN;
        loop {
            // Frames left over from a pause or an earlier turn go first, in order.
            self.feed_frames(key, Pace::Backpressure, &mut packets);
            let max_packet = self.max_packet_of(key);
            if !self.may_read(key, budget > 0 && packets > 0) {
                return;
            }
            let Some(conn) = self.conns.get(key) else {
                return;
            };
            let room = match next_frame(&conn.inbound, max_packet) {
                Split::Incomplete { room } => room.min(budget),
                // Whole frames were fed above; only a stopped connection gets here.
                _ => return,
            };
            let Some((outcome, got)) = self.read_some(key, room) else {
                return;
            };
            budget = budget.saturating_sub(got);
            if self.conns.get(key).is_some_and(|c| c.bridge.is_some()) {
                self.bridge_conn_progress(key);
            }
            let identity = self.conns.get(key).map(|c| c.identity);
            if identity.is_some_and(|i| i != Identity::None) && outcome.is_ok() {
                self.take_identity(key);
            }
            match outcome {
                Ok(ReadOutcome::Full) => {}
                Ok(ReadOutcome::WouldBlock) => {
                    self.feed_frames(key, Pace::Backpressure, &mut packets);
                    if packets == 0 {
                        self.read_queue.push(key);
                    }
                    self.release_idle_buffer(key);
                    return;
                }
                Ok(ReadOutcome::Eof) => {
                    // The peer is gone: what it sent last (often a DISCONNECT) still counts.
                    let mut unlimited = usize::MAX;
                    self.feed_frames(key, Pace::All, &mut unlimited);
                    self.end_of_stream(key);
                    return;
                }
                Err(e) => {
                    self.io_failed(key, "read", &e);
                    return;
                }
            }
        }
    }

    /// Whether the read loop may read from the connection now. It may not once the input
    /// is finished, nor while its output is past the soft bound (reading resumes when that
    /// drains), nor when the turn's budget is used up (`budget_left` false: the connection
    /// is read again next turn).
    pub(super) fn may_read(&mut self, key: usize, budget_left: bool) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if !conn.reading {
            return false;
        }
        if conn.outbound.len() > OUT_BUFFER_SOFT_MAX {
            conn.read_paused = true;
            return false;
        }
        if !budget_left {
            // More may be waiting and mio will not say so again: come back next turn.
            self.read_queue.push(key);
            return false;
        }
        true
    }

    /// One read of at most `room` bytes into the connection's buffer, counted as traffic.
    /// Returns the outcome and the bytes read; `None` when the connection is gone.
    pub(super) fn read_some(
        &mut self,
        key: usize,
        room: usize,
    ) -> Option<(io::Result<ReadOutcome>, usize)> {
        let conn = self.conns.get_mut(key)?;
        let before = conn.inbound.len();
        let outcome = conn.transport.read(&mut conn.inbound, room);
        let got = conn.inbound.len() - before;
        self.traffic.bytes_received += got as u64;
        // A handshake step leaves an answer in the transport for the flush step.
        if conn.transport.wants_write() && !conn.write_blocked {
            self.flush_queue.push(key);
        }
        Some((outcome, got))
    }

    /// A connection waiting for its peer holds no read buffer: most of a broker's
    /// connections are idle most of the time, and the read chunk would otherwise dominate
    /// their memory.
    pub(super) fn release_idle_buffer(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.inbound.is_empty() {
                conn.inbound = Vec::new();
            }
        }
    }

    /// Once the TLS handshake has verified a client certificate, tells the engine the user
    /// name it gives, before any MQTT byte of the connection is fed. A certificate without a
    /// usable name closes the connection: the listener admits clients by certificate only.
    fn take_identity(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(cert) = conn.transport.peer_certificate() else {
            return;
        };
        let name = conn.identity.user_name(cert);
        conn.identity = Identity::None;
        let id = conn.id;
        match name {
            Some(name) => {
                log::debug!("{id} {}: certificate user name {name:?}", conn.peer);
                self.feed(Input::PeerIdentity {
                    conn: id,
                    username: Rc::from(name),
                });
            }
            None => {
                log::info!(
                    "{id} {}: closing: the client certificate names no user",
                    conn.peer
                );
                conn.break_off(CloseReason::NoCertificateUser);
                self.close_queue.push(key);
            }
        }
    }

    fn max_packet_of(&self, key: usize) -> usize {
        self.conns.get(key).map_or(0, |c| self.max_packet(c))
    }

    /// Cuts the inbound buffer into frames and feeds each packet, stopping at the first
    /// decode error, as soon as the engine closes the connection, or (with
    /// [`Pace::Backpressure`]) once the connection's own output passes the soft bound.
    fn feed_frames(&mut self, key: usize, pace: Pace, packets: &mut usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Taken out so the engine's actions may touch this very connection meanwhile.
        let mut inbound = mem::take(&mut conn.inbound);
        let mut used = 0;
        let go_on =
            |c: &&Conn| c.reading && (pace == Pace::All || c.outbound.len() <= OUT_BUFFER_SOFT_MAX);
        while *packets > 0 {
            let Some(conn) = self.conns.get(key).filter(go_on) else {
                break;
            };
            let (id, version) = (conn.id, conn.version());
            let error = match next_frame(&inbound[used..], self.max_packet(conn)) {
                Split::Incomplete { .. } => break,
                Split::Frame(len) => {
                    let frame = &inbound[used..used + len];
                    used += len;
                    match mqtt::decode(frame, version) {
                        Ok(packet) => {
                            *packets -= 1;
                            if let Some(t) = self.trace.as_mut() {
                                let event = crate::trace::Event::PacketIn {
                                    conn: id,
                                    packet: &packet,
                                    bytes: frame,
                                };
                                t.record(self.now, &event);
                            }
                            match conn.bridge {
                                Some(link) => self.bridge_packet(link.slot(), packet),
                                None => self.feed(Input::Packet { conn: id, packet }),
                            }
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                Split::TooLarge => TOO_LARGE,
                Split::Invalid(e) => e,
            };
            log::debug!("{id} {}: cannot decode: {error}", conn.peer);
            if conn.bridge.is_some() {
                // A remote broker that sends garbage: the bridge starts over.
                log::warn!(
                    "{id} {}: bad packet from the remote broker: {error}",
                    conn.peer
                );
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.break_off(CloseReason::BadRemotePacket);
                    self.close_queue.push(key);
                }
                break;
            }
            // The rest of the stream cannot be framed any more; the engine decides the answer
            // and the close.
            self.stop_reading(key);
            self.feed(Input::DecodeError { conn: id, error });
        }
        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.reading) {
            inbound.drain(..used);
            trim_empty(&mut inbound);
            conn.inbound = inbound;
            if conn.outbound.len() > OUT_BUFFER_SOFT_MAX {
                // Whatever is left waits for the flush to drain the output (see flush.rs).
                conn.read_paused = true;
            }
        }
    }

    fn stop_reading(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.reading = false;
        }
    }

    fn end_of_stream(&mut self, key: usize) {
        let now = self.now;
        if let Some(conn) = self.conns.get_mut(key) {
            log::debug!("{} {}: connection closed by peer", conn.id, conn.peer);
            conn.start_closing(now, CloseReason::PeerClosed);
            conn.inbound = Vec::new();
            self.close_queue.push(key);
        }
    }

    /// Closes the connection after an I/O error, unflushed: the socket is no longer usable.
    pub(super) fn io_failed(&mut self, key: usize, op: &str, e: &io::Error) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        log::info!("{} {}: {op} error: {e}", conn.id, conn.peer);
        conn.break_off(CloseReason::IoError);
        self.close_queue.push(key);
        // A bridge learns the real cause (a refused connection, a certificate), not just
        // that its connection is gone.
        if let Some(link) = conn.bridge.as_mut() {
            let slot = link.slot();
            let was_told = link.closed_by_bridge;
            link.closed_by_bridge = true;
            if !was_told {
                let id = conn.id;
                let why = format!("{op} error: {e}");
                self.bridge_conn_failed(slot, id, &why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_warm_buffers_up_to_its_bounds() {
        let mut pool = BufferPool::default();
        let mut busy = vec![1u8; 10];
        pool.give(&mut busy);
        assert_eq!(
            busy.len(),
            10,
            "a buffer with bytes stays with its connection"
        );
        busy.clear();
        pool.give(&mut busy);
        assert_eq!(busy.capacity(), 0);
        assert!(pool.take().capacity() >= 10);
        assert_eq!(
            pool.take().capacity(),
            0,
            "empty pool: a new, unallocated buffer"
        );
        let mut big = Vec::with_capacity(SPARE_CAPACITY_KEEP + 1);
        pool.give(&mut big);
        assert!(pool.free.is_empty(), "too large to keep");
        for _ in 0..POOL_BUFFERS_MAX + 5 {
            pool.give(&mut Vec::with_capacity(8));
        }
        assert_eq!(pool.free.len(), POOL_BUFFERS_MAX);
    }

    /// Every connection carries one: the broker's memory per idle connection rests on it.
    #[test]
    fn a_connection_entry_stays_small() {
        assert!(size_of::<Conn>() <= 144, "{}", size_of::<Conn>());
    }

    const PINGREQ: [u8; 2] = [0xC0, 0x00];

    #[test]
    fn empty_buffer_asks_for_one_chunk() {
        assert_eq!(
            next_frame(&[], 1000),
            Split::Incomplete { room: READ_CHUNK }
        );
    }

    #[test]
    fn whole_frame_is_found() {
        assert_eq!(next_frame(&PINGREQ, 1000), Split::Frame(2));
        let mut two = PINGREQ.to_vec();
        two.extend_from_slice(&PINGREQ);
        assert_eq!(next_frame(&two, 1000), Split::Frame(2));
    }

    #[test]
    fn partial_frame_asks_for_the_rest_plus_a_chunk() {
        // PUBLISH, remaining length 10, only 3 body bytes present.
        let buf = [0x30, 10, 0, 1, b'a'];
        assert_eq!(
            next_frame(&buf, 1000),
            Split::Incomplete {
                room: 12 - 5 + READ_CHUNK
            }
        );
    }

    #[test]
    fn frame_larger_than_the_limit_is_refused_before_buffering() {
        // Remaining length 200 (0xC8 0x01): 203 bytes in total.
        let buf = [0x30, 0xC8, 0x01];
        assert_eq!(next_frame(&buf, 202), Split::TooLarge);
        assert!(matches!(next_frame(&buf, 203), Split::Incomplete { .. }));
    }

    #[test]
    fn malformed_remaining_length_is_invalid() {
        let buf = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert!(matches!(next_frame(&buf, usize::MAX), Split::Invalid(_)));
    }

    #[test]
    fn hard_bound_leaves_room_for_the_largest_packet() {
        assert_eq!(out_hard_max(1000), OUT_BUFFER_HARD_MAX);
        let big = 200 * 1024 * 1024;
        assert_eq!(out_hard_max(big), big as usize + OUT_BUFFER_SOFT_MAX);
    }

    #[test]
    fn trim_releases_only_large_empty_buffers() {
        let mut small = Vec::with_capacity(16);
        trim_empty(&mut small);
        assert_eq!(small.capacity(), 16);
        let mut big = Vec::with_capacity(SPARE_CAPACITY_KEEP + 1);
        trim_empty(&mut big);
        assert_eq!(big.capacity(), 0);
        let mut full = vec![1u8; SPARE_CAPACITY_KEEP + 1];
        trim_empty(&mut full);
        assert_eq!(full.len(), SPARE_CAPACITY_KEEP + 1);
    }
}
