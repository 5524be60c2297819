//! The one interface through which the engine reports changes to durable state.
//!
//! Every change to what must survive a restart (sessions, subscriptions, queued and in-flight
//! messages, inbound QoS 2 state, retained messages) is recorded here as a [`Change`]. The
//! reactor takes the changes of a loop turn and commits them in one transaction before any
//! acknowledgement of that turn leaves the process. With no store attached, nothing is
//! recorded and the cost is one branch.

use std::rc::Rc;

use super::message::Message;
use super::topic_tree::Subscription;

#[derive(Debug, Clone)]
pub enum Change {
    /// A session was created or its expiry changed.
    SessionSaved {
        client_id: Rc<str>,
        expiry_secs: u32,
    },
    /// A session ended; everything it owned goes with it.
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
    /// A message was queued for a session, or sent with a packet identifier.
    MessageStored {
        client_id: Rc<str>,
        packet_id: Option<u16>,
        msg: Rc<Message>,
    },
    /// An outbound flow completed (PUBACK or PUBCOMP received) or a message was discarded.
    MessageReleased {
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

    /// Hands the recorded changes to the caller, leaving the journal empty.
    pub fn drain(&mut self) -> Vec<Change> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}
