//! CONNECT and CONNACK: the connection handshake (spec 3.1 and 3.2 of both versions).
//!
//! CONNECT names its own protocol version, so it decodes and encodes by the version it
//! carries. This module must never decide whether a client identifier, a user name or a
//! password is acceptable (the engine does), and never panic on any input.

use super::header::{error, malformed, protocol, reason};
use super::property::{self, PropCtx};
use super::publish::check_topic_name;
use super::{
    ConnAck, Connect, DecodeError, ErrorKind, ProtocolVersion, QoS, ReasonCode, ReasonPacket, Will,
};
use crate::codec::cursor::{field_len, Reader, Writer};

const NAME_MQTT: &str = "MQTT";
const NAME_MQISDP: &str = "MQIsdp";

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

fn unsupported(clause: &'static str) -> DecodeError {
    error(ErrorKind::UnsupportedProtocolVersion, clause)
}

fn protocol_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V31 => NAME_MQISDP,
        ProtocolVersion::V311 | ProtocolVersion::V5 => NAME_MQTT,
    }
}

/// The bit of the protocol level that marks a bridge.
const BRIDGE_BIT: u8 = 0x80;

/// Decodes a CONNECT body (everything after the fixed header).
pub(crate) fn decode_connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
    let name = r.str()?;
    let level = r.u8()?;
    // The high bit of a 3.1/3.1.1 level marks a bridge (a non-normative extension that
    // mosquitto and other brokers speak).
    let bridge = level & BRIDGE_BIT != 0 && level & !BRIDGE_BIT < 5;
    let version = match (name, level & !BRIDGE_BIT) {
        (NAME_MQTT, 4) => ProtocolVersion::V311,
        (NAME_MQTT, 5) if !bridge => ProtocolVersion::V5,
        (NAME_MQISDP, 3) => ProtocolVersion::V31,
        // A known protocol name at a level this server does not speak. [MQTT-3.1.2-2]
        (NAME_MQTT | NAME_MQISDP, _) => return Err(unsupported("MQTT-3.1.2-2")),
        // An unknown protocol name. [MQTT-3.1.2-1]
        _ => return Err(unsupported("MQTT-3.1.2-1")),
    };
    let v5 = version.is_v5();
    let flags = r.u8()?;
    // The reserved flag bit must be 0. [MQTT-3.1.2-3]
    if flags & FLAG_RESERVED != 0 {
        return Err(malformed("MQTT-3.1.2-3"));
    }
    let will_flag = flags & FLAG_WILL != 0;
    let will_qos_bits = (flags >> 3) & 0x03;
    let will_retain = flags & FLAG_WILL_RETAIN != 0;
    if !will_flag {
        // Without a will, Will QoS must be 0 [MQTT-3.1.2-11] [MQTT-3.1.2-13] ...
        if will_qos_bits != 0 {
            return Err(malformed("MQTT-3.1.2-13"));
        }
        // ... and Will Retain must be 0. [MQTT-3.1.2-11] [MQTT-3.1.2-15]
        if will_retain {
            return Err(malformed("MQTT-3.1.2-15"));
        }
    }
    // Will QoS 3 is malformed. [MQTT-3.1.2-14]
    let will_qos = QoS::from_u8(will_qos_bits).ok_or_else(|| malformed("MQTT-3.1.2-14"))?;
    let has_username = flags & FLAG_USERNAME != 0;
    let has_password = flags & FLAG_PASSWORD != 0;
    // 3.1.1: a password requires a user name (5.0 allows a password alone). [MQTT-3.1.2-22]
    if !v5 && has_password && !has_username {
        return Err(malformed("MQTT-3.1.2-22"));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        let p = property::decode(r, PropCtx::Connect)?;
        // Authentication Data without an Authentication Method is a protocol error
        // (3.1.2.11.10).
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(protocol("3.1.2.11.10"));
        }
        p
    } else {
        Default::default()
    };
    // The client identifier may be empty; the engine decides whether to accept it.
    let client_id = r.str()?.to_owned();
    let will = if will_flag {
        let properties = if v5 {
            property::decode(r, PropCtx::Will)?
        } else {
            Default::default()
        };
        let topic = r.str()?;
        // The will topic becomes a PUBLISH topic: non-empty, no wildcards.
        check_topic_name(topic, false)?;
        let payload = r.bin()?.to_vec();
        Some(Will {
            topic: topic.to_owned(),
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.str()?.to_owned())
    } else {
        None
    };
    let password = if has_password {
        Some(r.bin()?.to_vec())
    } else {
        None
    };
    Ok(Connect {
        protocol: version,
        clean_start: flags & FLAG_CLEAN != 0,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
        bridge,
    })
}

