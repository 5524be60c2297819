//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec 3.4 to 3.7 of both versions): a packet
//! identifier, and in 5.0 an optional reason code and properties.
//!
//! This module must never decide what an acknowledgement means for a session (the engine
//! does), and never panic on any input.

use super::header::{malformed, reason, PUBACK, PUBCOMP, PUBREC, PUBREL};
use super::property::{self, PropCtx};
use super::{Ack, DecodeError, ProtocolVersion, ReasonCode, ReasonPacket};
use crate::codec::cursor::{Reader, Writer};

/// The reason-code set and the sections (fixed header, reason code) of one ack type.
fn spec(ptype: u8) -> (ReasonPacket, &'static str, &'static str) {
    match ptype {
        PUBACK => (ReasonPacket::PubAck, "3.4.1", "3.4.2.1"),
        PUBREC => (ReasonPacket::PubAck, "3.5.1", "3.5.2.1"),
        PUBREL => (ReasonPacket::PubRel, "3.6.1", "3.6.2.1"),
        PUBCOMP => (ReasonPacket::PubRel, "3.7.1", "3.7.2.1"),
        _ => (ReasonPacket::PubRel, "2.1.2", "2.1.2"),
    }
}

/// Decodes the body of an ack of type `ptype`.
pub(crate) fn decode_ack(
    r: &mut Reader<'_>,
    ptype: u8,
    version: ProtocolVersion,
) -> Result<Ack, DecodeError> {
    let (set, length_clause, reason_clause) = spec(ptype);
    let packet_id = r.u16()?;
    // A packet identifier is never 0. [MQTT-2.3.1-1]
    if packet_id == 0 {
        return Err(malformed("MQTT-2.3.1-1"));
    }
    if !version.is_v5() {
        // The 3.1.1 remaining length is exactly 2.
        if !r.is_empty() {
            return Err(malformed(length_clause));
        }
        return Ok(Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
    }
    // Remaining length 2: Success and no properties.
    if r.is_empty() {
        return Ok(Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
    }
    // Only the reason codes this packet type may carry.
    let reason = reason(r.u8()?, set, reason_clause)?;
    // Remaining length 3: reason code only.
    let properties = if r.is_empty() {
        Default::default()
    } else {
        property::decode(r, PropCtx::Ack)?
    };
    Ok(Ack {
        packet_id,
        reason,
        properties,
    })
}

pub(crate) fn ack_len(a: &Ack, version: ProtocolVersion) -> usize {
    if !version.is_v5() {
        return 2;
    }
    let props = property::body_len(&a.properties, PropCtx::Ack);
    match (a.reason, props) {
        (ReasonCode::Success, 0) => 2,
        (_, 0) => 3,
        _ => property::wire_len(&a.properties, PropCtx::Ack).saturating_add(3),
    }
}

pub(crate) fn encode_ack(a: &Ack, version: ProtocolVersion, out: &mut Vec<u8>) {
    out.put_u16(a.packet_id);
    if !version.is_v5() {
        return;
    }
    let props = property::body_len(&a.properties, PropCtx::Ack);
    if a.reason == ReasonCode::Success && props == 0 {
        return;
    }
    out.put_u8(a.reason as u8);
    if props != 0 {
        property::encode(&a.properties, PropCtx::Ack, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enc, err, fixture_round_trip, value_round_trip};
    use super::super::{decode, ErrorKind, Packet, Properties, Props};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    const PUBACK_V311: &[u8] = &[0x40, 0x02, 0x00, 0x01];
    const PUBREC_V311: &[u8] = &[0x50, 0x02, 0x00, 0x02];
    const PUBREL_V311: &[u8] = &[0x62, 0x02, 0x00, 0x03];
    const PUBCOMP_V311: &[u8] = &[0x70, 0x02, 0x00, 0x04];
    /// v5 short form: Success, no properties.
    const PUBACK_V5_SHORT: &[u8] = &[0x40, 0x02, 0x00, 0x01];
    /// v5 reason only: No matching subscribers.
    const PUBACK_V5_REASON: &[u8] = &[0x40, 0x03, 0x00, 0x01, 0x10];
    /// v5 Unspecified error with reason string "no".
    const PUBREC_V5_PROPS: &[u8] = &[
        0x50, 0x09, 0x00, 0x02, 0x80, 0x05, 0x1F, 0x00, 0x02, b'n', b'o',
    ];
    /// v5 Packet identifier not found.
    const PUBREL_V5_NOT_FOUND: &[u8] = &[0x62, 0x03, 0x00, 0x03, 0x92];
    const PUBCOMP_V5_SHORT: &[u8] = &[0x70, 0x02, 0x00, 0x04];

    fn ack(p: Packet) -> Ack {
        match p {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => a,
            other => panic!("not an ack: {other:?}"),
        }
    }

    #[test]
    fn ack_fixtures_round_trip() {
        for (bytes, id) in [
            (PUBACK_V311, 1),
            (PUBREC_V311, 2),
            (PUBREL_V311, 3),
            (PUBCOMP_V311, 4),
        ] {
            for v in [V31, V311] {
                let a = ack(fixture_round_trip(bytes, v));
                assert_eq!((a.packet_id, a.reason), (id, ReasonCode::Success));
            }
        }
        let a = ack(fixture_round_trip(PUBACK_V5_SHORT, V5));
        assert_eq!(a.reason, ReasonCode::Success);
        let a = ack(fixture_round_trip(PUBACK_V5_REASON, V5));
        assert_eq!(a.reason, ReasonCode::NoMatchingSubscribers);
        let a = ack(fixture_round_trip(PUBREC_V5_PROPS, V5));
        assert_eq!(a.reason, ReasonCode::UnspecifiedError);
        assert_eq!(a.properties.reason_string.as_deref(), Some("no"));
        let a = ack(fixture_round_trip(PUBREL_V5_NOT_FOUND, V5));
        assert_eq!(a.reason, ReasonCode::PacketIdentifierNotFound);
        assert!(matches!(
            fixture_round_trip(PUBCOMP_V5_SHORT, V5),
            Packet::PubComp(_)
        ));
    }

    #[test]
    fn ack_values_round_trip() {
        let make = |reason, properties| Ack {
            packet_id: 0xBEEF,
            reason,
            properties,
        };
        let props = Properties {
            reason_string: Some("why".into()),
            user_properties: vec![("a".into(), "b".into())],
            ..Properties::default()
        };
        for v in [V311, V5] {
            let rich = if v.is_v5() {
                props.clone()
            } else {
                Properties::default()
            };
            let (r1, r2) = if v.is_v5() {
                (
                    ReasonCode::QuotaExceeded,
                    ReasonCode::PacketIdentifierNotFound,
                )
            } else {
                (ReasonCode::Success, ReasonCode::Success)
            };
            value_round_trip(&Packet::PubAck(make(r1, rich.clone().into())), v);
            value_round_trip(&Packet::PubRec(make(r1, Props::none())), v);
            value_round_trip(&Packet::PubRel(make(r2, rich.clone().into())), v);
            value_round_trip(&Packet::PubComp(make(ReasonCode::Success, rich.into())), v);
        }
    }

    #[test]
    fn ack_v5_long_success_form_decodes() {
        let p = decode(&[0x40, 0x04, 0x00, 0x01, 0x00, 0x00], V5);
        let want = Ack {
            packet_id: 1,
            reason: ReasonCode::Success,
            properties: Props::none(),
        };
        assert_eq!(p, Ok(Packet::PubAck(want.clone())));
        assert_eq!(enc(&Packet::PubAck(want), V5), PUBACK_V5_SHORT);
    }

    #[test]
    fn ack_v3_drops_reason_and_properties() {
        let a = Ack {
            packet_id: 1,
            reason: ReasonCode::NoMatchingSubscribers,
            properties: Properties {
                reason_string: Some("x".into()),
                ..Properties::default()
            }
            .into(),
        };
        assert_eq!(enc(&Packet::PubAck(a), V311), PUBACK_V311);
    }

    #[test]
    fn ack_packet_id_zero_is_malformed_mqtt_2_3_1_1() {
        for byte0 in [0x40, 0x50, 0x62, 0x70] {
            for v in [V311, V5] {
                let e = err(&[byte0, 0x02, 0x00, 0x00], v);
                assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.3.1-1"));
            }
        }
    }

    #[test]
    fn ack_v311_remaining_length_not_2_is_malformed() {
        for byte0 in [0x40, 0x50, 0x62, 0x70] {
            assert_eq!(
                err(&[byte0, 0x03, 0x00, 0x01, 0x00], V311).kind,
                ErrorKind::Malformed
            );
            assert_eq!(err(&[byte0, 0x01, 0x00], V311).kind, ErrorKind::Malformed);
        }
    }

    #[test]
    fn ack_v5_reason_not_for_packet_is_malformed() {
        // PUBACK and PUBREC may not carry 0x92; PUBREL and PUBCOMP may not carry 0x10.
        for (byte0, code) in [(0x40, 0x92), (0x50, 0x92), (0x62, 0x10), (0x70, 0x80)] {
            let e = err(&[byte0, 0x03, 0x00, 0x01, code], V5);
            assert_eq!(e.kind, ErrorKind::Malformed);
        }
        // Not a reason code at all.
        assert_eq!(
            err(&[0x40, 0x03, 0x00, 0x01, 0x03], V5).kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn ack_v5_disallowed_property_is_malformed() {
        // Topic Alias in PUBACK.
        let e = err(&[0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01], V5);
        assert_eq!(e.kind, ErrorKind::Malformed);
    }

    #[test]
    fn pubrel_flags_not_0010_are_malformed_mqtt_2_2_2_1() {
        for v in [V311, V5] {
            let e = err(&[0x60, 0x02, 0x00, 0x01], v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.2.2-2"));
        }
    }

    #[test]
    fn puback_flags_not_0000_are_malformed_mqtt_2_2_2_1() {
        for v in [V311, V5] {
            let e = err(&[0x42, 0x02, 0x00, 0x01], v);
            assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.2.2-2"));
        }
    }
}
