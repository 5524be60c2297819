//! Decoding: the datagram framing (5.2.1), the Encapsulated frame (5.5) and every message
//! body of 5.4.
//!
//! The body decoders get the octets after the MsgType field, exactly as many as the Length
//! field named. They borrow from the input, never allocate and never panic: every read is
//! bounds-checked and a body of the wrong size is a [`ErrorKind::WrongSize`] error.

use super::header::{err, length, Length, *};
use super::{flags, DecodeError, Encapsulated, ErrorKind, Frame, Message, SubTopic};
use super::{ReturnCode, TopicIdType};

/// A bounds-checked cursor over one message body. Short reads fail with `WrongSize` for the
/// message type and clause it was created with.
struct Body<'a> {
    bytes: &'a [u8],
    msg_type: u8,
    clause: &'static str,
}

impl<'a> Body<'a> {
    fn wrong_size(&self) -> DecodeError {
        err(ErrorKind::WrongSize(self.msg_type), self.clause)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.bytes.split_first().ok_or_else(|| self.wrong_size())?;
        self.bytes = rest;
        Ok(b)
    }

    /// A two-octet field, most significant octet first (5.1).
    fn u16(&mut self) -> Result<u16, DecodeError> {
        match *self.bytes {
            [hi, lo, ..] => {
                self.bytes = self.bytes.get(2..).unwrap_or(&[]);
                Ok(u16::from_be_bytes([hi, lo]))
            }
            _ => Err(self.wrong_size()),
        }
    }

    fn code(&mut self) -> Result<ReturnCode, DecodeError> {
        self.u8().map(ReturnCode::from_u8)
    }

    /// Every octet not read yet (possibly none).
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// Fails unless every octet has been read: fixed-size messages and fixed-size tails.
    fn end(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.wrong_size())
        }
    }
}

/// See [`super::decode()`].
pub(super) fn frame(datagram: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let len = length(datagram)?;
    if datagram.get(len.field) == Some(&ENCAPSULATED) {
        encapsulated(datagram, len).map(Frame::Encapsulated)
    } else {
        message(datagram).map(Frame::Message)
    }
}

/// An Encapsulated frame: Length (counting the header only), 0xFE, Ctrl, Wireless Node Id,
/// then the encapsulated message up to the end of the datagram (5.5).
fn encapsulated(datagram: &[u8], len: Length) -> Result<Encapsulated<'_>, DecodeError> {
    // The header holds at least the Length, MsgType and Ctrl fields.
    let ctrl_at = len.field + 1;
    if len.declared <= ctrl_at {
        return Err(err(ErrorKind::WrongSize(ENCAPSULATED), "5.5"));
    }
    if len.declared > datagram.len() {
        return Err(err(ErrorKind::LengthMismatch, "5.5"));
    }
    let (head, inner) = datagram.split_at(len.declared);
    let (ctrl, node_id) = match head.get(ctrl_at..) {
        Some([ctrl, node_id @ ..]) => (*ctrl, node_id),
        _ => return Err(err(ErrorKind::WrongSize(ENCAPSULATED), "5.5")),
    };
    // A forwarder relays a message; a header with nothing after it relays none.
    if inner.is_empty() {
        return Err(err(ErrorKind::Truncated, "5.5"));
    }
    // Forwarders encapsulate messages, not other encapsulations. Any other fault of the
    // inner message is found when the caller decodes it.
    if let Ok(inner_len) = length(inner) {
        if inner.get(inner_len.field) == Some(&ENCAPSULATED) {
            return Err(err(ErrorKind::NestedEncapsulation, "5.5"));
        }
    }
    Ok(Encapsulated {
        ctrl,
        node_id,
        inner,
    })
}

/// See [`super::decode_message`].
pub(super) fn message(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let len = length(bytes)?;
    // One datagram, one message: the Length field names every octet (5.2.1).
    if len.declared != bytes.len() {
        return Err(err(ErrorKind::LengthMismatch, "5.2.1"));
    }
    let Some((&msg_type, body)) = bytes.get(len.field..).and_then(<[u8]>::split_first) else {
        return Err(err(ErrorKind::Truncated, "5.2.2"));
    };
    body_of(msg_type, body)
}

