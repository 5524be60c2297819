//! HTTP/1.1 for webhooks, the client side: a POST request to bytes ([`encode_post`]) and the
//! status and framing of a response from bytes ([`parse_response`]).
//!
//! Like every codec it is pure: it must never touch a socket, a file, the clock or the
//! logger, never panic on any input, and never keep a response body: the caller only needs
//! the status, so a body is walked over and left in the caller's buffer, to be dropped with
//! the bytes the response used.

use super::{field, framing, values, walk_chunked, Framing, HttpError, ParseLimits, HEADERS_MAX};

/// Largest response head (status line and header fields), in bytes.
pub const RESPONSE_HEAD_MAX: usize = 8 * 1024;
/// Largest response body waited for, in bytes (after de-chunking); see
/// [`ClientResponse::until_close`] for larger ones.
pub const RESPONSE_BODY_MAX: usize = 64 * 1024;

/// What a response says, as far as a client that only posts needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientResponse {
    /// The status code (1xx included: an interim response the caller skips).
    pub status: u16,
    /// Whether the connection may carry the next request: HTTP/1.1 unless `Connection:
    /// close`, HTTP/1.0 only with `Connection: keep-alive`; never with `until_close`.
    pub keep_alive: bool,
    /// The body is not framed within bounds: it runs until the server closes the connection
    /// (neither `Content-Length` nor chunked), or it is larger than [`RESPONSE_BODY_MAX`].
    /// The response is then complete at its head (the bytes used are the head's): the
    /// caller discards whatever follows and closes the connection.
    pub until_close: bool,
}

