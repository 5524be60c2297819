//! Hand-checked byte fixtures for every message of MQTT-SN 1.2 section 5.4 and the
//! Encapsulated frame of 5.5: each decodes to the stated value and encodes back to the bytes.
//!
//! These tests must never touch the network, the clock or the file system.

use super::*;

#[test]
fn advertise_fixture() {
    // gw 1, duration 900 s (0x0384).
    fixture(
        &[0x05, 0x00, 0x01, 0x03, 0x84],
        Message::Advertise {
            gw_id: 1,
            duration: 900,
        },
    );
}

#[test]
fn searchgw_fixture() {
    fixture(&[0x03, 0x01, 0x02], Message::SearchGw { radius: 2 });
}

#[test]
fn gwinfo_fixtures_from_gateway_and_from_client() {
    fixture(
        &[0x03, 0x02, 0x05],
        Message::GwInfo {
            gw_id: 5,
            gw_add: &[],
        },
    );
    fixture(
        &[0x07, 0x02, 0x05, 192, 168, 0, 1],
        Message::GwInfo {
            gw_id: 5,
            gw_add: &[192, 168, 0, 1],
        },
    );
}

#[test]
fn connect_fixture() {
    // Will and CleanSession (0x08 | 0x04), protocol 0x01, duration 30 s, client "abc".
    fixture(
        &[0x09, 0x04, 0x0C, 0x01, 0x00, 0x1E, b'a', b'b', b'c'],
        Message::Connect {
            flags: Flags {
                will: true,
                clean_session: true,
                ..Flags::default()
            },
            protocol_id: 0x01,
            duration: 30,
            client_id: b"abc",
        },
    );
}

#[test]
fn connect_protocol_id_is_left_to_the_gateway() {
    let m = dec(&[0x06, 0x04, 0x00, 0x02, 0x00, 0x00]);
    assert!(
        matches!(
            m,
            Message::Connect {
                protocol_id: 0x02,
                ..
            }
        ),
        "{m:?}"
    );
}

#[test]
fn connect_client_id_length_is_not_limited() {
    let id = [b'x'; 200];
    let mut body = vec![0x04, 0x01, 0x00, 0x0A];
    body.extend_from_slice(&id);
    let bytes = dgram(0x04, &body);
    let m = dec(&bytes);
    assert!(matches!(m, Message::Connect { client_id, .. } if client_id.len() == 200));
}

#[test]
fn connack_and_reserved_return_code_fixtures() {
    fixture(
        &[0x03, 0x05, 0x00],
        Message::ConnAck {
            code: ReturnCode::Accepted,
        },
    );
    fixture(
        &[0x03, 0x05, 0x04],
        Message::ConnAck {
            code: ReturnCode::Other(4),
        },
    );
}

#[test]
fn willtopic_fixtures_full_and_empty() {
    // QoS 1 (0x20) and Retain (0x10), topic "w".
    fixture(
        &[0x04, 0x07, 0x30, b'w'],
        Message::WillTopic {
            flags: Flags {
                qos: SnQos::AtLeastOnce,
                retain: true,
                ..Flags::default()
            },
            topic: b"w",
        },
    );
    // 5.4.7: the empty WILLTOPIC is exactly 2 octets, without the Flags field.
    fixture(
        &[0x02, 0x07],
        Message::WillTopic {
            flags: Flags::default(),
            topic: b"",
        },
    );
    // An empty topic is written without flags whatever they say.
    let m = Message::WillTopicUpd {
        flags: flags(SnQos::ExactlyOnce),
        topic: b"",
    };
    assert_eq!(enc(&m), [0x02, 0x1A]);
}

#[test]
fn willmsg_fixture() {
    fixture(
        &[0x05, 0x09, b'b', b'y', b'e'],
        Message::WillMsg { msg: b"bye" },
    );
    fixture(
        &[0x04, 0x1C, b'o', b'k'],
        Message::WillMsgUpd { msg: b"ok" },
    );
}

#[test]
fn register_fixture() {
    // Topic id 1, msg id 2, topic "a/b".
    fixture(
        &[0x09, 0x0A, 0x00, 0x01, 0x00, 0x02, b'a', b'/', b'b'],
        Message::Register {
            topic_id: 1,
            msg_id: 2,
            topic_name: b"a/b",
        },
    );
}

