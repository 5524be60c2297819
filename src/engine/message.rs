//! An application message as the broker holds it: one allocation shared by every subscriber
//! it is delivered to, the retained store and every queue it waits in.

use std::rc::Rc;

use crate::clock::Millis;
use crate::codec::mqtt::{Props, Publish, QoS};

/// A message accepted from a publisher (or a will, or `$SYS`). Immutable once built.
#[derive(Debug)]
pub struct Message {
    pub topic: Rc<str>,
    pub payload: Rc<[u8]>,
    pub qos: QoS,
    pub retain: bool,
    /// The properties forwarded to subscribers: payload format, content type, response topic,
    /// correlation data, user properties. Never a topic alias or subscription identifier, and
    /// the expiry interval is recomputed at each delivery from `expires_at`. Empty (no
    /// allocation) for a message published without any of them.
    pub properties: Props,
    /// When the message expires (Message Expiry Interval), if it does.
    pub expires_at: Option<Millis>,
    /// The session that published it, for No Local; `None` for wills and `$SYS`.
    pub origin: Option<u64>,
}

impl Message {
    /// Builds a message from an inbound PUBLISH whose topic alias has been resolved.
    pub fn from_publish(p: Publish, topic: Rc<str>, now: Millis, origin: Option<u64>) -> Self {
        let mut properties = p.properties;
        let mut expires_at = None;
        // Only held properties are written: writing through `DerefMut` would allocate.
        if let Some(held) = properties.get_mut() {
            expires_at = held
                .message_expiry_interval
                .take()
                .map(|secs| now.saturating_add_secs(u64::from(secs)));
            held.topic_alias = None;
            held.subscription_identifiers.clear();
        }
        // A PUBLISH whose only property was its topic alias leaves nothing to keep.
        properties.shrink();
        Self {
            topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            origin,
        }
    }

    pub fn is_expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Remaining Message Expiry Interval in whole seconds, rounded up [MQTT-3.3.2-6].
    pub fn remaining_expiry_secs(&self, now: Millis) -> Option<u32> {
        self.expires_at.map(|at| {
            let ms = at.since(now);
            u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
        })
    }

    /// Payload bytes, for queue accounting.
    pub fn size(&self) -> u64 {
        self.payload.len() as u64
    }
}
