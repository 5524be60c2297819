//! The MQTT fixed header: packet type, flags and remaining length.
//!
//! Owns [`probe`] (framing), the reserved-flag check, the fixed-header writer and the small
//! error and reason-code helpers the packet codecs share. It must never look past the fixed
//! header into the variable header, and never panic on any input.

use super::{DecodeError, ErrorKind, Frame, ProtocolVersion, ReasonCode, ReasonPacket};
use crate::codec::cursor::{varint_len, Writer};

pub(crate) const CONNECT: u8 = 1;
pub(crate) const CONNACK: u8 = 2;
pub(crate) const PUBLISH: u8 = 3;
pub(crate) const PUBACK: u8 = 4;
pub(crate) const PUBREC: u8 = 5;
pub(crate) const PUBREL: u8 = 6;
pub(crate) const PUBCOMP: u8 = 7;
pub(crate) const SUBSCRIBE: u8 = 8;
pub(crate) const SUBACK: u8 = 9;
pub(crate) const UNSUBSCRIBE: u8 = 10;
pub(crate) const UNSUBACK: u8 = 11;
pub(crate) const PINGREQ: u8 = 12;
pub(crate) const PINGRESP: u8 = 13;
pub(crate) const DISCONNECT: u8 = 14;
pub(crate) const AUTH: u8 = 15;

pub(crate) fn malformed(clause: &'static str) -> DecodeError {
    DecodeError {
        kind: ErrorKind::Malformed,
        clause,
    }
}

pub(crate) fn protocol(clause: &'static str) -> DecodeError {
    DecodeError {
        kind: ErrorKind::Protocol,
        clause,
    }
}

pub(crate) fn error(kind: ErrorKind, clause: &'static str) -> DecodeError {
    DecodeError { kind, clause }
}

/// Reads a v5 reason code byte that `packet` may carry; any other value is malformed.
pub(crate) fn reason(
    byte: u8,
    packet: ReasonPacket,
    clause: &'static str,
) -> Result<ReasonCode, DecodeError> {
    match ReasonCode::from_u8(byte) {
        Some(code) if code.allowed_in(packet) => Ok(code),
        _ => Err(malformed(clause)),
    }
}

/// See [`super::probe`].
pub(crate) fn probe(buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
    let mut remaining_len: usize = 0;
    for i in 0..4usize {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining_len |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(Frame {
                header_len: 2 + i,
                remaining_len,
            }));
        }
    }
    // The remaining length uses at most four bytes. [MQTT-1.5.5-1]
    Err(malformed("MQTT-1.5.5-1"))
}

/// Checks the packet type and its reserved flag bits; returns the type and the flags.
pub(crate) fn check_type(byte0: u8, version: ProtocolVersion) -> Result<(u8, u8), DecodeError> {
    let ptype = byte0 >> 4;
    let flags = byte0 & 0x0F;
    let expected = match ptype {
        // Type 0 is reserved (v5 2.1.2, 3.1.1 2.2.1).
        0 => return Err(malformed("2.1.2")),
        PUBLISH => return Ok((ptype, flags)),
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        // AUTH does not exist in 3.1.1, where 15 is reserved (3.1.1 2.2.1).
        AUTH if !version.is_v5() => return Err(malformed("2.2.1")),
        _ => 0,
    };
    // Reserved flag bits must carry the listed value. [MQTT-2.2.2-1] [MQTT-2.2.2-2]
    if flags != expected {
        return Err(malformed("MQTT-2.2.2-2"));
    }
    Ok((ptype, flags))
}

/// Appends the fixed header for a body of `remaining_len` bytes.
pub(crate) fn put_header(out: &mut Vec<u8>, byte0: u8, remaining_len: usize) {
    out.put_u8(byte0);
    out.put_varint(remaining_len);
}

/// The size of the fixed header plus the body.
pub(crate) fn total_len(remaining_len: usize) -> usize {
    remaining_len.saturating_add(1 + varint_len(remaining_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_partial_header_is_none() {
        assert_eq!(probe(&[]), Ok(None));
        assert_eq!(probe(&[0x30]), Ok(None));
        assert_eq!(probe(&[0x30, 0x80]), Ok(None));
        assert_eq!(probe(&[0x30, 0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn probe_reads_lengths() {
        assert_eq!(
            probe(&[0xC0, 0x00]),
            Ok(Some(Frame {
                header_len: 2,
                remaining_len: 0
            }))
        );
        assert_eq!(
            probe(&[0x30, 0x80, 0x01, 0xAA]),
            Ok(Some(Frame {
                header_len: 3,
                remaining_len: 128
            }))
        );
        // Non-minimal encodings are accepted.
        assert_eq!(
            probe(&[0x30, 0x80, 0x80, 0x00]),
            Ok(Some(Frame {
                header_len: 4,
                remaining_len: 0
            }))
        );
    }

    #[test]
    fn probe_max_length_268_435_455() {
        let f = probe(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(
            f,
            Ok(Some(Frame {
                header_len: 5,
                remaining_len: 268_435_455
            }))
        );
    }

    #[test]
    fn probe_five_byte_length_is_malformed_mqtt_1_5_5_1() {
        let e = probe(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        assert_eq!(e, Err(malformed("MQTT-1.5.5-1")));
        // Even before the fifth byte arrives, a fourth continuation bit is already fatal.
        assert_eq!(
            probe(&[0x30, 0x80, 0x80, 0x80, 0x80]),
            Err(malformed("MQTT-1.5.5-1"))
        );
    }

    #[test]
    fn header_len_matches_writer() {
        for n in [0usize, 127, 128, 16_384, 268_435_455] {
            let mut out = Vec::new();
            put_header(&mut out, 0x30, n);
            assert_eq!(out.len().saturating_add(n), total_len(n));
            let f = probe(&out)
                .ok()
                .flatten()
                .map(|f| (f.header_len, f.remaining_len));
            assert_eq!(f, Some((out.len(), n)));
        }
    }
}
