//! MQTT 3.1.1 and 5.0 packets: one value model (a 5.0 superset), one codec parameterised by
//! the protocol version.
//!
//! Entry points:
//! - [`probe`]: find the next whole frame in a byte buffer (fixed header + remaining length).
//! - [`decode`]: one whole frame → [`Packet`], validating every MUST of both specifications.
//! - [`encode`]: [`Packet`] → bytes appended to a caller's buffer, in the given version.
//! - [`encoded_len`]: the exact size `encode` would write (for maximum packet size checks).
//! - [`topic`]: topic name and filter validity, shared subscriptions and matching.
//!
//! Each packet family has its own file (`connect`, `publish`, `ack`, `subscribe`,
//! `unsubscribe`, `control`); `header` owns framing and `property` the v5 properties. This
//! module must never touch a socket, a file, the clock or the logger, and never panic.
//!
//! [`DecodeError::clause`] holds a conformance statement id (`"MQTT-3.3.1-4"`) where the
//! specification numbers the rule, otherwise the 5.0 section that states it (`"2.2.2.2"`).

use std::rc::Rc;

use crate::codec::cursor::Reader;

pub use self::props::Props;
pub use self::reason::{ReasonCode, ReasonPacket};

mod ack;
mod connect;
mod control;
mod header;
mod property;
mod props;
mod publish;
pub mod reason;
mod subscribe;
pub mod topic;
mod unsubscribe;