/// The CONNECT body length, in the version the packet names.
pub(crate) fn connect_len(c: &Connect) -> usize {
    let v5 = c.protocol.is_v5();
    let mut n = field_len(protocol_name(c.protocol).len()) + 1 + 1 + 2;
    if v5 {
        n = n.saturating_add(property::wire_len(&c.properties, PropCtx::Connect));
    }
    n = n.saturating_add(field_len(c.client_id.len()));
    if let Some(w) = &c.will {
        if v5 {
            n = n.saturating_add(property::wire_len(&w.properties, PropCtx::Will));
        }
        n = n
            .saturating_add(field_len(w.topic.len()))
            .saturating_add(field_len(w.payload.len()));
    }
    if let Some(u) = &c.username {
        n = n.saturating_add(field_len(u.len()));
    }
    if let Some(p) = &c.password {
        n = n.saturating_add(field_len(p.len()));
    }
    n
}

/// Appends the CONNECT body, in the version the packet names.
pub(crate) fn encode_connect(c: &Connect, out: &mut Vec<u8>) {
    let v5 = c.protocol.is_v5();
    out.put_str(protocol_name(c.protocol));
    let bridge = if c.bridge && !v5 { BRIDGE_BIT } else { 0 };
    out.put_u8(c.protocol.level() | bridge);
    let mut flags = 0u8;
    if c.clean_start {
        flags |= FLAG_CLEAN;
    }
    if let Some(w) = &c.will {
        flags |= FLAG_WILL | ((w.qos as u8) << 3);
        if w.retain {
            flags |= FLAG_WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= FLAG_USERNAME;
    }
    if c.password.is_some() {
        flags |= FLAG_PASSWORD;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v5 {
        property::encode(&c.properties, PropCtx::Connect, out);
    }
    out.put_str(&c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            property::encode(&w.properties, PropCtx::Will, out);
        }
        out.put_str(&w.topic);
        out.put_bin(&w.payload);
    }
    if let Some(u) = &c.username {
        out.put_str(u);
    }
    if let Some(p) = &c.password {
        out.put_bin(p);
    }
}

/// Decodes a CONNACK body.
pub(crate) fn decode_connack(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // Acknowledge flags bits 7-1 are reserved and must be 0 (3.2.2.1).
    if flags & 0xFE != 0 {
        return Err(malformed("3.2.2.1"));
    }
    let session_present = flags & 0x01 != 0;
    let code = r.u8()?;
    let (reason, properties) = if version.is_v5() {
        // Only the CONNACK reason codes (3.2.2.2).
        let reason = reason(code, ReasonPacket::ConnAck, "3.2.2.2")?;
        (reason, property::decode(r, PropCtx::ConnAck)?)
    } else {
        // 3.1.1 return codes 6-255 are reserved (3.1.1 3.2.2.3).
        let reason = ReasonCode::from_v3_connack(code).ok_or_else(|| malformed("3.2.2.3"))?;
        (reason, Default::default())
    };
    // A refusal must not claim a session. [MQTT-3.2.2-4] (3.1.1) [MQTT-3.2.2-6] (5.0)
    if session_present && reason.is_error() {
        let clause = if version.is_v5() {
            "MQTT-3.2.2-6"
        } else {
            "MQTT-3.2.2-4"
        };
        return Err(protocol(clause));
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

pub(crate) fn connack_len(c: &ConnAck, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        property::wire_len(&c.properties, PropCtx::ConnAck).saturating_add(2)
    } else {
        2
    }
}

pub(crate) fn encode_connack(c: &ConnAck, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u8(u8::from(c.session_present));
    if version.is_v5() {
        out.put_u8(c.reason as u8);
        property::encode(&c.properties, PropCtx::ConnAck, out);
    } else {
        out.put_u8(c.reason.v3_connack());
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, fixture_round_trip, value_round_trip};
    use super::super::{decode, Packet, Properties, Props};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    /// 3.1.1, clean session, keep alive 60, empty client id.
    const CONNECT_V311_MIN: &[u8] = &[
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    /// 3.1 ("MQIsdp", level 3), client id "abc".
    const CONNECT_V31: &[u8] = &[
        0x10, 0x11, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x03, b'a', b'b', b'c',
    ];
    /// 3.1.1 with will (QoS 1, retained), user name and password.
    const CONNECT_V311_FULL: &[u8] = &[
        0x10, 0x1E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xEE, 0x00, 0x0A, 0x00, 0x02, b'c',
        b'1', 0x00, 0x03, b'w', b'/', b't', 0x00, 0x02, b'b', b'y', 0x00, 0x01, b'u', 0x00, 0x02,
        b'p', b'w',
    ];
    /// 5.0, clean start, keep alive 60, no properties, empty client id.
    const CONNECT_V5_MIN: &[u8] = &[
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00,
    ];
    /// 5.0 with session expiry 30, receive maximum 20, a will (QoS 2, delay 5), user name
    /// and password.
    const CONNECT_V5_FULL: &[u8] = &[
        0x10, 0x2D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xD4, 0x00, 0x0A, 0x08, 0x11, 0x00,
        0x00, 0x00, 0x1E, 0x21, 0x00, 0x14, 0x00, 0x02, b'c', b'1', 0x05, 0x18, 0x00, 0x00, 0x00,
        0x05, 0x00, 0x03, b'w', b'/', b't', 0x00, 0x02, b'b', b'y', 0x00, 0x01, b'u', 0x00, 0x02,
        b'p', b'w',
    ];
    const CONNACK_V311: &[u8] = &[0x20, 0x02, 0x00, 0x00];
    const CONNACK_V311_REFUSED: &[u8] = &[0x20, 0x02, 0x00, 0x05];
    const CONNACK_V311_SESSION: &[u8] = &[0x20, 0x02, 0x01, 0x00];
    const CONNACK_V5_MIN: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
    /// Session present; assigned client id "id", topic alias maximum 10, maximum QoS 1.
    const CONNACK_V5_PROPS: &[u8] = &[
        0x20, 0x0D, 0x01, 0x00, 0x0A, 0x12, 0x00, 0x02, b'i', b'd', 0x22, 0x00, 0x0A, 0x24, 0x01,
    ];

    /// Replaces byte `i` of a fixture.
    fn with(bytes: &[u8], i: usize, v: u8) -> Vec<u8> {
        let mut b = bytes.to_vec();
        if let Some(x) = b.get_mut(i) {
            *x = v;
        }
        b
    }

    fn connect(bytes: &[u8], v: ProtocolVersion) -> Connect {
        match fixture_round_trip(bytes, v) {
            Packet::Connect(c) => *c,
            other => panic!("not a CONNECT: {other:?}"),
        }
    }

    #[test]
    fn connect_fixtures_round_trip() {
        let c = connect(CONNECT_V311_MIN, V311);
        assert_eq!((c.protocol, c.clean_start, c.keep_alive), (V311, true, 60));
        assert_eq!(c.client_id, "");
        let c = connect(CONNECT_V31, V31);
        assert_eq!((c.protocol, c.client_id.as_str()), (V31, "abc"));
        let c = connect(CONNECT_V311_FULL, V311);
        let w = c
            .will
            .clone()
            .map(|w| (w.topic, w.payload, w.qos, w.retain));
        assert_eq!(
            w,
            Some(("w/t".into(), b"by".to_vec(), QoS::AtLeastOnce, true))
        );
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        let c = connect(CONNECT_V5_MIN, V5);
        assert_eq!((c.protocol, c.properties), (V5, Props::none()));
        let c = connect(CONNECT_V5_FULL, V5);
        assert_eq!(c.properties.session_expiry_interval, Some(30));
        assert_eq!(c.properties.receive_maximum, Some(20));
        assert!(!c.clean_start);
        let w = c
            .will
            .map(|w| (w.qos, w.retain, w.properties.will_delay_interval));
        assert_eq!(w, Some((QoS::ExactlyOnce, false, Some(5))));
    }

    #[test]
    fn connect_decodes_by_its_own_level() {
        for v in [V31, V311, V5] {
            assert!(
                matches!(decode(CONNECT_V5_MIN, v), Ok(Packet::Connect(c)) if c.protocol == V5)
            );
            let p = decode(CONNECT_V311_MIN, v);
            assert!(matches!(p, Ok(Packet::Connect(c)) if c.protocol == V311));
        }
    }

    #[test]
    fn connect_values_round_trip() {
        for protocol in [V31, V311, V5] {
            let mut c = Connect {
                protocol,
                clean_start: false,
                keep_alive: 0xFFFF,
                properties: Props::none(),
                client_id: "client-é".into(),
                will: Some(Will {
                    topic: "last/will".into(),
                    payload: vec![0, 1, 2, 255],
                    qos: QoS::ExactlyOnce,
                    retain: true,
                    properties: Props::none(),
                }),
                username: Some("user".into()),
                password: Some(vec![0xFF; 4]),
                bridge: false,
            };
            if protocol.is_v5() {
                c.properties.authentication_method = Some("PLAIN".into());
                c.properties.authentication_data = Some(vec![1]);
                c.properties.user_properties.push(("a".into(), "b".into()));
                if let Some(w) = c.will.as_mut() {
                    w.properties.content_type = Some("text/plain".into());
                    w.properties.message_expiry_interval = Some(9);
                }
            }
            value_round_trip(&Packet::Connect(Box::new(c)), protocol);
        }
    }

    #[test]
    fn the_bridge_bit_marks_a_3_1_1_bridge_and_round_trips() {
        let c = Connect {
            protocol: V311,
            clean_start: true,
            keep_alive: 60,
            properties: Props::none(),
            client_id: "b".into(),
            will: None,
            username: None,
            password: None,
            bridge: true,
        };
        let bytes = super::super::test_support::enc(&Packet::Connect(Box::new(c.clone())), V311);
        assert_eq!(bytes[8], 0x84, "protocol level with the bridge bit");
        value_round_trip(&Packet::Connect(Box::new(c)), V311);
        // 0x85 is no version at all: refused like any unknown level.
        let mut v5 = bytes.clone();
        v5[8] = 0x85;
        assert!(decode(&v5, V311).is_err());
    }

    #[test]
    fn connect_v5_password_without_username_is_allowed() {
        let c = Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 10,
            properties: Props::none(),
            client_id: "c".into(),
            will: None,
            username: None,
            password: Some(b"secret".to_vec()),
            bridge: false,
        };
        value_round_trip(&Packet::Connect(Box::new(c)), V5);
    }

    #[test]
    fn connect_unknown_protocol_name_is_unsupported_mqtt_3_1_2_1() {
        let b = with(CONNECT_V311_MIN, 7, b'X');
        let e = err(&b, V311);
        assert_eq!(
            (e.kind, e.clause),
            (ErrorKind::UnsupportedProtocolVersion, "MQTT-3.1.2-1")
        );
    }

    #[test]
    fn connect_unknown_level_is_unsupported_mqtt_3_1_2_2() {
        for (bytes, i, level) in [
            (CONNECT_V311_MIN, 8, 3),
            (CONNECT_V311_MIN, 8, 6),
            (CONNECT_V31, 10, 4),
        ] {
            let e = err(&with(bytes, i, level), V311);
            assert_eq!(e.kind, ErrorKind::UnsupportedProtocolVersion);
            assert_eq!(e.clause, "MQTT-3.1.2-2");
        }
    }

    #[test]
    fn connect_reserved_flag_is_malformed_mqtt_3_1_2_3() {
        for (bytes, v) in [(CONNECT_V311_MIN, V311), (CONNECT_V5_MIN, V5)] {
            let e = err(&with(bytes, 9, 0x03), v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.1.2-3"));
        }
    }

    #[test]
    fn connect_will_qos_without_will_is_malformed_mqtt_3_1_2_13() {
        for (bytes, v) in [(CONNECT_V311_MIN, V311), (CONNECT_V5_MIN, V5)] {
            let e = err(&with(bytes, 9, 0x02 | 0x08), v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.1.2-13"));
        }
    }

    #[test]
    fn connect_will_retain_without_will_is_malformed_mqtt_3_1_2_15() {
        for (bytes, v) in [(CONNECT_V311_MIN, V311), (CONNECT_V5_MIN, V5)] {
            let e = err(&with(bytes, 9, 0x02 | 0x20), v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.1.2-15"));
        }
    }

    #[test]
    fn connect_will_qos3_is_malformed_mqtt_3_1_2_14() {
        for (bytes, v) in [(CONNECT_V311_FULL, V311), (CONNECT_V5_FULL, V5)] {
            let flags = bytes.get(9).copied().unwrap_or(0) | 0x18;
            let e = err(&with(bytes, 9, flags), v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.1.2-14"));
        }
    }

    #[test]
    fn connect_v311_password_without_username_is_malformed_mqtt_3_1_2_22() {
        // CONNECT_V311_MIN with the password flag and an empty password appended.
        let mut b = with(CONNECT_V311_MIN, 9, 0x42);
        b.extend_from_slice(&[0x00, 0x00]);
        b[1] = 0x0E;
        let e = err(&b, V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.1.2-22"));
    }

    #[test]
    fn connect_will_topic_with_wildcard_is_invalid_mqtt_3_3_2_2() {
        for (bytes, v, i) in [(CONNECT_V311_FULL, V311, 20), (CONNECT_V5_FULL, V5, 35)] {
            assert_eq!(bytes.get(i), Some(&b't'));
            let e = err(&with(bytes, i, b'#'), v);
            assert_eq!(
                (e.kind, e.clause),
                (ErrorKind::TopicNameInvalid, "MQTT-3.3.2-2")
            );
            let e = err(&with(bytes, i, b'+'), v);
            assert_eq!(e.kind, ErrorKind::TopicNameInvalid);
        }
    }

    #[test]
    fn connect_empty_will_topic_is_invalid_mqtt_4_7_3_1() {
        let c = Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 0,
            properties: Props::none(),
            client_id: String::new(),
            will: Some(Will {
                topic: String::new(),
                payload: Vec::new(),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Props::none(),
            }),
            username: None,
            password: None,
            bridge: false,
        };
        let b = super::super::test_support::enc(&Packet::Connect(Box::new(c)), V5);
        let e = err(&b, V5);
        assert_eq!(
            (e.kind, e.clause),
            (ErrorKind::TopicNameInvalid, "MQTT-4.7.3-1")
        );
    }

    #[test]
    fn connect_v5_authentication_data_without_method_is_protocol_error() {
        // CONNECT_V5_MIN with properties [0x16, 0x00, 0x00] (empty authentication data).
        let mut b = CONNECT_V5_MIN.to_vec();
        b.truncate(12);
        b.extend_from_slice(&[0x03, 0x16, 0x00, 0x00, 0x00, 0x00]);
        b[1] = 0x10;
        assert_eq!(err(&b, V5).kind, ErrorKind::Protocol);
    }

    #[test]
    fn connect_v5_disallowed_property_is_malformed() {
        // Topic Alias (PUBLISH only) in CONNECT.
        let mut b = CONNECT_V5_MIN.to_vec();
        b.truncate(12);
        b.extend_from_slice(&[0x03, 0x23, 0x00, 0x01, 0x00, 0x00]);
        b[1] = 0x10;
        assert_eq!(err(&b, V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn connect_trailing_bytes_are_malformed() {
        let mut b = CONNECT_V311_MIN.to_vec();
        b.push(0);
        b[1] += 1;
        assert_eq!(err(&b, V311).kind, ErrorKind::Malformed);
    }

    #[test]
    fn connect_missing_username_is_malformed() {
        // User name flag set, payload ends after the client identifier.
        let b = with(CONNECT_V311_MIN, 9, 0x82);
        assert_eq!(err(&b, V311).kind, ErrorKind::Malformed);
    }

    #[test]
    fn connack_fixtures_round_trip() {
        let p = fixture_round_trip(CONNACK_V311, V311);
        let want = ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Props::none(),
        };
        assert_eq!(p, Packet::ConnAck(want));
        let p = fixture_round_trip(CONNACK_V311_REFUSED, V311);
        assert!(matches!(p, Packet::ConnAck(c) if c.reason == ReasonCode::NotAuthorized));
        let p = fixture_round_trip(CONNACK_V311_SESSION, V31);
        assert!(matches!(p, Packet::ConnAck(c) if c.session_present));
        fixture_round_trip(CONNACK_V5_MIN, V5);
        let p = fixture_round_trip(CONNACK_V5_PROPS, V5);
        let Packet::ConnAck(c) = p else {
            panic!("not a CONNACK")
        };
        assert!(c.session_present);
        assert_eq!(
            c.properties.assigned_client_identifier.as_deref(),
            Some("id")
        );
        assert_eq!(c.properties.topic_alias_maximum, Some(10));
        assert_eq!(c.properties.maximum_qos, Some(1));
    }

    #[test]
    fn connack_values_round_trip() {
        for reason in ReasonCode::ALL {
            if !reason.allowed_in(ReasonPacket::ConnAck) {
                continue;
            }
            let c = ConnAck {
                session_present: !reason.is_error(),
                reason,
                properties: Properties {
                    reason_string: Some(reason.text().into()),
                    ..Properties::default()
                }
                .into(),
            };
            value_round_trip(&Packet::ConnAck(c), V5);
        }
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v3_connack(code).unwrap_or(ReasonCode::Success);
            let c = ConnAck {
                session_present: false,
                reason,
                properties: Props::none(),
            };
            value_round_trip(&Packet::ConnAck(c), V311);
        }
    }

    #[test]
    fn connack_v3_maps_v5_reasons() {
        let c = ConnAck {
            session_present: false,
            reason: ReasonCode::Banned,
            properties: Props::none(),
        };
        let b = super::super::test_support::enc(&Packet::ConnAck(c), V311);
        assert_eq!(b, [0x20, 0x02, 0x00, 0x05]);
    }

    #[test]
    fn connack_v311_reserved_return_code_is_malformed() {
        assert_eq!(
            err(&with(CONNACK_V311, 3, 6), V311).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn connack_reserved_flags_are_malformed() {
        assert_eq!(
            err(&with(CONNACK_V311, 2, 0x02), V311).kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            err(&with(CONNACK_V5_MIN, 2, 0x80), V5).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn connack_v5_reason_not_for_connack_is_malformed() {
        // 0x04 (disconnect with will) is not a CONNACK reason.
        assert_eq!(
            err(&with(CONNACK_V5_MIN, 3, 0x04), V5).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn connack_session_present_on_refusal_is_protocol_error_mqtt_3_2_2_4() {
        let e = err(&[0x20, 0x02, 0x01, 0x05], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.2.2-4"));
        let e = err(&[0x20, 0x03, 0x01, 0x87, 0x00], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.2.2-6"));
    }
}
