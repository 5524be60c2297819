//! Writes the seed corpus of every fuzz target to `fuzz/corpus/<target>/`, from culex's own
//! encoders, its option table and its example configurations:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! Each target's directory is emptied first, so the corpus is exactly what this program
//! writes; file names say what each seed holds. The fuzzer's own finds go elsewhere
//! (`scripts/fuzz` keeps them under `fuzz/target/corpus/`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use culex::codec::mqtt::{
    self, Ack, Auth, ConnAck, Connect, Disconnect, Packet, Properties, Props, ProtocolVersion,
    Publish, QoS, ReasonCode, SubAck, SubOptions, Subscribe, UnsubAck, Unsubscribe, Will,
};
use culex::codec::mqttsn::{self, Flags, Message, ReturnCode, SnQos, SubTopic, TopicIdType};
use culex::config::options::{Scope, Support, OPTIONS};

/// Named inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> io::Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = fuzz.join("corpus");
    let sets: [(&str, Seeds); 5] = [
        ("mqtt_codec", mqtt_seeds()),
        ("mqttsn_codec", mqttsn_seeds()),
        ("http_request", http_seeds()),
        ("websocket", websocket_seeds()),
        ("config_parse", config_seeds(&fuzz.join("../conf"))?),
    ];
    for (target, seeds) in sets {
        let dir = corpus.join(target);
        empty(&dir)?;
        let mut bytes = 0;
        for (name, data) in &seeds {
            bytes += data.len();
            fs::write(dir.join(name), data)?;
        }
        println!("{target}: {} seeds, {bytes} bytes", seeds.len());
    }
    Ok(())
}

/// Creates `dir`, or removes the files in it.
fn empty(dir: &PathBuf) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    mqtt::encode(packet, version, &mut out);
    out
}

