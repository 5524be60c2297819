//! Tests for the MQTT-SN codec: hand-checked byte fixtures, a round trip of every message,
//! one test per malformed case (named for the case, citing the section), and a no-panic
//! sweep over truncations and corruptions of every sample.
//!
//! These tests must never touch the network, the clock or the file system.

use super::*;

mod fixtures;
mod malformed;
mod sweep;

// ---- helpers ----------------------------------------------------------------------------

/// Encodes `m`, checking that `encode` appends and that `encoded_len` agrees.
fn enc(m: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0xAA];
    encode(m, &mut out);
    let out = out.split_off(1);
    assert_eq!(out.len(), encoded_len(m), "encoded_len of {m:?}");
    out
}

/// Decodes one plain message datagram, panicking on an error.
fn dec(bytes: &[u8]) -> Message<'_> {
    match decode(bytes) {
        Ok(Frame::Message(m)) => {
            assert_eq!(
                decode_message(bytes),
                Ok(m),
                "decode_message of {bytes:02x?}"
            );
            m
        }
        other => panic!("{bytes:02x?} decoded as {other:?}, expected a message"),
    }
}

/// `bytes` decodes to `m`, and `m` encodes to `bytes`.
fn fixture(bytes: &[u8], m: Message<'_>) {
    assert_eq!(dec(bytes), m, "decoding {bytes:02x?}");
    assert_eq!(enc(&m), bytes, "encoding {m:?}");
}

/// The error both `decode` and `decode_message` give for a plain-message datagram.
fn err(bytes: &[u8]) -> DecodeError {
    let e = match decode(bytes) {
        Err(e) => e,
        Ok(f) => panic!("{bytes:02x?} decoded as {f:?}, expected an error"),
    };
    assert_eq!(
        decode_message(bytes),
        Err(e),
        "decode_message of {bytes:02x?}"
    );
    e
}

fn kind_clause(e: DecodeError) -> (ErrorKind, &'static str) {
    (e.kind, e.clause)
}

/// A datagram of type `t` around `body`, with a correct 1-octet length.
fn dgram(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(body.len() + 2).unwrap_or(0), t];
    out.extend_from_slice(body);
    out
}

/// The same message with the 3-octet length form.
fn long_form(t: u8, body: &[u8]) -> Vec<u8> {
    let total = u16::try_from(body.len() + 4).unwrap_or(0);
    let mut out = vec![0x01];
    out.extend_from_slice(&total.to_be_bytes());
    out.push(t);
    out.extend_from_slice(body);
    out
}

fn flags(qos: SnQos) -> Flags {
    Flags {
        qos,
        ..Flags::default()
    }
}

// ---- samples ----------------------------------------------------------------------------

/// One value of every message type, with each optional and variable form, rich enough to
/// reach every field the message uses (and only those: unused flags do not round-trip).
fn samples() -> Vec<Message<'static>> {
    let pub_flags = Flags {
        dup: true,
        qos: SnQos::ExactlyOnce,
        retain: true,
        topic_id_type: TopicIdType::Predefined,
        ..Flags::default()
    };
    let will_flags = Flags {
        qos: SnQos::AtLeastOnce,
        retain: true,
        ..Flags::default()
    };
    let sub_flags = |topic_id_type| Flags {
        dup: true,
        qos: SnQos::AtLeastOnce,
        topic_id_type,
        ..Flags::default()
    };
    vec![
        Message::Advertise {
            gw_id: 7,
            duration: 900,
        },
        Message::SearchGw { radius: 3 },
        Message::GwInfo {
            gw_id: 1,
            gw_add: &[],
        },
        Message::GwInfo {
            gw_id: 1,
            gw_add: &[10, 0, 0, 1],
        },
        Message::Connect {
            flags: Flags {
                will: true,
                clean_session: true,
                ..Flags::default()
            },
            protocol_id: 0x01,
            duration: 60,
            client_id: b"sensor-1",
        },
        Message::Connect {
            flags: Flags::default(),
            protocol_id: 0x01,
            duration: 0,
            client_id: b"",
        },
        Message::ConnAck {
            code: ReturnCode::Accepted,
        },
        Message::ConnAck {
            code: ReturnCode::Other(0x7F),
        },
        Message::WillTopicReq,
        Message::WillTopic {
            flags: will_flags,
            topic: b"dead/1",
        },
        Message::WillTopic {
            flags: Flags::default(),
            topic: b"",
        },
        Message::WillMsgReq,
        Message::WillMsg { msg: b"gone" },
        Message::WillMsg { msg: b"" },
        Message::Register {
            topic_id: 0,
            msg_id: 9,
            topic_name: b"a/b/c",
        },
        Message::RegAck {
            topic_id: 3,
            msg_id: 9,
            code: ReturnCode::Congestion,
        },
        Message::Publish {
            flags: pub_flags,
            topic_id: 0xBEEF,
            msg_id: 0x1234,
            data: b"payload",
        },
        Message::Publish {
            flags: flags(SnQos::MinusOne),
            topic_id: 1,
            msg_id: 0,
            data: b"",
        },
        Message::PubAck {
            topic_id: 3,
            msg_id: 4,
            code: ReturnCode::InvalidTopicId,
        },
        Message::PubRec { msg_id: 1 },
        Message::PubRel { msg_id: 2 },
        Message::PubComp { msg_id: 0xFFFF },
        Message::Subscribe {
            flags: sub_flags(TopicIdType::Normal),
            msg_id: 5,
            topic: SubTopic::Name(b"a/+/#"),
        },
        Message::Subscribe {
            flags: sub_flags(TopicIdType::Predefined),
            msg_id: 6,
            topic: SubTopic::Predefined(0x0102),
        },
        Message::Subscribe {
            flags: sub_flags(TopicIdType::Short),
            msg_id: 7,
            topic: SubTopic::Short(*b"ab"),
        },
        Message::SubAck {
            flags: flags(SnQos::ExactlyOnce),
            topic_id: 8,
            msg_id: 5,
            code: ReturnCode::NotSupported,
        },
        Message::Unsubscribe {
            flags: Flags::default(),
            msg_id: 10,
            topic: SubTopic::Name(b"a/#"),
        },
        Message::Unsubscribe {
            flags: Flags {
                topic_id_type: TopicIdType::Predefined,
                ..Flags::default()
            },
            msg_id: 11,
            topic: SubTopic::Predefined(4),
        },
        Message::Unsubscribe {
            flags: Flags {
                topic_id_type: TopicIdType::Short,
                ..Flags::default()
            },
            msg_id: 12,
            topic: SubTopic::Short(*b"zz"),
        },
        Message::UnsubAck { msg_id: 10 },
        Message::PingReq { client_id: None },
        Message::PingReq {
            client_id: Some(b"sleepy"),
        },
        Message::PingResp,
        Message::Disconnect { duration: None },
        Message::Disconnect {
            duration: Some(3600),
        },
        Message::WillTopicUpd {
            flags: will_flags,
            topic: b"dead/2",
        },
        Message::WillTopicUpd {
            flags: Flags::default(),
            topic: b"",
        },
        Message::WillTopicResp {
            code: ReturnCode::Accepted,
        },
        Message::WillMsgUpd { msg: b"bye" },
        Message::WillMsgResp {
            code: ReturnCode::NotSupported,
        },
        Message::Publish {
            flags: flags(SnQos::AtMostOnce),
            topic_id: 2,
            msg_id: 0,
            data: &[0x5A; 300],
        },
    ]
}

