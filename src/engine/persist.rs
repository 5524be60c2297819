//! The engine's side of persistence: which sessions are recorded, recording a whole session
//! when it becomes persistent, and resuming the state a store hands back at start-up.
//!
//! A session is persistent while a store is attached and its expiry interval is above zero
//! (clean session 0 in 3.1.1). After a restart every session is offline: one whose
//! connection was still open when the broker stopped is treated as if that connection had
//! just been lost, so its expiry and will delay count from the start-up.

use std::rc::Rc;

use super::durable::{Change, Snapshot, StoredSession};
use super::session::{Inflight, PendingWill, EXPIRY_NEVER};
use super::timers::{SessionSlot, TimerKey};
use super::topic_tree::SessionKey;
use super::{split_group, Engine};
use crate::clock::Millis;

impl Engine {
    /// Records a change of a persistent session; sessions that end with their connection are
    /// not recorded.
    pub(super) fn record_for(&mut self, key: SessionKey, make: impl FnOnce(Rc<str>) -> Change) {
        if let Some(s) = self.sessions.get(key).filter(|s| s.durable) {
            let client_id = s.client_id.clone();
            self.journal.record(|| make(client_id));
        }
    }

    /// Records the session's own fields (expiry, will) if it is persistent.
    pub(super) fn save_session(&mut self, key: SessionKey) {
        if let Some(s) = self.sessions.get(key).filter(|s| s.durable) {
            let client_id = s.client_id.clone();
            self.journal.record(|| Change::SessionSaved {
                client_id,
                record: Box::new(s.record()),
            });
        }
    }

    /// Records the retained messages that expired since the last call.
    pub(super) fn record_expired_retained(&mut self) {
        for topic in self.retained.take_expired() {
            if !topic.starts_with("$SYS") {
                self.journal.record(|| Change::RetainCleared { topic });
            }
        }
    }

    /// After CONNECT: decides whether the session is persistent from its expiry, and records
    /// it; one that stops being so is deleted from the store. A session only becomes
    /// persistent when it is new: one with expiry 0 ends with its connection (a takeover
    /// included), so it can hold nothing yet unrecorded.
    pub(super) fn persist_session(&mut self, key: SessionKey) {
        let durable = self.journal.is_enabled() && self.sessions[key].expiry_secs > 0;
        let was = self.sessions[key].durable;
        match (was, durable) {
            (true, true) => self.save_session(key),
            (true, false) => {
                self.record_for(key, |client_id| Change::SessionDeleted { client_id });
                self.sessions[key].durable = false;
            }
            (false, true) => {
                self.sessions[key].durable = true;
                self.save_session(key);
            }
            (false, false) => {}
        }
    }

    /// Resumes what a store held: retained messages, then every session, offline. Expired
    /// messages are dropped; sessions and wills whose time passed while the broker was down
    /// end or are published at once. Call before the first connection is opened.
    pub fn restore(&mut self, now: Millis, snapshot: Snapshot) {
        self.now = self.now.max(now);
        for msg in snapshot.retained {
            if msg.is_expired(self.now) {
                let topic = msg.topic.clone();
                self.journal.record(|| Change::RetainCleared { topic });
            } else {
                self.retained.set(&Rc::new(msg));
            }
        }
        for stored in snapshot.sessions {
            self.restore_session(stored);
        }
        // Expiries and wills already due fire now, in deadline order.
        self.on_tick();
    }

    fn restore_session(&mut self, stored: StoredSession) {
        let now = self.now;
        let client_id: Rc<str> = stored.client_id.into();
        let key = self.create_session(client_id.clone());
        let uid = self.sessions[key].uid;
        let record = stored.record;
        let expiry = record.expiry_secs;
        for (filter, sub) in stored.subscriptions {
            let (group, plain) = split_group(&filter);
            self.tree.insert(plain, group, key, sub);
            self.sessions[key].subscriptions.insert(filter, sub);
        }
        let access = self.pending_access();
        let s = &mut self.sessions[key];
        s.access = access;
        s.durable = true;
        s.expiry_secs = expiry;
        // A session whose connection was open when the broker stopped lost it now.
        s.expires_at = match record.expires_at {
            Some(at) => Some(at),
            None if expiry == EXPIRY_NEVER => None,
            None => Some(now.saturating_add_secs(u64::from(expiry))),
        };
        let mut will_due = None;
        if let Some(w) = record.will {
            let due = w
                .due
                .unwrap_or_else(|| now.saturating_add_secs(u64::from(w.delay_secs.min(expiry))));
            s.will = Some(Box::new(PendingWill {
                will: w.will,
                delay_secs: w.delay_secs,
                due: Some(due),
            }));
            will_due = Some(due);
        }
        let q = stored.queue;
        self.bounds.queue_changed(q.len, q.bytes, true);
        s.next_seq = q.end_seq.max(1);
        let expired = q.expired;
        // Flows only for a session that has something in them.
        let owes = q.len > 0
            || q.bytes > 0
            || !stored.inflight.is_empty()
            || !stored.incoming_qos2.is_empty();
        if owes {
            let f = s.flows_mut();
            f.stored_only = q.len;
            f.queued_bytes = q.bytes;
            f.next_load_seq = q.first_seq;
            for (packet_id, state, delivery) in stored.inflight {
                f.inflight.insert(packet_id, Inflight { delivery, state });
            }
            f.incoming_qos2.extend(stored.incoming_qos2);
        }
        let slot = SessionSlot::new(key);
        if let Some(at) = s.expires_at {
            self.timers
                .arm(at, TimerKey::SessionExpiry { uid, key: slot });
        }
        if let Some(at) = will_due {
            self.timers.arm(at, TimerKey::WillDelay { uid, key: slot });
        }
        for seq in expired {
            let client_id = client_id.clone();
            self.journal.record(|| Change::Dequeued { client_id, seq });
        }
        self.save_session(key);
    }
}
