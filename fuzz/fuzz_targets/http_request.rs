//! The HTTP API's request parser (`codec::http::parse_request`), as the reactor drives it: on
//! the bytes received so far, then again on the grown buffer.
//!
//! The first two input bytes pick where the rest is cut in two; the parser sees the first
//! piece, then both. It must never panic, must stay within its limits (head, header count,
//! body, bytes taken from the buffer), and a verdict on the first piece other than "need
//! more" must not change when the second arrives. Each input runs under the broker's limits
//! and under small ones that the input can exceed.

#![no_main]

use culex::codec::http::{parse_request, HttpError, ParseLimits, Parsed};
use libfuzzer_sys::fuzz_target;

/// Limits small enough for a fuzzer input to cross each of them.
const SMALL: ParseLimits = ParseLimits {
    head_max: 256,
    headers_max: 4,
    body_max: 300,
};

fuzz_target!(|data: &[u8]| {
    let (cut, buf) = match data {
        [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => return,
    };
    let cut = cut % (buf.len() + 1);
    for limits in [ParseLimits::default(), SMALL] {
        let first = parse_request(&buf[..cut], limits);
        check(&buf[..cut], &first, limits);
        let whole = parse_request(buf, limits);
        check(buf, &whole, limits);
        match (&first, &whole) {
            (Ok(Parsed::Partial { .. }), _) => {}
            (Ok(Parsed::Complete { .. }), _) => assert_eq!(first, whole, "cut at {cut}"),
            (Err(_), Err(_)) => {}
            (Err(e), Ok(p)) => panic!("cut at {cut}: first piece {e:?}, both {p:?}"),
        }
    }
});

/// The bounds `parse_request` promises for one result on `buf`.
fn check(buf: &[u8], result: &Result<Parsed, HttpError>, limits: ParseLimits) {
    // The most one request may take of the buffer (see `parse_request`).
    let request_max = 3 * limits.head_max + 2 * limits.body_max + 128;
    match result {
        Ok(Parsed::Complete { request, used }) => {
            assert!(*used <= buf.len(), "used {used} of {}", buf.len());
            assert!(*used <= request_max, "used {used}");
            assert!(request.body.len() <= limits.body_max);
            assert!(request.headers.len() <= limits.headers_max);
            assert!(request.minor_version <= 1);
            assert!(request.path.starts_with('/'), "{:?}", request.path);
        }
        Ok(Parsed::Partial { .. }) => {
            assert!(
                buf.len() < request_max,
                "{} bytes and still partial",
                buf.len()
            );
        }
        Err(e) => {
            assert!((400..=505).contains(&e.status()));
        }
    }
}
