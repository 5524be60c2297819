//! The message header (spec 5.2): the Length field in its 1-octet and 3-octet forms, and the
//! MsgType codes.
//!
//! This module must never look past the header, and never panic on any input.

use super::{DecodeError, ErrorKind, Message};

pub(super) const ADVERTISE: u8 = 0x00;
pub(super) const SEARCHGW: u8 = 0x01;
pub(super) const GWINFO: u8 = 0x02;
pub(super) const CONNECT: u8 = 0x04;
pub(super) const CONNACK: u8 = 0x05;
pub(super) const WILLTOPICREQ: u8 = 0x06;
pub(super) const WILLTOPIC: u8 = 0x07;
pub(super) const WILLMSGREQ: u8 = 0x08;
pub(super) const WILLMSG: u8 = 0x09;
pub(super) const REGISTER: u8 = 0x0A;
pub(super) const REGACK: u8 = 0x0B;
pub(super) const PUBLISH: u8 = 0x0C;
pub(super) const PUBACK: u8 = 0x0D;
pub(super) const PUBCOMP: u8 = 0x0E;
pub(super) const PUBREC: u8 = 0x0F;
pub(super) const PUBREL: u8 = 0x10;
pub(super) const SUBSCRIBE: u8 = 0x12;
pub(super) const SUBACK: u8 = 0x13;
pub(super) const UNSUBSCRIBE: u8 = 0x14;
pub(super) const UNSUBACK: u8 = 0x15;
pub(super) const PINGREQ: u8 = 0x16;
pub(super) const PINGRESP: u8 = 0x17;
pub(super) const DISCONNECT: u8 = 0x18;
pub(super) const WILLTOPICUPD: u8 = 0x1A;
pub(super) const WILLTOPICRESP: u8 = 0x1B;
pub(super) const WILLMSGUPD: u8 = 0x1C;
pub(super) const WILLMSGRESP: u8 = 0x1D;
pub(super) const ENCAPSULATED: u8 = 0xFE;

/// The first octet that announces the 3-octet length form (5.2.1).
const LONG_FORM: u8 = 0x01;
/// The largest total the 1-octet form can state.
const SHORT_MAX: usize = 0xFF;

pub(super) fn err(kind: ErrorKind, clause: &'static str) -> DecodeError {
    DecodeError { kind, clause }
}

/// A parsed Length field.
#[derive(Clone, Copy, Debug)]
pub(super) struct Length {
    /// The length the field states, counting the field itself (5.2.1).
    pub(super) declared: usize,
    /// How many octets the field takes: 1 or 3. The MsgType octet follows it.
    pub(super) field: usize,
}

/// Reads the Length field at the start of `bytes`. Only a field cut short is an error here;
/// the caller compares `declared` with what it holds.
pub(super) fn length(bytes: &[u8]) -> Result<Length, DecodeError> {
    match *bytes {
        [] => Err(err(ErrorKind::Truncated, "5.2.1")),
        [LONG_FORM, hi, lo, ..] => Ok(Length {
            declared: usize::from(u16::from_be_bytes([hi, lo])),
            field: 3,
        }),
        [LONG_FORM, ..] => Err(err(ErrorKind::Truncated, "5.2.1")),
        [n, ..] => Ok(Length {
            declared: usize::from(n),
            field: 1,
        }),
    }
}

/// The Length field size for a message of `rest` octets after the field: 1 while the total
/// fits in one octet, else 3.
pub(super) fn field_len(rest: usize) -> usize {
    if rest.saturating_add(1) <= SHORT_MAX {
        1
    } else {
        3
    }
}

/// Appends the Length field for a message of `rest` octets after the field. A total above
/// 65,535 cannot be stated and is written as 65,535 (the caller checks lengths first).
pub(super) fn put_length(rest: usize, out: &mut Vec<u8>) {
    let total = rest.saturating_add(field_len(rest));
    match u8::try_from(total) {
        Ok(n) if total <= SHORT_MAX && n != LONG_FORM => out.push(n),
        _ => {
            out.push(LONG_FORM);
            let n = u16::try_from(total).unwrap_or(u16::MAX);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// The MsgType code of `msg`.
pub(super) fn msg_type(msg: &Message<'_>) -> u8 {
    match msg {
        Message::Advertise { .. } => ADVERTISE,
        Message::SearchGw { .. } => SEARCHGW,
        Message::GwInfo { .. } => GWINFO,
        Message::Connect { .. } => CONNECT,
        Message::ConnAck { .. } => CONNACK,
        Message::WillTopicReq => WILLTOPICREQ,
        Message::WillTopic { .. } => WILLTOPIC,
        Message::WillMsgReq => WILLMSGREQ,
        Message::WillMsg { .. } => WILLMSG,
        Message::Register { .. } => REGISTER,
        Message::RegAck { .. } => REGACK,
        Message::Publish { .. } => PUBLISH,
        Message::PubAck { .. } => PUBACK,
        Message::PubRec { .. } => PUBREC,
        Message::PubRel { .. } => PUBREL,
        Message::PubComp { .. } => PUBCOMP,
        Message::Subscribe { .. } => SUBSCRIBE,
        Message::SubAck { .. } => SUBACK,
        Message::Unsubscribe { .. } => UNSUBSCRIBE,
        Message::UnsubAck { .. } => UNSUBACK,
        Message::PingReq { .. } => PINGREQ,
        Message::PingResp => PINGRESP,
        Message::Disconnect { .. } => DISCONNECT,
        Message::WillTopicUpd { .. } => WILLTOPICUPD,
        Message::WillTopicResp { .. } => WILLTOPICRESP,
        Message::WillMsgUpd { .. } => WILLMSGUPD,
        Message::WillMsgResp { .. } => WILLMSGRESP,
    }
}

/// The specification's name for a MsgType code (`"reserved"` for codes it does not define).
pub(super) fn name(code: u8) -> &'static str {
    match code {
        ADVERTISE => "ADVERTISE",
        SEARCHGW => "SEARCHGW",
        GWINFO => "GWINFO",
        CONNECT => "CONNECT",
        CONNACK => "CONNACK",
        WILLTOPICREQ => "WILLTOPICREQ",
        WILLTOPIC => "WILLTOPIC",
        WILLMSGREQ => "WILLMSGREQ",
        WILLMSG => "WILLMSG",
        REGISTER => "REGISTER",
        REGACK => "REGACK",
        PUBLISH => "PUBLISH",
        PUBACK => "PUBACK",
        PUBCOMP => "PUBCOMP",
        PUBREC => "PUBREC",
        PUBREL => "PUBREL",
        SUBSCRIBE => "SUBSCRIBE",
        SUBACK => "SUBACK",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBACK => "UNSUBACK",
        PINGREQ => "PINGREQ",
        PINGRESP => "PINGRESP",
        DISCONNECT => "DISCONNECT",
        WILLTOPICUPD => "WILLTOPICUPD",
        WILLTOPICRESP => "WILLTOPICRESP",
        WILLMSGUPD => "WILLMSGUPD",
        WILLMSGRESP => "WILLMSGRESP",
        ENCAPSULATED => "Encapsulated message",
        _ => "reserved",
    }
}
