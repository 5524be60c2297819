//! Bounds-checked reader and writer helpers for the codecs.
//!
//! [`Reader`] walks a byte slice and turns every short read, over-long variable byte integer
//! and invalid string into a [`DecodeError`] (kind `Malformed`); it never indexes past the
//! end and never panics. [`Writer`] appends the MQTT primitive encodings to a `Vec<u8>`.
//! This module must never touch a socket, a file, the clock or the logger.

use crate::codec::mqtt::{DecodeError, ErrorKind};

/// The largest value a four-byte variable byte integer can carry (spec 1.5.5).
pub const VARINT_MAX: u32 = 268_435_455;

/// Clause for a read past the end of the packet: the remaining length (v5 2.1.4) does not
/// cover the fields the packet declares.
const TRUNCATED: &str = "2.1.4";

fn malformed(clause: &'static str) -> DecodeError {
    DecodeError {
        kind: ErrorKind::Malformed,
        clause,
    }
}

/// A cursor over a byte slice. Every read checks the bounds first.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| malformed(TRUNCATED))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| malformed(TRUNCATED))?;
        self.pos = end;
        Ok(bytes)
    }

    /// Takes every byte not yet read (possibly none).
    pub fn rest(&mut self) -> &'a [u8] {
        let bytes = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        bytes
    }

    /// A reader over the next `n` bytes; this reader moves past them.
    pub fn sub(&mut self, n: usize) -> Result<Self, DecodeError> {
        self.take(n).map(Reader::new)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| malformed(TRUNCATED))?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    /// Two-byte integer, big-endian (spec 1.5.2).
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        match *b {
            [hi, lo] => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(malformed(TRUNCATED)),
        }
    }

    /// Four-byte integer, big-endian (spec 1.5.3).
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        match *b {
            [a, b1, c, d] => Ok(u32::from_be_bytes([a, b1, c, d])),
            _ => Err(malformed(TRUNCATED)),
        }
    }

    /// Variable byte integer: at most four bytes, so at most [`VARINT_MAX`]. Non-minimal
    /// encodings are accepted.
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4u32 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        // A fifth byte would be needed. [MQTT-1.5.5-1]
        Err(malformed("MQTT-1.5.5-1"))
    }

    /// UTF-8 encoded string with a two-byte length prefix.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u16()?;
        let bytes = self.take(usize::from(len))?;
        // Ill-formed UTF-8 (including surrogate encodings) is malformed. [MQTT-1.5.3-1]
        let s = std::str::from_utf8(bytes).map_err(|_| malformed("MQTT-1.5.3-1"))?;
        // U+0000 must not appear in a string. [MQTT-1.5.3-2]
        if s.contains('\0') {
            return Err(malformed("MQTT-1.5.3-2"));
        }
        Ok(s)
    }

    /// Binary data with a two-byte length prefix.
    pub fn bin(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// The number of bytes the variable byte integer encoding of `v` takes (values above
/// [`VARINT_MAX`] are written as [`VARINT_MAX`]).
pub fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The bytes a length-prefixed string or binary field takes; fields longer than 65,535
/// bytes are cut to 65,535 by the writer.
pub fn field_len(n: usize) -> usize {
    2 + n.min(usize::from(u16::MAX))
}

/// Appends the MQTT primitive encodings. None of these panic: a string or binary field
/// longer than 65,535 bytes is cut to that length and a variable byte integer above
/// [`VARINT_MAX`] is written as [`VARINT_MAX`]; callers size-check with the `*_len` helpers.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_varint(&mut self, v: usize);
    fn put_str(&mut self, s: &str);
    fn put_bin(&mut self, b: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }

    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_varint(&mut self, v: usize) {
        let mut v = u32::try_from(v).unwrap_or(VARINT_MAX).min(VARINT_MAX);
        loop {
            let low = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.push(low);
                return;
            }
            self.push(low | 0x80);
        }
    }

    fn put_str(&mut self, s: &str) {
        self.put_bin(s.as_bytes());
    }

    fn put_bin(&mut self, b: &[u8]) {
        let n = b.len().min(usize::from(u16::MAX));
        self.put_u16(n as u16);
        self.extend_from_slice(b.get(..n).unwrap_or(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_width_integers() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x00, 0x00, 0x01, 0x00, 0xFF]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0000_0100));
        assert_eq!(r.remaining(), 1);
        assert!(r.u16().is_err());
        assert_eq!(r.u8(), Ok(0xFF));
        assert!(r.is_empty());
        assert!(r.u8().is_err());
    }

    #[test]
    fn varint_bounds() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x7F]).varint(), Ok(127));
        assert_eq!(Reader::new(&[0x80, 0x01]).varint(), Ok(128));
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0x7F]).varint(),
            Ok(VARINT_MAX)
        );
        // Non-minimal encodings are accepted.
        assert_eq!(Reader::new(&[0x80, 0x80, 0x00]).varint(), Ok(0));
        let e = Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).varint();
        assert_eq!(e.map_err(|e| e.kind), Err(ErrorKind::Malformed));
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn varint_writer_is_minimal_and_matches_len() {
        for v in [
            0usize,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut out = Vec::new();
            out.put_varint(v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert_eq!(Reader::new(&out).varint(), Ok(v as u32));
        }
        let mut out = Vec::new();
        out.put_varint(usize::MAX);
        assert_eq!(out, [0xFF, 0xFF, 0xFF, 0x7F]);
    }

    #[test]
    fn string_rejects_bad_utf8_mqtt_1_5_3_1() {
        let e = Reader::new(&[0x00, 0x02, 0xC3, 0x28])
            .str()
            .map_err(|e| e.clause);
        assert_eq!(e, Err("MQTT-1.5.3-1"));
        // An encoded surrogate (U+D800) is not valid UTF-8.
        let e = Reader::new(&[0x00, 0x03, 0xED, 0xA0, 0x80])
            .str()
            .map_err(|e| e.clause);
        assert_eq!(e, Err("MQTT-1.5.3-1"));
    }

    #[test]
    fn string_rejects_nul_mqtt_1_5_3_2() {
        let e = Reader::new(&[0x00, 0x02, b'a', 0x00])
            .str()
            .map_err(|e| e.clause);
        assert_eq!(e, Err("MQTT-1.5.3-2"));
    }

    #[test]
    fn string_and_binary_round_trip() {
        let mut out = Vec::new();
        out.put_str("héllo");
        out.put_bin(&[1, 2, 3]);
        assert_eq!(out.len(), field_len(6) + field_len(3));
        let mut r = Reader::new(&out);
        assert_eq!(r.str(), Ok("héllo"));
        assert_eq!(r.bin(), Ok(&[1u8, 2, 3][..]));
        assert!(r.is_empty());
        assert!(Reader::new(&[0x00, 0x05, b'a']).str().is_err());
    }

    #[test]
    fn oversized_fields_are_cut_not_panicking() {
        let big = vec![b'x'; 70_000];
        let mut out = Vec::new();
        out.put_bin(&big);
        assert_eq!(out.len(), field_len(big.len()));
        assert_eq!(Reader::new(&out).bin().map(<[u8]>::len), Ok(65_535));
    }

    #[test]
    fn sub_reader_and_rest() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5]);
        let mut s = r.sub(2).map_err(|e| e.kind).unwrap();
        assert_eq!(s.u16(), Ok(0x0102));
        assert!(s.u8().is_err());
        assert!(r.sub(4).is_err());
        assert_eq!(r.rest(), &[3, 4, 5]);
        assert_eq!(r.rest(), &[] as &[u8]);
        assert!(r.take(usize::MAX).is_err());
    }
}
