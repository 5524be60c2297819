//! MQTT-SN 1.2 messages: one datagram ⇄ one [`Message`], or an [`Encapsulated`] message
//! relayed by a forwarder, with every variable field borrowed from the datagram.
//!
//! Entry points:
//! - [`decode()`]: a whole datagram → [`Frame`] (a message, or a forwarder's encapsulation).
//! - [`decode_message`]: the bytes of exactly one message → [`Message`] (used on
//!   [`Encapsulated::inner`]).
//! - [`encode()`] / [`encode_encapsulated`]: append the wire form to a caller's buffer.
//! - [`encoded_len`]: the exact size `encode` appends.
//!
//! `header` owns the length field and the message type codes, `flags` the flags byte and the
//! return codes, `decode` and `encode` the message bodies of spec section 5.4.
//!
//! This module must never touch a socket, a file, the clock or the logger, and never panic.
//! It checks the grammar only: what the fields mean (topic name validity, client id length,
//! the protocol id, where QoS -1 may be used, message id 0) is for the gateway to judge.
//!
//! Choices where the specification leaves room:
//! - The 3-octet length form (0x01, then a u16) is accepted for every length of at least 4,
//!   since 5.2.1 says short messages *may* use the 1-octet form. `encode` uses the 1-octet
//!   form whenever the total fits in 255 bytes.
//! - Flag bits a message does not use ("not used" in 5.4) are ignored on decode and written
//!   as zero on encode, so a [`Flags`] value only round-trips in the fields its message uses.
//! - CONNECT's protocol id is decoded as it stands; the gateway refuses anything but 0x01.
//! - Reserved return codes (0x04..=0xFF) decode as [`ReturnCode::Other`].
//! - An Encapsulated frame's length field counts its own header only (5.5); the rest of the
//!   datagram is the encapsulated message. 5.5 shows a 1-octet Length; the 3-octet form is
//!   accepted too and written only for node ids too long for one octet. The Ctrl byte is
//!   passed through unchecked.
//!
//! [`DecodeError::clause`] holds the section of the MQTT-SN 1.2 specification that the input
//! breaks (`"5.2.1"`).

mod decode;
mod encode;
mod flags;
mod header;

#[cfg(test)]
mod tests;

/// The largest message the 3-octet length form can name; it also fits one UDP datagram.
pub const MAX_DATAGRAM: usize = 65_535;

/// The QoS field of the flags byte (5.3.4), including the MQTT-SN level -1 ("publish without
/// connection").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnQos {
    #[default]
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
    MinusOne,
}

/// How the topic of a PUBLISH, SUBSCRIBE or UNSUBSCRIBE is named (5.3.4, bits 1-0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TopicIdType {
    /// A topic id registered with REGISTER, or (SUBSCRIBE/UNSUBSCRIBE) a topic name.
    #[default]
    Normal,
    /// A topic id both sides know in advance.
    Predefined,
    /// A two-character topic name carried in place of the id.
    Short,
}

/// The flags byte (5.3.4). Each message uses only some of the fields; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags {
    pub dup: bool,
    pub qos: SnQos,
    pub retain: bool,
    pub will: bool,
    pub clean_session: bool,
    pub topic_id_type: TopicIdType,
}

/// The ReturnCode field (5.3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnCode {
    Accepted,
    /// Rejected: congestion.
    Congestion,
    /// Rejected: invalid topic id.
    InvalidTopicId,
    /// Rejected: not supported.
    NotSupported,
    /// A reserved value (0x04..=0xFF). `Other(0..=3)` encodes as the named code of that value.
    Other(u8),
}

/// The topic of a SUBSCRIBE/UNSUBSCRIBE: a name (TopicIdType::Normal, may hold wildcards),
/// a predefined id, or a two-character short name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubTopic<'a> {
    Name(&'a [u8]),
    Predefined(u16),
    Short([u8; 2]),
}