/// Decodes the body of a message of type `msg_type`.
fn body_of(msg_type: u8, bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let clause = clause_of(msg_type);
    let mut b = Body {
        bytes,
        msg_type,
        clause,
    };
    let b = &mut b;
    let msg = match msg_type {
        ADVERTISE => Message::Advertise {
            gw_id: b.u8()?,
            duration: b.u16()?,
        },
        SEARCHGW => Message::SearchGw { radius: b.u8()? },
        GWINFO => Message::GwInfo {
            gw_id: b.u8()?,
            gw_add: b.rest(),
        },
        CONNECT => Message::Connect {
            flags: flags::decode(b.u8()?, flags::CONNECT_USES)?,
            protocol_id: b.u8()?,
            duration: b.u16()?,
            client_id: b.rest(),
        },
        CONNACK => Message::ConnAck { code: b.code()? },
        WILLTOPICREQ => Message::WillTopicReq,
        WILLTOPIC => {
            let (flags, topic) = will_topic(b)?;
            Message::WillTopic { flags, topic }
        }
        WILLMSGREQ => Message::WillMsgReq,
        WILLMSG => Message::WillMsg { msg: b.rest() },
        REGISTER => Message::Register {
            topic_id: b.u16()?,
            msg_id: b.u16()?,
            topic_name: b.rest(),
        },
        REGACK => Message::RegAck {
            topic_id: b.u16()?,
            msg_id: b.u16()?,
            code: b.code()?,
        },
        PUBLISH => Message::Publish {
            flags: flags::decode(b.u8()?, flags::PUBLISH_USES)?,
            topic_id: b.u16()?,
            msg_id: b.u16()?,
            data: b.rest(),
        },
        PUBACK => Message::PubAck {
            topic_id: b.u16()?,
            msg_id: b.u16()?,
            code: b.code()?,
        },
        PUBREC => Message::PubRec { msg_id: b.u16()? },
        PUBREL => Message::PubRel { msg_id: b.u16()? },
        PUBCOMP => Message::PubComp { msg_id: b.u16()? },
        SUBSCRIBE => {
            let flags = flags::decode(b.u8()?, flags::SUBSCRIBE_USES)?;
            let msg_id = b.u16()?;
            let topic = sub_topic(flags.topic_id_type, b)?;
            Message::Subscribe {
                flags,
                msg_id,
                topic,
            }
        }
        SUBACK => Message::SubAck {
            flags: flags::decode(b.u8()?, flags::SUBACK_USES)?,
            topic_id: b.u16()?,
            msg_id: b.u16()?,
            code: b.code()?,
        },
        UNSUBSCRIBE => {
            let flags = flags::decode(b.u8()?, flags::UNSUBSCRIBE_USES)?;
            let msg_id = b.u16()?;
            let topic = sub_topic(flags.topic_id_type, b)?;
            Message::Unsubscribe {
                flags,
                msg_id,
                topic,
            }
        }
        UNSUBACK => Message::UnsubAck { msg_id: b.u16()? },
        PINGREQ => {
            // The client id is optional: present only when a sleeping client wakes up.
            let id = b.rest();
            Message::PingReq {
                client_id: (!id.is_empty()).then_some(id),
            }
        }
        PINGRESP => Message::PingResp,
        DISCONNECT => {
            // The duration is optional: present only when the client goes to sleep.
            let duration = if b.bytes.is_empty() {
                None
            } else {
                Some(b.u16()?)
            };
            Message::Disconnect { duration }
        }
        WILLTOPICUPD => {
            let (flags, topic) = will_topic(b)?;
            Message::WillTopicUpd { flags, topic }
        }
        WILLTOPICRESP => Message::WillTopicResp { code: b.code()? },
        WILLMSGUPD => Message::WillMsgUpd { msg: b.rest() },
        WILLMSGRESP => Message::WillMsgResp { code: b.code()? },
        ENCAPSULATED => return Err(err(ErrorKind::NestedEncapsulation, "5.5")),
        other => return Err(err(ErrorKind::UnknownType(other), "5.2.2")),
    };
    // Variable fields took the rest; a fixed-size message or tail must end here.
    b.end()?;
    Ok(msg)
}

/// WILLTOPIC / WILLTOPICUPD: either empty (no Flags field, 5.4.7 and 5.4.22), or Flags and
/// a non-empty topic. A flags octet with no topic after it is neither form.
fn will_topic<'a>(b: &mut Body<'a>) -> Result<(super::Flags, &'a [u8]), DecodeError> {
    if b.bytes.is_empty() {
        return Ok((super::Flags::default(), &[]));
    }
    let flags = flags::decode(b.u8()?, flags::WILL_TOPIC_USES)?;
    let topic = b.rest();
    if topic.is_empty() {
        return Err(b.wrong_size());
    }
    Ok((flags, topic))
}

/// The TopicName or TopicId field of SUBSCRIBE / UNSUBSCRIBE (5.4.15, 5.4.17): a name runs
/// to the end of the message; an id or a short name is exactly two octets.
fn sub_topic<'a>(kind: TopicIdType, b: &mut Body<'a>) -> Result<SubTopic<'a>, DecodeError> {
    Ok(match kind {
        TopicIdType::Normal => SubTopic::Name(b.rest()),
        TopicIdType::Predefined => SubTopic::Predefined(b.u16()?),
        TopicIdType::Short => SubTopic::Short(b.u16()?.to_be_bytes()),
    })
}

/// The section of 5.4 that lays out a message type.
fn clause_of(msg_type: u8) -> &'static str {
    match msg_type {
        ADVERTISE => "5.4.1",
        SEARCHGW => "5.4.2",
        GWINFO => "5.4.3",
        CONNECT => "5.4.4",
        CONNACK => "5.4.5",
        WILLTOPICREQ => "5.4.6",
        WILLTOPIC => "5.4.7",
        WILLMSGREQ => "5.4.8",
        WILLMSG => "5.4.9",
        REGISTER => "5.4.10",
        REGACK => "5.4.11",
        PUBLISH => "5.4.12",
        PUBACK => "5.4.13",
        PUBREC | PUBREL | PUBCOMP => "5.4.14",
        SUBSCRIBE => "5.4.15",
        SUBACK => "5.4.16",
        UNSUBSCRIBE => "5.4.17",
        UNSUBACK => "5.4.18",
        PINGREQ => "5.4.19",
        PINGRESP => "5.4.20",
        DISCONNECT => "5.4.21",
        WILLTOPICUPD => "5.4.22",
        WILLMSGUPD => "5.4.23",
        WILLTOPICRESP => "5.4.24",
        WILLMSGRESP => "5.4.25",
        ENCAPSULATED => "5.5",
        _ => "5.2.2",
    }
}
