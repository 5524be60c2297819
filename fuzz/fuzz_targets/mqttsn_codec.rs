//! MQTT-SN 1.2 datagrams: `decode` (plain messages and a forwarder's Encapsulated frames) and
//! `decode_message`, as the gateway calls them on each datagram.
//!
//! Whatever decodes must encode to `encoded_len` bytes that decode to the same value; an
//! Encapsulated frame is written again around its decoded inner message and must give back
//! the same control byte, node id and message.

#![no_main]

use culex::codec::mqttsn::{self, Encapsulated, Frame, Message, MAX_DATAGRAM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match mqttsn::decode(data) {
        Ok(Frame::Message(msg)) => round_trip(&msg),
        Ok(Frame::Encapsulated(frame)) => encapsulated(&frame),
        Err(_) => {}
    }
    if let Ok(msg) = mqttsn::decode_message(data) {
        round_trip(&msg);
    }
});

/// Encodes `msg` and checks that the bytes decode to the same message.
fn round_trip(msg: &Message<'_>) {
    let mut out = vec![0xA5];
    mqttsn::encode(msg, &mut out);
    assert_eq!(out.first(), Some(&0xA5), "encode must append");
    let bytes = &out[1..];
    assert_eq!(bytes.len(), mqttsn::encoded_len(msg), "{msg:?}");
    assert!(
        bytes.len() <= MAX_DATAGRAM,
        "{msg:?} takes {} bytes",
        bytes.len()
    );
    match mqttsn::decode(bytes) {
        Ok(Frame::Message(again)) => assert_eq!(&again, msg, "{bytes:02x?}"),
        other => panic!("{msg:?} encoded as {bytes:02x?} decodes as {other:?}"),
    }
}

/// Decodes the inner message and writes the frame again around it.
fn encapsulated(frame: &Encapsulated<'_>) {
    let Ok(inner) = mqttsn::decode_message(frame.inner) else {
        return;
    };
    round_trip(&inner);
    let mut out = Vec::new();
    mqttsn::encode_encapsulated(frame.ctrl, frame.node_id, &inner, &mut out);
    if out.len() > MAX_DATAGRAM {
        // A long node id and a long message cannot share one datagram.
        return;
    }
    match mqttsn::decode(&out) {
        Ok(Frame::Encapsulated(again)) => {
            assert_eq!(again.ctrl, frame.ctrl, "{out:02x?}");
            assert_eq!(again.node_id, frame.node_id, "{out:02x?}");
            assert_eq!(mqttsn::decode_message(again.inner), Ok(inner), "{out:02x?}");
        }
        other => panic!("{frame:?} encoded as {out:02x?} decodes as {other:?}"),
    }
}