/// The protocol level carried in CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1 ("MQIsdp", level 3): accepted and treated as 3.1.1.
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl ProtocolVersion {
    pub fn is_v5(self) -> bool {
        self == Self::V5
    }
    pub fn level(self) -> u8 {
        match self {
            Self::V31 => 3,
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// Every MQTT 5.0 property. A 3.1.1 packet decodes with none (an empty [`Props`]) and encodes
/// none of them. `decode` rejects a property that the packet type may not carry and a
/// duplicate of a property that may appear once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Vec<u8>>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (v5 only).
    pub properties: Props,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Props,
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// The bridge bit of a 3.1 or 3.1.1 protocol level (0x83, 0x84): the client is another
    /// broker's bridge, which must not be sent back its own messages (mosquitto's
    /// `try_private`). Always false in 5.0, where No Local does the same.
    pub bridge: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// Encoded as the v5 reason code, or as the 3.1.1 return code via `ReasonCode::v3_connack`.
    pub reason: ReasonCode,
    pub properties: Props,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in v5 when a topic alias stands for it.
    pub topic: Rc<str>,
    /// 0 for QoS 0 (absent on the wire), non-zero otherwise.
    pub packet_id: u16,
    pub properties: Props,
    pub payload: Rc<[u8]>,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: Props,
}

impl Ack {
    /// A success acknowledgement of `packet_id`, without properties.
    pub fn success(packet_id: u16) -> Self {
        Self {
            packet_id,
            reason: ReasonCode::Success,
            properties: Props::none(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0: send retained on subscribe; 1: only if the subscription is new; 2: never.
    pub retain_handling: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    pub properties: Props,
    pub filters: Vec<(String, SubOptions)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Props,
    /// One per filter: GrantedQos0/1/2 or a failure code (3.1.1 encodes any failure as 0x80).
    pub reasons: Vec<ReasonCode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Props,
    pub filters: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Props,
    /// v5 only; 3.1.1 UNSUBACK has no payload.
    pub reasons: Vec<ReasonCode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Props,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Props,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// Who is at fault for a decode failure, which decides the reason code sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes do not follow the packet grammar (v5 0x81).
    Malformed,
    /// The packet parses but breaks a rule of the protocol (v5 0x82).
    Protocol,
    /// CONNECT names a protocol or level this server does not speak (v5 0x84, 3.1.1 0x01).
    UnsupportedProtocolVersion,
    /// A topic name is not valid (v5 0x90).
    TopicNameInvalid,
    /// The remaining length exceeds the limit the caller gave (v5 0x95).
    PacketTooLarge,
}

/// A decode failure: what kind, and the specification clause that was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: ErrorKind,
    /// e.g. `"MQTT-3.3.1-4"`.
    pub clause: &'static str,
}

impl DecodeError {
    /// The v5 reason code for this failure (the one place the mapping lives).
    pub fn reason(&self) -> ReasonCode {
        match self.kind {
            ErrorKind::Malformed => ReasonCode::MalformedPacket,
            ErrorKind::Protocol => ReasonCode::ProtocolError,
            ErrorKind::UnsupportedProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
            ErrorKind::TopicNameInvalid => ReasonCode::TopicNameInvalid,
            ErrorKind::PacketTooLarge => ReasonCode::PacketTooLarge,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} [{}]", self.kind, self.clause)
    }
}

/// The position of one whole packet at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Fixed header length: 1 type byte + 1..=4 remaining-length bytes.
    pub header_len: usize,
    /// The remaining length declared by the fixed header.
    pub remaining_len: usize,
}

impl Frame {
    pub fn total_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

impl Packet {
    /// The packet type's name, as the specification writes it (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect(_) => "CONNECT",
            Self::ConnAck(_) => "CONNACK",
            Self::Publish(_) => "PUBLISH",
            Self::PubAck(_) => "PUBACK",
            Self::PubRec(_) => "PUBREC",
            Self::PubRel(_) => "PUBREL",
            Self::PubComp(_) => "PUBCOMP",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::SubAck(_) => "SUBACK",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::UnsubAck(_) => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect(_) => "DISCONNECT",
            Self::Auth(_) => "AUTH",
        }
    }
}

/// Finds the next frame at the start of `buf`. `Ok(None)`: the fixed header is not complete
/// yet. `Err`: the remaining length is malformed (more than four bytes [MQTT-1.5.5-1]).
/// Non-minimal length encodings are accepted. The packet type is not checked here.
pub fn probe(buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
    header::probe(buf)
}

/// Decodes one whole frame (`frame.len()` equals the probed total length). CONNECT decodes
/// by its own protocol level whatever `version` says; every other packet decodes per
/// `version` (3.1 as 3.1.1).
pub fn decode(frame: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    use header::*;
    // The frame is exactly one packet: its remaining length covers every byte after the
    // fixed header, no more and no less (2.1.4).
    let Some(f) = probe(frame)? else {
        return Err(malformed("2.1.4"));
    };
    if f.total_len() != frame.len() {
        return Err(malformed("2.1.4"));
    }
    let byte0 = frame.first().copied().unwrap_or(0);
    let (ptype, flags) = check_type(byte0, version)?;
    let mut r = Reader::new(frame.get(f.header_len..).unwrap_or(&[]));
    let r = &mut r;
    let packet = match ptype {
        CONNECT => Packet::Connect(Box::new(connect::decode_connect(r)?)),
        CONNACK => Packet::ConnAck(connect::decode_connack(r, version)?),
        PUBLISH => Packet::Publish(publish::decode_publish(r, flags, version)?),
        PUBACK => Packet::PubAck(ack::decode_ack(r, ptype, version)?),
        PUBREC => Packet::PubRec(ack::decode_ack(r, ptype, version)?),
        PUBREL => Packet::PubRel(ack::decode_ack(r, ptype, version)?),
        PUBCOMP => Packet::PubComp(ack::decode_ack(r, ptype, version)?),
        SUBSCRIBE => Packet::Subscribe(subscribe::decode_subscribe(r, version)?),
        SUBACK => Packet::SubAck(subscribe::decode_suback(r, version)?),
        UNSUBSCRIBE => Packet::Unsubscribe(unsubscribe::decode_unsubscribe(r, version)?),
        UNSUBACK => Packet::UnsubAck(unsubscribe::decode_unsuback(r, version)?),
        PINGREQ => {
            control::decode_ping(r, "3.12.1")?;
            Packet::PingReq
        }
        PINGRESP => {
            control::decode_ping(r, "3.13.1")?;
            Packet::PingResp
        }
        DISCONNECT => Packet::Disconnect(control::decode_disconnect(r, version)?),
        AUTH => Packet::Auth(control::decode_auth(r)?),
        _ => return Err(malformed("2.1.2")),
    };
    // Bytes left over after the last field are malformed (2.1.4).
    if !r.is_empty() {
        return Err(malformed("2.1.4"));
    }
    Ok(packet)
}

/// The first byte of the fixed header: type and flags.
fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => publish::publish_byte0(p),
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

/// The remaining length `encode` writes.
fn body_len(packet: &Packet, version: ProtocolVersion) -> usize {
    match packet {
        Packet::Connect(c) => connect::connect_len(c),
        Packet::ConnAck(c) => connect::connack_len(c, version),
        Packet::Publish(p) => publish::publish_len(p, version),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack::ack_len(a, version)
        }
        Packet::Subscribe(s) => subscribe::subscribe_len(s, version),
        Packet::SubAck(s) => subscribe::suback_len(s, version),
        Packet::Unsubscribe(u) => unsubscribe::unsubscribe_len(u, version),
        Packet::UnsubAck(u) => unsubscribe::unsuback_len(u, version),
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => control::disconnect_len(d, version),
        Packet::Auth(a) => control::auth_len(a, version),
    }
}

/// Appends the encoding of `packet` for `version` to `out`. 3.1 and 3.1.1 get the 3.1.1
/// form (no properties, no reason codes where 3.1.1 has none); CONNECT is written in the
/// version it names. Never panics; a packet whose remaining length exceeds 268,435,455
/// bytes cannot be represented, so callers compare [`encoded_len`] with their limits first.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut Vec<u8>) {
    let len = body_len(packet, version);
    out.reserve(header::total_len(len));
    header::put_header(out, first_byte(packet), len);
    match packet {
        Packet::Connect(c) => connect::encode_connect(c, out),
        Packet::ConnAck(c) => connect::encode_connack(c, version, out),
        Packet::Publish(p) => publish::encode_publish(p, version, out),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack::encode_ack(a, version, out)
        }
        Packet::Subscribe(s) => subscribe::encode_subscribe(s, version, out),
        Packet::SubAck(s) => subscribe::encode_suback(s, version, out),
        Packet::Unsubscribe(u) => unsubscribe::encode_unsubscribe(u, version, out),
        Packet::UnsubAck(u) => unsubscribe::encode_unsuback(u, version, out),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => control::encode_disconnect(d, version, out),
        Packet::Auth(a) => control::encode_auth(a, version, out),
    }
}