/// One value of each MQTT packet type, with the fields and properties that reach most of
/// the decoder.
fn mqtt_packets() -> Vec<(&'static str, Packet)> {
    let props = Properties {
        reason_string: Some("why".into()),
        user_properties: vec![("k".into(), "v".into())],
        ..Properties::default()
    };
    let will = Will {
        topic: "dev/1/status".into(),
        payload: b"offline".to_vec(),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties {
            will_delay_interval: Some(5),
            payload_format_indicator: Some(1),
            content_type: Some("text/plain".into()),
            ..Properties::default()
        }
        .into(),
    };
    let connect = |protocol, will: Option<Will>, credentials: bool| Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        properties: Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            maximum_packet_size: Some(65_536),
            topic_alias_maximum: Some(10),
            request_problem_information: Some(1),
            authentication_method: credentials.then(|| "SCRAM-SHA-1".into()),
            authentication_data: credentials.then(|| vec![1, 2, 3]),
            ..Properties::default()
        }
        .into(),
        client_id: "sensor-7".into(),
        will,
        username: credentials.then(|| "user".into()),
        password: credentials.then(|| b"secret".to_vec()),
        bridge: false,
    };
    let publish = |qos, packet_id, properties: Properties| Publish {
        dup: false,
        qos,
        retain: qos == QoS::AtMostOnce,
        topic: Rc::from("site/1/temp"),
        packet_id,
        properties: properties.into(),
        payload: Rc::from(&b"21.5"[..]),
    };
    let ack = |packet_id, reason| Ack {
        packet_id,
        reason,
        properties: Props::none(),
    };
    let opts = |qos, no_local, retain_handling| SubOptions {
        qos,
        no_local,
        retain_as_published: !no_local,
        retain_handling,
    };
    vec![
        (
            "connect-min",
            Packet::Connect(Box::new(connect(ProtocolVersion::V5, None, false))),
        ),
        (
            "connect-will-credentials",
            Packet::Connect(Box::new(connect(
                ProtocolVersion::V5,
                Some(will.clone()),
                true,
            ))),
        ),
        (
            "connect-mqtt31",
            Packet::Connect(Box::new(connect(ProtocolVersion::V31, Some(will), true))),
        ),
        (
            "connack",
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::Success,
                properties: Properties {
                    maximum_qos: Some(1),
                    retain_available: Some(1),
                    assigned_client_identifier: Some("auto-1".into()),
                    server_keep_alive: Some(30),
                    wildcard_subscription_available: Some(1),
                    subscription_identifier_available: Some(1),
                    shared_subscription_available: Some(0),
                    response_information: Some("r/".into()),
                    server_reference: Some("other:1883".into()),
                    ..props.clone()
                }
                .into(),
            }),
        ),
        (
            "publish-qos0",
            Packet::Publish(publish(QoS::AtMostOnce, 0, Properties::default())),
        ),
        (
            "publish-qos1-props",
            Packet::Publish(publish(
                QoS::AtLeastOnce,
                7,
                Properties {
                    message_expiry_interval: Some(60),
                    topic_alias: Some(3),
                    response_topic: Some("reply/7".into()),
                    correlation_data: Some(vec![0xC0, 0xFF]),
                    subscription_identifiers: vec![4],
                    payload_format_indicator: Some(0),
                    ..props.clone()
                },
            )),
        ),
        (
            "publish-qos2",
            Packet::Publish(publish(QoS::ExactlyOnce, 9, Properties::default())),
        ),
        ("puback", Packet::PubAck(ack(7, ReasonCode::Success))),
        (
            "puback-reason",
            Packet::PubAck(ack(7, ReasonCode::NoMatchingSubscribers)),
        ),
        ("pubrec", Packet::PubRec(ack(9, ReasonCode::Success))),
        (
            "pubrel",
            Packet::PubRel(ack(9, ReasonCode::PacketIdentifierNotFound)),
        ),
        ("pubcomp", Packet::PubComp(ack(9, ReasonCode::Success))),
        (
            "subscribe",
            Packet::Subscribe(Subscribe {
                packet_id: 3,
                properties: Properties {
                    subscription_identifiers: vec![4],
                    ..Properties::default()
                }
                .into(),
                filters: vec![
                    ("site/+/temp".into(), opts(QoS::AtLeastOnce, true, 1)),
                    ("$share/g/alerts/#".into(), opts(QoS::ExactlyOnce, false, 2)),
                ],
            }),
        ),
        (
            "suback",
            Packet::SubAck(SubAck {
                packet_id: 3,
                properties: props.clone().into(),
                reasons: vec![ReasonCode::GrantedQos1, ReasonCode::NotAuthorized],
            }),
        ),
        (
            "unsubscribe",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 4,
                properties: props.clone().into(),
                filters: vec!["site/+/temp".into(), "#".into()],
            }),
        ),
        (
            "unsuback",
            Packet::UnsubAck(UnsubAck {
                packet_id: 4,
                properties: Props::none(),
                reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
            }),
        ),
        ("pingreq", Packet::PingReq),
        ("pingresp", Packet::PingResp),
        (
            "disconnect",
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::DisconnectWithWill,
                properties: Properties {
                    session_expiry_interval: Some(0),
                    ..props.clone()
                }
                .into(),
            }),
        ),
        (
            "auth",
            Packet::Auth(Auth {
                reason: ReasonCode::ContinueAuthentication,
                properties: Properties {
                    authentication_method: Some("SCRAM-SHA-1".into()),
                    authentication_data: Some(vec![9; 8]),
                    ..props
                }
                .into(),
            }),
        ),
    ]
}

fn mqtt_seeds() -> Seeds {
    let mut seeds = Vec::new();
    let packets = mqtt_packets();
    for (version, tag) in [(ProtocolVersion::V311, "v311"), (ProtocolVersion::V5, "v5")] {
        let mut session = Vec::new();
        for (name, packet) in &packets {
            if matches!(packet, Packet::Auth(_)) && !version.is_v5() {
                continue;
            }
            let bytes = encode(packet, version);
            if !matches!(packet, Packet::Connect(_)) || name == &"connect-will-credentials" {
                session.extend_from_slice(&bytes);
            }
            seeds.push((format!("{tag}-{name}"), bytes));
        }
        // A whole client session in one stream: frames back to back.
        seeds.push((format!("{tag}-session"), session));
    }
    // A remaining length in the non-minimal 2-byte form, and a 4-byte one that lies.
    seeds.push(("pingreq-long-length".into(), vec![0xC0, 0x80, 0x00]));
    seeds.push((
        "publish-4-byte-length".into(),
        vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
    ));
    seeds
}

fn sn(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    mqttsn::encode(msg, &mut out);
    out
}

