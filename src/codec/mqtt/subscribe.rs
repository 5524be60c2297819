//! SUBSCRIBE and SUBACK (spec 3.8 and 3.9 of both versions).
//!
//! Decoding checks the grammar of each filter and its options byte only. It must never
//! judge wildcard placement or shared-subscription syntax (the engine answers a bad filter
//! with a SUBACK failure code, see [`super::topic`]), and never panic on any input.

use super::header::{malformed, protocol, reason};
use super::property::{self, PropCtx};
use super::{
    DecodeError, ProtocolVersion, QoS, ReasonCode, ReasonPacket, SubAck, SubOptions, Subscribe,
};
use crate::codec::cursor::{field_len, Reader, Writer};

/// Reads a packet identifier that must not be 0. [MQTT-2.3.1-1]
pub(crate) fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(malformed("MQTT-2.3.1-1"));
    }
    Ok(id)
}

/// Reads a topic filter: a UTF-8 string at least one byte long. [MQTT-4.7.3-1]
pub(crate) fn filter<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let f = r.str()?;
    if f.is_empty() {
        return Err(malformed("MQTT-4.7.3-1"));
    }
    Ok(f)
}

fn options(byte: u8, version: ProtocolVersion) -> Result<SubOptions, DecodeError> {
    if version.is_v5() {
        // Bits 6 and 7 are reserved. [MQTT-3.8.3-5]
        if byte & 0xC0 != 0 {
            return Err(malformed("MQTT-3.8.3-5"));
        }
        // QoS 3 is malformed (3.8.3.1).
        let qos = QoS::from_u8(byte & 0x03).ok_or_else(|| malformed("3.8.3.1"))?;
        let retain_handling = (byte >> 4) & 0x03;
        // Retain Handling 3 is a protocol error (3.8.3.1).
        if retain_handling == 3 {
            return Err(protocol("3.8.3.1"));
        }
        Ok(SubOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    } else {
        // The upper six bits are reserved and the QoS is 0, 1 or 2. [MQTT-3.8.3-4]
        if byte & 0xFC != 0 {
            return Err(malformed("MQTT-3.8.3-4"));
        }
        let qos = QoS::from_u8(byte).ok_or_else(|| malformed("MQTT-3.8.3-4"))?;
        Ok(SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        })
    }
}

fn options_byte(o: &SubOptions, version: ProtocolVersion) -> u8 {
    let mut b = o.qos as u8;
    if version.is_v5() {
        if o.no_local {
            b |= 0x04;
        }
        if o.retain_as_published {
            b |= 0x08;
        }
        b |= (o.retain_handling & 0x03) << 4;
    }
    b
}

