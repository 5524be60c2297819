//! Sessions (the part of a client's state that outlives a connection) and links (the part
//! that lives exactly as long as one connection).
//!
//! A session holds subscriptions, its message flows (the outbound in-flight window and queue,
//! inbound QoS 2 packet identifiers awaiting PUBREL) and the will. Its link, present while a
//! connection is attached, holds what was negotiated in CONNECT: the client's receive maximum,
//! maximum packet size and topic alias tables in both directions.
//!
//! Most sessions are idle most of the time, so what only messages need is boxed and made
//! when first needed: the flows ([`Flows`]) at the first queued, in-flight or inbound QoS 2
//! message, the alias tables ([`Aliases`]) at the first alias set in either direction, and
//! the will's due time inside the (boxed) will. An idle session then holds little more than
//! its identity, subscriptions and access. The user name and mount point in force are the
//! session's [`Principal`]'s, which CONNECT sets with the link.

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
    /// The Topic Alias Maximum the broker announced at CONNECT: aliases the client may use
    /// towards the broker (0 for 3.1.1).
    pub alias_in_max: u16,
    /// The alias tables, made at the first alias set in either direction.
    pub aliases: Option<Box<Aliases>>,
}

impl Link {
    /// The alias tables, made if the link has none yet.
    pub fn aliases_mut(&mut self) -> &mut Aliases {
        self.aliases.get_or_insert_with(Box::default)
    }

    /// The alias the broker set towards the client for `topic`, if any.
    pub fn alias_out(&self, topic: &str) -> Option<u16> {
        self.aliases.as_ref()?.out.get(topic).copied()
    }

    /// Aliases the broker has set towards the client.
    pub fn aliases_out_len(&self) -> usize {
        self.aliases.as_ref().map_or(0, |a| a.out.len())
    }

    /// The topic the client set for inbound alias `alias` (1-based), if it set one.
    pub fn alias_in(&self, alias: u16) -> Option<Rc<str>> {
        let slot = usize::from(alias).checked_sub(1)?;
        self.aliases.as_ref()?.inbound.get(slot)?.clone()
    }
}

/// A link's topic alias tables, both directions.
#[derive(Debug, Default)]
pub struct Aliases {
    /// Aliases the broker set towards the client, by topic (broker-side name).
    pub out: BTreeMap<Rc<str>, u16>,
    /// Aliases the client set towards the broker, index = alias - 1; grown to the highest
    /// alias set, never beyond the link's `alias_in_max`.
    pub inbound: Vec<Option<Rc<str>>>,
}

impl Aliases {
    /// Records the topic the client set for inbound alias `alias` (1-based, at most the
    /// link's `alias_in_max`).
    pub fn set_in(&mut self, alias: u16, topic: Rc<str>) {
        let Some(slot) = usize::from(alias).checked_sub(1) else {
            return;
        };
        if self.inbound.len() <= slot {
            self.inbound.resize(slot + 1, None);
        }
        self.inbound[slot] = Some(topic);
    }
}

/// A will message waiting for its connection to end (or, after that, for its delay). It
/// becomes a [`Message`] only when published, so that its expiry counts from then.
#[derive(Debug)]
pub struct PendingWill {
    pub will: Will,
    pub delay_secs: u32,
    /// When a delayed will is due: set once the connection has ended.
    pub due: Option<Millis>,
}

/// A session's message flows in both directions. Made at the first message that needs it
/// and kept while messages flow, so that no message allocates it again; dropped only when
/// everything in it is empty (see [`Session::trim_flows`]).
#[derive(Debug, Default)]
pub struct Flows {
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
    /// Inbound QoS 2 packet identifiers for which PUBREC was sent and PUBREL is awaited.
    pub incoming_qos2: BTreeSet<u16>,
}

