//! Encoding: every message body of spec 5.4 and the Encapsulated frame of 5.5, appended to a
//! caller's buffer.
//!
//! `body_len` and `put_body` must agree octet for octet; the tests check it for every
//! message. This module must never panic and never allocate beyond the caller's buffer.

use super::header::{self, put_length};
use super::{flags, Flags, Message, ReturnCode, SubTopic, TopicIdType};

/// See [`super::encoded_len`].
pub(super) fn message_len(msg: &Message<'_>) -> usize {
    // MsgType octet plus the body, then the Length field in front.
    let rest = body_len(msg).saturating_add(1);
    rest.saturating_add(header::field_len(rest))
}

/// See [`super::encode()`].
pub(super) fn message(msg: &Message<'_>, out: &mut Vec<u8>) {
    let rest = body_len(msg).saturating_add(1);
    out.reserve(rest.saturating_add(header::field_len(rest)));
    put_length(rest, out);
    out.push(header::msg_type(msg));
    put_body(msg, out);
}

/// See [`super::encode_encapsulated`].
pub(super) fn encapsulated(ctrl: u8, node_id: &[u8], inner: &Message<'_>, out: &mut Vec<u8>) {
    // The Length field counts the header only: itself, MsgType, Ctrl and the node id (5.5).
    let rest = node_id.len().saturating_add(2);
    out.reserve(rest.saturating_add(header::field_len(rest)));
    put_length(rest, out);
    out.push(header::ENCAPSULATED);
    out.push(ctrl);
    out.extend_from_slice(node_id);
    message(inner, out);
}

/// The octets after the MsgType field.
fn body_len(msg: &Message<'_>) -> usize {
    match msg {
        Message::WillTopicReq | Message::WillMsgReq | Message::PingResp => 0,
        Message::SearchGw { .. }
        | Message::ConnAck { .. }
        | Message::WillTopicResp { .. }
        | Message::WillMsgResp { .. } => 1,
        Message::PubRec { .. }
        | Message::PubRel { .. }
        | Message::PubComp { .. }
        | Message::UnsubAck { .. } => 2,
        Message::Advertise { .. } => 3,
        Message::RegAck { .. } | Message::PubAck { .. } => 5,
        Message::SubAck { .. } => 6,
        Message::GwInfo { gw_add, .. } => 1 + gw_add.len(),
        Message::Connect { client_id, .. } => 4 + client_id.len(),
        Message::WillTopic { topic, .. } | Message::WillTopicUpd { topic, .. } => {
            will_topic_len(topic)
        }
        Message::WillMsg { msg } | Message::WillMsgUpd { msg } => msg.len(),
        Message::Register { topic_name, .. } => 4 + topic_name.len(),
        Message::Publish { data, .. } => 5 + data.len(),
        Message::Subscribe { topic, .. } | Message::Unsubscribe { topic, .. } => {
            3 + sub_topic_len(topic)
        }
        Message::PingReq { client_id } => client_id.map_or(0, <[u8]>::len),
        Message::Disconnect { duration } => duration.map_or(0, |_| 2),
    }
}

/// An empty will topic is written without its Flags field (5.4.7, 5.4.22).
fn will_topic_len(topic: &[u8]) -> usize {
    if topic.is_empty() {
        0
    } else {
        1 + topic.len()
    }
}

fn sub_topic_len(topic: &SubTopic<'_>) -> usize {
    match topic {
        SubTopic::Name(name) => name.len(),
        SubTopic::Predefined(_) | SubTopic::Short(_) => 2,
    }
}

