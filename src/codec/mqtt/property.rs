//! MQTT 5.0 properties (spec 2.2.2): which packet may carry which property, decoding with
//! duplicate and value checks, and encoding.
//!
//! Owns the property identifier table. It must never accept a property the packet type may
//! not carry, never panic on any input, and never encode a property the packet type may not
//! carry (such fields of [`Properties`] are skipped, so the output is always valid).

use super::header::{malformed, protocol};
use super::{props, DecodeError, Properties, Props};
use crate::codec::cursor::{field_len, varint_len, Reader, Writer};

const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
const SERVER_KEEP_ALIVE: u8 = 0x13;
const AUTHENTICATION_METHOD: u8 = 0x15;
const AUTHENTICATION_DATA: u8 = 0x16;
const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
const WILL_DELAY_INTERVAL: u8 = 0x18;
const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
const RESPONSE_INFORMATION: u8 = 0x1A;
const SERVER_REFERENCE: u8 = 0x1C;
const REASON_STRING: u8 = 0x1F;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const TOPIC_ALIAS: u8 = 0x23;
const MAXIMUM_QOS: u8 = 0x24;
const RETAIN_AVAILABLE: u8 = 0x25;
const USER_PROPERTY: u8 = 0x26;
const MAXIMUM_PACKET_SIZE: u8 = 0x27;
const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// Clause for unknown, misplaced and duplicated properties (v5 2.2.2.2).
const PROPERTIES: &str = "2.2.2.2";

/// The property set a packet (or the will) may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    ConnAck,
    Publish,
    Will,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Whether a packet of kind `ctx` may carry property `id` (v5 table 2-4).
fn allowed(ctx: PropCtx, id: u8) -> bool {
    use PropCtx as C;
    match id {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => matches!(ctx, C::Publish | C::Will),
        SUBSCRIPTION_IDENTIFIER => matches!(ctx, C::Publish | C::Subscribe),
        SESSION_EXPIRY_INTERVAL => matches!(ctx, C::Connect | C::ConnAck | C::Disconnect),
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => ctx == C::ConnAck,
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => {
            matches!(ctx, C::Connect | C::ConnAck | C::Auth)
        }
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => ctx == C::Connect,
        WILL_DELAY_INTERVAL => ctx == C::Will,
        SERVER_REFERENCE => matches!(ctx, C::ConnAck | C::Disconnect),
        REASON_STRING => matches!(
            ctx,
            C::ConnAck | C::Ack | C::SubAck | C::UnsubAck | C::Disconnect | C::Auth
        ),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => {
            matches!(ctx, C::Connect | C::ConnAck)
        }
        TOPIC_ALIAS => ctx == C::Publish,
        USER_PROPERTY => true,
        _ => false,
    }
}

/// Stores a property that may appear once; a second instance is a protocol error (2.2.2.2).
fn once<T>(slot: &mut Option<T>, v: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(protocol(PROPERTIES));
    }
    *slot = Some(v);
    Ok(())
}

/// A byte property whose only values are 0 and 1; anything else is a protocol error.
fn boolean(r: &mut Reader<'_>, clause: &'static str) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    if v > 1 {
        return Err(protocol(clause));
    }
    Ok(v)
}

