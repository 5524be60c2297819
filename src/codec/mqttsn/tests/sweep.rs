//! The no-panic sweep: every truncation and every single-octet corruption of every sample,
//! plus every datagram of up to two octets, must decode to `Ok` or `Err`, and whatever
//! decodes must survive decode → encode → decode unchanged.
//!
//! These tests must never touch the network, the clock or the file system.

use super::*;

// ---- no-panic sweep -----------------------------------------------------------------------

/// Decodes `bytes` both ways; whatever decodes must re-encode to something that decodes to
/// the same value (decode → encode → decode is stable).
fn check_total(bytes: &[u8]) {
    match decode(bytes) {
        Ok(Frame::Message(m)) => {
            assert_eq!(decode_message(bytes), Ok(m));
            assert_eq!(dec(&enc(&m)), m, "re-encoding {m:?} from {bytes:02x?}");
        }
        Ok(Frame::Encapsulated(e)) => {
            if let Ok(m) = decode_message(e.inner) {
                let mut out = Vec::new();
                encode_encapsulated(e.ctrl, e.node_id, &m, &mut out);
                let Ok(Frame::Encapsulated(again)) = decode(&out) else {
                    panic!("re-encoding {e:?} from {bytes:02x?}");
                };
                assert_eq!((again.ctrl, again.node_id), (e.ctrl, e.node_id));
                assert_eq!(decode_message(again.inner), Ok(m), "{bytes:02x?}");
            }
        }
        Err(_) => {
            let _ = decode_message(bytes);
        }
    }
}

/// Every sample, plus each sample in the 3-octet form and encapsulated.
fn sweep_inputs() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for m in samples() {
        let bytes = enc(&m);
        if bytes[0] != 0x01 {
            all.push(long_form(bytes[1], &bytes[2..]));
        }
        let mut e = Vec::new();
        encode_encapsulated(0x01, &[0xAB, 0xCD], &m, &mut e);
        all.push(e);
        all.push(bytes);
    }
    all
}

#[test]
fn every_truncation_never_panics() {
    for bytes in sweep_inputs() {
        for cut in 0..=bytes.len() {
            check_total(&bytes[..cut]);
            // The same prefix with a length field that agrees with it.
            if cut >= 2 && bytes[0] != 0x01 {
                let mut fixed = bytes[..cut].to_vec();
                fixed[0] = u8::try_from(cut).unwrap_or(0xFF);
                check_total(&fixed);
            }
        }
    }
}

#[test]
fn every_single_byte_corruption_never_panics() {
    for bytes in sweep_inputs() {
        // Bodies past the first 16 octets are opaque payload; corrupting them adds nothing.
        for i in 0..bytes.len().min(16) {
            for v in 0..=255u8 {
                let mut m = bytes.clone();
                m[i] = v;
                check_total(&m);
            }
        }
    }
}

#[test]
fn short_random_datagrams_never_panic() {
    // Every datagram of up to two octets, and a deterministic spread of longer ones.
    check_total(&[]);
    for a in 0..=255u8 {
        check_total(&[a]);
        for b in 0..=255u8 {
            check_total(&[a, b]);
        }
    }
    let mut state: u64 = 0x5EED;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    for _ in 0..20_000 {
        let len = usize::from(next() % 24);
        let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
        // Half of them get a length field that agrees, so the bodies are reached.
        if len >= 2 && next() & 1 == 0 {
            bytes[0] = u8::try_from(len).unwrap_or(0xFF);
        }
        check_total(&bytes);
    }
}
