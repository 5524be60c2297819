//! The outbound half of a connection's life: queueing encoded packets, writing them out,
//! keeping the registered interest in step, and the deferred close at the end of a turn.
//!
//! Owns the backpressure bounds' enforcement on the write side. It must never read from a
//! socket, and never remove a connection anywhere but in [`Reactor::close_finished`], so a
//! slab key cannot be reused while events for it may still be in the current batch.

use std::io;

use mio::{Interest, Token};
use slab::Slab;

use super::conn::{out_hard_max, BufferPool, CloseReason, Conn, ConnState, OUT_BUFFER_SOFT_MAX};
use super::Reactor;
use crate::codec::mqtt::{self, Packet};
use crate::engine::event::{ConnId, Input};

/// How long a closing connection may take to flush before it is dropped regardless: a peer
/// that stopped reading must not keep its socket and buffers forever.
const CLOSE_LINGER_MS: u64 = 5_000;

impl Reactor {
    /// Encodes `packet` into the connection's outbound buffer; while fault rules or their
    /// state exist, they have their say first (see `fault`).
    pub(super) fn queue_packet(&mut self, id: ConnId, packet: &Packet) {
        if self.faults_active() {
            return self.queue_with_faults(id, packet);
        }
        self.encode_packet(id, packet);
    }

    /// Encodes `packet` into the connection's outbound buffer.
    pub(super) fn encode_packet(&mut self, id: ConnId, packet: &Packet) {
        let Some(key) = self.conn_key_of(id) else {
            log::debug!("{id}: packet for a connection that is gone");
            return;
        };
        let wait = self.must_wait(packet);
        let Some((conn, was_empty)) = output_target(&mut self.conns, &mut self.out_pool, key)
        else {
            return;
        };
        let start = conn.outbound.len();
        mqtt::encode(packet, conn.version(), &mut conn.outbound);
        if let Some(t) = self.trace.as_mut() {
            let bytes = conn.outbound.get(start..).unwrap_or_default();
            let event = crate::trace::Event::PacketOut {
                conn: id,
                packet,
                bytes,
            };
            t.record(self.now, &event);
        }
        self.output_queued(key, was_empty, wait);
    }

    /// Appends bytes already encoded (HTTP answers and requests, delayed packets) to the
    /// output of connection `key`, as [`Reactor::encode_packet`] appends a packet; `wait`
    /// holds them for the store's flush.
    pub(super) fn queue_bytes(&mut self, key: usize, bytes: &[u8], wait: bool) {
        let Some((conn, was_empty)) = output_target(&mut self.conns, &mut self.out_pool, key)
        else {
            return;
        };
        conn.outbound.extend_from_slice(bytes);
        self.output_queued(key, was_empty, wait);
    }

    /// After bytes were appended to the output of connection `key` (empty before when
    /// `was_empty`): holds it for the store's flush when `wait`, closes it past the output
    /// bound, and puts it in the flush queue.
    pub(super) fn output_queued(&mut self, key: usize, was_empty: bool, wait: bool) {
        let hard_max = out_hard_max(self.limits.packet_size_max());
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if wait && !conn.held {
            conn.held = true;
            self.held.push(key);
            self.held_since.get_or_insert(self.now);
        }
        if conn.outbound.len() > hard_max {
            log::warn!(
                "{} {}: closing: {} bytes queued and the peer is not reading",
                conn.id,
                conn.peer,
                conn.outbound.len()
            );
            conn.break_off(CloseReason::OutputOverflow);
            self.close_queue.push(key);
            return;
        }
        // A connection with output is either waiting for writability or in the flush queue.
        if was_empty && !conn.outbound.is_empty() && !conn.write_blocked {
            self.flush_queue.push(key);
        }
    }

    /// A writable (or error) event: the next flush may make progress.
    pub(super) fn writable(&mut self, key: usize) {
        if self.conns.get(key).is_some_and(|c| c.bridge.is_some()) {
            self.bridge_conn_progress(key);
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.write_blocked = false;
            if !conn.outbound.is_empty() || conn.transport.wants_write() {
                self.flush_queue.push(key);
            }
        }
    }