/// Reads the property length and the properties of a packet of kind `ctx`.
/// No properties (length 0) take no allocation; others are boxed.
pub(crate) fn decode(r: &mut Reader<'_>, ctx: PropCtx) -> Result<Props, DecodeError> {
    let len = r.varint()?;
    // A property length overrunning the packet is malformed (2.2.2.1).
    let mut pr = r.sub(len as usize).map_err(|_| malformed("2.2.2.1"))?;
    if pr.is_empty() {
        return Ok(Props::none());
    }
    let mut p = Properties::default();
    while !pr.is_empty() {
        let id = pr.varint()?;
        // Unknown identifiers and identifiers this packet may not carry are malformed.
        let id = match u8::try_from(id) {
            Ok(id) if allowed(ctx, id) => id,
            _ => return Err(malformed(PROPERTIES)),
        };
        match id {
            PAYLOAD_FORMAT_INDICATOR => {
                // 0 or 1 only (3.3.2.3.2).
                let v = boolean(&mut pr, "3.3.2.3.2")?;
                once(&mut p.payload_format_indicator, v)?;
            }
            MESSAGE_EXPIRY_INTERVAL => once(&mut p.message_expiry_interval, pr.u32()?)?,
            CONTENT_TYPE => once(&mut p.content_type, pr.str()?.to_owned())?,
            RESPONSE_TOPIC => once(&mut p.response_topic, pr.str()?.to_owned())?,
            CORRELATION_DATA => once(&mut p.correlation_data, pr.bin()?.to_vec())?,
            SUBSCRIPTION_IDENTIFIER => {
                let v = pr.varint()?;
                // The value 0 is a protocol error (3.3.2.3.8, 3.8.2.1.2).
                if v == 0 {
                    return Err(protocol("3.8.2.1.2"));
                }
                // Only PUBLISH may carry it more than once (3.8.2.1.2).
                if ctx != PropCtx::Publish && !p.subscription_identifiers.is_empty() {
                    return Err(protocol(PROPERTIES));
                }
                p.subscription_identifiers.push(v);
            }
            SESSION_EXPIRY_INTERVAL => once(&mut p.session_expiry_interval, pr.u32()?)?,
            ASSIGNED_CLIENT_IDENTIFIER => {
                once(&mut p.assigned_client_identifier, pr.str()?.to_owned())?
            }
            SERVER_KEEP_ALIVE => once(&mut p.server_keep_alive, pr.u16()?)?,
            AUTHENTICATION_METHOD => once(&mut p.authentication_method, pr.str()?.to_owned())?,
            AUTHENTICATION_DATA => once(&mut p.authentication_data, pr.bin()?.to_vec())?,
            REQUEST_PROBLEM_INFORMATION => {
                // 0 or 1 only (3.1.2.11.7).
                let v = boolean(&mut pr, "3.1.2.11.7")?;
                once(&mut p.request_problem_information, v)?;
            }
            WILL_DELAY_INTERVAL => once(&mut p.will_delay_interval, pr.u32()?)?,
            REQUEST_RESPONSE_INFORMATION => {
                // 0 or 1 only (3.1.2.11.6).
                let v = boolean(&mut pr, "3.1.2.11.6")?;
                once(&mut p.request_response_information, v)?;
            }
            RESPONSE_INFORMATION => once(&mut p.response_information, pr.str()?.to_owned())?,
            SERVER_REFERENCE => once(&mut p.server_reference, pr.str()?.to_owned())?,
            REASON_STRING => once(&mut p.reason_string, pr.str()?.to_owned())?,
            RECEIVE_MAXIMUM => {
                let v = pr.u16()?;
                // Receive Maximum 0 is a protocol error (3.1.2.11.3, 3.2.2.3.3).
                if v == 0 {
                    return Err(protocol("3.1.2.11.3"));
                }
                once(&mut p.receive_maximum, v)?;
            }
            TOPIC_ALIAS_MAXIMUM => once(&mut p.topic_alias_maximum, pr.u16()?)?,
            // Topic Alias 0 is left to the engine, which answers with its own reason.
            TOPIC_ALIAS => once(&mut p.topic_alias, pr.u16()?)?,
            MAXIMUM_QOS => {
                // 0 or 1 only (3.2.2.3.4).
                let v = boolean(&mut pr, "3.2.2.3.4")?;
                once(&mut p.maximum_qos, v)?;
            }
            RETAIN_AVAILABLE => {
                // 0 or 1 only (3.2.2.3.5).
                let v = boolean(&mut pr, "3.2.2.3.5")?;
                once(&mut p.retain_available, v)?;
            }
            USER_PROPERTY => {
                let k = pr.str()?.to_owned();
                let v = pr.str()?.to_owned();
                p.user_properties.push((k, v));
            }
            MAXIMUM_PACKET_SIZE => {
                let v = pr.u32()?;
                // Maximum Packet Size 0 is a protocol error (3.1.2.11.4, 3.2.2.3.6).
                if v == 0 {
                    return Err(protocol("3.1.2.11.4"));
                }
                once(&mut p.maximum_packet_size, v)?;
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                // 0 or 1 only (3.2.2.3.11).
                let v = boolean(&mut pr, "3.2.2.3.11")?;
                once(&mut p.wildcard_subscription_available, v)?;
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                // 0 or 1 only (3.2.2.3.12).
                let v = boolean(&mut pr, "3.2.2.3.12")?;
                once(&mut p.subscription_identifier_available, v)?;
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                // 0 or 1 only (3.2.2.3.13).
                let v = boolean(&mut pr, "3.2.2.3.13")?;
                once(&mut p.shared_subscription_available, v)?;
            }
            _ => return Err(malformed(PROPERTIES)),
        }
    }
    // Every property read set a field of `p`, and at least one was read.
    Ok(Props::boxed(p))
}