/// Writes a POST of a JSON `body` to `path` on `host` (the `Host` field, with the port when
/// it is not the scheme's default), with `User-Agent`, `Content-Type`, `Content-Length`,
/// `Connection: keep-alive` and the extra `headers`, then the body. `path` must be a request
/// target without spaces (the configuration checks it); control characters in field values
/// are written as spaces.
pub fn encode_post(
    host: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"POST ");
    out.extend(
        path.bytes()
            .map(|b| if b <= b' ' || b == 0x7F { b'_' } else { b }),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    field(out, "Host", host);
    field(
        out,
        "User-Agent",
        concat!("culex/", env!("CARGO_PKG_VERSION")),
    );
    field(out, "Content-Type", "application/json");
    field(out, "Content-Length", &body.len().to_string());
    field(out, "Connection", "keep-alive");
    for (name, value) in headers {
        field(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Parses the response at the front of `buf`: `Ok(None)` until it is whole, then the
/// response and the bytes it took (bytes after it are left alone).
///
/// The body is framed by `Content-Length` or the chunked coding; 1xx, 204 and 304 have
/// none. A response with neither field, or whose body is over [`RESPONSE_BODY_MAX`], is
/// complete at its head with [`ClientResponse::until_close`]. A head still incomplete at
/// [`RESPONSE_HEAD_MAX`] bytes is [`HttpError::HeadTooLarge`]; anything malformed is
/// [`HttpError::BadRequest`] (with what was wrong), a transfer coding other than chunked
/// [`HttpError::NotImplemented`].
pub fn parse_response(buf: &[u8]) -> Result<Option<(ClientResponse, usize)>, HttpError> {
    let window = buf.get(..RESPONSE_HEAD_MAX).unwrap_or(buf);
    let mut fields = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut head = httparse::Response::new(&mut fields);
    let head_len = match head.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= RESPONSE_HEAD_MAX => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(HttpError::VersionNotSupported),
        Err(httparse::Error::Status) => return Err(HttpError::BadRequest("status line")),
        Err(_) => return Err(HttpError::BadRequest("response head")),
    };
    let (Some(status), Some(minor_version)) = (head.code, head.version) else {
        return Err(HttpError::BadRequest("status line"));
    };
    if !(100..=999).contains(&status) {
        return Err(HttpError::BadRequest("status code"));
    }
    let headers: Vec<(String, Vec<u8>)> = head
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let has = |token: &[u8]| {
        values(&headers, "connection")
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    };
    let keep_alive = !has(b"close") && (minor_version >= 1 || has(b"keep-alive"));
    let response = ClientResponse {
        status,
        keep_alive,
        until_close: false,
    };
    let unframed = ClientResponse {
        keep_alive: false,
        until_close: true,
        ..response
    };
    if status < 200 || status == 204 || status == 304 {
        return Ok(Some((response, head_len)));
    }
    let framed = values(&headers, "transfer-encoding").next().is_some()
        || values(&headers, "content-length").next().is_some();
    if !framed {
        return Ok(Some((unframed, head_len)));
    }
    let limits = ParseLimits {
        head_max: RESPONSE_HEAD_MAX,
        headers_max: HEADERS_MAX,
        body_max: RESPONSE_BODY_MAX,
    };
    let rest = buf.get(head_len..).unwrap_or_default();
    let body_used = match framing(&headers, minor_version, limits) {
        Ok(Framing::Length(len)) if rest.len() >= len => len,
        Ok(Framing::Length(_)) => return Ok(None),
        Ok(Framing::Chunked) => match walk_chunked(rest, limits, None) {
            Ok(Some((_, used))) => used,
            Ok(None) => return Ok(None),
            Err(HttpError::BodyTooLarge) => return Ok(Some((unframed, head_len))),
            Err(e) => return Err(e),
        },
        Err(HttpError::BodyTooLarge) => return Ok(Some((unframed, head_len))),
        Err(e) => return Err(e),
    };
    Ok(Some((response, head_len.saturating_add(body_used))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Option<(ClientResponse, usize)>, HttpError> {
        parse_response(text)
    }

    fn ok(status: u16, keep_alive: bool) -> ClientResponse {
        ClientResponse {
            status,
            keep_alive,
            until_close: false,
        }
    }

    #[test]
    fn post_request_bytes() {
        let mut out = Vec::new();
        let headers = [("X-Culex-Signature", "sha256=00".to_owned())];
        encode_post("h.example:8080", "/hook?a=1", b"{}", &headers, &mut out);
        let expected = format!(
            "POST /hook?a=1 HTTP/1.1\r\nHost: h.example:8080\r\nUser-Agent: culex/{}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\
             Connection: keep-alive\r\nX-Culex-Signature: sha256=00\r\n\r\n{{}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
        // The request parses on the server side.
        let parsed = super::super::parse_request(&out, ParseLimits::default());
        let Ok(super::super::Parsed::Complete { request, used }) = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!(
            (request.method.as_str(), request.body.as_slice()),
            ("POST", &b"{}"[..])
        );
        assert_eq!(used, out.len());
    }

    #[test]
    fn control_characters_never_end_a_line() {
        let mut out = Vec::new();
        let headers = [("X", "a\r\nB: c".to_owned())];
        encode_post("h\r\n", "/a b", b"", &headers, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("POST /a_b HTTP/1.1\r\nHost: h  \r\n"),
            "{text}"
        );
        assert!(text.contains("X: a  B: c\r\n"), "{text}");
    }

    #[test]
    fn content_length_framing() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse(r), Ok(Some((ok(200, true), r.len()))));
        assert_eq!(parse(&r[..r.len() - 1]), Ok(None));
        let r = b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(parse(r), Ok(Some((ok(500, false), r.len()))));
        let r = b"HTTP/1.0 204 No Content\r\n\r\n";
        assert_eq!(parse(r), Ok(Some((ok(204, false), r.len()))));
        let r = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(parse(r), Ok(Some((ok(200, true), r.len()))));
    }

    #[test]
    fn chunked_framing_and_trailers() {
        let r = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";
        assert_eq!(parse(r), Ok(Some((ok(202, true), r.len()))));
        for cut in 0..r.len() {
            assert_eq!(parse(&r[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let r = b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc";
        let mut buf = Vec::new();
        for (i, &b) in r.iter().enumerate() {
            buf.push(b);
            let got = parse(&buf);
            if i + 1 < r.len() {
                assert_eq!(got, Ok(None), "at {i}");
            } else {
                assert_eq!(got, Ok(Some((ok(201, true), r.len()))));
            }
        }
    }

    #[test]
    fn pipelined_responses_are_taken_one_by_one() {
        let mut buf = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        buf.extend_from_slice(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        buf.extend_from_slice(b"HTTP/1.1 2");
        let mut statuses = Vec::new();
        while let Ok(Some((r, used))) = parse(&buf) {
            statuses.push(r.status);
            buf.drain(..used);
        }
        assert_eq!(statuses, [100, 200, 503]);
        assert_eq!(buf, b"HTTP/1.1 2");
    }

    #[test]
    fn unframed_and_oversized_bodies_end_with_the_connection() {
        let r = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome body";
        let head = r.len() - b"some body".len();
        let unframed = ClientResponse {
            status: 200,
            keep_alive: false,
            until_close: true,
        };
        assert_eq!(parse(r), Ok(Some((unframed, head))));
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            RESPONSE_BODY_MAX + 1
        );
        assert_eq!(parse(big.as_bytes()), Ok(Some((unframed, big.len()))));
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let head = chunked.len();
        chunked.extend_from_slice(format!("{:x}\r\n", RESPONSE_BODY_MAX + 1).as_bytes());
        assert_eq!(parse(&chunked), Ok(Some((unframed, head))));
    }

    #[test]
    fn malformed_responses() {
        let cases: &[(&[u8], HttpError)] = &[
            (
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                HttpError::BadRequest("status line"),
            ),
            (b"HTTP/2 200 OK\r\n\r\n", HttpError::VersionNotSupported),
            (b"GET / HTTP/1.1\r\n\r\n", HttpError::VersionNotSupported),
            (
                b"HTTP/1.1 200 OK\r\nBad Field\r\n\r\n",
                HttpError::BadRequest("response head"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                HttpError::BadRequest("conflicting content-length"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                HttpError::BadRequest("content-length"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                HttpError::NotImplemented,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                HttpError::BadRequest("chunk size"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
                HttpError::BadRequest("chunk data"),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(
                parse(text),
                Err(*error),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(RESPONSE_HEAD_MAX, b'a');
        assert_eq!(parse(&long), Err(HttpError::HeadTooLarge));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(HEADERS_MAX + 1)
        );
        assert_eq!(parse(many.as_bytes()), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"HTP/1.0 2\r\n:cCkhu-; "[(state % 20) as usize]
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
