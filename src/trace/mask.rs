//! What `culex replay` compares, and what it leaves out: the documented masking rules.
//!
//! A packet the broker sent is compared with the one the trace recorded field by field,
//! never byte by byte: both are flattened into (path, value) pairs (`connack.reason_code`,
//! `publish.topic`, `suback.reason_codes[0]`, `publish.properties.message_expiry_interval`),
//! then each path present on either side is compared under its [`Mask`]:
//!
//! - ignored, free text: `reason_string` of every packet;
//! - ignored, the broker's own: `user_properties` of every packet but PUBLISH (a PUBLISH
//!   carries the publisher's, which must arrive unchanged);
//! - ignored, each broker's limits and capabilities: the CONNACK properties
//!   `receive_maximum`, `maximum_qos`, `retain_available`, `maximum_packet_size`,
//!   `topic_alias_maximum`, `wildcard_subscription_available`,
//!   `subscription_identifier_available`, `shared_subscription_available`,
//!   `server_keep_alive`, `session_expiry_interval`, `response_information` and
//!   `server_reference`, and DISCONNECT's `server_reference`;
//! - presence only: CONNACK `assigned_client_identifier` (the value is the broker's choice);
//! - mapped, not compared: the `packet_id` of a PUBLISH the broker sent (below);
//! - resolved, not compared: the `topic_alias` of a PUBLISH the broker sent (below);
//! - equal or one second less: PUBLISH `message_expiry_interval` (a second boundary may pass
//!   while the broker holds the message);
//! - MQTT-SN: ADVERTISE `gw_id` and `duration` and GWINFO `gw_id` are ignored; message ids
//!   and topic ids the gateway chose are mapped (below);
//! - everything else must be equal, present or absent alike.
//!
//! Identifiers the broker chooses are mapped, per connection ([`MqttIds`]) or per MQTT-SN
//! peer ([`SnIds`]): the first packet that carries one teaches recorded → actual, later
//! packets of the client are rewritten to the actual value before they are sent, and the
//! broker's later packets are compared through the mapping. Topic aliases the broker set are
//! resolved to topic names on each side before comparing, so one broker using aliases and
//! another not is no difference.
//!
//! Pure: values in, values out. Must never touch a socket, a file or the clock.

mod fields;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use self::fields::{flatten_mqtt, flatten_sn, show_bytes};
use crate::codec::mqtt::{Packet, Publish};
use crate::codec::mqttsn::{Message, TopicIdType};

/// (path, value) pairs of one packet, in the packet's order.
pub type Fields = Vec<(String, String)>;

/// The value shown for a field one side lacks.
pub const ABSENT: &str = "absent";

/// How one field is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// The values must be equal (absent on both sides is equal).
    Equal,
    /// Not compared at all.
    Ignore,
    /// Present on both sides or absent on both; the values are not compared.
    Presence,
    /// A number of seconds that may have gone down by one on the way.
    SecondsRemaining,
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub field: String,
    pub expected: String,
    pub got: String,
}

/// CONNACK properties that state the broker's own limits and capabilities.
const CONNACK_CAPABILITIES: [&str; 12] = [
    "receive_maximum",
    "maximum_qos",
    "retain_available",
    "maximum_packet_size",
    "topic_alias_maximum",
    "wildcard_subscription_available",
    "subscription_identifier_available",
    "shared_subscription_available",
    "server_keep_alive",
    "session_expiry_interval",
    "response_information",
    "server_reference",
];