/// One property value on the wire.
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Var(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Byte(_) => 1,
            Self::Two(_) => 2,
            Self::Four(_) => 4,
            Self::Var(v) => varint_len(*v as usize),
            Self::Str(s) => field_len(s.len()),
            Self::Bin(b) => field_len(b.len()),
            Self::Pair(k, v) => field_len(k.len()).saturating_add(field_len(v.len())),
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Self::Byte(v) => out.put_u8(*v),
            Self::Two(v) => out.put_u16(*v),
            Self::Four(v) => out.put_u32(*v),
            Self::Var(v) => out.put_varint(*v as usize),
            Self::Str(s) => out.put_str(s),
            Self::Bin(b) => out.put_bin(b),
            Self::Pair(k, v) => {
                out.put_str(k);
                out.put_str(v);
            }
        }
    }
}

/// Calls `f` with every property `p` holds that `ctx` may carry, in identifier order.
fn each<'a>(p: &'a Properties, ctx: PropCtx, mut f: impl FnMut(u8, Value<'a>)) {
    let mut emit = |id: u8, v: Value<'a>| {
        if allowed(ctx, id) {
            f(id, v);
        }
    };
    let byte = |v: &Option<u8>| v.map(Value::Byte);
    let two = |v: &Option<u16>| v.map(Value::Two);
    let four = |v: &Option<u32>| v.map(Value::Four);
    let head: [(u8, Option<Value<'a>>); 5] = [
        (PAYLOAD_FORMAT_INDICATOR, byte(&p.payload_format_indicator)),
        (MESSAGE_EXPIRY_INTERVAL, four(&p.message_expiry_interval)),
        (CONTENT_TYPE, p.content_type.as_deref().map(Value::Str)),
        (RESPONSE_TOPIC, p.response_topic.as_deref().map(Value::Str)),
        (
            CORRELATION_DATA,
            p.correlation_data.as_deref().map(Value::Bin),
        ),
    ];
    for (id, v) in head {
        if let Some(v) = v {
            emit(id, v);
        }
    }
    for v in &p.subscription_identifiers {
        emit(SUBSCRIPTION_IDENTIFIER, Value::Var(*v));
    }
    if ctx == PropCtx::Publish {
        // Of the properties below, a PUBLISH may carry only its topic alias: the others are
        // not even looked at (this runs several times for every PUBLISH with properties).
        if let Some(a) = p.topic_alias {
            emit(TOPIC_ALIAS, Value::Two(a));
        }
    } else {
        let rest: [(u8, Option<Value<'a>>); 20] = [
            (SESSION_EXPIRY_INTERVAL, four(&p.session_expiry_interval)),
            (
                ASSIGNED_CLIENT_IDENTIFIER,
                p.assigned_client_identifier.as_deref().map(Value::Str),
            ),
            (SERVER_KEEP_ALIVE, two(&p.server_keep_alive)),
            (
                AUTHENTICATION_METHOD,
                p.authentication_method.as_deref().map(Value::Str),
            ),
            (
                AUTHENTICATION_DATA,
                p.authentication_data.as_deref().map(Value::Bin),
            ),
            (
                REQUEST_PROBLEM_INFORMATION,
                byte(&p.request_problem_information),
            ),
            (WILL_DELAY_INTERVAL, four(&p.will_delay_interval)),
            (
                REQUEST_RESPONSE_INFORMATION,
                byte(&p.request_response_information),
            ),
            (
                RESPONSE_INFORMATION,
                p.response_information.as_deref().map(Value::Str),
            ),
            (
                SERVER_REFERENCE,
                p.server_reference.as_deref().map(Value::Str),
            ),
            (REASON_STRING, p.reason_string.as_deref().map(Value::Str)),
            (RECEIVE_MAXIMUM, two(&p.receive_maximum)),
            (TOPIC_ALIAS_MAXIMUM, two(&p.topic_alias_maximum)),
            (TOPIC_ALIAS, two(&p.topic_alias)),
            (MAXIMUM_QOS, byte(&p.maximum_qos)),
            (RETAIN_AVAILABLE, byte(&p.retain_available)),
            (MAXIMUM_PACKET_SIZE, four(&p.maximum_packet_size)),
            (
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                byte(&p.wildcard_subscription_available),
            ),
            (
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                byte(&p.subscription_identifier_available),
            ),
            (
                SHARED_SUBSCRIPTION_AVAILABLE,
                byte(&p.shared_subscription_available),
            ),
        ];
        for (id, v) in rest {
            if let Some(v) = v {
                emit(id, v);
            }
        }
    }
    for (k, v) in &p.user_properties {
        emit(USER_PROPERTY, Value::Pair(k, v));
    }
}

/// The length of the properties `ctx` may carry, without the property length field.
pub(crate) fn body_len(p: &Properties, ctx: PropCtx) -> usize {
    if props::is_unset(p) {
        return 0;
    }
    let mut n: usize = 0;
    each(p, ctx, |_, v| {
        n = n.saturating_add(1).saturating_add(v.len())
    });
    n
}

/// The property length field plus the properties.
pub(crate) fn wire_len(p: &Properties, ctx: PropCtx) -> usize {
    let n = body_len(p, ctx);
    n.saturating_add(varint_len(n))
}

/// Appends the property length and the properties `ctx` may carry.
pub(crate) fn encode(p: &Properties, ctx: PropCtx, out: &mut Vec<u8>) {
    out.put_varint(body_len(p, ctx));
    if props::is_unset(p) {
        return;
    }
    each(p, ctx, |id, v| {
        out.put_u8(id);
        v.put(out);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::ErrorKind;

    fn dec(bytes: &[u8], ctx: PropCtx) -> Result<Properties, DecodeError> {
        let mut r = Reader::new(bytes);
        let p = decode(&mut r, ctx)?;
        assert!(r.is_empty());
        Ok(p.into_inner())
    }

    /// Every property set, each once (two user properties).
    fn every_property() -> Properties {
        let text = || Some("x".to_owned());
        Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(2),
            content_type: text(),
            response_topic: text(),
            correlation_data: Some(vec![3]),
            subscription_identifiers: vec![4],
            session_expiry_interval: Some(5),
            assigned_client_identifier: text(),
            server_keep_alive: Some(6),
            authentication_method: text(),
            authentication_data: Some(vec![7]),
            request_problem_information: Some(1),
            will_delay_interval: Some(8),
            request_response_information: Some(1),
            response_information: text(),
            server_reference: text(),
            reason_string: text(),
            receive_maximum: Some(9),
            topic_alias_maximum: Some(10),
            topic_alias: Some(11),
            maximum_qos: Some(1),
            retain_available: Some(1),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            maximum_packet_size: Some(12),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(1),
            shared_subscription_available: Some(1),
        }
    }

    #[test]
    fn a_publish_carries_exactly_the_properties_allowed_in_it() {
        let p = every_property();
        let mut ids = Vec::new();
        each(&p, PropCtx::Publish, |id, _| ids.push(id));
        let expected = [
            PAYLOAD_FORMAT_INDICATOR,
            MESSAGE_EXPIRY_INTERVAL,
            CONTENT_TYPE,
            RESPONSE_TOPIC,
            CORRELATION_DATA,
            SUBSCRIPTION_IDENTIFIER,
            TOPIC_ALIAS,
            USER_PROPERTY,
            USER_PROPERTY,
        ];
        assert_eq!(ids, expected);
        assert!(ids.iter().all(|&id| allowed(PropCtx::Publish, id)));
        let mut bytes = Vec::new();
        encode(&p, PropCtx::Publish, &mut bytes);
        assert_eq!(
            dec(&bytes, PropCtx::Publish).map(|q| q.topic_alias),
            Ok(Some(11))
        );
    }

    fn kind(bytes: &[u8], ctx: PropCtx) -> Option<ErrorKind> {
        dec(bytes, ctx).err().map(|e| e.kind)
    }

    fn full_connack() -> Properties {
        Properties {
            session_expiry_interval: Some(30),
            assigned_client_identifier: Some("id-1".into()),
            server_keep_alive: Some(60),
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(vec![1, 2]),
            response_information: Some("ri".into()),
            server_reference: Some("other".into()),
            reason_string: Some("ok".into()),
            receive_maximum: Some(10),
            topic_alias_maximum: Some(5),
            maximum_qos: Some(1),
            retain_available: Some(0),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            maximum_packet_size: Some(1024),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(0),
            shared_subscription_available: Some(1),
            ..Properties::default()
        }
    }

    #[test]
    fn connack_properties_round_trip() {
        let p = full_connack();
        let mut out = Vec::new();
        encode(&p, PropCtx::ConnAck, &mut out);
        assert_eq!(out.len(), wire_len(&p, PropCtx::ConnAck));
        assert_eq!(dec(&out, PropCtx::ConnAck), Ok(p));
    }

    #[test]
    fn publish_properties_round_trip() {
        let p = Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(100),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(vec![9; 3]),
            subscription_identifiers: vec![1, 268_435_455],
            topic_alias: Some(3),
            ..Properties::default()
        };
        let mut out = Vec::new();
        encode(&p, PropCtx::Publish, &mut out);
        assert_eq!(out.len(), wire_len(&p, PropCtx::Publish));
        assert_eq!(dec(&out, PropCtx::Publish), Ok(p));
    }

    #[test]
    fn encode_skips_properties_the_packet_may_not_carry() {
        let p = full_connack();
        let mut out = Vec::new();
        encode(&p, PropCtx::Ack, &mut out);
        let got = dec(&out, PropCtx::Ack);
        let want = Properties {
            reason_string: p.reason_string.clone(),
            user_properties: p.user_properties.clone(),
            ..Properties::default()
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn empty_properties() {
        assert_eq!(dec(&[0x00], PropCtx::Auth), Ok(Properties::default()));
        assert_eq!(wire_len(&Properties::default(), PropCtx::Connect), 1);
    }

    #[test]
    fn unknown_identifier_is_malformed() {
        assert_eq!(
            kind(&[0x02, 0x05, 0x00], PropCtx::Publish),
            Some(ErrorKind::Malformed)
        );
        assert_eq!(
            kind(&[0x02, 0x7F, 0x00], PropCtx::Publish),
            Some(ErrorKind::Malformed)
        );
    }

    #[test]
    fn disallowed_identifier_is_malformed() {
        // Topic Alias in CONNECT.
        let e = kind(&[0x03, TOPIC_ALIAS, 0x00, 0x01], PropCtx::Connect);
        assert_eq!(e, Some(ErrorKind::Malformed));
        // Will Delay Interval in CONNECT (it belongs to the will properties).
        let e = kind(&[0x05, WILL_DELAY_INTERVAL, 0, 0, 0, 1], PropCtx::Connect);
        assert_eq!(e, Some(ErrorKind::Malformed));
        assert!(dec(&[0x05, WILL_DELAY_INTERVAL, 0, 0, 0, 1], PropCtx::Will).is_ok());
    }

    #[test]
    fn duplicate_property_is_protocol_error() {
        let b = [0x06, SERVER_KEEP_ALIVE, 0, 1, SERVER_KEEP_ALIVE, 0, 2];
        assert_eq!(kind(&b, PropCtx::ConnAck), Some(ErrorKind::Protocol));
    }

    #[test]
    fn user_properties_may_repeat() {
        // ("", "") then ("a", "").
        let mut b = vec![0x0B, USER_PROPERTY, 0, 0, 0, 0];
        b.extend_from_slice(&[USER_PROPERTY, 0, 1, b'a', 0, 0]);
        let p = dec(&b, PropCtx::Disconnect).map(|p| p.user_properties.len());
        assert_eq!(p, Ok(2));
    }

    #[test]
    fn subscription_identifier_repeats_only_in_publish() {
        let b = [0x04, SUBSCRIPTION_IDENTIFIER, 1, SUBSCRIPTION_IDENTIFIER, 2];
        let p = dec(&b, PropCtx::Publish).map(|p| p.subscription_identifiers);
        assert_eq!(p, Ok(vec![1, 2]));
        assert_eq!(kind(&b, PropCtx::Subscribe), Some(ErrorKind::Protocol));
    }

    #[test]
    fn subscription_identifier_zero_is_protocol_error() {
        let b = [0x02, SUBSCRIPTION_IDENTIFIER, 0];
        assert_eq!(kind(&b, PropCtx::Subscribe), Some(ErrorKind::Protocol));
    }

    #[test]
    fn receive_maximum_zero_is_protocol_error() {
        let b = [0x03, RECEIVE_MAXIMUM, 0, 0];
        assert_eq!(kind(&b, PropCtx::Connect), Some(ErrorKind::Protocol));
    }

    #[test]
    fn maximum_packet_size_zero_is_protocol_error() {
        let b = [0x05, MAXIMUM_PACKET_SIZE, 0, 0, 0, 0];
        assert_eq!(kind(&b, PropCtx::Connect), Some(ErrorKind::Protocol));
    }

    #[test]
    fn boolean_properties_above_one_are_protocol_errors() {
        for (id, ctx) in [
            (PAYLOAD_FORMAT_INDICATOR, PropCtx::Publish),
            (PAYLOAD_FORMAT_INDICATOR, PropCtx::Will),
            (REQUEST_PROBLEM_INFORMATION, PropCtx::Connect),
            (REQUEST_RESPONSE_INFORMATION, PropCtx::Connect),
            (MAXIMUM_QOS, PropCtx::ConnAck),
            (RETAIN_AVAILABLE, PropCtx::ConnAck),
            (WILDCARD_SUBSCRIPTION_AVAILABLE, PropCtx::ConnAck),
            (SUBSCRIPTION_IDENTIFIER_AVAILABLE, PropCtx::ConnAck),
            (SHARED_SUBSCRIPTION_AVAILABLE, PropCtx::ConnAck),
        ] {
            assert!(dec(&[0x02, id, 1], ctx).is_ok(), "{id:#x}");
            assert_eq!(
                kind(&[0x02, id, 2], ctx),
                Some(ErrorKind::Protocol),
                "{id:#x}"
            );
        }
    }

    #[test]
    fn topic_alias_zero_is_left_to_the_engine() {
        let p = dec(&[0x03, TOPIC_ALIAS, 0, 0], PropCtx::Publish).map(|p| p.topic_alias);
        assert_eq!(p, Ok(Some(0)));
    }

    #[test]
    fn property_length_overrun_is_malformed() {
        assert_eq!(
            kind(&[0x05, TOPIC_ALIAS, 0, 1], PropCtx::Publish),
            Some(ErrorKind::Malformed)
        );
        // A value running past the property length is malformed too.
        assert_eq!(
            kind(&[0x02, TOPIC_ALIAS, 0, 1], PropCtx::Publish),
            Some(ErrorKind::Malformed)
        );
    }
}
