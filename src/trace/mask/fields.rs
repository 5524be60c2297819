//! Flattening packets into (path, value) pairs for [`super::compare`]: the paths start
//! with the packet name in lower case (`connack.session_present`, `suback.reason_codes[0]`,
//! `publish.properties.message_expiry_interval`), values are shown as a person reads them
//! (numbers, `true`, quoted text, `hex:` bytes, `0x87 NotAuthorized`).
//!
//! Pure: must never touch a socket, a file or the clock, and never decide what is compared
//! (that is the masks' job, in the parent module).

use std::fmt::Write as _;

use super::Fields;
use crate::codec::mqtt::{Packet, Properties, ReasonCode};
use crate::codec::mqttsn::{Flags, Frame, Message, ReturnCode, SubTopic};

/// Text or bytes as shown in a difference: a quoted string when the bytes are printable
/// UTF-8, otherwise `hex:` and the bytes.
pub fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => {
            let mut out = String::from("hex:");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
    }
}

fn show_reason(r: ReasonCode) -> String {
    format!("0x{:02x} {r:?}", r as u8)
}

/// Collects the fields of one packet under a prefix.
struct Flat<'a> {
    prefix: &'a str,
    fields: Fields,
}

impl Flat<'_> {
    fn put(&mut self, name: &str, value: impl ToString) {
        let path = if name.is_empty() {
            self.prefix.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        };
        self.fields.push((path, value.to_string()));
    }

    fn string(&mut self, name: &str, value: &str) {
        self.put(name, format!("{value:?}"));
    }

    fn bytes(&mut self, name: &str, value: &[u8]) {
        self.put(name, show_bytes(value));
    }

    fn properties(&mut self, under: &str, p: &Properties) {
        let name = |n: &str| format!("{under}.{n}");
        let numbers = [
            (
                "payload_format_indicator",
                p.payload_format_indicator.map(u64::from),
            ),
            (
                "message_expiry_interval",
                p.message_expiry_interval.map(u64::from),
            ),
            (
                "session_expiry_interval",
                p.session_expiry_interval.map(u64::from),
            ),
            ("server_keep_alive", p.server_keep_alive.map(u64::from)),
            (
                "request_problem_information",
                p.request_problem_information.map(u64::from),
            ),
            ("will_delay_interval", p.will_delay_interval.map(u64::from)),
            (
                "request_response_information",
                p.request_response_information.map(u64::from),
            ),
            ("receive_maximum", p.receive_maximum.map(u64::from)),
            ("topic_alias_maximum", p.topic_alias_maximum.map(u64::from)),
            ("topic_alias", p.topic_alias.map(u64::from)),
            ("maximum_qos", p.maximum_qos.map(u64::from)),
            ("retain_available", p.retain_available.map(u64::from)),
            ("maximum_packet_size", p.maximum_packet_size.map(u64::from)),
            (
                "wildcard_subscription_available",
                p.wildcard_subscription_available.map(u64::from),
            ),
            (
                "subscription_identifier_available",
                p.subscription_identifier_available.map(u64::from),
            ),
            (
                "shared_subscription_available",
                p.shared_subscription_available.map(u64::from),
            ),
        ];
        for (n, v) in numbers {
            if let Some(v) = v {
                self.put(&name(n), v);
            }
        }
        let strings = [
            ("content_type", &p.content_type),
            ("response_topic", &p.response_topic),
            ("assigned_client_identifier", &p.assigned_client_identifier),
            ("authentication_method", &p.authentication_method),
            ("response_information", &p.response_information),
            ("server_reference", &p.server_reference),
            ("reason_string", &p.reason_string),
        ];
        for (n, v) in strings {
            if let Some(v) = v {
                self.string(&name(n), v);
            }
        }
        for (n, v) in [
            ("correlation_data", &p.correlation_data),
            ("authentication_data", &p.authentication_data),
        ] {
            if let Some(v) = v {
                self.bytes(&name(n), v);
            }
        }
        for (i, id) in p.subscription_identifiers.iter().enumerate() {
            self.put(&format!("{under}.subscription_identifiers[{i}]"), id);
        }
        for (i, (k, v)) in p.user_properties.iter().enumerate() {
            self.put(
                &format!("{under}.user_properties[{i}]"),
                format!("{k:?}={v:?}"),
            );
        }
    }
}