    /// Step (f): writes every connection in the flush queue, in key order.
    pub(super) fn flush_all(&mut self) {
        let mut keys = std::mem::take(&mut self.flush_queue);
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            self.flush_conn(key);
        }
    }

    fn flush_conn(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if matches!(conn.state, ConnState::Broken { .. }) || conn.held {
            return;
        }
        let mut written = 0;
        // The transport's own bytes (handshake answers, records, frames) go first.
        let result = conn.transport.flush().and_then(|()| loop {
            if written == conn.outbound.len() {
                break Ok(());
            }
            match conn.transport.write(&conn.outbound[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) => break Err(e),
            }
        });
        conn.outbound.drain(..written);
        self.out_pool.give(&mut conn.outbound);
        self.traffic.bytes_sent += written as u64;
        match result {
            Ok(()) => conn.write_blocked = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.write_blocked = true,
            Err(e) => {
                self.io_failed(key, "write", &e);
                return;
            }
        }
        if conn.read_paused && conn.outbound.len() <= OUT_BUFFER_SOFT_MAX {
            // Edge-triggered readiness will not repeat what we left unread: read it now.
            conn.read_paused = false;
            self.read_queue.push(key);
        }
        self.update_interest(key);
    }

    /// Registers WRITABLE exactly while output is pending; touches the poller only on change.
    fn update_interest(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let want = !conn.outbound.is_empty() || conn.transport.wants_write();
        if want == conn.want_writable {
            return;
        }
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let token = Token(self.conn_base + key);
        match self
            .poll
            .registry()
            .reregister(&mut conn.transport, token, interest)
        {
            Ok(()) => conn.want_writable = want,
            Err(e) => self.io_failed(key, "register", &e),
        }
    }

    /// Step (g): removes closing connections that are flushed, overdue or broken, and tells
    /// the engine about each. Repeats while the engine's answers break further connections.
    pub(super) fn close_finished(&mut self) {
        loop {
            let mut keys = std::mem::take(&mut self.close_queue);
            keys.sort_unstable();
            keys.dedup();
            let mut removed = 0;
            for key in keys {
                if self.close_due(key) {
                    self.remove_conn(key);
                    removed += 1;
                } else if self.conns.contains(key) {
                    self.close_queue.push(key);
                }
            }
            if removed == 0 {
                return;
            }
        }
    }

    fn close_due(&self, key: usize) -> bool {
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        match conn.state {
            ConnState::Open => false,
            ConnState::Broken { .. } => true,
            ConnState::Closing { since, .. } => {
                (conn.outbound.is_empty()
                    && !conn.transport.wants_write()
                    && !self.faults.holds(conn.id))
                    || self.now.since(since) >= CLOSE_LINGER_MS
                    || self.grace_over()
            }
        }
    }

    fn remove_conn(&mut self, key: usize) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        // One non-blocking try at what the transport still owes the peer (a TLS alert, an
        // HTTP refusal) and at its goodbye; a peer that cannot take them sees the TCP close.
        let _ = conn.transport.flush();
        conn.transport.close();
        if let Err(e) = self.poll.registry().deregister(&mut conn.transport) {
            log::debug!("{} {}: deregister failed: {e}", conn.id, conn.peer);
        }
        self.by_id.remove(&conn.id);
        self.conn_ids.release(conn.id);
        if let Some(listener) = self.listener_of(conn.listener) {
            listener.active = listener.active.saturating_sub(1);
        }
        if conn.admitted {
            self.admission.closed();
        }
        let reason = conn.close_reason();
        log::debug!("{} {}: closed: {reason}", conn.id, conn.peer);
        let id = conn.id;
        let http = conn.http.is_some();
        let bridge = conn.bridge;
        // Dropping the connection closes the socket and frees its buffers.
        drop(conn);
        if let Some(link) = bridge {
            self.bridge_conn_closed(link, id, reason);
        } else if http {
            self.http_keys.remove(&key);
        } else {
            if let Some(t) = self.trace.as_mut() {
                t.record(self.now, &crate::trace::Event::Closed { conn: id, reason });
            }
            self.feed(Input::Closed { conn: id, reason });
        }
    }
}

/// Connection `key` ready to take output, and whether its output was empty; `None` when it
/// is gone or broken. A connection without an output buffer takes one from the pool.
fn output_target<'a>(
    conns: &'a mut Slab<Conn>,
    pool: &mut BufferPool,
    key: usize,
) -> Option<(&'a mut Conn, bool)> {
    let conn = conns.get_mut(key)?;
    if matches!(conn.state, ConnState::Broken { .. }) {
        return None;
    }
    if conn.outbound.capacity() == 0 {
        conn.outbound = pool.take();
    }
    let was_empty = conn.outbound.is_empty();
    Some((conn, was_empty))
}
