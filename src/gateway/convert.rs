//! Conversions between MQTT-SN fields and the engine's MQTT packets.
//!
//! Pure functions: no state, no I/O.

use std::rc::Rc;

use crate::codec::mqtt::topic::{valid_topic_filter, valid_topic_name};
use crate::codec::mqtt::{Connect, Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use crate::codec::mqttsn::{ReturnCode, SnQos};

/// Session expiry meaning "never", as MQTT 3.1.1 sessions without clean session behave.
const EXPIRY_NEVER: u32 = u32::MAX;

/// The MQTT 5.0 CONNECT that stands for an MQTT-SN client: no keep alive (the gateway
/// watches liveness), receive maximum 1 (the gateway has one message in flight per client),
/// and a session that lasts until the client cleans it, as MQTT-SN sessions do.
pub(super) fn engine_connect(client_id: String, clean: bool, username: Option<String>) -> Packet {
    let properties = Properties {
        receive_maximum: Some(1),
        session_expiry_interval: Some(if clean { 0 } else { EXPIRY_NEVER }),
        ..Properties::default()
    };
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V5,
        clean_start: clean,
        keep_alive: 0,
        properties: properties.into(),
        client_id,
        will: None,
        username,
        password: None,
        bridge: false,
    }))
}

/// The topic a two-character short topic id stands for, when it is a valid topic name.
pub(super) fn short_name(id: u16) -> Option<Rc<str>> {
    let bytes = id.to_be_bytes();
    let name = std::str::from_utf8(&bytes).ok()?;
    valid_topic_name(name).then(|| Rc::from(name))
}

/// The short topic id of a two-byte topic name, if it is one.
pub(super) fn short_id(topic: &str) -> Option<u16> {
    match topic.as_bytes() {
        [a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// A topic name sent by a client, if it is valid UTF-8 and a valid MQTT topic name.
pub(super) fn topic_name(bytes: &[u8]) -> Option<Rc<str>> {
    let name = std::str::from_utf8(bytes).ok()?;
    valid_topic_name(name).then(|| Rc::from(name))
}

/// A topic filter sent by a client, if valid.
pub(super) fn topic_filter(bytes: &[u8]) -> Option<String> {
    let filter = std::str::from_utf8(bytes).ok()?;
    valid_topic_filter(filter).then(|| filter.to_owned())
}

pub(super) fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// The MQTT QoS of an MQTT-SN QoS; `None` for -1, which MQTT has no word for.
pub(super) fn qos(q: SnQos) -> Option<QoS> {
    match q {
        SnQos::AtMostOnce => Some(QoS::AtMostOnce),
        SnQos::AtLeastOnce => Some(QoS::AtLeastOnce),
        SnQos::ExactlyOnce => Some(QoS::ExactlyOnce),
        SnQos::MinusOne => None,
    }
}

pub(super) fn sn_qos(q: QoS) -> SnQos {
    match q {
        QoS::AtMostOnce => SnQos::AtMostOnce,
        QoS::AtLeastOnce => SnQos::AtLeastOnce,
        QoS::ExactlyOnce => SnQos::ExactlyOnce,
    }
}

/// The MQTT-SN return code for an engine reason code: success is accepted, a busy or full
/// server is congestion, anything else is "not supported", MQTT-SN's general refusal.
pub(super) fn return_code(reason: ReasonCode) -> ReturnCode {
    match reason as u8 {
        0x00..=0x02 => ReturnCode::Accepted,
        // Server unavailable, server busy, quota exceeded.
        0x88 | 0x89 | 0x97 => ReturnCode::Congestion,
        _ => ReturnCode::NotSupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_round_trip() {
        assert_eq!(
            short_name(u16::from_be_bytes(*b"ab")).as_deref(),
            Some("ab")
        );
        assert_eq!(short_id("ab"), Some(u16::from_be_bytes(*b"ab")));
        assert_eq!(short_id("abc"), None);
        // Wildcards and invalid UTF-8 are no topic names.
        assert_eq!(short_name(u16::from_be_bytes(*b"a+")), None);
        assert_eq!(short_name(0xFFFF), None);
    }

    #[test]
    fn return_codes() {
        assert_eq!(return_code(ReasonCode::Success), ReturnCode::Accepted);
        assert_eq!(return_code(ReasonCode::GrantedQos1), ReturnCode::Accepted);
        assert_eq!(return_code(ReasonCode::ServerBusy), ReturnCode::Congestion);
        assert_eq!(
            return_code(ReasonCode::NotAuthorized),
            ReturnCode::NotSupported
        );
    }
}
