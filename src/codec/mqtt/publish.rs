//! PUBLISH (spec 3.3 of both versions): flags, topic name, packet identifier, properties
//! and payload.
//!
//! This module checks the wire rules only; it must never resolve topic aliases or judge
//! whether the sender may publish (the engine does), and never panic on any input.

use std::rc::Rc;

use super::header::{error, malformed};
use super::property::{self, PropCtx};
use super::{DecodeError, ErrorKind, ProtocolVersion, Publish, QoS};
use crate::codec::cursor::{field_len, Reader, Writer};

const FLAG_DUP: u8 = 0x08;
const FLAG_RETAIN: u8 = 0x01;

/// A topic name read from the wire: non-empty unless `allow_empty` (v5, where a topic alias
/// may stand for it), and free of wildcards.
pub(crate) fn check_topic_name(topic: &str, allow_empty: bool) -> Result<(), DecodeError> {
    // Topic names are at least one character long. [MQTT-4.7.3-1]
    if topic.is_empty() && !allow_empty {
        return Err(error(ErrorKind::TopicNameInvalid, "MQTT-4.7.3-1"));
    }
    // A topic name must not contain wildcard characters. [MQTT-3.3.2-2]
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(error(ErrorKind::TopicNameInvalid, "MQTT-3.3.2-2"));
    }
    Ok(())
}

/// Decodes a PUBLISH body; `flags` are the low four bits of the fixed header.
pub(crate) fn decode_publish(
    r: &mut Reader<'_>,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    // QoS 3 is malformed. [MQTT-3.3.1-4]
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or_else(|| malformed("MQTT-3.3.1-4"))?;
    let dup = flags & FLAG_DUP != 0;
    // DUP must be 0 for QoS 0. [MQTT-3.3.1-2]
    if dup && qos == QoS::AtMostOnce {
        return Err(malformed("MQTT-3.3.1-2"));
    }
    let topic = r.str()?;
    check_topic_name(topic, version.is_v5())?;
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        let id = r.u16()?;
        // QoS 1 and 2 need a non-zero packet identifier. [MQTT-2.3.1-1]
        if id == 0 {
            return Err(malformed("MQTT-2.3.1-1"));
        }
        id
    };
    let properties = if version.is_v5() {
        property::decode(r, PropCtx::Publish)?
    } else {
        Default::default()
    };
    Ok(Publish {
        dup,
        qos,
        retain: flags & FLAG_RETAIN != 0,
        topic: Rc::from(topic),
        packet_id,
        properties,
        payload: Rc::from(r.rest()),
    })
}

/// The first byte of the fixed header. DUP is never set for QoS 0. [MQTT-3.3.1-2]
pub(crate) fn publish_byte0(p: &Publish) -> u8 {
    let mut b = 0x30 | ((p.qos as u8) << 1);
    if p.dup && p.qos != QoS::AtMostOnce {
        b |= FLAG_DUP;
    }
    if p.retain {
        b |= FLAG_RETAIN;
    }
    b
}

pub(crate) fn publish_len(p: &Publish, version: ProtocolVersion) -> usize {
    let mut n = field_len(p.topic.len()).saturating_add(p.payload.len());
    if p.qos != QoS::AtMostOnce {
        n = n.saturating_add(2);
    }
    if version.is_v5() {
        n = n.saturating_add(property::wire_len(&p.properties, PropCtx::Publish));
    }
    n
}