fn mqttsn_seeds() -> Seeds {
    let flags = |qos, topic_id_type| Flags {
        dup: false,
        qos,
        retain: true,
        will: true,
        clean_session: true,
        topic_id_type,
    };
    let messages: Vec<(&str, Message<'_>)> = vec![
        (
            "advertise",
            Message::Advertise {
                gw_id: 1,
                duration: 900,
            },
        ),
        ("searchgw", Message::SearchGw { radius: 1 }),
        (
            "gwinfo",
            Message::GwInfo {
                gw_id: 1,
                gw_add: &[127, 0, 0, 1],
            },
        ),
        (
            "connect",
            Message::Connect {
                flags: flags(SnQos::AtMostOnce, TopicIdType::Normal),
                protocol_id: 1,
                duration: 60,
                client_id: b"sn-client",
            },
        ),
        (
            "connack",
            Message::ConnAck {
                code: ReturnCode::Accepted,
            },
        ),
        ("willtopicreq", Message::WillTopicReq),
        (
            "willtopic",
            Message::WillTopic {
                flags: flags(SnQos::AtLeastOnce, TopicIdType::Normal),
                topic: b"dev/1/will",
            },
        ),
        ("willmsgreq", Message::WillMsgReq),
        ("willmsg", Message::WillMsg { msg: b"gone" }),
        (
            "register",
            Message::Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: b"site/1/temp",
            },
        ),
        (
            "regack",
            Message::RegAck {
                topic_id: 5,
                msg_id: 1,
                code: ReturnCode::Accepted,
            },
        ),
        (
            "publish-qos1",
            Message::Publish {
                flags: flags(SnQos::AtLeastOnce, TopicIdType::Normal),
                topic_id: 5,
                msg_id: 2,
                data: b"21.5",
            },
        ),
        (
            "publish-qos-minus-one-short",
            Message::Publish {
                flags: flags(SnQos::MinusOne, TopicIdType::Short),
                topic_id: u16::from_be_bytes(*b"ab"),
                msg_id: 0,
                data: b"x",
            },
        ),
        (
            "publish-3-octet-length",
            Message::Publish {
                flags: flags(SnQos::AtMostOnce, TopicIdType::Predefined),
                topic_id: 1,
                msg_id: 0,
                data: &[0x5A; 300],
            },
        ),
        (
            "puback",
            Message::PubAck {
                topic_id: 5,
                msg_id: 2,
                code: ReturnCode::InvalidTopicId,
            },
        ),
        ("pubrec", Message::PubRec { msg_id: 3 }),
        ("pubrel", Message::PubRel { msg_id: 3 }),
        ("pubcomp", Message::PubComp { msg_id: 3 }),
        (
            "subscribe-name",
            Message::Subscribe {
                flags: flags(SnQos::ExactlyOnce, TopicIdType::Normal),
                msg_id: 4,
                topic: SubTopic::Name(b"site/+/temp"),
            },
        ),
        (
            "subscribe-predefined",
            Message::Subscribe {
                flags: flags(SnQos::AtLeastOnce, TopicIdType::Predefined),
                msg_id: 5,
                topic: SubTopic::Predefined(1),
            },
        ),
        (
            "subscribe-short",
            Message::Subscribe {
                flags: flags(SnQos::AtMostOnce, TopicIdType::Short),
                msg_id: 6,
                topic: SubTopic::Short(*b"ab"),
            },
        ),
        (
            "suback",
            Message::SubAck {
                flags: flags(SnQos::AtLeastOnce, TopicIdType::Normal),
                topic_id: 5,
                msg_id: 4,
                code: ReturnCode::Other(7),
            },
        ),
        (
            "unsubscribe",
            Message::Unsubscribe {
                flags: flags(SnQos::AtMostOnce, TopicIdType::Normal),
                msg_id: 7,
                topic: SubTopic::Name(b"site/#"),
            },
        ),
        ("unsuback", Message::UnsubAck { msg_id: 7 }),
        ("pingreq", Message::PingReq { client_id: None }),
        (
            "pingreq-wake",
            Message::PingReq {
                client_id: Some(b"sn-client"),
            },
        ),
        ("pingresp", Message::PingResp),
        ("disconnect", Message::Disconnect { duration: None }),
        (
            "disconnect-sleep",
            Message::Disconnect {
                duration: Some(600),
            },
        ),
        (
            "willtopicupd",
            Message::WillTopicUpd {
                flags: flags(SnQos::ExactlyOnce, TopicIdType::Normal),
                topic: b"dev/1/will2",
            },
        ),
        (
            "willtopicupd-clear",
            Message::WillTopicUpd {
                flags: Flags::default(),
                topic: b"",
            },
        ),
        (
            "willtopicresp",
            Message::WillTopicResp {
                code: ReturnCode::Accepted,
            },
        ),
        ("willmsgupd", Message::WillMsgUpd { msg: b"bye" }),
        (
            "willmsgresp",
            Message::WillMsgResp {
                code: ReturnCode::NotSupported,
            },
        ),
    ];
    let mut seeds: Seeds = messages
        .iter()
        .map(|(name, msg)| (name.to_string(), sn(msg)))
        .collect();
    let mut out = Vec::new();
    mqttsn::encode_encapsulated(0x01, &[0xAB, 0xCD], &messages[11].1, &mut out);
    seeds.push(("encapsulated-publish".into(), out));
    let mut out = Vec::new();
    mqttsn::encode_encapsulated(0x00, &[0x07; 260], &Message::PingResp, &mut out);
    seeds.push(("encapsulated-long-node-id".into(), out));
    seeds
}

