//! The one interface between the engine and durable state, both ways.
//!
//! Outbound, every change to what must survive a restart is recorded as a [`Change`]: the
//! state of persistent sessions (a session expiry interval above zero, or clean session 0),
//! their subscriptions, queued and in-flight messages and inbound QoS 2 packet identifiers,
//! and retained messages. The reactor hands the changes of each loop turn to the store, and
//! holds every packet for which [`needs_flush`] is true until the store has them on disk.
//! With no store attached nothing is recorded and the cost is one branch. Sessions that end
//! with their connection are never recorded.
//!
//! Inbound, a [`Snapshot`] is what a store hands back at start-up, in engine terms: times are
//! already [`Millis`] on this run's clock; a [`QueueLoad`] asks for part of a stored queue.

use std::rc::Rc;

use super::message::Message;
use super::session::{Delivery, OutState};
use super::topic_tree::Subscription;
use crate::clock::Millis;
use crate::codec::mqtt::{Packet, QoS, Will};

/// A will as stored with its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    pub will: Will,
    pub delay_secs: u32,
    /// When the will is due, once its connection has ended.
    pub due: Option<Millis>,
}

/// What is stored of a session itself; its subscriptions and messages are stored apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub expiry_secs: u32,
    /// When the session ends, while no connection is attached.
    pub expires_at: Option<Millis>,
    pub will: Option<StoredWill>,
}

#[derive(Debug, Clone)]
pub enum Change {
    /// A persistent session was created or one of its own fields changed.
    SessionSaved {
        client_id: Rc<str>,
        record: Box<SessionRecord>,
    },
    /// A session ended (or stopped being persistent); everything it owned goes with it.
    SessionDeleted {
        client_id: Rc<str>,
    },
    Subscribed {
        client_id: Rc<str>,
        filter: String,
        sub: Subscription,
    },
    Unsubscribed {
        client_id: Rc<str>,
        filter: String,
    },
    /// A message joined the session's queue; `seq` orders the queue.
    Queued {
        client_id: Rc<str>,
        seq: u64,
        delivery: Delivery,
    },
    /// A message left the queue (sent, expired or discarded).
    Dequeued {
        client_id: Rc<str>,
        seq: u64,
    },
    /// An outbound QoS 1/2 flow started or moved on (PUBREC received).
    InflightSaved {
        client_id: Rc<str>,
        packet_id: u16,
        state: OutState,
        delivery: Delivery,
    },
    /// An outbound flow completed (PUBACK or PUBCOMP received) or was discarded.
    InflightReleased {
        client_id: Rc<str>,
        packet_id: u16,
    },
    /// An inbound QoS 2 packet identifier awaits PUBREL (`pending`) or no longer does.
    IncomingQos2 {
        client_id: Rc<str>,
        packet_id: u16,
        pending: bool,
    },
    RetainSet {
        msg: Rc<Message>,
    },
    RetainCleared {
        topic: Rc<str>,
    },
}

/// One persistent session as loaded from a store.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub client_id: String,
    pub record: SessionRecord,
    pub subscriptions: Vec<(String, Subscription)>,
    /// The queue, summed up: its messages stay in the store until the client is back.
    pub queue: StoredQueue,
    pub inflight: Vec<(u16, OutState, Delivery)>,
    pub incoming_qos2: Vec<u16>,
}

/// A stored queue as counted at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredQueue {
    /// Unexpired messages and their payload bytes.
    pub len: usize,
    pub bytes: u64,
    /// The position of the first unexpired message, and one past the last of all.
    pub first_seq: u64,
    pub end_seq: u64,
    /// Positions of the messages that expired while the broker was down.
    pub expired: Vec<u64>,
}

/// A request to read part of a persistent session's queue from the store: up to `max`
/// messages from position `from_seq` on, answered with [`crate::engine::Engine::queue_loaded`]
/// in the same transaction as the turn's changes (so it sees them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLoad {
    pub client_id: Rc<str>,
    pub from_seq: u64,
    pub max: usize,
}

/// Everything a store holds, as the engine resumes it.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sessions: Vec<StoredSession>,
    pub retained: Vec<Message>,
}

/// Whether `packet` may leave only after the store has flushed to disk what the engine
/// recorded before it. Acknowledgements (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
/// UNSUBACK) promise state the store must keep; a QoS 2 PUBLISH must not reach a subscriber
/// unless the message and its flow are durable, or a crash could deliver it twice. QoS 0 and
/// QoS 1 PUBLISH packets may go before: after a crash the worst is a QoS 1 duplicate, which
/// QoS 1 allows.
pub fn needs_flush(packet: &Packet) -> bool {
    match packet {
        Packet::ConnAck(_)
        | Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_) => true,
        Packet::Publish(p) => p.qos == QoS::ExactlyOnce,
        _ => false,
    }
}

/// Collects changes when a store is attached.
#[derive(Debug, Default)]
pub struct Journal {
    changes: Option<Vec<Change>>,
}

impl Journal {
    /// Starts recording (called when a store is attached).
    pub fn enable(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    pub fn is_enabled(&self) -> bool {
        self.changes.is_some()
    }

    /// Records a change; `make` runs only when recording, so callers pay nothing otherwise.
    pub fn record(&mut self, make: impl FnOnce() -> Change) {
        if let Some(c) = self.changes.as_mut() {
            c.push(make());
        }
    }

    /// Moves the recorded changes into `out` (cleared first), keeping both allocations.
    pub fn drain_into(&mut self, out: &mut Vec<Change>) {
        out.clear();
        if let Some(c) = self.changes.as_mut() {
            std::mem::swap(c, out);
        }
    }
}
