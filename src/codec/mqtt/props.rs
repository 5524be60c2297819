//! [`Props`]: the MQTT 5.0 properties of a packet, held behind one pointer that is null when
//! there are none.
//!
//! [`Properties`] is several hundred bytes; held inline it made every packet that large, and
//! a packet is moved many times between decoding and encoding. Every 3.1.1 packet and most
//! 5.0 ones carry no property, so `Props` allocates only when one is set. Reading goes
//! through `Deref` (an empty value shared by all when there are none); writing through
//! `DerefMut` allocates on the first write, so code on a hot path that may write nothing
//! checks first or uses [`Props::get_mut`].

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::Properties;

/// The properties of no packet. Every field is `None` or empty, as in
/// `Properties::default()`; a test checks that the two agree.
static EMPTY: Properties = Properties {
    payload_format_indicator: None,
    message_expiry_interval: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    subscription_identifiers: Vec::new(),
    session_expiry_interval: None,
    assigned_client_identifier: None,
    server_keep_alive: None,
    authentication_method: None,
    authentication_data: None,
    request_problem_information: None,
    will_delay_interval: None,
    request_response_information: None,
    response_information: None,
    server_reference: None,
    reason_string: None,
    receive_maximum: None,
    topic_alias_maximum: None,
    topic_alias: None,
    maximum_qos: None,
    retain_available: None,
    user_properties: Vec::new(),
    maximum_packet_size: None,
    wildcard_subscription_available: None,
    subscription_identifier_available: None,
    shared_subscription_available: None,
};

/// Whether `p` is what every [`Props`] without properties reads as (a pointer comparison):
/// encoders then skip the walk over every property field.
pub(crate) fn is_unset(p: &Properties) -> bool {
    std::ptr::eq(p, &EMPTY)
}

/// The properties of a packet, a message or a will: `None` when there are none (no
/// allocation), else the boxed [`Properties`]. A box may hold empty properties after a
/// write that cleared them; equality compares the properties, so this is not observable.
#[derive(Clone, Default)]
pub struct Props(Option<Box<Properties>>);

impl Props {
    /// No properties (no allocation).
    pub const fn none() -> Self {
        Self(None)
    }

    /// Properties that hold at least one property, boxed without checking that they do.
    pub(crate) fn boxed(p: Properties) -> Self {
        Self(Some(Box::new(p)))
    }

    /// Whether every property is absent.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(none_set)
    }

    /// The properties for writing, if any are held: unlike `DerefMut`, never allocates.
    pub fn get_mut(&mut self) -> Option<&mut Properties> {
        self.0.as_deref_mut()
    }

    /// Frees the box when it holds no property, so that a value whose properties were
    /// cleared costs nothing to keep.
    pub fn shrink(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }

    /// The properties by value.
    pub fn into_inner(self) -> Properties {
        self.0.map_or_else(Properties::default, |b| *b)
    }
}

/// Whether `p` holds no property: the same answer as `*p == EMPTY`, field by field without
/// comparing values (the destructuring names every field, so a new one must be added here).
fn none_set(p: &Properties) -> bool {
    let Properties {
        payload_format_indicator,
        message_expiry_interval,
        content_type,
        response_topic,
        correlation_data,
        subscription_identifiers,
        session_expiry_interval,
        assigned_client_identifier,
        server_keep_alive,
        authentication_method,
        authentication_data,
        request_problem_information,
        will_delay_interval,
        request_response_information,
        response_information,
        server_reference,
        reason_string,
        receive_maximum,
        topic_alias_maximum,
        topic_alias,
        maximum_qos,
        retain_available,
        user_properties,
        maximum_packet_size,
        wildcard_subscription_available,
        subscription_identifier_available,
        shared_subscription_available,
    } = p;
    payload_format_indicator.is_none()
        && message_expiry_interval.is_none()
        && content_type.is_none()
        && response_topic.is_none()
        && correlation_data.is_none()
        && subscription_identifiers.is_empty()
        && session_expiry_interval.is_none()
        && assigned_client_identifier.is_none()
        && server_keep_alive.is_none()
        && authentication_method.is_none()
        && authentication_data.is_none()
        && request_problem_information.is_none()
        && will_delay_interval.is_none()
        && request_response_information.is_none()
        && response_information.is_none()
        && server_reference.is_none()
        && reason_string.is_none()
        && receive_maximum.is_none()
        && topic_alias_maximum.is_none()
        && topic_alias.is_none()
        && maximum_qos.is_none()
        && retain_available.is_none()
        && user_properties.is_empty()
        && maximum_packet_size.is_none()
        && wildcard_subscription_available.is_none()
        && subscription_identifier_available.is_none()
        && shared_subscription_available.is_none()
}

impl Deref for Props {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl DerefMut for Props {
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Properties> for Props {
    /// Boxes `p` unless it is empty.
    fn from(p: Properties) -> Self {
        if none_set(&p) {
            Self(None)
        } else {
            Self(Some(Box::new(p)))
        }
    }
}

impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Props {}

impl PartialEq<Properties> for Props {
    fn eq(&self, other: &Properties) -> bool {
        **self == *other
    }
}

impl fmt::Debug for Props {
    /// Exactly what `Properties` prints, with or without a box.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_the_default() {
        assert_eq!(EMPTY, Properties::default());
        assert!(Props::default().is_empty());
        assert!(none_set(&EMPTY));
        let one = Properties {
            shared_subscription_available: Some(0),
            ..Properties::default()
        };
        assert!(!none_set(&one));
        assert_eq!(size_of::<Props>(), size_of::<usize>());
    }

    #[test]
    fn boxes_only_properties_that_are_set() {
        assert!(Props::from(Properties::default()).0.is_none());
        let p = Props::from(Properties {
            topic_alias: Some(3),
            ..Properties::default()
        });
        assert_eq!(p.topic_alias, Some(3));
        assert!(p.0.is_some());
    }

    #[test]
    fn only_no_properties_read_as_the_shared_empty_value() {
        assert!(is_unset(&Props::none()));
        let mut cleared = Props::none();
        cleared.topic_alias = Some(1);
        cleared.topic_alias = None;
        assert!(
            !is_unset(&cleared),
            "a box, even an empty one, is its own value"
        );
        // Both encode as no properties: one by the shortcut, one by the walk.
        use super::super::property::{encode, PropCtx};
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode(&Props::none(), PropCtx::Publish, &mut a);
        encode(&cleared, PropCtx::Publish, &mut b);
        assert_eq!((a.as_slice(), b.as_slice()), (&[0u8][..], &[0u8][..]));
    }

    #[test]
    fn none_equals_an_empty_box() {
        let mut p = Props::none();
        // A write through `DerefMut` allocates, even one that leaves the value empty.
        p.reason_string = None;
        assert!(p.0.is_some());
        assert_eq!(p, Props::default());
        p.shrink();
        assert!(p.0.is_none());
        assert!(Props::default().get_mut().is_none());
    }

    #[test]
    fn debug_is_that_of_properties() {
        let full = Properties {
            user_properties: vec![("a".into(), "b".into())],
            ..Properties::default()
        };
        for p in [Properties::default(), full] {
            assert_eq!(format!("{:?}", Props::from(p.clone())), format!("{p:?}"));
            assert_eq!(format!("{:#?}", Props::from(p.clone())), format!("{p:#?}"));
        }
    }
}