/// The first two bytes of an `http_request` input say where the rest is cut.
fn cut_at(at: u16, request: &[u8]) -> Vec<u8> {
    let mut data = at.to_be_bytes().to_vec();
    data.extend_from_slice(request);
    data
}

fn http_seeds() -> Seeds {
    let requests: [(&str, &[u8]); 16] = [
        (
            "get",
            b"GET /api/v1/broker HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        ),
        (
            "get-query",
            b"GET /api/v1/clients?limit=10&cursor=a%2Fb&x HTTP/1.1\r\nHost: h\r\n\
              Accept: application/json\r\n\r\n",
        ),
        (
            "get-http10",
            b"GET /api/v1/metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ),
        (
            "head",
            b"\r\nHEAD /api/v1/openapi.json HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        (
            "post-json",
            b"POST /api/v1/publish HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\n\
              Content-Type: application/json\r\nContent-Length: 41\r\n\r\n\
              {\"topic\": \"a/b\", \"payload\": \"hi\", \"qos\": 1}",
        ),
        (
            "post-chunked",
            b"POST /api/v1/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
              Content-Type: application/json\r\n\r\n\
              5;ext=1\r\n{\"kin\r\n1a\r\nd\": \"drop\", \"count\": 2}\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        (
            "put-expect-continue",
            b"PUT /api/v1/config HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\
              Content-Length: 30\r\n\r\n{\"max_inflight_messages\": 5}\r\n",
        ),
        (
            "delete-percent",
            b"DELETE /api/v1/clients/sensor%207?reason_code=152 HTTP/1.1\r\nHost: h\r\n\
              Connection: close\r\n\r\n",
        ),
        (
            "pipelined",
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("version-2", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
        (
            "content-length-twice",
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        ),
        ("bare-lf", b"GET /api/v1/broker HTTP/1.1\nHost: h\n\n"),
        (
            "chunked-two-codings",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunked-empty",
            b"POST /api/v1/publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("options-star", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
    ];
    let mut seeds = Vec::new();
    for (name, request) in requests {
        seeds.push((format!("{name}-whole"), cut_at(u16::MAX, request)));
        let middle = u16::try_from(request.len() / 2).unwrap_or(0);
        seeds.push((format!("{name}-halves"), cut_at(middle, request)));
    }
    seeds
}

/// A masked client frame (RFC 6455 5.2).
fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

fn upgrade(protocols: &str) -> Vec<u8> {
    format!(
        "GET /mqtt HTTP/1.1\r\nHost: localhost:8083\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n"
    )
    .into_bytes()
}

fn websocket_seeds() -> Seeds {
    let connect = encode(&mqtt_packets()[0].1, ProtocolVersion::V5);
    let publish = encode(&mqtt_packets()[5].1, ProtocolVersion::V5);
    let mut both = connect.clone();
    both.extend_from_slice(&publish);
    let (head, tail) = both.split_at(10);
    let frames: [(&str, Vec<u8>); 10] = [
        ("binary", ws_frame(0x2, true, &connect)),
        ("binary-two-packets", ws_frame(0x2, true, &both)),
        (
            "fragmented",
            [ws_frame(0x2, false, head), ws_frame(0x0, true, tail)].concat(),
        ),
        (
            "ping-in-fragments",
            [
                ws_frame(0x2, false, head),
                ws_frame(0x9, true, b"ping"),
                ws_frame(0x0, true, tail),
            ]
            .concat(),
        ),
        ("pong", ws_frame(0xA, true, b"")),
        (
            "close",
            ws_frame(0x8, true, &[0x03, 0xE8, b'b', b'y', b'e']),
        ),
        ("text", ws_frame(0x1, true, b"not mqtt")),
        ("binary-16-bit-length", ws_frame(0x2, true, &[0x30; 300])),
        ("unmasked", vec![0x82, 0x02, 0xC0, 0x00]),
        ("reserved-bits", vec![0xF2, 0x80, 0, 0, 0, 0]),
    ];
    let mut seeds = Vec::new();
    for (name, frames) in frames {
        // Mode 1: the target puts a valid upgrade request first.
        seeds.push((name.to_string(), [&[0x01, 0x00][..], &frames].concat()));
    }
    // Every MQTT 5.0 packet in a binary frame, read in pieces of 1 to 20 bytes.
    for (i, (name, packet)) in mqtt_packets().iter().enumerate() {
        let frame = ws_frame(0x2, true, &encode(packet, ProtocolVersion::V5));
        let mode = 1 | (u8::try_from(i).unwrap_or(0) + 1) << 1;
        seeds.push((
            format!("packet-{name}"),
            [&[mode, 0x00][..], &frame].concat(),
        ));
    }
    let with_upgrade = [upgrade("mqtt"), ws_frame(0x2, true, &both)].concat();
    // Mode 0 with the whole stream in one read, in 7-byte reads, and with 3-byte reads.
    seeds.push((
        "upgrade-whole".into(),
        [&[0x00, 0x00][..], &with_upgrade].concat(),
    ));
    seeds.push((
        "upgrade-7-byte-chunks".into(),
        [&[0x0E, 0x00][..], &with_upgrade].concat(),
    ));
    seeds.push((
        "upgrade-3-byte-reads".into(),
        [&[0x00, 0x03][..], &with_upgrade].concat(),
    ));
    let old = [upgrade("mqttv3.1, other"), ws_frame(0x2, true, &connect)].concat();
    seeds.push(("upgrade-mqttv31".into(), [&[0x00, 0x00][..], &old].concat()));
    seeds.push((
        "upgrade-no-mqtt".into(),
        [&[0x00, 0x00][..], &upgrade("chat")[..]].concat(),
    ));
    seeds
}

/// Example configurations, one seed per option of the table that culex takes (inside a listener or bridge
/// block where it belongs) and a few invalid lines.
fn config_seeds(conf: &Path) -> io::Result<Seeds> {
    let mut seeds = Vec::new();
    for name in ["culex.conf", "culex-tls.conf", "culex-gateway.conf"] {
        seeds.push((format!("conf-{name}"), fs::read(conf.join(name))?));
    }
    for option in OPTIONS.iter().filter(|o| o.support != Support::NotYet) {
        let context = match option.scope {
            Scope::Global => "",
            Scope::Listener => "listener 1883 127.0.0.1\n",
            Scope::Bridge => "connection central\naddress 127.0.0.1:1884\ntopic # both 1\n",
        };
        let text = format!("{context}{} {}\n", option.name, option.example);
        seeds.push((format!("option-{}", option.name), text.into_bytes()));
    }
    let extra: [(&str, &str); 6] = [
        (
            "include-dir",
            "include_dir /etc/culex/conf.d\nmax_qos 1\n\0listener 1885\n",
        ),
        (
            "mqttsn-predefined",
            "listener 1884 127.0.0.1\nprotocol mqttsn\npredefined_topics p.txt\n\
             \0# topics\n1 site/1/temp\n2 site/1/hum\n",
        ),
        (
            "http-token",
            "listener 8080\nprotocol http\nhttp_token_file t\n\0s3cret\n",
        ),
        ("bad-number", "max_keepalive 65536\n"),
        ("comment-after-value", "max_keepalive 60 # one minute\n"),
        ("bom-crlf", "\u{feff}allow_anonymous true\r\nmax_qos 2\r\n"),
    ];
    for (name, text) in extra {
        seeds.push((name.to_string(), text.as_bytes().to_vec()));
    }
    Ok(seeds)
}