/// One MQTT-SN message (5.4). Variable fields borrow from the decoded datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Advertise {
        gw_id: u8,
        duration: u16,
    },
    SearchGw {
        radius: u8,
    },
    /// `gw_add` is empty when a gateway sends it, and holds the gateway's address when a
    /// client answers a SEARCHGW on its behalf.
    GwInfo {
        gw_id: u8,
        gw_add: &'a [u8],
    },
    /// Uses the will and clean_session flags.
    Connect {
        flags: Flags,
        protocol_id: u8,
        duration: u16,
        client_id: &'a [u8],
    },
    ConnAck {
        code: ReturnCode,
    },
    WillTopicReq,
    /// Uses the qos and retain flags. An empty topic (the 2-byte message, no flags byte)
    /// asks to delete the will.
    WillTopic {
        flags: Flags,
        topic: &'a [u8],
    },
    WillMsgReq,
    WillMsg {
        msg: &'a [u8],
    },
    Register {
        topic_id: u16,
        msg_id: u16,
        topic_name: &'a [u8],
    },
    RegAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    /// Uses the dup, qos, retain and topic_id_type flags. A short topic name travels as
    /// `topic_id = u16::from_be_bytes(name)`.
    Publish {
        flags: Flags,
        topic_id: u16,
        msg_id: u16,
        data: &'a [u8],
    },
    PubAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    PubRec {
        msg_id: u16,
    },
    PubRel {
        msg_id: u16,
    },
    PubComp {
        msg_id: u16,
    },
    /// Uses the dup, qos and topic_id_type flags; on encode, topic_id_type is taken from
    /// `topic`, whatever `flags` says.
    Subscribe {
        flags: Flags,
        msg_id: u16,
        topic: SubTopic<'a>,
    },
    /// Uses the qos flag.
    SubAck {
        flags: Flags,
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    /// Uses the topic_id_type flag, which on encode is taken from `topic`.
    Unsubscribe {
        flags: Flags,
        msg_id: u16,
        topic: SubTopic<'a>,
    },
    UnsubAck {
        msg_id: u16,
    },
    /// A sleeping client names itself when it wakes up to fetch its buffered messages.
    /// `Some(&[])` encodes as `None`.
    PingReq {
        client_id: Option<&'a [u8]>,
    },
    PingResp,
    /// A duration asks the gateway to let the client sleep that many seconds.
    Disconnect {
        duration: Option<u16>,
    },
    /// Uses the qos and retain flags. An empty topic (no flags byte) deletes the will topic
    /// and the will message.
    WillTopicUpd {
        flags: Flags,
        topic: &'a [u8],
    },
    WillTopicResp {
        code: ReturnCode,
    },
    WillMsgUpd {
        msg: &'a [u8],
    },
    WillMsgResp {
        code: ReturnCode,
    },
}

/// An Encapsulated message (type 0xFE) from a forwarder: ctrl byte (radius in bits 0-1),
/// the wireless node id, and the encapsulated MQTT-SN message bytes (decode them again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encapsulated<'a> {
    pub ctrl: u8,
    pub node_id: &'a [u8],
    pub inner: &'a [u8],
}

/// What one datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Message(Message<'a>),
    Encapsulated(Encapsulated<'a>),
}

/// What is wrong with a datagram. Every kind means the datagram is not valid MQTT-SN and is
/// dropped; the kinds tell logs and tests apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes end before the length field, the message type or (Encapsulated) the
    /// encapsulated message.
    Truncated,
    /// The length field disagrees with the number of bytes.
    LengthMismatch,
    /// A message type code that 5.2.2 does not define (reserved codes included).
    UnknownType(u8),
    /// A message body of a size its type does not allow: a fixed-size message too short or
    /// too long, or a variable one shorter than its fixed fields. Holds the type code.
    WrongSize(u8),
    /// TopicIdType 0b11, reserved (5.3.4).
    ReservedTopicIdType,
    /// An Encapsulated message where a plain message must stand: inside another Encapsulated
    /// message, or handed to [`decode_message`].
    NestedEncapsulation,
}

/// A decode failure: what kind, and the section of the specification that was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: ErrorKind,
    /// e.g. `"5.4.12"`.
    pub clause: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} [MQTT-SN {}]", self.kind, self.clause)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one datagram. A datagram carries exactly one message: its length field must equal
/// the datagram length (1-octet form 2..=255, or 0x01 then a u16 of at least 4). An
/// Encapsulated frame's length counts its header only, and the message after it must not be
/// another Encapsulated frame; its other faults show when [`decode_message`] reads `inner`.
pub fn decode(datagram: &[u8]) -> Result<Frame<'_>, DecodeError> {
    decode::frame(datagram)
}

/// Decodes exactly one message (no encapsulation), such as [`Encapsulated::inner`].
pub fn decode_message(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    decode::message(bytes)
}

/// Appends the encoding of `msg`: the 1-octet length form when the total fits in 255 bytes,
/// else the 3-octet form. Never panics. A message longer than [`MAX_DATAGRAM`] cannot be
/// represented (its length field would be wrong), so callers check [`encoded_len`] first.
pub fn encode(msg: &Message<'_>, out: &mut Vec<u8>) {
    encode::message(msg, out);
}

/// Appends an Encapsulated frame (5.5) holding `inner` for the wireless node `node_id`.
pub fn encode_encapsulated(ctrl: u8, node_id: &[u8], inner: &Message<'_>, out: &mut Vec<u8>) {
    encode::encapsulated(ctrl, node_id, inner, out);
}

/// The number of bytes [`encode()`] appends for `msg` (may exceed [`MAX_DATAGRAM`]).
pub fn encoded_len(msg: &Message<'_>) -> usize {
    encode::message_len(msg)
}

impl Message<'_> {
    /// The MsgType code of this message (5.2.2), for logs and traces.
    pub fn msg_type(&self) -> u8 {
        header::msg_type(self)
    }

    /// The specification's name of this message (`"PUBLISH"`), for logs and traces.
    pub fn name(&self) -> &'static str {
        header::name(self.msg_type())
    }
}