pub(crate) fn encode_publish(p: &Publish, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_str(&p.topic);
    if p.qos != QoS::AtMostOnce {
        out.put_u16(p.packet_id);
    }
    if version.is_v5() {
        property::encode(&p.properties, PropCtx::Publish, out);
    }
    out.extend_from_slice(&p.payload);
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enc, err, fixture_round_trip, value_round_trip};
    use super::super::{Packet, Properties, Props};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    /// QoS 0 to "a/b", payload "hi".
    const PUBLISH_V311_QOS0: &[u8] = &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    /// QoS 1, packet id 1, payload "hi".
    const PUBLISH_V311_QOS1: &[u8] = &[
        0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, b'h', b'i',
    ];
    /// QoS 2, DUP, RETAIN, packet id 0x1234, empty payload.
    const PUBLISH_V311_QOS2_DUP_RETAIN: &[u8] =
        &[0x3D, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x12, 0x34];
    /// v5 QoS 0, no properties, payload "hi".
    const PUBLISH_V5_QOS0: &[u8] = &[0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'];
    /// v5 QoS 1, packet id 10, payload format 1, subscription id 7, topic alias 5.
    const PUBLISH_V5_QOS1_PROPS: &[u8] = &[
        0x32, 0x11, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, 0x07, 0x01, 0x01, 0x0B, 0x07, 0x23,
        0x00, 0x05, b'h', b'i',
    ];
    /// v5 QoS 0 with an empty topic and topic alias 1.
    const PUBLISH_V5_ALIAS_ONLY: &[u8] = &[0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, b'x'];

    fn publish(bytes: &[u8], v: ProtocolVersion) -> Publish {
        match fixture_round_trip(bytes, v) {
            Packet::Publish(p) => p,
            other => panic!("not a PUBLISH: {other:?}"),
        }
    }

    #[test]
    fn publish_fixtures_round_trip() {
        let p = publish(PUBLISH_V311_QOS0, V311);
        assert_eq!(
            (&*p.topic, &*p.payload, p.packet_id),
            ("a/b", &b"hi"[..], 0)
        );
        let p = publish(PUBLISH_V311_QOS1, V31);
        assert_eq!((p.qos, p.packet_id), (QoS::AtLeastOnce, 1));
        let p = publish(PUBLISH_V311_QOS2_DUP_RETAIN, V311);
        assert_eq!(
            (p.qos, p.dup, p.retain, p.packet_id),
            (QoS::ExactlyOnce, true, true, 0x1234)
        );
        assert!(p.payload.is_empty());
        let p = publish(PUBLISH_V5_QOS0, V5);
        assert_eq!(p.properties, Properties::default());
        let p = publish(PUBLISH_V5_QOS1_PROPS, V5);
        assert_eq!(p.properties.payload_format_indicator, Some(1));
        assert_eq!(p.properties.subscription_identifiers, vec![7]);
        assert_eq!(p.properties.topic_alias, Some(5));
        let p = publish(PUBLISH_V5_ALIAS_ONLY, V5);
        assert_eq!((&*p.topic, p.properties.topic_alias), ("", Some(1)));
    }

    #[test]
    fn publish_values_round_trip() {
        for v in [V31, V311, V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let mut p = Publish {
                    dup: qos != QoS::AtMostOnce,
                    qos,
                    retain: true,
                    topic: Rc::from("sport/tennis/player1"),
                    packet_id: if qos == QoS::AtMostOnce { 0 } else { 65_535 },
                    properties: Props::none(),
                    payload: Rc::from(vec![7u8; 300]),
                };
                if v.is_v5() {
                    p.properties.message_expiry_interval = Some(60);
                    p.properties.response_topic = Some("reply/here".into());
                    p.properties.correlation_data = Some(vec![1, 2, 3]);
                    p.properties.user_properties.push(("k".into(), "v".into()));
                }
                value_round_trip(&Packet::Publish(p), v);
            }
        }
    }

    #[test]
    fn publish_v3_drops_properties_and_qos0_drops_dup() {
        let p = Publish {
            dup: true,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: Rc::from("a/b"),
            packet_id: 0,
            properties: Properties {
                topic_alias: Some(3),
                ..Properties::default()
            }
            .into(),
            payload: Rc::from(&b"hi"[..]),
        };
        assert_eq!(enc(&Packet::Publish(p), V311), PUBLISH_V311_QOS0);
    }

    #[test]
    fn publish_qos3_is_malformed_mqtt_3_3_1_4() {
        for v in [V311, V5] {
            let mut b = PUBLISH_V311_QOS1.to_vec();
            b[0] = 0x36;
            let e = err(&b, v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.3.1-4"));
        }
    }

    #[test]
    fn publish_dup_with_qos0_is_malformed_mqtt_3_3_1_2() {
        for (bytes, v) in [(PUBLISH_V311_QOS0, V311), (PUBLISH_V5_QOS0, V5)] {
            let mut b = bytes.to_vec();
            b[0] = 0x38;
            let e = err(&b, v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.3.1-2"));
        }
    }

    #[test]
    fn publish_packet_id_zero_is_malformed_mqtt_2_3_1_1() {
        for (bytes, v) in [(PUBLISH_V311_QOS1, V311), (PUBLISH_V5_QOS1_PROPS, V5)] {
            let mut b = bytes.to_vec();
            b[7] = 0;
            b[8] = 0;
            let e = err(&b, v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.3.1-1"));
        }
    }

    #[test]
    fn publish_topic_with_wildcard_is_invalid_mqtt_3_3_2_2() {
        for (bytes, v) in [(PUBLISH_V311_QOS0, V311), (PUBLISH_V5_QOS0, V5)] {
            for w in [b'+', b'#'] {
                let mut b = bytes.to_vec();
                b[6] = w;
                let e = err(&b, v);
                assert_eq!(
                    (e.kind, e.clause),
                    (ErrorKind::TopicNameInvalid, "MQTT-3.3.2-2")
                );
            }
        }
    }

    #[test]
    fn publish_empty_topic_v311_is_invalid_mqtt_4_7_3_1() {
        let b = [0x30, 0x02, 0x00, 0x00];
        let e = err(&b, V311);
        assert_eq!(
            (e.kind, e.clause),
            (ErrorKind::TopicNameInvalid, "MQTT-4.7.3-1")
        );
        // 5.0 leaves an empty topic to the engine (a topic alias may stand for it).
        assert!(super::super::decode(&[0x30, 0x03, 0x00, 0x00, 0x00], V5).is_ok());
    }

    #[test]
    fn publish_v5_disallowed_property_is_malformed() {
        // Session Expiry Interval in PUBLISH.
        let b = [0x30, 0x08, 0x00, 0x01, b'a', 0x05, 0x11, 0x00, 0x00, 0x00];
        assert_eq!(err(&b, V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn publish_v5_property_length_overrun_is_malformed() {
        let b = [0x30, 0x05, 0x00, 0x01, b'a', 0x09, 0x01];
        assert_eq!(err(&b, V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn publish_truncated_topic_is_malformed() {
        let b = [0x30, 0x03, 0x00, 0x05, b'a'];
        assert_eq!(err(&b, V311).kind, ErrorKind::Malformed);
    }
}