/// The rule for a field of an MQTT packet the broker sent.
pub fn mqtt_mask(path: &str) -> Mask {
    let (packet, rest) = path.split_once('.').unwrap_or((path, ""));
    let property = rest.strip_prefix("properties.");
    let property_name = property.map(|p| p.split('[').next().unwrap_or(p));
    match (packet, rest, property_name) {
        (_, _, Some("reason_string")) => Mask::Ignore,
        ("publish", _, Some("user_properties")) => Mask::Equal,
        (_, _, Some("user_properties")) => Mask::Ignore,
        ("connack", _, Some(p)) if CONNACK_CAPABILITIES.contains(&p) => Mask::Ignore,
        ("connack", _, Some("assigned_client_identifier")) => Mask::Presence,
        ("disconnect", _, Some("server_reference")) => Mask::Ignore,
        ("publish", "packet_id", _) => Mask::Ignore,
        ("publish", _, Some("topic_alias")) => Mask::Ignore,
        ("publish", _, Some("message_expiry_interval")) => Mask::SecondsRemaining,
        _ => Mask::Equal,
    }
}

/// The rule for a field of an MQTT-SN message the gateway sent.
pub fn sn_mask(path: &str) -> Mask {
    match path {
        "advertise.gw_id" | "advertise.duration" | "gwinfo.gw_id" => Mask::Ignore,
        _ => Mask::Equal,
    }
}

