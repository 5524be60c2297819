//! MQTT 3.1.1 and 5.0 framing and decoding, as the reactor drives them.
//!
//! The input is a stream of bytes from one client. It is cut into frames with
//! `mqtt::probe` under the broker's default packet size limit, exactly as the reactor does,
//! and every whole frame is decoded in both versions. Whatever decodes must encode to
//! `encoded_len` bytes that probe as one frame and decode to the same value. The whole
//! input is also decoded as one frame, for the length checks.

#![no_main]

use culex::codec::mqtt::{self, Packet, ProtocolVersion};
use culex::engine::limits::Limits;
use libfuzzer_sys::fuzz_target;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

fuzz_target!(|data: &[u8]| {
    let max_packet = usize::try_from(Limits::default().packet_size_max()).unwrap();
    let mut rest = data;
    while let Ok(Some(frame)) = mqtt::probe(rest) {
        assert!((2..=5).contains(&frame.header_len), "{frame:?}");
        assert!(frame.remaining_len <= 268_435_455, "{frame:?}");
        let total = frame.total_len();
        if total > max_packet || total > rest.len() {
            break;
        }
        let (bytes, tail) = rest.split_at(total);
        for version in VERSIONS {
            if let Ok(packet) = mqtt::decode(bytes, version) {
                round_trip(&packet, version);
            }
        }
        rest = tail;
    }
    for version in VERSIONS {
        if let Ok(packet) = mqtt::decode(data, version) {
            round_trip(&packet, version);
        }
    }
});

/// Encodes `packet` and checks that the bytes decode to the same value.
fn round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut out = vec![0xA5];
    mqtt::encode(packet, version, &mut out);
    assert_eq!(out.first(), Some(&0xA5), "encode must append");
    let bytes = &out[1..];
    assert_eq!(
        bytes.len(),
        mqtt::encoded_len(packet, version),
        "{packet:?}"
    );
    let frame = mqtt::probe(bytes).unwrap().unwrap();
    assert_eq!(frame.total_len(), bytes.len(), "{packet:?}");
    match mqtt::decode(bytes, version) {
        Ok(again) => assert_eq!(&again, packet, "{version:?} {bytes:02x?}"),
        Err(e) => panic!("{packet:?} encoded as {bytes:02x?} in {version:?}: {e}"),
    }
}