/// The (path, value) pairs of an MQTT packet; paths start with the packet name in lower
/// case (`connack.session_present`).
pub fn flatten_mqtt(packet: &Packet) -> Fields {
    let prefix = packet.name().to_ascii_lowercase();
    let mut f = Flat {
        prefix: &prefix,
        fields: Vec::new(),
    };
    match packet {
        Packet::Connect(c) => {
            f.put("protocol_level", c.protocol.level());
            f.put("clean_start", c.clean_start);
            f.put("keep_alive", c.keep_alive);
            f.string("client_id", &c.client_id);
            if let Some(w) = &c.will {
                f.string("will.topic", &w.topic);
                f.bytes("will.payload", &w.payload);
                f.put("will.qos", w.qos as u8);
                f.put("will.retain", w.retain);
                f.properties("will.properties", &w.properties);
            }
            if let Some(u) = &c.username {
                f.string("username", u);
            }
            if let Some(p) = &c.password {
                f.bytes("password", p);
            }
            f.properties("properties", &c.properties);
        }
        Packet::ConnAck(c) => {
            f.put("session_present", c.session_present);
            f.put("reason_code", show_reason(c.reason));
            f.properties("properties", &c.properties);
        }
        Packet::Publish(p) => {
            f.put("dup", p.dup);
            f.put("qos", p.qos as u8);
            f.put("retain", p.retain);
            f.string("topic", &p.topic);
            if p.packet_id != 0 {
                f.put("packet_id", p.packet_id);
            }
            f.bytes("payload", &p.payload);
            f.properties("properties", &p.properties);
        }
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            f.put("packet_id", a.packet_id);
            f.put("reason_code", show_reason(a.reason));
            f.properties("properties", &a.properties);
        }
        Packet::Subscribe(s) => {
            f.put("packet_id", s.packet_id);
            for (i, (filter, o)) in s.filters.iter().enumerate() {
                f.string(&format!("filters[{i}]"), filter);
                let options = format!(
                    "qos {} no_local {} retain_as_published {} retain_handling {}",
                    o.qos as u8, o.no_local, o.retain_as_published, o.retain_handling
                );
                f.put(&format!("options[{i}]"), options);
            }
            f.properties("properties", &s.properties);
        }
        Packet::SubAck(s) => {
            f.put("packet_id", s.packet_id);
            for (i, r) in s.reasons.iter().enumerate() {
                f.put(&format!("reason_codes[{i}]"), show_reason(*r));
            }
            f.properties("properties", &s.properties);
        }
        Packet::Unsubscribe(u) => {
            f.put("packet_id", u.packet_id);
            for (i, filter) in u.filters.iter().enumerate() {
                f.string(&format!("filters[{i}]"), filter);
            }
            f.properties("properties", &u.properties);
        }
        Packet::UnsubAck(u) => {
            f.put("packet_id", u.packet_id);
            for (i, r) in u.reasons.iter().enumerate() {
                f.put(&format!("reason_codes[{i}]"), show_reason(*r));
            }
            f.properties("properties", &u.properties);
        }
        Packet::PingReq | Packet::PingResp => f.put("", "-"),
        Packet::Disconnect(d) => {
            f.put("reason_code", show_reason(d.reason));
            f.properties("properties", &d.properties);
        }
        Packet::Auth(a) => {
            f.put("reason_code", show_reason(a.reason));
            f.properties("properties", &a.properties);
        }
    }
    f.fields
}

fn show_qos(flags: &Flags) -> String {
    let q = match flags.qos {
        crate::codec::mqttsn::SnQos::AtMostOnce => "0",
        crate::codec::mqttsn::SnQos::AtLeastOnce => "1",
        crate::codec::mqttsn::SnQos::ExactlyOnce => "2",
        crate::codec::mqttsn::SnQos::MinusOne => "-1",
    };
    q.to_owned()
}

fn show_code(code: ReturnCode) -> String {
    format!("{code:?}")
}

/// The (path, value) pairs of an MQTT-SN datagram; paths start with the message name in
/// lower case (`regack.topic_id`). An Encapsulated frame gives `encapsulated.ctrl`,
/// `encapsulated.node_id` and the fields of the message inside.
pub fn flatten_sn(frame: &Frame<'_>) -> Fields {
    match frame {
        Frame::Message(m) => flatten_sn_message(m),
        Frame::Encapsulated(e) => {
            let mut fields = vec![
                ("encapsulated.ctrl".to_owned(), e.ctrl.to_string()),
                ("encapsulated.node_id".to_owned(), show_bytes(e.node_id)),
            ];
            match crate::codec::mqttsn::decode_message(e.inner) {
                Ok(m) => fields.extend(flatten_sn_message(&m)),
                Err(err) => fields.push(("encapsulated.inner".to_owned(), err.to_string())),
            }
            fields
        }
    }
}