pub(crate) fn decode_subscribe(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if version.is_v5() {
        property::decode(r, PropCtx::Subscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let f = filter(r)?;
        let o = options(r.u8()?, version)?;
        filters.push((f.to_owned(), o));
    }
    // At least one topic filter. [MQTT-3.8.3-3]
    if filters.is_empty() {
        return Err(protocol("MQTT-3.8.3-3"));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

pub(crate) fn subscribe_len(s: &Subscribe, version: ProtocolVersion) -> usize {
    let mut n: usize = 2;
    if version.is_v5() {
        n = n.saturating_add(property::wire_len(&s.properties, PropCtx::Subscribe));
    }
    for (f, _) in &s.filters {
        n = n.saturating_add(field_len(f.len())).saturating_add(1);
    }
    n
}

pub(crate) fn encode_subscribe(s: &Subscribe, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u16(s.packet_id);
    if version.is_v5() {
        property::encode(&s.properties, PropCtx::Subscribe, out);
    }
    for (f, o) in &s.filters {
        out.put_str(f);
        out.put_u8(options_byte(o, version));
    }
}

pub(crate) fn decode_suback(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if version.is_v5() {
        property::decode(r, PropCtx::SubAck)?
    } else {
        Default::default()
    };
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = r.u8()?;
        let rc = if version.is_v5() {
            // Only the SUBACK reason codes (3.9.3).
            reason(code, ReasonPacket::SubAck, "3.9.3")?
        } else {
            // 3.1.1 return codes: 0, 1, 2 and 0x80 (3.1.1 3.9.3).
            match code {
                0x00 => ReasonCode::Success,
                0x01 => ReasonCode::GrantedQos1,
                0x02 => ReasonCode::GrantedQos2,
                0x80 => ReasonCode::UnspecifiedError,
                _ => return Err(malformed("3.9.3")),
            }
        };
        reasons.push(rc);
    }
    // One code per filter, and a SUBSCRIBE has at least one (3.9.3).
    if reasons.is_empty() {
        return Err(malformed("3.9.3"));
    }
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

pub(crate) fn suback_len(s: &SubAck, version: ProtocolVersion) -> usize {
    let n = s.reasons.len().saturating_add(2);
    if version.is_v5() {
        n.saturating_add(property::wire_len(&s.properties, PropCtx::SubAck))
    } else {
        n
    }
}

pub(crate) fn encode_suback(s: &SubAck, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u16(s.packet_id);
    if version.is_v5() {
        property::encode(&s.properties, PropCtx::SubAck, out);
        out.extend(s.reasons.iter().map(|r| *r as u8));
    } else {
        // 3.1.1 knows only the granted QoS and 0x80 for any failure.
        out.extend(s.reasons.iter().map(|r| match r {
            ReasonCode::Success => 0x00,
            ReasonCode::GrantedQos1 => 0x01,
            ReasonCode::GrantedQos2 => 0x02,
            _ => 0x80,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enc, err, fixture_round_trip, value_round_trip};
    use super::super::{ErrorKind, Packet, Properties, Props};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    /// Packet id 10: "a/+" at QoS 1, "b/#" at QoS 2.
    const SUBSCRIBE_V311: &[u8] = &[
        0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x03, b'b', b'/', b'#',
        0x02,
    ];
    /// Packet id 1, no properties, "t" with QoS 0.
    const SUBSCRIBE_V5_MIN: &[u8] = &[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', 0x00];
    /// Packet id 2, subscription id 5; "t" with QoS 2, no local, retain as published,
    /// retain handling 2.
    const SUBSCRIBE_V5_OPTS: &[u8] = &[
        0x82, 0x09, 0x00, 0x02, 0x02, 0x0B, 0x05, 0x00, 0x01, b't', 0x2E,
    ];
    const SUBACK_V311: &[u8] = &[0x90, 0x05, 0x00, 0x0A, 0x01, 0x80, 0x02];
    const SUBACK_V5: &[u8] = &[0x90, 0x07, 0x00, 0x0A, 0x00, 0x02, 0x97, 0xA2, 0x8F];

    fn with(bytes: &[u8], i: usize, v: u8) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b[i] = v;
        b
    }

    #[test]
    fn subscribe_fixtures_round_trip() {
        let Packet::Subscribe(s) = fixture_round_trip(SUBSCRIBE_V311, V311) else {
            panic!("not a SUBSCRIBE")
        };
        assert_eq!(s.packet_id, 10);
        let got: Vec<_> = s.filters.iter().map(|(f, o)| (f.as_str(), o.qos)).collect();
        assert_eq!(got, [("a/+", QoS::AtLeastOnce), ("b/#", QoS::ExactlyOnce)]);
        fixture_round_trip(SUBSCRIBE_V311, V31);
        fixture_round_trip(SUBSCRIBE_V5_MIN, V5);
        let Packet::Subscribe(s) = fixture_round_trip(SUBSCRIBE_V5_OPTS, V5) else {
            panic!("not a SUBSCRIBE")
        };
        assert_eq!(s.properties.subscription_identifiers, [5]);
        let want = SubOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: 2,
        };
        assert_eq!(s.filters, [("t".to_owned(), want)]);
    }

    #[test]
    fn subscribe_values_round_trip() {
        for v in [V311, V5] {
            let mut filters = Vec::new();
            for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
                .into_iter()
                .enumerate()
            {
                let o = if v.is_v5() {
                    SubOptions {
                        qos,
                        no_local: i == 1,
                        retain_as_published: i == 2,
                        retain_handling: i as u8,
                    }
                } else {
                    SubOptions {
                        qos,
                        no_local: false,
                        retain_as_published: false,
                        retain_handling: 0,
                    }
                };
                filters.push((format!("$share/g/x/{i}"), o));
            }
            let mut properties = Properties::default();
            if v.is_v5() {
                properties.subscription_identifiers.push(268_435_455);
                properties.user_properties.push(("u".into(), "p".into()));
            }
            value_round_trip(
                &Packet::Subscribe(Subscribe {
                    packet_id: 7,
                    properties: properties.into(),
                    filters,
                }),
                v,
            );
        }
    }

    #[test]
    fn subscribe_packet_id_zero_is_malformed_mqtt_2_3_1_1() {
        let e = err(&with(SUBSCRIBE_V311, 3, 0), V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.3.1-1"));
        let e = err(&with(SUBSCRIBE_V5_MIN, 3, 0), V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.3.1-1"));
    }

    #[test]
    fn subscribe_without_filters_is_protocol_error_mqtt_3_8_3_3() {
        let e = err(&[0x82, 0x02, 0x00, 0x01], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.8.3-3"));
        let e = err(&[0x82, 0x03, 0x00, 0x01, 0x00], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.8.3-3"));
    }

    #[test]
    fn subscribe_empty_filter_is_malformed_mqtt_4_7_3_1() {
        let e = err(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-4.7.3-1"));
        let e = err(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-4.7.3-1"));
    }

    #[test]
    fn subscribe_v311_reserved_option_bits_are_malformed_mqtt_3_8_3_4() {
        let e = err(&with(SUBSCRIBE_V311, 9, 0x05), V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.8.3-4"));
    }

    #[test]
    fn subscribe_v311_qos3_is_malformed_mqtt_3_8_3_4() {
        let e = err(&with(SUBSCRIBE_V311, 9, 0x03), V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.8.3-4"));
    }

    #[test]
    fn subscribe_v5_reserved_option_bits_are_malformed_mqtt_3_8_3_5() {
        for b in [0x40, 0x80] {
            let e = err(&with(SUBSCRIBE_V5_MIN, 8, b), V5);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.8.3-5"));
        }
    }

    #[test]
    fn subscribe_v5_qos3_is_malformed() {
        assert_eq!(
            err(&with(SUBSCRIBE_V5_MIN, 8, 0x03), V5).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn subscribe_v5_retain_handling_3_is_protocol_error() {
        assert_eq!(
            err(&with(SUBSCRIBE_V5_MIN, 8, 0x30), V5).kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn subscribe_flags_not_0010_are_malformed_mqtt_2_2_2_1() {
        for v in [V311, V5] {
            let e = err(&with(SUBSCRIBE_V311, 0, 0x80), v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.2.2-2"));
        }
    }

    #[test]
    fn subscribe_missing_options_byte_is_malformed() {
        let e = err(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b't'], V311);
        assert_eq!(e.kind, ErrorKind::Malformed);
    }

    #[test]
    fn subscribe_v5_second_subscription_identifier_is_protocol_error() {
        let b = [
            0x82, 0x0B, 0x00, 0x02, 0x04, 0x0B, 0x05, 0x0B, 0x06, 0x00, 0x01, b't', 0x00,
        ];
        assert_eq!(err(&b, V5).kind, ErrorKind::Protocol);
    }

    #[test]
    fn suback_fixtures_round_trip() {
        let Packet::SubAck(s) = fixture_round_trip(SUBACK_V311, V311) else {
            panic!("not a SUBACK")
        };
        let want = [
            ReasonCode::GrantedQos1,
            ReasonCode::UnspecifiedError,
            ReasonCode::GrantedQos2,
        ];
        assert_eq!(s.reasons, want);
        let Packet::SubAck(s) = fixture_round_trip(SUBACK_V5, V5) else {
            panic!("not a SUBACK")
        };
        let want = [
            ReasonCode::GrantedQos2,
            ReasonCode::QuotaExceeded,
            ReasonCode::WildcardSubscriptionsNotSupported,
            ReasonCode::TopicFilterInvalid,
        ];
        assert_eq!(s.reasons, want);
    }

    #[test]
    fn suback_values_round_trip() {
        let all: Vec<_> = ReasonCode::ALL
            .into_iter()
            .filter(|r| r.allowed_in(ReasonPacket::SubAck))
            .collect();
        let properties = Properties {
            reason_string: Some("r".into()),
            ..Properties::default()
        };
        let s = SubAck {
            packet_id: 3,
            properties: properties.into(),
            reasons: all,
        };
        value_round_trip(&Packet::SubAck(s), V5);
        let reasons = vec![
            ReasonCode::Success,
            ReasonCode::UnspecifiedError,
            ReasonCode::GrantedQos2,
        ];
        let s = SubAck {
            packet_id: 3,
            properties: Props::none(),
            reasons,
        };
        value_round_trip(&Packet::SubAck(s), V311);
    }

    #[test]
    fn suback_v311_maps_failures_to_0x80() {
        let reasons = vec![ReasonCode::NotAuthorized, ReasonCode::GrantedQos1];
        let s = SubAck {
            packet_id: 10,
            properties: Props::none(),
            reasons,
        };
        assert_eq!(
            enc(&Packet::SubAck(s), V311),
            [0x90, 0x04, 0x00, 0x0A, 0x80, 0x01]
        );
    }

    #[test]
    fn suback_bad_codes_are_malformed() {
        assert_eq!(
            err(&with(SUBACK_V311, 5, 0x81), V311).kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            err(&with(SUBACK_V311, 5, 0x03), V311).kind,
            ErrorKind::Malformed
        );
        // 0x10 is not a SUBACK reason.
        assert_eq!(
            err(&with(SUBACK_V5, 6, 0x10), V5).kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            err(&[0x90, 0x02, 0x00, 0x01], V311).kind,
            ErrorKind::Malformed
        );
    }
}