#[test]
fn regack_and_puback_fixtures() {
    fixture(
        &[0x07, 0x0B, 0x00, 0x01, 0x00, 0x02, 0x00],
        Message::RegAck {
            topic_id: 1,
            msg_id: 2,
            code: ReturnCode::Accepted,
        },
    );
    fixture(
        &[0x07, 0x0D, 0x00, 0x01, 0x00, 0x02, 0x02],
        Message::PubAck {
            topic_id: 1,
            msg_id: 2,
            code: ReturnCode::InvalidTopicId,
        },
    );
}

#[test]
fn publish_fixture() {
    // DUP (0x80), QoS 1 (0x20), Retain (0x10), normal topic id 0x0102, msg id 0x0304.
    fixture(
        &[0x09, 0x0C, 0xB0, 0x01, 0x02, 0x03, 0x04, b'h', b'i'],
        Message::Publish {
            flags: Flags {
                dup: true,
                qos: SnQos::AtLeastOnce,
                retain: true,
                ..Flags::default()
            },
            topic_id: 0x0102,
            msg_id: 0x0304,
            data: b"hi",
        },
    );
}

#[test]
fn publish_qos_minus_one_short_topic_fixture() {
    // QoS -1 (0x60) with a short topic name (0x02): "ab" travels in the topic id field.
    fixture(
        &[0x08, 0x0C, 0x62, b'a', b'b', 0x00, 0x00, b'x'],
        Message::Publish {
            flags: Flags {
                qos: SnQos::MinusOne,
                topic_id_type: TopicIdType::Short,
                ..Flags::default()
            },
            topic_id: u16::from_be_bytes(*b"ab"),
            msg_id: 0,
            data: b"x",
        },
    );
}

#[test]
fn publish_of_300_bytes_uses_the_3_octet_form() {
    let data = [0x5A; 300];
    let m = Message::Publish {
        flags: Flags::default(),
        topic_id: 2,
        msg_id: 0,
        data: &data,
    };
    let bytes = enc(&m);
    // 3 (length) + 1 (type) + 5 (flags, topic id, msg id) + 300 = 309 = 0x0135.
    assert_eq!(bytes.len(), 309);
    assert_eq!(
        bytes[..9],
        [0x01, 0x01, 0x35, 0x0C, 0x00, 0x00, 0x02, 0x00, 0x00]
    );
    assert_eq!(dec(&bytes), m);
}

#[test]
fn the_1_octet_form_is_used_up_to_255() {
    let data = [0u8; 249];
    let at = |n: usize| Message::Publish {
        flags: Flags::default(),
        topic_id: 1,
        msg_id: 1,
        data: &data[..n],
    };
    // 1 + 1 + 5 + 248 = 255: the last total the 1-octet form can state.
    let b = enc(&at(248));
    assert_eq!((b.len(), b[0], b[1]), (255, 0xFF, 0x0C));
    // One more octet needs the 3-octet form: 3 + 1 + 5 + 249 = 258.
    let b = enc(&at(249));
    assert_eq!((b.len(), &b[..4]), (258, &[0x01, 0x01, 0x02, 0x0C][..]));
    assert_eq!(dec(&b), at(249));
}

#[test]
fn largest_datagram_encodes_and_decodes() {
    let data = vec![1u8; MAX_DATAGRAM - 9];
    let m = Message::Publish {
        flags: Flags::default(),
        topic_id: 1,
        msg_id: 1,
        data: &data,
    };
    let bytes = enc(&m);
    assert_eq!(bytes.len(), MAX_DATAGRAM);
    assert_eq!(bytes[..3], [0x01, 0xFF, 0xFF]);
    assert_eq!(dec(&bytes), m);
}

