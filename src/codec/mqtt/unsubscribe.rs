//! UNSUBSCRIBE and UNSUBACK (spec 3.10 and 3.11 of both versions).
//!
//! This module must never judge whether a filter names an existing subscription (the engine
//! does), and never panic on any input.

use super::header::{malformed, protocol, reason};
use super::property::{self, PropCtx};
use super::subscribe::{filter, packet_id};
use super::{DecodeError, ProtocolVersion, ReasonPacket, UnsubAck, Unsubscribe};
use crate::codec::cursor::{field_len, Reader, Writer};

pub(crate) fn decode_unsubscribe(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if version.is_v5() {
        property::decode(r, PropCtx::Unsubscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(filter(r)?.to_owned());
    }
    // At least one topic filter. [MQTT-3.10.3-2]
    if filters.is_empty() {
        return Err(protocol("MQTT-3.10.3-2"));
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

pub(crate) fn unsubscribe_len(u: &Unsubscribe, version: ProtocolVersion) -> usize {
    let mut n: usize = 2;
    if version.is_v5() {
        n = n.saturating_add(property::wire_len(&u.properties, PropCtx::Unsubscribe));
    }
    for f in &u.filters {
        n = n.saturating_add(field_len(f.len()));
    }
    n
}

pub(crate) fn encode_unsubscribe(u: &Unsubscribe, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u16(u.packet_id);
    if version.is_v5() {
        property::encode(&u.properties, PropCtx::Unsubscribe, out);
    }
    for f in &u.filters {
        out.put_str(f);
    }
}

pub(crate) fn decode_unsuback(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    if !version.is_v5() {
        // The 3.1.1 UNSUBACK is the packet identifier alone (3.1.1 3.11.1).
        if !r.is_empty() {
            return Err(malformed("3.11.1"));
        }
        return Ok(UnsubAck {
            packet_id,
            properties: Default::default(),
            reasons: Vec::new(),
        });
    }
    let properties = property::decode(r, PropCtx::UnsubAck)?;
    let mut reasons = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        // Only the UNSUBACK reason codes (3.11.3).
        reasons.push(reason(r.u8()?, ReasonPacket::UnsubAck, "3.11.3")?);
    }
    // One code per filter, and an UNSUBSCRIBE has at least one (3.11.3).
    if reasons.is_empty() {
        return Err(malformed("3.11.3"));
    }
    Ok(UnsubAck {
        packet_id,
        properties,
        reasons,
    })
}

pub(crate) fn unsuback_len(u: &UnsubAck, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        property::wire_len(&u.properties, PropCtx::UnsubAck)
            .saturating_add(2)
            .saturating_add(u.reasons.len())
    } else {
        2
    }
}

pub(crate) fn encode_unsuback(u: &UnsubAck, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u16(u.packet_id);
    if version.is_v5() {
        property::encode(&u.properties, PropCtx::UnsubAck, out);
        out.extend(u.reasons.iter().map(|r| *r as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enc, err, fixture_round_trip, value_round_trip};
    use super::super::{ErrorKind, Packet, Properties, Props, ReasonCode};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    /// Packet id 5: "a/b" and "c/#".
    const UNSUBSCRIBE_V311: &[u8] = &[
        0xA2, 0x0C, 0x00, 0x05, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'#',
    ];
    /// Packet id 5, no properties, "t".
    const UNSUBSCRIBE_V5: &[u8] = &[0xA2, 0x06, 0x00, 0x05, 0x00, 0x00, 0x01, b't'];
    const UNSUBACK_V311: &[u8] = &[0xB0, 0x02, 0x00, 0x05];
    /// Success, No subscription existed.
    const UNSUBACK_V5: &[u8] = &[0xB0, 0x05, 0x00, 0x05, 0x00, 0x00, 0x11];

    #[test]
    fn unsubscribe_fixtures_round_trip() {
        let Packet::Unsubscribe(u) = fixture_round_trip(UNSUBSCRIBE_V311, V311) else {
            panic!("not an UNSUBSCRIBE")
        };
        assert_eq!(
            (u.packet_id, u.filters),
            (5, vec!["a/b".to_owned(), "c/#".to_owned()])
        );
        fixture_round_trip(UNSUBSCRIBE_V311, V31);
        let Packet::Unsubscribe(u) = fixture_round_trip(UNSUBSCRIBE_V5, V5) else {
            panic!("not an UNSUBSCRIBE")
        };
        assert_eq!(u.filters, ["t"]);
    }

    #[test]
    fn unsubscribe_values_round_trip() {
        for v in [V311, V5] {
            let mut properties = Properties::default();
            if v.is_v5() {
                properties.user_properties.push(("k".into(), "v".into()));
            }
            let filters = vec!["x".to_owned(), "$share/g/y/+".to_owned(), "#".to_owned()];
            let u = Unsubscribe {
                packet_id: 0xFFFF,
                properties: properties.into(),
                filters,
            };
            value_round_trip(&Packet::Unsubscribe(u), v);
        }
    }

    #[test]
    fn unsubscribe_packet_id_zero_is_malformed_mqtt_2_3_1_1() {
        for (bytes, v) in [(UNSUBSCRIBE_V311, V311), (UNSUBSCRIBE_V5, V5)] {
            let mut b = bytes.to_vec();
            b[3] = 0;
            let e = err(&b, v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.3.1-1"));
        }
    }

    #[test]
    fn unsubscribe_without_filters_is_protocol_error_mqtt_3_10_3_2() {
        let e = err(&[0xA2, 0x02, 0x00, 0x01], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.10.3-2"));
        let e = err(&[0xA2, 0x03, 0x00, 0x01, 0x00], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Protocol, "MQTT-3.10.3-2"));
    }

    #[test]
    fn unsubscribe_empty_filter_is_malformed_mqtt_4_7_3_1() {
        let e = err(&[0xA2, 0x04, 0x00, 0x01, 0x00, 0x00], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-4.7.3-1"));
    }

    #[test]
    fn unsubscribe_flags_not_0010_are_malformed_mqtt_2_2_2_1() {
        let mut b = UNSUBSCRIBE_V311.to_vec();
        b[0] = 0xA0;
        let e = err(&b, V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.2.2-2"));
    }

    #[test]
    fn unsubscribe_v5_disallowed_property_is_malformed() {
        // Subscription Identifier is not allowed in UNSUBSCRIBE.
        let b = [0xA2, 0x08, 0x00, 0x05, 0x02, 0x0B, 0x01, 0x00, 0x01, b't'];
        assert_eq!(err(&b[..], V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn unsuback_fixtures_round_trip() {
        let p = fixture_round_trip(UNSUBACK_V311, V311);
        let want = UnsubAck {
            packet_id: 5,
            properties: Props::none(),
            reasons: vec![],
        };
        assert_eq!(p, Packet::UnsubAck(want));
        let Packet::UnsubAck(u) = fixture_round_trip(UNSUBACK_V5, V5) else {
            panic!("not an UNSUBACK")
        };
        assert_eq!(
            u.reasons,
            [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
        );
    }

    #[test]
    fn unsuback_values_round_trip() {
        let reasons: Vec<_> = ReasonCode::ALL
            .into_iter()
            .filter(|r| r.allowed_in(ReasonPacket::UnsubAck))
            .collect();
        let properties = Properties {
            reason_string: Some("r".into()),
            ..Properties::default()
        };
        value_round_trip(
            &Packet::UnsubAck(UnsubAck {
                packet_id: 9,
                properties: properties.into(),
                reasons,
            }),
            V5,
        );
        let u = UnsubAck {
            packet_id: 9,
            properties: Props::none(),
            reasons: vec![],
        };
        value_round_trip(&Packet::UnsubAck(u), V311);
    }

    #[test]
    fn unsuback_v311_is_packet_id_only() {
        let u = UnsubAck {
            packet_id: 5,
            properties: Properties {
                reason_string: Some("r".into()),
                ..Properties::default()
            }
            .into(),
            reasons: vec![ReasonCode::Success],
        };
        assert_eq!(enc(&Packet::UnsubAck(u), V311), UNSUBACK_V311);
        assert_eq!(
            err(&[0xB0, 0x03, 0x00, 0x05, 0x00], V311).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn unsuback_v5_bad_reason_is_malformed() {
        // 0x10 is not an UNSUBACK reason.
        let e = err(&[0xB0, 0x04, 0x00, 0x05, 0x00, 0x10], V5);
        assert_eq!(e.kind, ErrorKind::Malformed);
    }
}
