//! The topic ids of one MQTT-SN bridge: the predefined ones agreed with the gateway
//! (`bridge_predefined_topic`, kept for the bridge's life), those learnt on a connection
//! (REGACK, SUBACK, the gateway's REGISTER; forgotten when it ends), and two-character
//! topics, which travel as short topic names.

use std::collections::BTreeMap;

use crate::codec::mqtt::topic::valid_topic_name;
use crate::codec::mqttsn::{SubTopic, TopicIdType};

/// How a PUBLISH names its topic: the kind of id and the id.
pub(super) type TopicRef = (TopicIdType, u16);

#[derive(Debug, Default)]
pub(super) struct Topics {
    /// The predefined topics, both ways.
    predefined: BTreeMap<u16, String>,
    predefined_ids: BTreeMap<String, u16>,
    /// The topic ids of this connection, both ways.
    ids: BTreeMap<String, u16>,
    names: BTreeMap<u16, String>,
}

impl Topics {
    /// A table with these predefined topics and nothing learnt.
    pub(super) fn new(predefined: &[(u16, String)]) -> Self {
        Self {
            predefined: predefined.iter().cloned().collect(),
            predefined_ids: predefined.iter().map(|(id, t)| (t.clone(), *id)).collect(),
            ..Self::default()
        }
    }

    /// A topic id of this connection (it replaces an earlier name of the id).
    pub(super) fn learn(&mut self, topic_id: u16, name: String) {
        if let Some(old) = self.names.insert(topic_id, name.clone()) {
            self.ids.remove(&old);
        }
        self.ids.insert(name, topic_id);
    }

    /// Forgets a topic id of this connection (the gateway no longer knows it).
    pub(super) fn forget(&mut self, topic_id: u16) {
        if let Some(name) = self.names.remove(&topic_id) {
            self.ids.remove(&name);
        }
    }

    /// Forgets what this connection learnt; the predefined topics stay.
    pub(super) fn clear(&mut self) {
        self.ids.clear();
        self.names.clear();
    }

    /// How many topic ids this connection learnt.
    pub(super) fn learnt(&self) -> usize {
        self.names.len()
    }

    /// The topic an incoming PUBLISH names, if known.
    pub(super) fn name(&self, kind: TopicIdType, topic_id: u16) -> Option<String> {
        match kind {
            TopicIdType::Normal => self.names.get(&topic_id).cloned(),
            TopicIdType::Predefined => self.predefined.get(&topic_id).cloned(),
            TopicIdType::Short => short_name(topic_id),
        }
    }

    /// How an outgoing PUBLISH names `topic`: by its predefined id, as a short topic name,
    /// or by the id this connection registered; `None` when it must be registered first.
    pub(super) fn publish_ref(&self, topic: &str) -> Option<TopicRef> {
        if let Some(&id) = self.predefined_ids.get(topic) {
            return Some((TopicIdType::Predefined, id));
        }
        if let Some(id) = short_id(topic) {
            return Some((TopicIdType::Short, id));
        }
        self.ids.get(topic).map(|&id| (TopicIdType::Normal, id))
    }

    /// How a SUBSCRIBE names `filter`: a predefined topic by its id, a two-character topic
    /// as a short name, anything else (wildcards included) by name.
    pub(super) fn sub_topic<'a>(&self, filter: &'a str) -> SubTopic<'a> {
        if let Some(&id) = self.predefined_ids.get(filter) {
            return SubTopic::Predefined(id);
        }
        match short_id(filter).filter(|_| !filter.contains(['+', '#'])) {
            Some(id) => SubTopic::Short(id.to_be_bytes()),
            None => SubTopic::Name(filter.as_bytes()),
        }
    }
}

/// The short topic id of a two-byte topic name, if it is one.
fn short_id(topic: &str) -> Option<u16> {
    match topic.as_bytes() {
        [a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// The topic a short topic id stands for, when it is a valid topic name.
fn short_name(id: u16) -> Option<String> {
    let bytes = id.to_be_bytes();
    let name = std::str::from_utf8(&bytes).ok()?;
    valid_topic_name(name).then(|| name.to_owned())
}