#[test]
fn pubrec_pubrel_pubcomp_unsuback_fixtures() {
    fixture(&[0x04, 0x0F, 0x00, 0x01], Message::PubRec { msg_id: 1 });
    fixture(&[0x04, 0x10, 0x00, 0x02], Message::PubRel { msg_id: 2 });
    fixture(&[0x04, 0x0E, 0x00, 0x03], Message::PubComp { msg_id: 3 });
    fixture(
        &[0x04, 0x15, 0x01, 0x00],
        Message::UnsubAck { msg_id: 0x0100 },
    );
}

#[test]
fn subscribe_fixture_topic_name() {
    // QoS 1 (0x20), normal (0x00): the topic name runs to the end.
    fixture(
        &[0x08, 0x12, 0x20, 0x00, 0x05, b'a', b'/', b'#'],
        Message::Subscribe {
            flags: flags(SnQos::AtLeastOnce),
            msg_id: 5,
            topic: SubTopic::Name(b"a/#"),
        },
    );
}

#[test]
fn subscribe_fixture_predefined_id() {
    // QoS 2 (0x40), predefined (0x01), topic id 7.
    fixture(
        &[0x07, 0x12, 0x41, 0x00, 0x06, 0x00, 0x07],
        Message::Subscribe {
            flags: Flags {
                qos: SnQos::ExactlyOnce,
                topic_id_type: TopicIdType::Predefined,
                ..Flags::default()
            },
            msg_id: 6,
            topic: SubTopic::Predefined(7),
        },
    );
}

#[test]
fn subscribe_fixture_short_name() {
    // QoS 0, short (0x02), "ab".
    fixture(
        &[0x07, 0x12, 0x02, 0x00, 0x07, b'a', b'b'],
        Message::Subscribe {
            flags: Flags {
                topic_id_type: TopicIdType::Short,
                ..Flags::default()
            },
            msg_id: 7,
            topic: SubTopic::Short(*b"ab"),
        },
    );
}

#[test]
fn subscribe_encodes_the_topic_id_type_of_its_topic() {
    // The flags claim a name, the topic is a short name: the wire says short (0x02).
    let m = Message::Subscribe {
        flags: Flags::default(),
        msg_id: 1,
        topic: SubTopic::Short(*b"xy"),
    };
    assert_eq!(enc(&m), [0x07, 0x12, 0x02, 0x00, 0x01, b'x', b'y']);
    let m = Message::Unsubscribe {
        flags: Flags {
            topic_id_type: TopicIdType::Short,
            ..Flags::default()
        },
        msg_id: 1,
        topic: SubTopic::Name(b"t"),
    };
    assert_eq!(enc(&m), [0x06, 0x14, 0x00, 0x00, 0x01, b't']);
}

#[test]
fn unsubscribe_fixture() {
    fixture(
        &[0x07, 0x14, 0x01, 0x00, 0x09, 0x00, 0x03],
        Message::Unsubscribe {
            flags: Flags {
                topic_id_type: TopicIdType::Predefined,
                ..Flags::default()
            },
            msg_id: 9,
            topic: SubTopic::Predefined(3),
        },
    );
}

#[test]
fn suback_fixture() {
    // QoS 1 (0x20), topic id 9, msg id 5, accepted.
    fixture(
        &[0x08, 0x13, 0x20, 0x00, 0x09, 0x00, 0x05, 0x00],
        Message::SubAck {
            flags: flags(SnQos::AtLeastOnce),
            topic_id: 9,
            msg_id: 5,
            code: ReturnCode::Accepted,
        },
    );
}

#[test]
fn pingreq_fixtures_with_and_without_client_id() {
    fixture(&[0x02, 0x16], Message::PingReq { client_id: None });
    fixture(
        &[0x05, 0x16, b'a', b'b', b'c'],
        Message::PingReq {
            client_id: Some(b"abc"),
        },
    );
    // An empty client id is the same as none on the wire.
    assert_eq!(
        enc(&Message::PingReq {
            client_id: Some(b"")
        }),
        [0x02, 0x16]
    );
}

#[test]
fn pingresp_and_requests_fixtures() {
    fixture(&[0x02, 0x17], Message::PingResp);
    fixture(&[0x02, 0x06], Message::WillTopicReq);
    fixture(&[0x02, 0x08], Message::WillMsgReq);
    fixture(
        &[0x03, 0x1B, 0x00],
        Message::WillTopicResp {
            code: ReturnCode::Accepted,
        },
    );
    fixture(
        &[0x03, 0x1D, 0x01],
        Message::WillMsgResp {
            code: ReturnCode::Congestion,
        },
    );
}

