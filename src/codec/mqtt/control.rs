//! PINGREQ, PINGRESP, DISCONNECT and AUTH (spec 3.12 to 3.15): the packets that carry at
//! most a reason code and properties.
//!
//! This module must never act on a disconnect or run an authentication exchange (the
//! engine does), and never panic on any input.

use super::header::{malformed, reason};
use super::property::{self, PropCtx};
use super::{Auth, DecodeError, Disconnect, ProtocolVersion, ReasonCode, ReasonPacket};
use crate::codec::cursor::{Reader, Writer};

/// PINGREQ and PINGRESP have remaining length 0 (3.12.1, 3.13.1).
pub(crate) fn decode_ping(r: &mut Reader<'_>, clause: &'static str) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(malformed(clause))
    }
}

pub(crate) fn decode_disconnect(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<Disconnect, DecodeError> {
    if r.is_empty() {
        return Ok(Disconnect {
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
    }
    // The 3.1.1 DISCONNECT has remaining length 0 (3.1.1 3.14.1).
    if !version.is_v5() {
        return Err(malformed("3.14.1"));
    }
    // Only the DISCONNECT reason codes (3.14.2.1).
    let reason = reason(r.u8()?, ReasonPacket::Disconnect, "3.14.2.1")?;
    // Remaining length 1: reason code only (3.14.2.2.1).
    let properties = if r.is_empty() {
        Default::default()
    } else {
        property::decode(r, PropCtx::Disconnect)?
    };
    Ok(Disconnect { reason, properties })
}

pub(crate) fn disconnect_len(d: &Disconnect, version: ProtocolVersion) -> usize {
    if !version.is_v5() {
        return 0;
    }
    match (
        d.reason,
        property::body_len(&d.properties, PropCtx::Disconnect),
    ) {
        (ReasonCode::Success, 0) => 0,
        (_, 0) => 1,
        _ => property::wire_len(&d.properties, PropCtx::Disconnect).saturating_add(1),
    }
}

pub(crate) fn encode_disconnect(d: &Disconnect, version: ProtocolVersion, out: &mut Vec<u8>) {
    if !version.is_v5() {
        return;
    }
    let props = property::body_len(&d.properties, PropCtx::Disconnect);
    if d.reason == ReasonCode::Success && props == 0 {
        return;
    }
    out.put_u8(d.reason as u8);
    if props != 0 {
        property::encode(&d.properties, PropCtx::Disconnect, out);
    }
}

/// Decodes an AUTH body (the fixed header check has already refused AUTH in 3.1.1).
pub(crate) fn decode_auth(r: &mut Reader<'_>) -> Result<Auth, DecodeError> {
    // Remaining length 0: Success and no properties (3.15.2.1).
    if r.is_empty() {
        return Ok(Auth {
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
    }
    // Only 0x00, 0x18 and 0x19. [MQTT-3.15.2-1]
    let reason = reason(r.u8()?, ReasonPacket::Auth, "MQTT-3.15.2-1")?;
    let properties = if r.is_empty() {
        Default::default()
    } else {
        property::decode(r, PropCtx::Auth)?
    };
    Ok(Auth { reason, properties })
}

/// AUTH does not exist in 3.1.1; there it is written without properties, which is only
/// useful for tests (the engine never sends AUTH to a 3.1.1 client).
pub(crate) fn auth_len(a: &Auth, version: ProtocolVersion) -> usize {
    let props = if version.is_v5() {
        property::body_len(&a.properties, PropCtx::Auth)
    } else {
        0
    };
    if a.reason == ReasonCode::Success && props == 0 {
        0
    } else if version.is_v5() {
        property::wire_len(&a.properties, PropCtx::Auth).saturating_add(1)
    } else {
        2
    }
}

pub(crate) fn encode_auth(a: &Auth, version: ProtocolVersion, out: &mut Vec<u8>) {
    let props = if version.is_v5() {
        property::body_len(&a.properties, PropCtx::Auth)
    } else {
        0
    };
    if a.reason == ReasonCode::Success && props == 0 {
        return;
    }
    out.put_u8(a.reason as u8);
    if version.is_v5() {
        property::encode(&a.properties, PropCtx::Auth, out);
    } else {
        out.put_u8(0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enc, err, fixture_round_trip, value_round_trip};
    use super::super::{decode, ErrorKind, Packet, Properties, Props};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    const PINGREQ: &[u8] = &[0xC0, 0x00];
    const PINGRESP: &[u8] = &[0xD0, 0x00];
    const DISCONNECT: &[u8] = &[0xE0, 0x00];
    /// v5 Disconnect with will message, no properties.
    const DISCONNECT_V5_REASON: &[u8] = &[0xE0, 0x01, 0x04];
    /// v5 Server shutting down, reason string "bye".
    const DISCONNECT_V5_PROPS: &[u8] =
        &[0xE0, 0x08, 0x8B, 0x06, 0x1F, 0x00, 0x03, b'b', b'y', b'e'];
    const AUTH_V5_SHORT: &[u8] = &[0xF0, 0x00];
    /// Continue authentication, method "SCRAM", data [1, 2].
    const AUTH_V5_CONTINUE: &[u8] = &[
        0xF0, 0x0F, 0x18, 0x0D, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', 0x16, 0x00, 0x02,
        0x01, 0x02,
    ];

    #[test]
    fn ping_fixtures_round_trip() {
        for v in [V31, V311, V5] {
            assert_eq!(fixture_round_trip(PINGREQ, v), Packet::PingReq);
            assert_eq!(fixture_round_trip(PINGRESP, v), Packet::PingResp);
            value_round_trip(&Packet::PingReq, v);
            value_round_trip(&Packet::PingResp, v);
        }
    }

    #[test]
    fn ping_with_remaining_length_is_malformed() {
        for v in [V311, V5] {
            assert_eq!(err(&[0xC0, 0x01, 0x00], v).kind, ErrorKind::Malformed);
            assert_eq!(err(&[0xD0, 0x01, 0x00], v).kind, ErrorKind::Malformed);
        }
    }

    #[test]
    fn ping_flags_not_0000_are_malformed_mqtt_2_2_2_1() {
        let e = err(&[0xC1, 0x00], V311);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-2.2.2-2"));
    }

    #[test]
    fn disconnect_fixtures_round_trip() {
        let normal = Disconnect {
            reason: ReasonCode::Success,
            properties: Props::none(),
        };
        for v in [V31, V311, V5] {
            assert_eq!(
                fixture_round_trip(DISCONNECT, v),
                Packet::Disconnect(normal.clone())
            );
        }
        let Packet::Disconnect(d) = fixture_round_trip(DISCONNECT_V5_REASON, V5) else {
            panic!("not a DISCONNECT")
        };
        assert_eq!(d.reason, ReasonCode::DisconnectWithWill);
        let Packet::Disconnect(d) = fixture_round_trip(DISCONNECT_V5_PROPS, V5) else {
            panic!("not a DISCONNECT")
        };
        assert_eq!(d.reason, ReasonCode::ServerShuttingDown);
        assert_eq!(d.properties.reason_string.as_deref(), Some("bye"));
    }

    #[test]
    fn disconnect_values_round_trip() {
        for reason in ReasonCode::ALL {
            if !reason.allowed_in(ReasonPacket::Disconnect) {
                continue;
            }
            let properties = Properties {
                session_expiry_interval: Some(0),
                server_reference: Some("elsewhere".into()),
                ..Properties::default()
            };
            value_round_trip(
                &Packet::Disconnect(Disconnect {
                    reason,
                    properties: properties.into(),
                }),
                V5,
            );
            let d = Disconnect {
                reason,
                properties: Props::none(),
            };
            value_round_trip(&Packet::Disconnect(d), V5);
        }
        let d = Disconnect {
            reason: ReasonCode::Success,
            properties: Props::none(),
        };
        value_round_trip(&Packet::Disconnect(d), V311);
    }

    #[test]
    fn disconnect_v3_is_always_empty() {
        let d = Disconnect {
            reason: ReasonCode::ServerShuttingDown,
            properties: Properties {
                reason_string: Some("x".into()),
                ..Properties::default()
            }
            .into(),
        };
        assert_eq!(enc(&Packet::Disconnect(d), V311), DISCONNECT);
    }

    #[test]
    fn disconnect_v311_with_remaining_length_is_malformed() {
        let e = err(&[0xE0, 0x01, 0x00], V311);
        assert_eq!(e.kind, ErrorKind::Malformed);
    }

    #[test]
    fn disconnect_v5_bad_reason_is_malformed() {
        // 0x18 (continue authentication) is an AUTH reason, not a DISCONNECT one.
        assert_eq!(err(&[0xE0, 0x01, 0x18], V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn disconnect_v5_disallowed_property_is_malformed() {
        // Topic Alias in DISCONNECT.
        let e = err(&[0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01], V5);
        assert_eq!(e.kind, ErrorKind::Malformed);
    }

    #[test]
    fn disconnect_flags_not_0000_are_malformed_mqtt_2_2_2_1() {
        assert_eq!(err(&[0xE2, 0x00], V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn auth_fixtures_round_trip() {
        let Packet::Auth(a) = fixture_round_trip(AUTH_V5_SHORT, V5) else {
            panic!("not an AUTH")
        };
        assert_eq!(a.reason, ReasonCode::Success);
        let Packet::Auth(a) = fixture_round_trip(AUTH_V5_CONTINUE, V5) else {
            panic!("not an AUTH")
        };
        assert_eq!(a.reason, ReasonCode::ContinueAuthentication);
        assert_eq!(a.properties.authentication_method.as_deref(), Some("SCRAM"));
        assert_eq!(
            a.properties.authentication_data.as_deref(),
            Some(&[1u8, 2][..])
        );
    }

    #[test]
    fn auth_values_round_trip() {
        for reason in [
            ReasonCode::Success,
            ReasonCode::ContinueAuthentication,
            ReasonCode::ReAuthenticate,
        ] {
            let properties = Properties {
                authentication_method: Some("M".into()),
                reason_string: Some("r".into()),
                ..Properties::default()
            };
            value_round_trip(
                &Packet::Auth(Auth {
                    reason,
                    properties: properties.into(),
                }),
                V5,
            );
            let a = Auth {
                reason,
                properties: Props::none(),
            };
            value_round_trip(&Packet::Auth(a), V5);
        }
    }

    #[test]
    fn auth_reason_only_form_decodes() {
        let p = decode(&[0xF0, 0x01, 0x19], V5);
        let want = Auth {
            reason: ReasonCode::ReAuthenticate,
            properties: Props::none(),
        };
        assert_eq!(p, Ok(Packet::Auth(want)));
    }

    #[test]
    fn auth_in_v311_is_malformed() {
        for v in [V31, V311] {
            assert_eq!(err(AUTH_V5_SHORT, v).kind, ErrorKind::Malformed);
        }
    }

    #[test]
    fn auth_bad_reason_is_malformed_mqtt_3_15_2_1() {
        let e = err(&[0xF0, 0x02, 0x04, 0x00], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-3.15.2-1"));
    }

    #[test]
    fn auth_flags_not_0000_are_malformed_mqtt_2_2_2_1() {
        assert_eq!(err(&[0xF1, 0x00], V5).kind, ErrorKind::Malformed);
    }

    #[test]
    fn auth_v3_encoding_drops_properties() {
        let a = Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("M".into()),
                ..Properties::default()
            }
            .into(),
        };
        assert_eq!(enc(&Packet::Auth(a), V311), [0xF0, 0x02, 0x18, 0x00]);
    }
}