fn put_u16(v: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_code(code: ReturnCode, out: &mut Vec<u8>) {
    out.push(code.to_u8());
}

fn put_body(msg: &Message<'_>, out: &mut Vec<u8>) {
    match *msg {
        Message::WillTopicReq | Message::WillMsgReq | Message::PingResp => {}
        Message::Advertise { gw_id, duration } => {
            out.push(gw_id);
            put_u16(duration, out);
        }
        Message::SearchGw { radius } => out.push(radius),
        Message::GwInfo { gw_id, gw_add } => {
            out.push(gw_id);
            out.extend_from_slice(gw_add);
        }
        Message::Connect {
            flags: f,
            protocol_id,
            duration,
            client_id,
        } => {
            out.push(flags::encode(f, flags::CONNECT_USES));
            out.push(protocol_id);
            put_u16(duration, out);
            out.extend_from_slice(client_id);
        }
        Message::ConnAck { code }
        | Message::WillTopicResp { code }
        | Message::WillMsgResp { code } => put_code(code, out),
        Message::WillTopic { flags: f, topic } | Message::WillTopicUpd { flags: f, topic } => {
            if !topic.is_empty() {
                out.push(flags::encode(f, flags::WILL_TOPIC_USES));
                out.extend_from_slice(topic);
            }
        }
        Message::WillMsg { msg } | Message::WillMsgUpd { msg } => out.extend_from_slice(msg),
        Message::Register {
            topic_id,
            msg_id,
            topic_name,
        } => {
            put_u16(topic_id, out);
            put_u16(msg_id, out);
            out.extend_from_slice(topic_name);
        }
        Message::RegAck {
            topic_id,
            msg_id,
            code,
        }
        | Message::PubAck {
            topic_id,
            msg_id,
            code,
        } => {
            put_u16(topic_id, out);
            put_u16(msg_id, out);
            put_code(code, out);
        }
        Message::Publish {
            flags: f,
            topic_id,
            msg_id,
            data,
        } => {
            out.push(flags::encode(f, flags::PUBLISH_USES));
            put_u16(topic_id, out);
            put_u16(msg_id, out);
            out.extend_from_slice(data);
        }
        Message::PubRec { msg_id }
        | Message::PubRel { msg_id }
        | Message::PubComp { msg_id }
        | Message::UnsubAck { msg_id } => put_u16(msg_id, out),
        Message::Subscribe {
            flags: f,
            msg_id,
            topic,
        } => {
            out.push(flags::encode(with_kind(f, &topic), flags::SUBSCRIBE_USES));
            put_u16(msg_id, out);
            put_sub_topic(&topic, out);
        }
        Message::SubAck {
            flags: f,
            topic_id,
            msg_id,
            code,
        } => {
            out.push(flags::encode(f, flags::SUBACK_USES));
            put_u16(topic_id, out);
            put_u16(msg_id, out);
            put_code(code, out);
        }
        Message::Unsubscribe {
            flags: f,
            msg_id,
            topic,
        } => {
            out.push(flags::encode(with_kind(f, &topic), flags::UNSUBSCRIBE_USES));
            put_u16(msg_id, out);
            put_sub_topic(&topic, out);
        }
        Message::PingReq { client_id } => out.extend_from_slice(client_id.unwrap_or(&[])),
        Message::Disconnect { duration } => {
            if let Some(d) = duration {
                put_u16(d, out);
            }
        }
    }
}

/// The TopicIdType on the wire follows the topic actually carried, so a caller cannot send
/// a name flagged as an id.
fn with_kind(f: Flags, topic: &SubTopic<'_>) -> Flags {
    let topic_id_type = match topic {
        SubTopic::Name(_) => TopicIdType::Normal,
        SubTopic::Predefined(_) => TopicIdType::Predefined,
        SubTopic::Short(_) => TopicIdType::Short,
    };
    Flags { topic_id_type, ..f }
}

fn put_sub_topic(topic: &SubTopic<'_>, out: &mut Vec<u8>) {
    match *topic {
        SubTopic::Name(name) => out.extend_from_slice(name),
        SubTopic::Predefined(id) => put_u16(id, out),
        SubTopic::Short(name) => out.extend_from_slice(&name),
    }
}