#[test]
fn disconnect_fixtures_with_and_without_duration() {
    fixture(&[0x02, 0x18], Message::Disconnect { duration: None });
    // Sleep for 600 s (0x0258).
    fixture(
        &[0x04, 0x18, 0x02, 0x58],
        Message::Disconnect {
            duration: Some(600),
        },
    );
}

#[test]
fn encapsulated_fixture() {
    // Ctrl radius 1, node id 0xABCD, carrying a PINGREQ.
    let bytes = [0x05, 0xFE, 0x01, 0xAB, 0xCD, 0x02, 0x16];
    let e = Encapsulated {
        ctrl: 0x01,
        node_id: &[0xAB, 0xCD],
        inner: &[0x02, 0x16],
    };
    assert_eq!(decode(&bytes), Ok(Frame::Encapsulated(e)));
    assert_eq!(
        decode_message(e.inner),
        Ok(Message::PingReq { client_id: None })
    );
    let mut out = Vec::new();
    encode_encapsulated(
        0x01,
        &[0xAB, 0xCD],
        &Message::PingReq { client_id: None },
        &mut out,
    );
    assert_eq!(out, bytes);
}

#[test]
fn encapsulated_with_empty_node_id_and_3_octet_forms() {
    // Header without a node id; inner message in the 3-octet form.
    let bytes = [0x03, 0xFE, 0x00, 0x01, 0x00, 0x04, 0x17];
    let Ok(Frame::Encapsulated(e)) = decode(&bytes) else {
        panic!("not encapsulated");
    };
    assert_eq!((e.ctrl, e.node_id), (0, &[][..]));
    assert_eq!(decode_message(e.inner), Ok(Message::PingResp));
    // The header itself in the 3-octet form.
    let bytes = [0x01, 0x00, 0x06, 0xFE, 0x03, 0x07, 0x02, 0x17];
    let e = Encapsulated {
        ctrl: 0x03,
        node_id: &[0x07],
        inner: &[0x02, 0x17],
    };
    assert_eq!(decode(&bytes), Ok(Frame::Encapsulated(e)));
}

#[test]
fn encapsulated_with_a_long_node_id_uses_the_3_octet_form() {
    let node = [0x11u8; 300];
    let mut out = Vec::new();
    encode_encapsulated(0, &node, &Message::PingResp, &mut out);
    // 3 + 1 + 1 + 300 = 305 = 0x0131.
    assert_eq!(out[..5], [0x01, 0x01, 0x31, 0xFE, 0x00]);
    let Ok(Frame::Encapsulated(e)) = decode(&out) else {
        panic!("not encapsulated");
    };
    assert_eq!((e.node_id.len(), e.inner), (300, &[0x02, 0x17][..]));
}

#[test]
fn unused_flag_bits_are_ignored() {
    // CONNECT uses only Will and CleanSession: 0xFF reads as those two, TopicIdType 0b11
    // included (it is "not used" there, so not reserved).
    let m = dec(&[0x06, 0x04, 0xFF, 0x01, 0x00, 0x00]);
    let Message::Connect { flags: f, .. } = m else {
        panic!("{m:?}");
    };
    assert_eq!(
        f,
        Flags {
            will: true,
            clean_session: true,
            ..Flags::default()
        }
    );
    assert_eq!(enc(&m), [0x06, 0x04, 0x0C, 0x01, 0x00, 0x00]);
    // SUBACK uses QoS only.
    let m = dec(&[0x08, 0x13, 0xFF, 0x00, 0x01, 0x00, 0x01, 0x00]);
    assert!(
        matches!(m, Message::SubAck { flags, .. } if flags == Flags {
            qos: SnQos::MinusOne,
            ..Flags::default()
        })
    );
    // WILLTOPIC uses QoS and Retain.
    let m = dec(&[0x04, 0x07, 0xFF, b't']);
    assert_eq!(enc(&m), [0x04, 0x07, 0x70, b't']);
}
