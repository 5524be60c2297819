//! Fault injection on the reactor's side: what the rules of [`crate::fault`] (held by the
//! engine) do to the bytes of MQTT connections over TCP and WebSockets. Outgoing packets are
//! dropped, delayed, duplicated or followed by an abrupt close, and new connections are
//! refused at accept.
//!
//! Owns the delayed packets (with their deadlines, released in step 4 of the turn) and the
//! connections cut by a `close_after` rule. It must never decide anything about MQTT (the
//! engine answers PUBLISHes and CONNECTs), and costs one emptiness check per packet while no
//! rule and no delayed packet exists.
//!
//! Order is kept as TCP would keep it: once a packet of a connection is delayed, every
//! later packet of that connection waits behind it. Delayed bytes are bounded per
//! connection by [`DELAYED_BYTES_MAX`]; past it, the delay is cut short and everything held
//! for the connection is queued for writing at once (logged with the peer). A closing
//! connection waits for its delayed packets, at most the close linger of `flush`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::conn::{CloseReason, OUT_BUFFER_SOFT_MAX};
use super::Reactor;
use crate::clock::Millis;
use crate::codec::mqtt::{self, Packet, QoS};
use crate::engine::event::{ConnId, ListenerId};
use crate::fault::Outgoing;

/// Bytes of delayed packets one connection may hold; past it, they go at once.
pub(super) const DELAYED_BYTES_MAX: usize = OUT_BUFFER_SOFT_MAX;

/// The state fault rules left on connections.
#[derive(Debug, Default)]
pub(super) struct FaultState {
    conns: BTreeMap<ConnId, ConnFaults>,
}

#[derive(Debug, Default)]
struct ConnFaults {
    /// Encoded packets waiting for their time, in order; deadlines never decrease.
    delayed: VecDeque<Delayed>,
    /// The bytes in `delayed`.
    bytes: usize,
    /// A `close_after` rule closed the connection: nothing more is written to it.
    cut: bool,
}

#[derive(Debug)]
struct Delayed {
    due: Millis,
    bytes: Vec<u8>,
    /// The packet must wait for the store's flush (see `Reactor::must_wait`).
    wait: bool,
}

impl FaultState {
    pub(super) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether packets of `id` wait for their time.
    pub(super) fn holds(&self, id: ConnId) -> bool {
        !self.conns.is_empty() && self.conns.get(&id).is_some_and(|c| !c.delayed.is_empty())
    }

    /// When the first delayed packet is due.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.conns
            .values()
            .filter_map(|c| c.delayed.front().map(|d| d.due))
            .min()
    }
}

impl Reactor {
    /// Whether a fault rule or a connection's fault state exists (the hot path's one check).
    pub(super) fn faults_active(&self) -> bool {
        !(self.engine.faults().is_empty() && self.faults.is_empty())
    }

    /// [`Reactor::queue_packet`] while faults are active: the rules decide whether the
    /// packet is written, when, how many times, and whether the connection closes after it.
    pub(super) fn queue_with_faults(&mut self, id: ConnId, packet: &Packet) {
        let Some(conn) = self.conn_key_of(id).and_then(|key| self.conns.get(key)) else {
            return self.encode_packet(id, packet);
        };
        if conn.bridge.is_some() {
            // The broker's own connections to remote brokers are not the clients under test.
            return self.encode_packet(id, packet);
        }
        let peer = conn.peer.clone();
        if self.faults.conns.get(&id).is_some_and(|c| c.cut) {
            log::debug!(
                "{id} {peer}: {} not sent: closed by a fault rule",
                packet.name()
            );
            return;
        }
        let out = if self.engine.faults().is_empty() {
            Outgoing::default()
        } else {
            self.engine.fault_outgoing(self.now, id)
        };
        let name = packet.name();
        if let Some(rule) = out.drop {
            log::info!("{id} {peer}: {name} dropped ({rule})");
            self.trace_fault(id, "drop", name);
        } else {
            if let Some((rule, until)) = out.delay {
                log::info!("{id} {peer}: {name} delayed until {} ms ({rule})", until.0);
            }
            self.send_or_delay(id, packet, out.delay.map(|(_, until)| until));
            if let Some(rule) = out.duplicate {
                log::info!("{id} {peer}: {name} sent twice ({rule})");
                self.send_or_delay(id, &duplicate_of(packet), out.delay.map(|(_, t)| t));
            }
        }
        if let Some(rule) = out.close {
            log::info!("{id} {peer}: closing without DISCONNECT after {name} ({rule})");
            self.trace_fault(id, "close_after", name);
            self.cut(id);
        }
    }

    fn trace_fault(&mut self, conn: ConnId, fault: &'static str, packet: &'static str) {
        self.trace(&crate::trace::Event::Fault {
            conn,
            fault,
            packet,
        });
    }

