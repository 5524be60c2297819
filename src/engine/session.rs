//! Sessions (the part of a client's state that outlives a connection) and links (the part
//! that lives exactly as long as one connection).
//!
//! A session holds subscriptions, the outbound in-flight window and queue, inbound QoS 2
//! packet identifiers awaiting PUBREL, and the will. Its link, present while a connection is
//! attached, holds what was negotiated in CONNECT: the client's receive maximum, maximum packet
//! size and topic alias tables in both directions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::access::{Access, Principal};
use super::durable::{SessionRecord, StoredWill};
use super::event::ConnId;
use super::message::Message;
use super::topic_tree::Subscription;
use crate::clock::Millis;
use crate::codec::mqtt::{ProtocolVersion, QoS, Will};

/// Session Expiry Interval meaning "never expires" [MQTT-3.1.2-?, spec 3.1.2.11.2].
pub const EXPIRY_NEVER: u32 = u32::MAX;

/// One message on its way to one subscriber: the shared message plus what is particular to
/// this delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Rc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// Position in a persistent session's queue (0 until queued there).
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    AwaitPubRec,
    /// PUBREL sent, PUBCOMP awaited.
    AwaitPubComp,
}

#[derive(Debug)]
pub struct Inflight {
    pub delivery: Delivery,
    pub state: OutState,
}

/// What the broker knows of the connection attached to a session.
#[derive(Debug)]
pub struct Link {
    pub conn: ConnId,
    pub version: ProtocolVersion,
    /// The client's Receive Maximum: QoS 1/2 PUBLISH packets it accepts unacknowledged.
    pub receive_max: u16,
    /// The client's Maximum Packet Size (the protocol maximum when it gave none).
    pub max_packet: u32,
    /// The client's Topic Alias Maximum: aliases the broker may use towards it.
    pub alias_max: u16,
    pub aliases_out: BTreeMap<Rc<str>, u16>,
    /// Aliases the client set towards the broker, index = alias - 1.
    pub aliases_in: Vec<Option<Rc<str>>>,
    /// The listener's `mount_point`: prefixed to the client's topics and filters, removed
    /// from the topics delivered to it.
    pub mount: Option<Rc<str>>,
    /// The user name in force: the transport's identity, else the CONNECT user name.
    pub username: Option<Rc<str>>,
}

impl Link {
    /// The broker-side name of a topic or filter the client used.
    pub fn mounted(&self, topic: &str) -> Rc<str> {
        match &self.mount {
            Some(m) => format!("{m}{topic}").into(),
            None => topic.into(),
        }
    }
}

/// A will message waiting for its connection to end (or, after that, for its delay). It
/// becomes a [`Message`] only when published, so that its expiry counts from then.
#[derive(Debug)]
pub struct PendingWill {
    pub will: Will,
    pub delay_secs: u32,
}

#[derive(Debug)]
pub struct Session {
    /// Unique for the broker's lifetime; timers and No Local name sessions by it.
    pub uid: u64,
    pub client_id: Rc<str>,
    pub link: Option<Link>,
    /// Filters exactly as subscribed (`$share/...` included) with their options.
    pub subscriptions: BTreeMap<String, Subscription>,
    pub expiry_secs: u32,
    /// Set while disconnected: when the session ends.
    pub expires_at: Option<Millis>,
    pub inflight: BTreeMap<u16, Inflight>,
    /// The head of the queue held in memory. A persistent session's queue goes on in the
    /// store: `stored_only` more entries, from queue position `next_load_seq` on.
    pub queue: VecDeque<Delivery>,
    /// Payload bytes of the whole queue, in memory and in the store.
    pub queued_bytes: u64,
    pub stored_only: usize,
    pub next_load_seq: u64,
    /// A read of the stored queue is under way.
    pub loading: bool,
    pub next_packet_id: u16,
    /// Inbound QoS 2 packet identifiers for which PUBREC was sent and PUBREL is awaited.
    pub incoming_qos2: BTreeSet<u16>,
    /// Boxed: most sessions have none, and a will (with its properties) would otherwise
    /// make every session several hundred bytes larger.
    pub will: Option<Box<PendingWill>>,
    /// When a delayed will is due (set once the connection has ended).
    pub will_due: Option<Millis>,
    /// Whether the session's state is recorded for a store (a store is attached and the
    /// session outlives its connection).
    pub durable: bool,
    /// The next queue position of a persistent session.
    pub next_seq: u64,
    /// What the client may do with topics (see `access.rs`).
    pub access: Access,
    /// Who the client was at its last CONNECT; `None` for a session restored from the store
    /// whose client has not connected since.
    pub principal: Option<Principal>,
}

impl Session {
    pub fn new(uid: u64, client_id: Rc<str>) -> Self {
        Self {
            uid,
            client_id,
            link: None,
            subscriptions: BTreeMap::new(),
            expiry_secs: 0,
            expires_at: None,
            inflight: BTreeMap::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            stored_only: 0,
            next_load_seq: 0,
            loading: false,
            next_packet_id: 1,
            incoming_qos2: BTreeSet::new(),
            will: None,
            will_due: None,
            durable: false,
            next_seq: 1,
            access: Access::Open,
            principal: None,
        }
    }

    /// What a store keeps of the session itself.
    pub fn record(&self) -> SessionRecord {
        SessionRecord {
            expiry_secs: self.expiry_secs,
            expires_at: self.expires_at,
            will: self.will.as_ref().map(|w| StoredWill {
                will: w.will.clone(),
                delay_secs: w.delay_secs,
                due: self.will_due,
            }),
        }
    }

    pub fn is_online(&self) -> bool {
        self.link.is_some()
    }

    /// Queued messages, in memory and in the store.
    pub fn queue_len(&self) -> usize {
        self.queue.len() + self.stored_only
    }

    /// The next packet identifier not in use by an outbound flow, or None when all 65,535 are.
    pub fn alloc_packet_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_packet_id;
            self.next_packet_id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.inflight.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_skip_zero_and_ids_in_use() {
        let mut s = Session::new(1, "c".into());
        s.next_packet_id = u16::MAX;
        assert_eq!(s.alloc_packet_id(), Some(u16::MAX));
        assert_eq!(s.alloc_packet_id(), Some(1));
    }
}