// ---- round trips ------------------------------------------------------------------------

#[test]
fn every_sample_round_trips() {
    let mut types = Vec::new();
    for m in samples() {
        let bytes = enc(&m);
        assert_eq!(dec(&bytes), m, "{bytes:02x?}");
        assert_eq!(enc(&dec(&bytes)), bytes);
        types.push(m.msg_type());
    }
    types.sort_unstable();
    types.dedup();
    // Every MsgType of 5.2.2 except Encapsulated, which has its own tests.
    assert_eq!(types.len(), 27);
}

#[test]
fn every_sample_round_trips_in_the_3_octet_form_too() {
    // 5.2.1: messages shorter than 256 octets *may* use the 1-octet form, so the 3-octet
    // form is valid for them as well.
    for m in samples() {
        let bytes = enc(&m);
        let Some(&first) = bytes.first() else {
            panic!("empty encoding of {m:?}");
        };
        if first == 0x01 {
            continue;
        }
        let long = long_form(bytes[1], &bytes[2..]);
        assert_eq!(dec(&long), m, "{long:02x?}");
    }
}

#[test]
fn every_sample_round_trips_encapsulated() {
    for m in samples() {
        let mut out = Vec::new();
        encode_encapsulated(0x02, &[0x00, 0x2A], &m, &mut out);
        let Ok(Frame::Encapsulated(e)) = decode(&out) else {
            panic!("{out:02x?} is not an Encapsulated frame");
        };
        assert_eq!((e.ctrl, e.node_id), (0x02, &[0x00, 0x2A][..]));
        assert_eq!(e.inner, enc(&m).as_slice());
        assert_eq!(decode_message(e.inner), Ok(m));
    }
}

#[test]
fn encode_appends_to_the_buffer() {
    let mut out = vec![1, 2, 3];
    encode(&Message::PingResp, &mut out);
    assert_eq!(out, [1, 2, 3, 0x02, 0x17]);
    encode_encapsulated(0, &[9], &Message::PingResp, &mut out);
    assert_eq!(
        out,
        [1, 2, 3, 0x02, 0x17, 0x04, 0xFE, 0x00, 0x09, 0x02, 0x17]
    );
}

#[test]
fn msg_type_and_name_follow_the_spec_table() {
    assert_eq!(Message::PingResp.msg_type(), 0x17);
    assert_eq!(Message::PingResp.name(), "PINGRESP");
    for m in samples() {
        let bytes = enc(&m);
        let type_at = if bytes[0] == 0x01 { 3 } else { 1 };
        assert_eq!(bytes[type_at], m.msg_type(), "{m:?}");
        assert_ne!(m.name(), "reserved", "{m:?}");
    }
}

#[test]
fn return_codes_round_trip_every_octet() {
    for b in 0..=255u8 {
        assert_eq!(ReturnCode::from_u8(b).to_u8(), b);
    }
    assert_eq!(ReturnCode::from_u8(3), ReturnCode::NotSupported);
    assert_eq!(ReturnCode::from_u8(4), ReturnCode::Other(4));
}

#[test]
fn qos_and_topic_id_type_bits() {
    for q in [
        SnQos::AtMostOnce,
        SnQos::AtLeastOnce,
        SnQos::ExactlyOnce,
        SnQos::MinusOne,
    ] {
        assert_eq!(SnQos::from_bits(q.bits()), q);
    }
    assert_eq!(SnQos::MinusOne.bits(), 0b11);
    for t in [
        TopicIdType::Normal,
        TopicIdType::Predefined,
        TopicIdType::Short,
    ] {
        assert_eq!(TopicIdType::from_bits(t.bits()), Some(t));
    }
    assert_eq!(TopicIdType::from_bits(0b11), None);
    let d = Flags::default();
    assert_eq!(
        (d.qos, d.topic_id_type),
        (SnQos::AtMostOnce, TopicIdType::Normal)
    );
    assert!(!d.dup && !d.retain && !d.will && !d.clean_session);
}
