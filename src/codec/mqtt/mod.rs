//! MQTT 3.1.1 and 5.0 packets: one value model (a 5.0 superset), one codec parameterised by
//! the protocol version.
//!
//! Entry points:
//! - [`probe`]: find the next whole frame in a byte buffer (fixed header + remaining length).
//! - [`decode`]: one whole frame → [`Packet`], validating every MUST of both specifications.
//! - [`encode`]: [`Packet`] → bytes appended to a caller's buffer, in the given version.
//! - [`encoded_len`]: the exact size `encode` would write (for maximum packet size checks).

use std::rc::Rc;

pub use self::reason::ReasonCode;

pub mod reason;

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

/// Every MQTT 5.0 property. A 3.1.1 packet decodes with `Properties::default()` and encodes
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
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// Encoded as the v5 reason code, or as the 3.1.1 return code via `ReasonCode::v3_connack`.
    pub reason: ReasonCode,
    pub properties: Properties,
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
    pub properties: Properties,
    pub payload: Rc<[u8]>,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: Properties,
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
    pub properties: Properties,
    pub filters: Vec<(String, SubOptions)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// One per filter: GrantedQos0/1/2 or a failure code (3.1.1 encodes any failure as 0x80).
    pub reasons: Vec<ReasonCode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub filters: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// v5 only; 3.1.1 UNSUBACK has no payload.
    pub reasons: Vec<ReasonCode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
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

/// Finds the next frame at the start of `buf`. `Ok(None)`: the fixed header is not complete
/// yet. `Err`: the remaining length is malformed (more than four bytes [MQTT-1.5.5-1]).
pub fn probe(buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
    let _ = buf;
    Ok(None)
}

/// Decodes one whole frame (`frame.len()` equals the probed total length). CONNECT decodes
/// by its own protocol level whatever `version` says.
pub fn decode(frame: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let _ = (frame, version);
    Err(DecodeError { kind: ErrorKind::Malformed, clause: "unimplemented" })
}

/// Appends the encoding of `packet` for `version` to `out`.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut Vec<u8>) {
    let _ = (packet, version, out);
}

/// The number of bytes `encode` appends for `packet` in `version`.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    0
}
