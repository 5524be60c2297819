//! The stateless cookie gate of a DTLS listener (RFC 6347 4.2.1): it reads just enough of a
//! datagram to find a ClientHello, answers one without a valid cookie with a
//! HelloVerifyRequest, and checks the cookie of one that carries it.
//!
//! The cookie is a keyed hash of the peer's address and the ClientHello's fixed fields, under
//! a key drawn from the listener's seed and a time window, so checking it needs no memory of
//! the peer. This file must never keep per-peer state, allocate beyond one reply, or panic on
//! any input: every datagram here comes from an address nobody has verified.

use std::net::{IpAddr, SocketAddr};

use rtc_dtls::crypto_provider::{constant_time_eq, HmacAlgorithm, Mac, RTCCrypto};

use crate::clock::Millis;
use crate::rng::Rng;

/// Cookie length: the length the crate gives its own cookies (see `DtlsConfig::handshake_for`).
pub(super) const COOKIE_LEN: usize = 20;

/// A cookie is valid in the window it was made in and the next one, so for 30 to 60 seconds:
/// long enough for a slow client's second ClientHello, short enough to limit replays.
const COOKIE_WINDOW_MS: u64 = 30_000;

const RECORD_HEADER_LEN: usize = 13;
const HANDSHAKE_HEADER_LEN: usize = 12;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_HELLO_VERIFY_REQUEST: u8 = 3;
/// DTLS 1.0 on the wire; RFC 6347 4.2.1 has a HelloVerifyRequest carry it whatever the
/// version negotiated later.
const DTLS_1_0: [u8; 2] = [0xfe, 0xff];

/// The fields of an unfragmented ClientHello that the gate needs, borrowed from the datagram.
#[derive(Debug)]
pub(super) struct ClientHello<'a> {
    /// The record holding the ClientHello, header included.
    pub(super) record: &'a [u8],
    pub(super) record_seq: u64,
    pub(super) message_seq: u16,
    pub(super) cookie: &'a [u8],
    /// What the cookie covers: client_version, random, session_id, cipher_suites and
    /// compression_methods, as sent (length prefixes included).
    fixed: [&'a [u8]; 2],
}

/// Whether `datagram` is a sequence of well-framed DTLS records of the four content types.
/// Anything else is dropped before the crate sees it.
pub(super) fn well_framed(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let content_ok = (20..=23).contains(&header[0]);
        if !content_ok || header[1] != 0xfe || len == 0 {
            return false;
        }
        let Some(next) = rest.get(RECORD_HEADER_LEN + len..) else {
            return false;
        };
        rest = next;
    }
    true
}

/// The ClientHello in the first record of `datagram`, if that record is an epoch-0 handshake
/// record holding one whole ClientHello.
pub(super) fn client_hello(datagram: &[u8]) -> Option<ClientHello<'_>> {
    let header = datagram.get(..RECORD_HEADER_LEN)?;
    if header[0] != CONTENT_HANDSHAKE || header[1] != 0xfe || header[3..5] != [0, 0] {
        return None;
    }
    let mut seq = [0u8; 8];
    seq[2..].copy_from_slice(&header[5..11]);
    let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
    let record = datagram.get(..RECORD_HEADER_LEN + len)?;
    let mut r = Reader(&record[RECORD_HEADER_LEN..]);
    let msg_type = r.u8()?;
    let length = r.u24()?;
    let message_seq = u16::from_be_bytes([r.u8()?, r.u8()?]);
    let offset = r.u24()?;
    let fragment = r.u24()?;
    if msg_type != HANDSHAKE_CLIENT_HELLO || offset != 0 || fragment != length {
        return None;
    }
    let mut body = Reader(r.take(length)?);
    let start = body.0;
    body.take(2 + 32)?;
    let session = usize::from(body.u8()?);
    body.take(session)?;
    let first = start.get(..start.len() - body.0.len())?;
    let cookie_len = usize::from(body.u8()?);
    let cookie = body.take(cookie_len)?;
    let after_cookie = body.0;
    let suites = usize::from(u16::from_be_bytes([body.u8()?, body.u8()?]));
    body.take(suites)?;
    let methods = usize::from(body.u8()?);
    body.take(methods)?;
    let second = after_cookie.get(..after_cookie.len() - body.0.len())?;
    Some(ClientHello {
        record,
        record_seq: u64::from_be_bytes(seq),
        message_seq,
        cookie,
        fixed: [first, second],
    })
}

