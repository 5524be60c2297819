//! Tests of the HTTP/1.1 codec: request framing, limits, errors and the response writer.

use super::*;

fn parse(buf: &[u8]) -> Result<Parsed, HttpError> {
    parse_request(buf, ParseLimits::default())
}

fn complete(buf: &[u8]) -> (Request, usize) {
    match parse(buf) {
        Ok(Parsed::Complete { request, used }) => (request, used),
        other => panic!("expected a complete request, got {other:?}"),
    }
}

fn partial(expect_continue: bool) -> Result<Parsed, HttpError> {
    Ok(Parsed::Partial { expect_continue })
}

fn bad(buf: &[u8]) -> &'static str {
    match parse(buf) {
        Err(HttpError::BadRequest(what)) => what,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

const GET: &[u8] = b"GET /api/v1/clients?limit=10 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
const POST: &[u8] = b"POST /api/v1/publish HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
      4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\n";

#[test]
fn simple_get() {
    let (r, used) = complete(GET);
    assert_eq!(used, GET.len());
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/api/v1/clients");
    assert_eq!(r.query, [("limit".to_string(), "10".to_string())]);
    assert_eq!(r.query_param("limit"), Some("10"));
    assert_eq!(r.query_param("offset"), None);
    assert_eq!(r.minor_version, 1);
    assert_eq!(r.headers.len(), 2);
    assert!(r.body.is_empty());
    assert!(r.keep_alive());
}

#[test]
fn pipelined_requests() {
    let mut buf = GET.to_vec();
    buf.extend_from_slice(POST);
    buf.extend_from_slice(b"GET /tail");
    let (first, used) = complete(&buf);
    assert_eq!(first.method, "GET");
    assert_eq!(used, GET.len());
    let (second, used2) = complete(&buf[used..]);
    assert_eq!(second.method, "POST");
    assert_eq!(second.body, b"hello");
    assert_eq!(used2, POST.len());
    assert_eq!(parse(&buf[used + used2..]), partial(false));
}

#[test]
fn byte_at_a_time() {
    for req in [GET, POST, CHUNKED] {
        for n in 0..req.len() {
            assert_eq!(parse(&req[..n]), partial(false), "prefix {n}");
        }
        assert_eq!(complete(req).1, req.len());
    }
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let mut buf = b"\r\n\r\n\n".to_vec();
    buf.extend_from_slice(GET);
    let (r, used) = complete(&buf);
    assert_eq!(r.path, "/api/v1/clients");
    assert_eq!(used, buf.len());
}

#[test]
fn header_names_are_lower_cased_and_lookup_ignores_case() {
    let (r, _) = complete(b"GET / HTTP/1.1\r\nX-Thing:  Va lue \r\nx-thing: second\r\n\r\n");
    assert_eq!(r.headers[0].0, "x-thing");
    assert_eq!(r.header("X-THING"), Some(&b"Va lue"[..]));
    assert_eq!(r.header_str("x-Thing"), Some("Va lue"));
    assert_eq!(r.header("missing"), None);
}

#[test]
fn query_and_path_decoding() {
    let (r, _) = complete(
        b"GET /api/v1/clients/a%20b%2fc?filter=a%2Fb%2B%23&topic=x/+/y&flag&&=v&k=1=2 \
          HTTP/1.1\r\n\r\n",
    );
    assert_eq!(r.path, "/api/v1/clients/a b/c");
    let q: Vec<(&str, &str)> = r.query.iter().map(|(a, b)| (&**a, &**b)).collect();
    assert_eq!(
        q,
        [
            ("filter", "a/b+#"),
            ("topic", "x/+/y"),
            ("flag", ""),
            ("", "v"),
            ("k", "1=2"),
        ]
    );
    assert_eq!(percent_decode("%c3%A9+"), Ok("é+".to_string()));
}

#[test]
fn bad_percent_encoding_and_utf8() {
    assert_eq!(bad(b"GET /a%2 HTTP/1.1\r\n\r\n"), "percent-encoding");
    assert_eq!(bad(b"GET /a%zz HTTP/1.1\r\n\r\n"), "percent-encoding");
    assert_eq!(bad(b"GET /a?x=%g1 HTTP/1.1\r\n\r\n"), "percent-encoding");
    assert_eq!(bad(b"GET /a%FF HTTP/1.1\r\n\r\n"), "utf-8 in target");
    assert_eq!(bad(b"GET /?a=%C3 HTTP/1.1\r\n\r\n"), "utf-8 in target");
    assert!(matches!(
        parse(b"GET /\xff HTTP/1.1\r\n\r\n"),
        Err(HttpError::BadRequest(_))
    ));
    assert_eq!(
        percent_decode("%"),
        Err(HttpError::BadRequest("percent-encoding"))
    );
}

#[test]
fn request_target_forms() {
    assert_eq!(bad(b"GET http://a/b HTTP/1.1\r\n\r\n"), "request target");
    assert_eq!(bad(b"OPTIONS * HTTP/1.1\r\n\r\n"), "request target");
    assert_eq!(bad(b"GET /a#frag HTTP/1.1\r\n\r\n"), "request target");
}

#[test]
fn content_length_body() {
    let (r, used) = complete(POST);
    assert_eq!(r.body, b"hello");
    assert_eq!(used, POST.len());
    let (r, _) = complete(b"PUT /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(r.body.is_empty());
    let (r, _) = complete(b"PUT /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
    assert_eq!(r.body, b"ab");
}

#[test]
fn content_length_over_the_limit_before_the_body() {
    let head = format!(
        "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        BODY_MAX + 1
    );
    assert_eq!(parse(head.as_bytes()), Err(HttpError::BodyTooLarge));
    let huge = b"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
    assert_eq!(parse(huge), Err(HttpError::BodyTooLarge));
    let limits = ParseLimits {
        body_max: 4,
        ..ParseLimits::default()
    };
    assert_eq!(parse_request(POST, limits), Err(HttpError::BodyTooLarge));
}

#[test]
fn content_length_syntax() {
    for value in ["abc", "-5", "+5", "5 5", "0x10", "", "5,5"] {
        let req = format!("POST /x HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(bad(req.as_bytes()), "content-length", "{value:?}");
    }
    let twice = b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(bad(twice), "conflicting content-length");
}

#[test]
fn content_length_with_transfer_encoding() {
    let req = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(bad(req), "content-length with transfer-encoding");
}

#[test]
fn chunked_body_in_pieces_with_extensions_and_trailers() {
    let (r, used) = complete(CHUNKED);
    assert_eq!(r.body, b"Wikipedia");
    assert_eq!(used, CHUNKED.len());
    let mut buf = CHUNKED.to_vec();
    buf.extend_from_slice(GET);
    let (r, used) = complete(&buf);
    assert_eq!((r.body.len(), used), (9, CHUNKED.len()));
    let (r, _) = complete(
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
          A ; a=\"b\"\r\n0123456789\r\n0\r\n\r\n",
    );
    assert_eq!(r.body, b"0123456789");
}

#[test]
fn chunked_total_over_the_limit() {
    let limits = ParseLimits {
        body_max: 8,
        ..ParseLimits::default()
    };
    // Rejected as soon as the second size line arrives, before its data.
    let head = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\n";
    assert_eq!(parse_request(head, limits), Err(HttpError::BodyTooLarge));
    let one = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n";
    assert_eq!(parse(one), Err(HttpError::BodyTooLarge));
}

#[test]
fn bad_chunk_syntax() {
    let head = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases = [
        ("zz\r\n", "chunk size"),
        ("\r\n", "chunk size"),
        ("4 x\r\nWiki\r\n0\r\n\r\n", "chunk size"),
        ("fffffffffffffffffffffffff\r\n", "chunk size"),
        ("4\r\nWikiXX", "chunk data"),
        ("4\r\nWiki\rX", "chunk data"),
        ("0\r\nno colon\r\n\r\n", "trailer field"),
        ("0\r\n: empty name\r\n\r\n", "trailer field"),
    ];
    for (body, what) in cases {
        let req = format!("{head}{body}");
        assert_eq!(bad(req.as_bytes()), what, "{body:?}");
    }
    let long = format!("{head}1;{}\r\n", "x".repeat(CHUNK_LINE_MAX));
    assert_eq!(bad(long.as_bytes()), "chunk size");
    let unterminated = format!("{head}1;{}", "x".repeat(CHUNK_LINE_MAX + 1));
    assert_eq!(bad(unterminated.as_bytes()), "chunk size");
    let trailers = format!("{head}0\r\nX: {}", "y".repeat(HEAD_MAX));
    assert_eq!(parse(trailers.as_bytes()), Err(HttpError::HeadTooLarge));
}

#[test]
fn transfer_codings_other_than_chunked() {
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "identity"] {
        let req = format!("POST /x HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            parse(req.as_bytes()),
            Err(HttpError::NotImplemented),
            "{te}"
        );
    }
    let two = b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(two), Err(HttpError::NotImplemented));
    let old = b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(bad(old), "transfer-encoding in http/1.0");
}

#[test]
fn too_many_headers() {
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..HEADERS_MAX {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut ok = req.clone();
    ok.extend_from_slice(b"\r\n");
    assert_eq!(complete(&ok).0.headers.len(), HEADERS_MAX);
    req.extend_from_slice(b"X-last: v\r\n\r\n");
    assert_eq!(parse(&req), Err(HttpError::HeadTooLarge));
}

#[test]
fn head_without_end_is_bounded() {
    let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    req.resize(9 * 1024, b'a');
    assert_eq!(parse(&req), Err(HttpError::HeadTooLarge));
    assert_eq!(parse(&req[..HEAD_MAX]), partial(false));
    let blank = vec![b'\n'; HEAD_MAX + 1];
    assert_eq!(parse(&blank), Err(HttpError::HeadTooLarge));
}

#[test]
fn http2_preface() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_eq!(parse(preface), Err(HttpError::VersionNotSupported));
    assert_eq!(parse(&preface[..16]), Err(HttpError::VersionNotSupported));
    assert_eq!(parse(&preface[..12]), Err(HttpError::VersionNotSupported));
    assert_eq!(parse(&preface[..6]), partial(false));
}

#[test]
fn other_versions() {
    for v in ["HTTP/1.2", "HTTP/3.0", "HTTP/2.0", "HTTP/0.9", "HTTP/2"] {
        let req = format!("GET / {v}\r\n\r\n");
        assert_eq!(
            parse(req.as_bytes()),
            Err(HttpError::VersionNotSupported),
            "{v}"
        );
    }
    let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.minor_version, 0);
}

#[test]
fn garbage_request_lines() {
    for req in [
        &b"GET /\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\n folded\r\n\r\n",
    ] {
        assert!(
            matches!(parse(req), Err(HttpError::BadRequest(_))),
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
}

#[test]
fn expect_continue() {
    let head = b"POST /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(parse(head), partial(true));
    assert_eq!(parse(&head[..head.len() - 1]), partial(false));
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"abc");
    assert_eq!(complete(&whole).0.body, b"abc");
    let old = b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(parse(old), partial(false));
    let chunked = b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(chunked), partial(true));
}

#[test]
fn keep_alive_rules() {
    let ka = |req: &[u8]| complete(req).0.keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: te, Close\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
}

#[test]
fn media_type() {
    let mt = |req: &[u8]| complete(req).0.media_type();
    assert_eq!(
        mt(b"POST / HTTP/1.1\r\nContent-Type: Application/JSON; charset=utf-8\r\n\r\n"),
        Some("application/json".to_string())
    );
    assert_eq!(
        mt(b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n"),
        Some("text/plain".to_string())
    );
    assert_eq!(mt(b"POST / HTTP/1.1\r\nContent-Type: ;x=y\r\n\r\n"), None);
    assert_eq!(mt(b"POST / HTTP/1.1\r\n\r\n"), None);
}

#[test]
fn dates() {
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(http_date(951_955_199), "Wed, 01 Mar 2000 23:59:59 GMT");
    assert_eq!(http_date(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
    assert_eq!(http_date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(http_date(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
    assert_eq!(http_date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert!(http_date(u64::MAX).ends_with(" GMT"));
}

const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn encode(r: &Response, head_only: bool, http10: bool) -> String {
    let mut out = Vec::new();
    encode_response(r, head_only, http10, DATE, "culex", &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn encode_no_content() {
    let r = Response::new(204);
    assert_eq!(
        encode(&r, false, false),
        "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         Server: culex\r\n\r\n"
    );
}

#[test]
fn encode_json() {
    let r = Response::json(200, b"{\"a\":1}".to_vec());
    let head = "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: culex\r\n\
                Content-Type: application/json\r\nContent-Length: 7\r\n\r\n";
    assert_eq!(encode(&r, false, false), format!("{head}{{\"a\":1}}"));
    assert_eq!(encode(&r, true, false), head);
    assert!(encode(&Response::new(200), false, false).contains("\r\nContent-Length: 0\r\n"));
}

#[test]
fn encode_close_and_extra_headers() {
    let mut r = Response::json(405, b"{}".to_vec()).with_header("Allow", "GET, HEAD".into());
    r.close = true;
    assert_eq!(
        encode(&r, false, true),
        "HTTP/1.1 405 Method Not Allowed\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         Server: culex\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
         Allow: GET, HEAD\r\nConnection: close\r\n\r\n{}"
    );
    r.close = false;
    assert!(encode(&r, false, true).contains("\r\nConnection: keep-alive\r\n"));
    assert!(!encode(&r, false, false).contains("Connection"));
    let evil = Response::new(200).with_header("X", "a\r\nSet-Cookie: b".into());
    assert!(encode(&evil, false, false).contains("\r\nX: a  Set-Cookie: b\r\n"));
}

#[test]
fn errors_and_reasons() {
    assert_eq!(HttpError::BadRequest("x").status(), 400);
    assert_eq!(HttpError::BadRequest("x").detail(), "x");
    assert_eq!(HttpError::HeadTooLarge.status(), 431);
    assert_eq!(HttpError::BodyTooLarge.status(), 413);
    assert_eq!(HttpError::VersionNotSupported.status(), 505);
    assert_eq!(HttpError::NotImplemented.status(), 501);
    for code in [
        100, 200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 431, 500, 501, 503,
        505,
    ] {
        assert_ne!(reason_phrase(code), "Unknown", "{code}");
    }
    assert_eq!(reason_phrase(299), "Unknown");
}

#[test]
fn every_prefix_is_partial() {
    let with_cl =
        b"PUT /a%20b?x=%2B HTTP/1.0\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nbody";
    for req in [GET, POST, CHUNKED, &with_cl[..]] {
        for n in 0..req.len() {
            assert!(
                matches!(parse(&req[..n]), Ok(Parsed::Partial { .. })),
                "prefix {n} of {:?}",
                String::from_utf8_lossy(req)
            );
        }
    }
}

#[test]
fn mutated_requests_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let small = ParseLimits {
        head_max: 96,
        headers_max: 3,
        body_max: 16,
    };
    for round in 0..20_000 {
        let seeds = [GET, POST, CHUNKED];
        let mut buf = seeds[round % seeds.len()].to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % buf.len();
            match next() % 4 {
                0 => buf[at] = next() as u8,
                1 => buf[at] = b"\r\n:;0aF% /?=&"[(next() % 13) as usize],
                2 => {
                    buf.remove(at);
                }
                _ => buf.insert(at, next() as u8),
            }
            if buf.is_empty() {
                buf.push(b'G');
            }
        }
        let cut = (next() as usize) % (buf.len() + 1);
        for limits in [ParseLimits::default(), small] {
            let whole = parse_request(&buf, limits);
            let _ = parse_request(&buf[..cut], limits);
            if let Ok(Parsed::Complete { used, .. }) = whole {
                assert!(used <= buf.len());
            }
        }
    }
}
