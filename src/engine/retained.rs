//! Retained messages, one per topic, with their expiry.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::message::Message;
use crate::clock::Millis;
use crate::codec::mqtt::topic;

#[derive(Default, Debug)]
pub struct Retained {
    by_topic: BTreeMap<Rc<str>, Rc<Message>>,
    /// Topics whose message expired and was dropped, until the engine records them.
    expired: Vec<Rc<str>>,
}

impl Retained {
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }

    /// Stores `msg` as the topic's retained message, or clears the topic when the payload is
    /// empty [MQTT-3.3.1-10], [MQTT-3.3.1-11]. Returns true if the store changed.
    pub fn set(&mut self, msg: &Rc<Message>) -> bool {
        if msg.payload.is_empty() {
            self.by_topic.remove(&msg.topic).is_some()
        } else {
            self.by_topic.insert(msg.topic.clone(), msg.clone());
            true
        }
    }

    /// Removes the message retained on `topic`, returning it.
    pub fn remove(&mut self, topic: &str) -> Option<Rc<Message>> {
        self.by_topic.remove(topic)
    }

    /// Every retained message, expired or not, in topic order.
    pub fn iter(&self) -> impl Iterator<Item = &Rc<Message>> {
        self.by_topic.values()
    }

    /// Every unexpired retained message whose topic matches `filter`, in topic order.
    /// Expired ones met on the way are dropped.
    pub fn matching(&mut self, filter: &str, now: Millis, out: &mut Vec<Rc<Message>>) {
        let mut expired = Vec::new();
        for (t, m) in &self.by_topic {
            if topic::matches(filter, t) {
                if m.is_expired(now) {
                    expired.push(t.clone());
                } else {
                    out.push(m.clone());
                }
            }
        }
        for t in expired {
            self.by_topic.remove(&t);
            self.expired.push(t);
        }
    }

    /// Drops every expired message (called on the `$SYS` tick).
    pub fn purge_expired(&mut self, now: Millis) {
        let expired = &mut self.expired;
        self.by_topic.retain(|t, m| {
            let keep = !m.is_expired(now);
            if !keep {
                expired.push(t.clone());
            }
            keep
        });
    }

    /// The topics whose message expired since the last call.
    pub fn take_expired(&mut self) -> Vec<Rc<str>> {
        std::mem::take(&mut self.expired)
    }
}