/// The number of bytes `encode` appends for `packet` in `version`. Does not allocate.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    header::total_len(body_len(packet, version))
}

/// A property set outside any packet: what a store keeps of a message or a will.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertySet {
    /// The properties a PUBLISH may carry.
    Message,
    /// The will properties of CONNECT.
    Will,
}

impl PropertySet {
    fn ctx(self) -> property::PropCtx {
        match self {
            Self::Message => property::PropCtx::Publish,
            Self::Will => property::PropCtx::Will,
        }
    }
}

/// Appends the properties of `set` in their wire form, length first.
pub fn encode_properties(p: &Properties, set: PropertySet, out: &mut Vec<u8>) {
    property::encode(p, set.ctx(), out);
}

/// Reads properties written by [`encode_properties`], with the wire form's checks.
pub fn decode_properties(r: &mut Reader<'_>, set: PropertySet) -> Result<Props, DecodeError> {
    property::decode(r, set.ctx())
}

/// Helpers shared by the codec test modules.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Encodes `p` (checking that `encode` appends and that `encoded_len` agrees).
    pub(crate) fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
        let mut out = vec![0xAA];
        encode(p, v, &mut out);
        let out = out.split_off(1);
        assert_eq!(out.len(), encoded_len(p, v), "encoded_len of {p:?}");
        out
    }

    /// Decodes a fixture and checks that it encodes back to the same bytes.
    pub(crate) fn fixture_round_trip(bytes: &[u8], v: ProtocolVersion) -> Packet {
        let p = match decode(bytes, v) {
            Ok(p) => p,
            Err(e) => panic!("{e} decoding {bytes:02x?} as {v:?}"),
        };
        assert_eq!(enc(&p, v), bytes, "re-encoding {p:?} as {v:?}");
        assert_eq!(encoded_len(&p, v), bytes.len());
        p
    }

    /// Encodes a value and checks that it decodes back to the same value.
    pub(crate) fn value_round_trip(p: &Packet, v: ProtocolVersion) {
        let bytes = enc(p, v);
        assert_eq!(
            decode(&bytes, v).as_ref(),
            Ok(p),
            "decoding {bytes:02x?} as {v:?}"
        );
    }

    /// The error decoding `bytes` must give.
    pub(crate) fn err(bytes: &[u8], v: ProtocolVersion) -> DecodeError {
        match decode(bytes, v) {
            Err(e) => e,
            Ok(p) => panic!("{bytes:02x?} decoded as {p:?} in {v:?}, expected an error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{enc, err};
    use super::*;
    use ProtocolVersion::{V31, V311, V5};

    /// One value of every packet type, rich enough to reach every field.
    fn samples() -> Vec<Packet> {
        let props = Properties {
            reason_string: Some("why".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        };
        let will = Will {
            topic: "w".into(),
            payload: vec![1, 2],
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay_interval: Some(3),
                ..Properties::default()
            }
            .into(),
        };
        let connect = |protocol| Connect {
            protocol,
            clean_start: true,
            keep_alive: 30,
            properties: Properties {
                receive_maximum: Some(5),
                ..Properties::default()
            }
            .into(),
            client_id: "cid".into(),
            will: Some(will.clone()),
            username: Some("u".into()),
            password: Some(vec![9]),
            bridge: false,
        };
        let ack = Ack {
            packet_id: 7,
            reason: ReasonCode::Success,
            properties: props.clone().into(),
        };
        let opts = SubOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: false,
            retain_handling: 1,
        };
        vec![
            Packet::Connect(Box::new(connect(V311))),
            Packet::Connect(Box::new(connect(V5))),
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::Success,
                properties: Properties {
                    maximum_qos: Some(1),
                    ..props.clone()
                }
                .into(),
            }),
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: Rc::from("a/b"),
                packet_id: 9,
                properties: Properties {
                    topic_alias: Some(2),
                    ..Properties::default()
                }
                .into(),
                payload: Rc::from(&b"payload"[..]),
            }),
            Packet::PubAck(ack.clone()),
            Packet::PubRec(ack.clone()),
            Packet::PubRel(ack.clone()),
            Packet::PubComp(ack),
            Packet::Subscribe(Subscribe {
                packet_id: 3,
                properties: Properties {
                    subscription_identifiers: vec![4],
                    ..Properties::default()
                }
                .into(),
                filters: vec![("a/+".into(), opts), ("b/#".into(), opts)],
            }),
            Packet::SubAck(SubAck {
                packet_id: 3,
                properties: props.clone().into(),
                reasons: vec![ReasonCode::GrantedQos2, ReasonCode::NotAuthorized],
            }),
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 4,
                properties: props.clone().into(),
                filters: vec!["a/+".into()],
            }),
            Packet::UnsubAck(UnsubAck {
                packet_id: 4,
                properties: props.clone().into(),
                reasons: vec![ReasonCode::NoSubscriptionExisted],
            }),
            Packet::PingReq,
            Packet::PingResp,
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::ServerShuttingDown,
                properties: props.clone().into(),
            }),
            Packet::Auth(Auth {
                reason: ReasonCode::ContinueAuthentication,
                properties: props.into(),
            }),
        ]
    }

    /// A frame around `body` with the given first byte and a matching remaining length.
    fn frame(byte0: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        header::put_header(&mut out, byte0, body.len());
        out.extend_from_slice(body);
        out
    }

    /// A small deterministic generator for byte soup.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u8
        }
    }

    /// A packet is moved several times between decoding and encoding; its properties are
    /// behind a pointer so that each move copies a few words, not every property.
    #[test]
    fn packet_is_small() {
        assert!(size_of::<Packet>() <= 48, "{}", size_of::<Packet>());
    }

    #[test]
    fn every_sample_decodes_in_both_versions() {
        for v in [V311, V5] {
            for p in samples() {
                if matches!(p, Packet::Auth(_)) && !v.is_v5() {
                    continue;
                }
                let bytes = enc(&p, v);
                assert!(
                    decode(&bytes, v).is_ok(),
                    "{p:?} in {v:?}: {:?}",
                    decode(&bytes, v)
                );
            }
        }
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        for v in [V31, V311, V5] {
            for p in samples() {
                let bytes = enc(&p, v);
                let hl = probe(&bytes).ok().flatten().map_or(0, |f| f.header_len);
                let byte0 = bytes.first().copied().unwrap_or(0);
                for cut in 0..=bytes.len() {
                    let prefix = bytes.get(..cut).unwrap_or(&[]);
                    let _ = probe(prefix);
                    let _ = decode(prefix, v);
                    // The same prefix of the body, with a header that agrees with it.
                    let body = bytes.get(hl..cut.max(hl)).unwrap_or(&[]);
                    let _ = decode(&frame(byte0, body), v);
                }
                for i in 0..bytes.len() {
                    for x in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                        let mut m = bytes.clone();
                        m[i] ^= x;
                        let _ = decode(&m, v);
                        let _ = decode(&frame(m[0], m.get(hl..).unwrap_or(&[])), v);
                    }
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut g = Lcg(0x5EED);
        for _ in 0..3000 {
            let len = usize::from(g.next() % 48);
            let bytes: Vec<u8> = (0..len).map(|_| g.next()).collect();
            for v in [V311, V5] {
                let _ = probe(&bytes);
                let _ = decode(&bytes, v);
                let byte0 = bytes.first().copied().unwrap_or(0);
                let _ = decode(&frame(byte0, bytes.get(1..).unwrap_or(&[])), v);
            }
        }
        // Every first byte with a handful of bodies.
        for byte0 in 0..=255u8 {
            for body in [
                &[][..],
                &[0x00],
                &[0x00, 0x01],
                &[0x00, 0x01, 0x00, 0x00, 0x01, 0x00],
            ] {
                for v in [V311, V5] {
                    let _ = decode(&frame(byte0, body), v);
                }
            }
        }
    }

    #[test]
    fn encoded_len_matches_every_sample() {
        for v in [V31, V311, V5] {
            for p in samples() {
                let mut out = Vec::new();
                encode(&p, v, &mut out);
                assert_eq!(out.len(), encoded_len(&p, v), "{p:?}");
                let f = probe(&out).ok().flatten().map(|f| f.total_len());
                assert_eq!(f, Some(out.len()));
            }
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![1, 2, 3];
        encode(&Packet::PingReq, V5, &mut out);
        assert_eq!(out, [1, 2, 3, 0xC0, 0x00]);
    }

    #[test]
    fn large_publish_uses_minimal_length() {
        let p = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: Rc::from("t"),
            packet_id: 0,
            properties: Props::none(),
            payload: Rc::from(vec![0u8; 200_000]),
        });
        let bytes = enc(&p, V311);
        assert_eq!(
            probe(&bytes),
            Ok(Some(Frame {
                header_len: 4,
                remaining_len: 200_003
            }))
        );
        assert_eq!(decode(&bytes, V311).as_ref(), Ok(&p));
    }

    #[test]
    fn packet_type_0_is_malformed() {
        for v in [V311, V5] {
            assert_eq!(err(&[0x00, 0x00], v).kind, ErrorKind::Malformed);
        }
    }

    #[test]
    fn remaining_length_mismatch_is_malformed() {
        for v in [V311, V5] {
            // Shortfall: declares 2, carries 1.
            assert_eq!(err(&[0x40, 0x02, 0x00], v).kind, ErrorKind::Malformed);
            // Extra bytes after the declared length.
            assert_eq!(err(&[0xC0, 0x00, 0x00], v).kind, ErrorKind::Malformed);
            // Incomplete fixed header.
            assert_eq!(err(&[0x30], v).kind, ErrorKind::Malformed);
            assert_eq!(err(&[], v).kind, ErrorKind::Malformed);
        }
    }

    #[test]
    fn five_byte_remaining_length_is_malformed_mqtt_1_5_5_1() {
        let e = err(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], V5);
        assert_eq!((e.kind, e.clause), (ErrorKind::Malformed, "MQTT-1.5.5-1"));
    }

    #[test]
    fn decode_error_maps_to_reason() {
        let e = DecodeError {
            kind: ErrorKind::TopicNameInvalid,
            clause: "MQTT-3.3.2-2",
        };
        assert_eq!(e.reason(), ReasonCode::TopicNameInvalid);
        assert_eq!(e.to_string(), "TopicNameInvalid [MQTT-3.3.2-2]");
    }
}