impl Flows {
    /// Whether nothing flows and nothing is owed: no queue (in memory, in the store or
    /// being read), no queued bytes, nothing in flight either way.
    fn is_empty(&self) -> bool {
        self.inflight.is_empty()
            && self.queue.is_empty()
            && self.queued_bytes == 0
            && self.stored_only == 0
            && !self.loading
            && self.incoming_qos2.is_empty()
    }
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
    /// Boxed and made at the first message: an idle session has none, and reads as if its
    /// queue, in-flight window and inbound QoS 2 identifiers were empty.
    flows: Option<Box<Flows>>,
    /// Kept out of the flows so that packet identifiers go on in the same order when the
    /// flows are dropped and made again.
    pub next_packet_id: u16,
    /// Boxed: most sessions have none, and a will (with its properties) would otherwise
    /// make every session several hundred bytes larger.
    pub will: Option<Box<PendingWill>>,
    /// Whether the session's state is recorded for a store (a store is attached and the
    /// session outlives its connection).
    pub durable: bool,
    /// The next queue position of a persistent session (outside the flows: the positions
    /// of a stored queue must never repeat).
    pub next_seq: u64,
    /// What the client may do with topics (see `access.rs`).
    pub access: Access,
    /// Who the client was at its last CONNECT, set with the link: the user name and mount
    /// point of the attached connection. `None` for a session restored from the store whose
    /// client has not connected since.
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
            flows: None,
            next_packet_id: 1,
            will: None,
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
                due: w.due,
            }),
        }
    }

    pub fn is_online(&self) -> bool {
        self.link.is_some()
    }

    /// The session's flows, if it has any.
    pub fn flows(&self) -> Option<&Flows> {
        self.flows.as_deref()
    }

    /// The session's flows, made if it has none yet.
    pub fn flows_mut(&mut self) -> &mut Flows {
        self.flows.get_or_insert_with(Box::default)
    }

    /// The session's flows, if it has any, to change.
    pub fn existing_flows_mut(&mut self) -> Option<&mut Flows> {
        self.flows.as_deref_mut()
    }

    /// Drops the flows if nothing is in them, giving their memory back; called where a
    /// session goes quiet, never per message.
    pub fn trim_flows(&mut self) {
        if self.flows.as_ref().is_some_and(|f| f.is_empty()) {
            self.flows = None;
        }
    }

    /// Queued messages, in memory and in the store.
    pub fn queue_len(&self) -> usize {
        self.flows().map_or(0, |f| f.queue.len() + f.stored_only)
    }

    /// Payload bytes of the whole queue, in memory and in the store.
    pub fn queued_bytes(&self) -> u64 {
        self.flows().map_or(0, |f| f.queued_bytes)
    }

    /// Outbound QoS 1/2 messages awaiting acknowledgement.
    pub fn inflight_len(&self) -> usize {
        self.flows().map_or(0, |f| f.inflight.len())
    }

    /// Inbound QoS 2 packet identifiers awaiting PUBREL.
    pub fn incoming_qos2_len(&self) -> usize {
        self.flows().map_or(0, |f| f.incoming_qos2.len())
    }

    /// Whether inbound QoS 2 packet identifier `id` awaits PUBREL.
    pub fn awaits_pubrel(&self, id: u16) -> bool {
        self.flows().is_some_and(|f| f.incoming_qos2.contains(&id))
    }

    /// The user name in force at the last CONNECT: the transport's identity, else the
    /// CONNECT user name.
    pub fn username(&self) -> Option<&Rc<str>> {
        self.principal.as_ref()?.username.as_ref()
    }

    /// The `mount_point` of the listener of the last CONNECT: prefixed to the client's
    /// topics and filters, removed from the topics delivered to it.
    pub fn mount(&self) -> Option<&Rc<str>> {
        self.principal.as_ref()?.mount.as_ref()
    }

    /// The broker-side name of a topic or filter the client used.
    pub fn mounted(&self, topic: &str) -> Rc<str> {
        match self.mount() {
            Some(m) => format!("{m}{topic}").into(),
            None => topic.into(),
        }
    }

    /// The next packet identifier not in use by an outbound flow, or None when all 65,535 are.
    pub fn alloc_packet_id(&mut self) -> Option<u16> {
        let inflight = self.flows.as_deref().map(|f| &f.inflight);
        for _ in 0..u16::MAX {
            let id = self.next_packet_id;
            self.next_packet_id = if id == u16::MAX { 1 } else { id + 1 };
            if !inflight.is_some_and(|m| m.contains_key(&id)) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client has one: the broker's memory per idle connection rests on it.
    #[test]
    fn a_session_stays_small() {
        assert!(size_of::<Session>() <= 184, "{}", size_of::<Session>());
    }

    #[test]
    fn packet_ids_skip_zero_and_ids_in_use() {
        let mut s = Session::new(1, "c".into());
        s.next_packet_id = u16::MAX;
        assert_eq!(s.alloc_packet_id(), Some(u16::MAX));
        assert_eq!(s.alloc_packet_id(), Some(1));
    }
}