/// Bounds-checked reading of a byte slice; every read returns `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

/// The listener's cookie key and hash.
pub(super) struct CookieGate {
    mac: Box<dyn Mac>,
}

impl CookieGate {
    /// A gate whose key comes from `seed`: the same seed gives the same cookies.
    pub(super) fn new(seed: u64, crypto: &dyn RTCCrypto) -> Result<Self, String> {
        let mut rng = Rng::new(seed);
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
        }
        let mac = crypto
            .new_hmac(HmacAlgorithm::Sha256, &key)
            .map_err(|e| format!("cannot key the DTLS cookie hash: {e}"))?;
        Ok(Self { mac })
    }

    /// The cookie `peer` must return with `hello` in time window `window`.
    fn cookie(&mut self, window: u64, peer: SocketAddr, hello: &ClientHello<'_>) -> [u8; 32] {
        let ip = match peer.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut out = [0u8; 32];
        let input: [&[u8]; 5] = [
            &window.to_be_bytes(),
            &ip,
            &peer.port().to_be_bytes(),
            hello.fixed[0],
            hello.fixed[1],
        ];
        // HMAC-SHA256 into a buffer of its size cannot fail; an all-zero cookie, which no
        // check accepts, stands in should it ever.
        if self.mac.sign(&input, &mut out).is_err() {
            out = [0u8; 32];
        }
        out
    }

    /// Whether `hello` carries the cookie `peer` was given in this window or the last one.
    pub(super) fn valid(&mut self, now: Millis, peer: SocketAddr, hello: &ClientHello<'_>) -> bool {
        if hello.cookie.len() != COOKIE_LEN {
            return false;
        }
        let window = now.0 / COOKIE_WINDOW_MS;
        [Some(window), window.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|w| {
                let expected = self.cookie(w, peer, hello);
                expected != [0u8; 32] && constant_time_eq(&expected[..COOKIE_LEN], hello.cookie)
            })
    }

    /// The HelloVerifyRequest datagram answering `hello` from `peer`. It echoes the
    /// ClientHello's record sequence number (RFC 6347 4.2.1) and is smaller than the
    /// ClientHello, so the gate cannot be used to amplify traffic.
    pub(super) fn hello_verify_request(
        &mut self,
        now: Millis,
        peer: SocketAddr,
        hello: &ClientHello<'_>,
    ) -> Vec<u8> {
        let cookie = self.cookie(now.0 / COOKIE_WINDOW_MS, peer, hello);
        let body_len = 3 + COOKIE_LEN;
        let fragment_len = HANDSHAKE_HEADER_LEN + body_len;
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + fragment_len);
        out.push(CONTENT_HANDSHAKE);
        out.extend_from_slice(&DTLS_1_0);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&hello.record_seq.to_be_bytes()[2..]);
        out.extend_from_slice(&(fragment_len as u16).to_be_bytes());
        out.push(HANDSHAKE_HELLO_VERIFY_REQUEST);
        out.extend_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[0, 0, 0, 0, 0]);
        out.extend_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&DTLS_1_0);
        out.push(COOKIE_LEN as u8);
        out.extend_from_slice(&cookie[..COOKIE_LEN]);
        out
    }
}

/// The first ClientHello the peer sent, as the crate expects to see it before the one that
/// answers a HelloVerifyRequest: the same record with message_seq 0 and an earlier record
/// sequence number (an equal one would be dropped as a replay). The crate only reads the
/// negotiation fields from it; the transcript uses the real ClientHello.
pub(super) fn first_hello(hello: &ClientHello<'_>) -> Vec<u8> {
    let mut record = hello.record.to_vec();
    let seq = hello.record_seq.saturating_sub(1);
    if let Some(field) = record.get_mut(5..11) {
        field.copy_from_slice(&seq.to_be_bytes()[2..]);
    }
    if let Some(field) = record.get_mut(RECORD_HEADER_LEN + 4..RECORD_HEADER_LEN + 6) {
        field.copy_from_slice(&[0, 0]);
    }
    record
}