/// Compares two flattened packets under `mask`; the differences in the order of the
/// expected packet's fields, then the fields only the received packet has.
pub fn compare(expected: &Fields, got: &Fields, mask: fn(&str) -> Mask) -> Vec<Difference> {
    let got_map: BTreeMap<&str, &str> = got.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let expected_map: BTreeMap<&str, &str> = expected
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut check = |path: &str, want: Option<&str>, have: Option<&str>| {
        let same = match mask(path) {
            Mask::Ignore => true,
            Mask::Equal => want == have,
            Mask::Presence => want.is_some() == have.is_some(),
            Mask::SecondsRemaining => match (want, have) {
                (Some(w), Some(h)) => match (w.parse::<u64>(), h.parse::<u64>()) {
                    (Ok(w), Ok(h)) => h <= w && w - h <= 1,
                    _ => w == h,
                },
                (w, h) => w == h,
            },
        };
        if !same {
            out.push(Difference {
                field: path.to_owned(),
                expected: want.unwrap_or(ABSENT).to_owned(),
                got: have.unwrap_or(ABSENT).to_owned(),
            });
        }
    };
    for (path, value) in expected {
        check(path, Some(value), got_map.get(path.as_str()).copied());
    }
    for (path, value) in got {
        if !expected_map.contains_key(path.as_str()) {
            check(path, None, Some(value));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Identifiers the broker chose

/// The identifiers the broker chose on one MQTT connection: packet identifiers of its
/// PUBLISHes (recorded → actual) and its topic aliases (alias → topic, on each side).
#[derive(Clone, Debug, Default)]
pub struct MqttIds {
    ids: BTreeMap<u16, u16>,
    expected_aliases: BTreeMap<u16, Rc<str>>,
    got_aliases: BTreeMap<u16, Rc<str>>,
}

/// Resolves a broker-set topic alias: a PUBLISH with a topic and an alias teaches the
/// alias, one with an alias alone gets the topic it stands for.
fn resolve_alias(p: &mut Publish, aliases: &mut BTreeMap<u16, Rc<str>>) {
    let Some(alias) = p.properties.topic_alias else {
        return;
    };
    if p.topic.is_empty() {
        if let Some(topic) = aliases.get(&alias) {
            p.topic = topic.clone();
        }
    } else {
        aliases.insert(alias, p.topic.clone());
    }
}

impl MqttIds {
    /// Prepares a recorded packet of the broker and the one received in its place for
    /// [`compare`]: learns and applies the packet-id mapping and resolves topic aliases.
    pub fn broker_pair(&mut self, expected: &mut Packet, got: &mut Packet) {
        match (expected, got) {
            (Packet::Publish(e), Packet::Publish(g)) => {
                resolve_alias(e, &mut self.expected_aliases);
                resolve_alias(g, &mut self.got_aliases);
                if e.packet_id != 0 && g.packet_id != 0 {
                    self.ids.insert(e.packet_id, g.packet_id);
                }
            }
            (Packet::PubRel(e), Packet::PubRel(_)) => {
                e.packet_id = self.actual(e.packet_id);
            }
            _ => {}
        }
    }

    /// The actual identifier for one the trace recorded (itself when none was learnt).
    pub fn actual(&self, recorded: u16) -> u16 {
        self.ids.get(&recorded).copied().unwrap_or(recorded)
    }

    /// The client's packet as it must be sent now: PUBACK, PUBREC and PUBCOMP answer the
    /// broker's PUBLISH or PUBREL and take its actual identifier. `None`: send as recorded.
    pub fn client_packet(&self, packet: &Packet) -> Option<Packet> {
        let mut p = packet.clone();
        let (Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubComp(a)) = &mut p else {
            return None;
        };
        let actual = self.actual(a.packet_id);
        if actual == a.packet_id {
            return None;
        }
        a.packet_id = actual;
        Some(p)
    }
}

/// The identifiers the gateway chose for one MQTT-SN peer: message ids of its REGISTER and
/// PUBLISH messages, and topic ids (from REGACK, SUBACK and its REGISTER).
#[derive(Clone, Debug, Default)]
pub struct SnIds {
    msg_ids: BTreeMap<u16, u16>,
    topic_ids: BTreeMap<u16, u16>,
}

impl SnIds {
    fn topic(&self, recorded: u16) -> u16 {
        self.topic_ids.get(&recorded).copied().unwrap_or(recorded)
    }

    fn msg(&self, recorded: u16) -> u16 {
        self.msg_ids.get(&recorded).copied().unwrap_or(recorded)
    }

    fn learn_topic(&mut self, recorded: u16, actual: u16) {
        if recorded != 0 && actual != 0 {
            self.topic_ids.insert(recorded, actual);
        }
    }

    /// Prepares a recorded gateway message and the one received in its place for
    /// [`compare`]: identifiers the gateway chooses are learnt (and the expected message
    /// takes the actual value), the ones it echoes are mapped.
    pub fn gateway_pair<'a>(&mut self, expected: &mut Message<'a>, got: &Message<'_>) {
        match (expected, got) {
            (
                Message::Register {
                    topic_id, msg_id, ..
                },
                Message::Register {
                    topic_id: t,
                    msg_id: m,
                    ..
                },
            ) => {
                self.learn_topic(*topic_id, *t);
                self.msg_ids.insert(*msg_id, *m);
                *topic_id = self.topic(*topic_id);
                *msg_id = *m;
            }
            (
                Message::RegAck { topic_id, .. } | Message::SubAck { topic_id, .. },
                Message::RegAck { topic_id: t, .. } | Message::SubAck { topic_id: t, .. },
            ) => {
                self.learn_topic(*topic_id, *t);
                *topic_id = self.topic(*topic_id);
            }
            (
                Message::Publish {
                    flags,
                    topic_id,
                    msg_id,
                    ..
                },
                Message::Publish { msg_id: m, .. },
            ) => {
                if flags.topic_id_type == TopicIdType::Normal {
                    *topic_id = self.topic(*topic_id);
                }
                if *msg_id != 0 && *m != 0 {
                    self.msg_ids.insert(*msg_id, *m);
                    *msg_id = *m;
                }
            }
            (Message::PubAck { topic_id, .. }, _) => *topic_id = self.topic(*topic_id),
            (Message::PubRel { msg_id }, _) => *msg_id = self.msg(*msg_id),
            _ => {}
        }
    }

    /// The client's message as it must be sent now: topic ids the gateway chose and the
    /// message ids of the gateway's messages it answers take their actual values. `None`:
    /// send as recorded.
    pub fn client_message<'a>(&self, msg: &Message<'a>) -> Option<Message<'a>> {
        let mut m = *msg;
        match &mut m {
            Message::Publish {
                flags, topic_id, ..
            } if flags.topic_id_type == TopicIdType::Normal => *topic_id = self.topic(*topic_id),
            Message::RegAck {
                topic_id, msg_id, ..
            }
            | Message::PubAck {
                topic_id, msg_id, ..
            } => {
                *topic_id = self.topic(*topic_id);
                *msg_id = self.msg(*msg_id);
            }
            Message::PubRec { msg_id } | Message::PubComp { msg_id } => {
                *msg_id = self.msg(*msg_id);
            }
            _ => return None,
        }
        (m != *msg).then_some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mqtt::{Ack, ConnAck, Properties, QoS, ReasonCode};
    use crate::codec::mqttsn::{Flags, Frame, ReturnCode};

    fn publish(topic: &str, id: u16, alias: Option<u16>) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos: if id == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            retain: false,
            topic: Rc::from(topic),
            packet_id: id,
            properties: Properties {
                topic_alias: alias,
                ..Properties::default()
            }
            .into(),
            payload: Rc::from(&b"hi"[..]),
        })
    }

    fn diff(expected: &Packet, got: &Packet) -> Vec<String> {
        compare(&flatten_mqtt(expected), &flatten_mqtt(got), mqtt_mask)
            .into_iter()
            .map(|d| format!("{}: expected {}, got {}", d.field, d.expected, d.got))
            .collect()
    }

    #[test]
    fn connack_capabilities_and_reason_strings_are_masked() {
        let connack = |props: Properties| {
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::Success,
                properties: props.into(),
            })
        };
        let ours = connack(Properties {
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            assigned_client_identifier: Some("culex-1".into()),
            ..Properties::default()
        });
        let theirs = connack(Properties {
            maximum_qos: Some(1),
            retain_available: Some(0),
            server_keep_alive: Some(60),
            reason_string: Some("welcome".into()),
            user_properties: vec![("x".into(), "y".into())],
            assigned_client_identifier: Some("auto-ABC".into()),
            ..Properties::default()
        });
        assert_eq!(diff(&ours, &theirs), Vec::<String>::new());
        // The assigned identifier is compared for presence.
        let none = connack(Properties::default());
        assert_eq!(
            diff(&ours, &none),
            ["connack.properties.assigned_client_identifier: expected \"culex-1\", got absent"]
        );
    }

    #[test]
    fn publish_content_is_compared_and_expiry_may_lose_a_second() {
        let with = |expiry: u32, user: &str| {
            let mut p = publish("t", 0, None);
            if let Packet::Publish(p) = &mut p {
                p.properties.message_expiry_interval = Some(expiry);
                p.properties.user_properties = vec![("k".into(), user.into())];
            }
            p
        };
        assert!(diff(&with(30, "a"), &with(30, "a")).is_empty());
        assert!(diff(&with(30, "a"), &with(29, "a")).is_empty());
        assert_eq!(
            diff(&with(30, "a"), &with(28, "b")),
            [
                "publish.properties.message_expiry_interval: expected 30, got 28",
                "publish.properties.user_properties[0]: expected \"k\"=\"a\", got \"k\"=\"b\"",
            ]
        );
        assert_eq!(
            diff(&with(30, "a"), &with(31, "a")),
            ["publish.properties.message_expiry_interval: expected 30, got 31"]
        );
        assert_eq!(
            mqtt_mask("suback.properties.user_properties[0]"),
            Mask::Ignore
        );
        assert_eq!(
            mqtt_mask("disconnect.properties.reason_string"),
            Mask::Ignore
        );
        assert_eq!(mqtt_mask("connack.session_present"), Mask::Equal);
    }

    #[test]
    fn broker_packet_ids_are_mapped_both_ways() {
        let mut ids = MqttIds::default();
        let (mut e, mut g) = (publish("t", 1, None), publish("t", 9, None));
        ids.broker_pair(&mut e, &mut g);
        assert!(diff(&e, &g).is_empty(), "{:?}", diff(&e, &g));
        // The client's PUBACK of recorded id 1 goes out as 9.
        let puback = Packet::PubAck(Ack::success(1));
        assert_eq!(
            ids.client_packet(&puback),
            Some(Packet::PubAck(Ack::success(9)))
        );
        assert_eq!(ids.client_packet(&Packet::PubAck(Ack::success(2))), None);
        // The client's own PUBREL keeps its identifier; the broker's is mapped.
        assert_eq!(ids.client_packet(&Packet::PubRel(Ack::success(1))), None);
        let (mut e, mut g) = (
            Packet::PubRel(Ack::success(1)),
            Packet::PubRel(Ack::success(9)),
        );
        ids.broker_pair(&mut e, &mut g);
        assert!(diff(&e, &g).is_empty());
        let (mut e, mut g) = (
            Packet::PubRel(Ack::success(1)),
            Packet::PubRel(Ack::success(8)),
        );
        ids.broker_pair(&mut e, &mut g);
        assert_eq!(diff(&e, &g), ["pubrel.packet_id: expected 9, got 8"]);
    }

    #[test]
    fn broker_topic_aliases_are_resolved() {
        let mut ids = MqttIds::default();
        // The recording broker set alias 1 then used it; the other sends topics in full.
        let (mut e, mut g) = (publish("a/b", 0, Some(1)), publish("a/b", 0, None));
        ids.broker_pair(&mut e, &mut g);
        assert!(diff(&e, &g).is_empty());
        let (mut e, mut g) = (publish("", 0, Some(1)), publish("a/b", 0, None));
        ids.broker_pair(&mut e, &mut g);
        assert!(diff(&e, &g).is_empty(), "{:?}", diff(&e, &g));
        let (mut e, mut g) = (publish("", 0, Some(1)), publish("a/c", 0, None));
        ids.broker_pair(&mut e, &mut g);
        assert_eq!(
            diff(&e, &g),
            ["publish.topic: expected \"a/b\", got \"a/c\""]
        );
    }

    #[test]
    fn sn_identifiers_the_gateway_chose_are_mapped() {
        let mut ids = SnIds::default();
        let flags = Flags {
            qos: crate::codec::mqttsn::SnQos::AtLeastOnce,
            ..Flags::default()
        };
        // REGACK to the client's REGISTER: topic id 1 recorded, 5 now.
        let mut e = Message::RegAck {
            topic_id: 1,
            msg_id: 3,
            code: ReturnCode::Accepted,
        };
        let g = Message::RegAck {
            topic_id: 5,
            msg_id: 3,
            code: ReturnCode::Accepted,
        };
        ids.gateway_pair(&mut e, &g);
        let flat = |m: &Message<'_>| flatten_sn(&Frame::Message(*m));
        assert!(compare(&flat(&e), &flat(&g), sn_mask).is_empty());
        // The client's PUBLISH on topic id 1 goes out on 5.
        let publish = Message::Publish {
            flags,
            topic_id: 1,
            msg_id: 4,
            data: b"x",
        };
        let sent = ids.client_message(&publish);
        assert!(matches!(
            sent,
            Some(Message::Publish {
                topic_id: 5,
                msg_id: 4,
                ..
            })
        ));
        // The gateway's PUBLISH (its own msg id 1, now 7) and the client's PUBACK to it.
        let mut e = Message::Publish {
            flags,
            topic_id: 1,
            msg_id: 1,
            data: b"y",
        };
        let g = Message::Publish {
            flags,
            topic_id: 5,
            msg_id: 7,
            data: b"y",
        };
        ids.gateway_pair(&mut e, &g);
        assert!(compare(&flat(&e), &flat(&g), sn_mask).is_empty());
        let puback = Message::PubAck {
            topic_id: 1,
            msg_id: 1,
            code: ReturnCode::Accepted,
        };
        assert_eq!(
            ids.client_message(&puback),
            Some(Message::PubAck {
                topic_id: 5,
                msg_id: 7,
                code: ReturnCode::Accepted
            })
        );
        assert_eq!(ids.client_message(&Message::PingResp), None);
        assert_eq!(sn_mask("gwinfo.gw_id"), Mask::Ignore);
        assert_eq!(sn_mask("connack.return_code"), Mask::Equal);
    }
}