    /// Writes the packet now, or keeps it until `until` or until the packets delayed before
    /// it on the connection are due, whichever is later.
    fn send_or_delay(&mut self, id: ConnId, packet: &Packet, until: Option<Millis>) {
        let behind = self
            .faults
            .conns
            .get(&id)
            .and_then(|c| c.delayed.back())
            .map(|d| d.due);
        let due = match (until, behind) {
            (None, None) => return self.encode_packet(id, packet),
            (Some(t), None) | (None, Some(t)) => t,
            (Some(a), Some(b)) => a.max(b),
        };
        let Some(conn) = self.conn_key_of(id).and_then(|key| self.conns.get(key)) else {
            return;
        };
        let mut bytes = Vec::new();
        mqtt::encode(packet, conn.version(), &mut bytes);
        let peer = conn.peer.clone();
        let event = crate::trace::Event::PacketOut {
            conn: id,
            packet,
            bytes: &bytes,
        };
        self.trace(&event);
        let wait = self.must_wait(packet);
        let state = self.faults.conns.entry(id).or_default();
        state.bytes += bytes.len();
        state.delayed.push_back(Delayed { due, bytes, wait });
        if state.bytes > DELAYED_BYTES_MAX {
            log::warn!(
                "{id} {peer}: over {DELAYED_BYTES_MAX} bytes of delayed packets: sending them now"
            );
            self.release_conn(id, None);
        }
    }

    /// Step 4: queues the delayed packets that are due, and forgets the fault state of
    /// connections that are gone.
    pub(super) fn release_delayed(&mut self) {
        if self.faults.is_empty() {
            return;
        }
        let ids: Vec<ConnId> = self.faults.conns.keys().copied().collect();
        for id in ids {
            if self.by_id.contains_key(&id) {
                self.release_conn(id, Some(self.now));
            } else {
                self.faults.conns.remove(&id);
            }
        }
    }

    /// Queues the connection's delayed packets due by `upto` (all of them for `None`), in
    /// order.
    fn release_conn(&mut self, id: ConnId, upto: Option<Millis>) {
        loop {
            let Some(state) = self.faults.conns.get_mut(&id) else {
                return;
            };
            if state
                .delayed
                .front()
                .is_some_and(|d| upto.is_none_or(|t| d.due <= t))
            {
                if let Some(d) = state.delayed.pop_front() {
                    state.bytes -= d.bytes.len();
                    self.queue_released(id, &d.bytes, d.wait);
                }
                continue;
            }
            if state.delayed.is_empty() && !state.cut {
                self.faults.conns.remove(&id);
            }
            return;
        }
    }

    /// Queues bytes whose delay is over as [`Reactor::encode_packet`] queues a packet.
    fn queue_released(&mut self, id: ConnId, bytes: &[u8], wait: bool) {
        if let Some(key) = self.conn_key_of(id) {
            self.queue_bytes(key, bytes, wait);
        }
    }

    /// Closes the connection abruptly once what is queued (delayed packets included) is
    /// written; nothing queued for it later is written. The engine learns of the close as
    /// of any connection lost.
    fn cut(&mut self, id: ConnId) {
        let Some(key) = self.conn_key_of(id) else {
            return;
        };
        self.faults.conns.entry(id).or_default().cut = true;
        let now = self.now;
        if let Some(conn) = self.conns.get_mut(key) {
            conn.start_closing(now, CloseReason::FaultRule);
            conn.inbound = Vec::new();
            self.close_queue.push(key);
        }
    }

    /// A connection `listener` (on `port`) has just accepted: whether a `refuse` rule closes
    /// it at once.
    pub(super) fn refused_by_fault(
        &mut self,
        listener: ListenerId,
        port: u16,
        peer: SocketAddr,
    ) -> bool {
        if self.engine.faults().is_empty() {
            return false;
        }
        let Some(rule) = self.engine.fault_refuses_accept(listener) else {
            return false;
        };
        log::info!("refused connection from {peer} on listener {port}: closed at once ({rule})");
        true
    }

    /// When the next delayed packet is due.
    pub(super) fn fault_deadline(&self) -> Option<Millis> {
        self.faults.next_deadline()
    }
}

/// The copy of a packet a duplicate rule sends: a QoS 1 or 2 PUBLISH carries DUP, as a
/// resend would; any other packet is sent again as it was.
fn duplicate_of(packet: &Packet) -> Packet {
    let mut copy = packet.clone();
    if let Packet::Publish(p) = &mut copy {
        if p.qos != QoS::AtMostOnce {
            p.dup = true;
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::{Props, Publish};
    use std::rc::Rc;

    fn publish(qos: QoS) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: Rc::from("a/b"),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 7 },
            properties: Props::none(),
            payload: Rc::from(&b"x"[..]),
        })
    }

    #[test]
    fn a_duplicate_publish_carries_dup_only_above_qos_0() {
        let dup = |p: &Packet| matches!(duplicate_of(p), Packet::Publish(c) if c.dup);
        assert!(dup(&publish(QoS::AtLeastOnce)));
        assert!(dup(&publish(QoS::ExactlyOnce)));
        assert!(!dup(&publish(QoS::AtMostOnce)));
        assert_eq!(duplicate_of(&Packet::PingResp), Packet::PingResp);
    }

    #[test]
    fn state_reports_holds_and_the_earliest_deadline() {
        let mut s = FaultState::default();
        assert!(s.is_empty() && !s.holds(ConnId(1)));
        assert_eq!(s.next_deadline(), None);
        for (conn, due) in [(1, 500), (2, 300)] {
            let state = s.conns.entry(ConnId(conn)).or_default();
            state.delayed.push_back(Delayed {
                due: Millis(due),
                bytes: vec![0xd0, 0],
                wait: false,
            });
        }
        s.conns.entry(ConnId(3)).or_default().cut = true;
        assert!(s.holds(ConnId(1)) && !s.holds(ConnId(3)));
        assert_eq!(s.next_deadline(), Some(Millis(300)));
    }
}