fn flatten_sn_message(m: &Message<'_>) -> Fields {
    let prefix = m.name().to_ascii_lowercase();
    let mut f = Flat {
        prefix: &prefix,
        fields: Vec::new(),
    };
    match *m {
        Message::Advertise { gw_id, duration } => {
            f.put("gw_id", gw_id);
            f.put("duration", duration);
        }
        Message::SearchGw { radius } => f.put("radius", radius),
        Message::GwInfo { gw_id, gw_add } => {
            f.put("gw_id", gw_id);
            f.bytes("gw_add", gw_add);
        }
        Message::Connect {
            flags,
            protocol_id,
            duration,
            client_id,
        } => {
            f.put("will", flags.will);
            f.put("clean_session", flags.clean_session);
            f.put("protocol_id", protocol_id);
            f.put("duration", duration);
            f.bytes("client_id", client_id);
        }
        Message::ConnAck { code }
        | Message::WillTopicResp { code }
        | Message::WillMsgResp { code } => f.put("return_code", show_code(code)),
        Message::WillTopicReq | Message::WillMsgReq | Message::PingResp => f.put("", "-"),
        Message::WillTopic { flags, topic } | Message::WillTopicUpd { flags, topic } => {
            f.put("qos", show_qos(&flags));
            f.put("retain", flags.retain);
            f.bytes("topic", topic);
        }
        Message::WillMsg { msg } | Message::WillMsgUpd { msg } => f.bytes("msg", msg),
        Message::Register {
            topic_id,
            msg_id,
            topic_name,
        } => {
            f.put("topic_id", topic_id);
            f.put("msg_id", msg_id);
            f.bytes("topic_name", topic_name);
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
            f.put("topic_id", topic_id);
            f.put("msg_id", msg_id);
            f.put("return_code", show_code(code));
        }
        Message::Publish {
            flags,
            topic_id,
            msg_id,
            data,
        } => {
            f.put("dup", flags.dup);
            f.put("qos", show_qos(&flags));
            f.put("retain", flags.retain);
            f.put("topic_id_type", format!("{:?}", flags.topic_id_type));
            f.put("topic_id", topic_id);
            f.put("msg_id", msg_id);
            f.bytes("data", data);
        }
        Message::PubRec { msg_id }
        | Message::PubRel { msg_id }
        | Message::PubComp { msg_id }
        | Message::UnsubAck { msg_id } => f.put("msg_id", msg_id),
        Message::Subscribe {
            flags,
            msg_id,
            topic,
        }
        | Message::Unsubscribe {
            flags,
            msg_id,
            topic,
        } => {
            if matches!(m, Message::Subscribe { .. }) {
                f.put("dup", flags.dup);
                f.put("qos", show_qos(&flags));
            }
            f.put("msg_id", msg_id);
            match topic {
                SubTopic::Name(n) => f.bytes("topic_name", n),
                SubTopic::Predefined(id) => f.put("predefined_topic_id", id),
                SubTopic::Short(s) => f.bytes("short_topic", &s),
            }
        }
        Message::SubAck {
            flags,
            topic_id,
            msg_id,
            code,
        } => {
            f.put("qos", show_qos(&flags));
            f.put("topic_id", topic_id);
            f.put("msg_id", msg_id);
            f.put("return_code", show_code(code));
        }
        Message::PingReq { client_id } => {
            if let Some(id) = client_id.filter(|id| !id.is_empty()) {
                f.bytes("client_id", id);
            }
        }
        Message::Disconnect { duration } => {
            if let Some(d) = duration {
                f.put("duration", d);
            }
        }
    }
    if f.fields.is_empty() {
        f.put("", "-");
    }
    f.fields
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::codec::mqtt::{Props, Publish, QoS, SubAck};

    fn publish(topic: &str, id: u16) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: Rc::from(topic),
            packet_id: id,
            properties: Props::none(),
            payload: Rc::from(&b"hi"[..]),
        })
    }

    #[test]
    fn fields_are_flattened_by_path() {
        let suback = Packet::SubAck(SubAck {
            packet_id: 3,
            properties: Props::none(),
            reasons: vec![ReasonCode::GrantedQos1, ReasonCode::NotAuthorized],
        });
        assert_eq!(
            flatten_mqtt(&suback),
            vec![
                ("suback.packet_id".to_owned(), "3".to_owned()),
                (
                    "suback.reason_codes[0]".to_owned(),
                    "0x01 GrantedQos1".to_owned()
                ),
                (
                    "suback.reason_codes[1]".to_owned(),
                    "0x87 NotAuthorized".to_owned()
                ),
            ]
        );
        let mut p = publish("a/b", 7);
        if let Packet::Publish(p) = &mut p {
            p.properties.message_expiry_interval = Some(30);
            p.properties.user_properties = vec![("k".into(), "v".into())];
            p.properties.subscription_identifiers = vec![4];
            p.payload = Rc::from(&[0u8, 1][..]);
        }
        let f = flatten_mqtt(&p);
        let get = |path: &str| f.iter().find(|(k, _)| k == path).map(|(_, v)| v.as_str());
        assert_eq!(get("publish.topic"), Some("\"a/b\""));
        assert_eq!(get("publish.qos"), Some("1"));
        assert_eq!(get("publish.payload"), Some("hex:0001"));
        assert_eq!(
            get("publish.properties.message_expiry_interval"),
            Some("30")
        );
        assert_eq!(
            get("publish.properties.subscription_identifiers[0]"),
            Some("4")
        );
        assert_eq!(
            get("publish.properties.user_properties[0]"),
            Some("\"k\"=\"v\"")
        );
        assert_eq!(
            flatten_mqtt(&Packet::PingResp),
            vec![("pingresp".into(), "-".into())]
        );
    }
}
