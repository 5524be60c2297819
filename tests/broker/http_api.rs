//! The HTTP API listener (`protocol http`) under abuse: raw bytes in, exact
//! status lines out, and after each abuse the broker still serves MQTT.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hex;

const TOKEN: &str = "raw-test-token";
const CONNECTIONS: usize = 1000;

/// A broker with an MQTT listener and an HTTP API listener with a token file.
pub(crate) struct ApiBroker {
    pub(crate) broker: Broker,
    http: SocketAddr,
    token_file: PathBuf,
}

impl ApiBroker {
    /// `None` in validation mode (an external broker has no API of ours).
    pub(crate) fn start(http_options: &str) -> Option<Self> {
        let token_file = std::env::temp_dir().join(format!(
            "culex-http-token-{}-{}",
            std::process::id(),
            uniq("tok")
        ));
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token file");
        let config = format!(
            "listener 0\nprotocol http\nhttp_token_file {}\n{http_options}\n",
            token_file.display()
        );
        let Some(broker) = Broker::start_configured(&config) else {
            let _ = std::fs::remove_file(&token_file);
            return None;
        };
        let http = SocketAddr::from(([127, 0, 0, 1], broker.http_port()));
        Some(Self {
            broker,
            http,
            token_file,
        })
    }

    fn connect(&self) -> Http {
        Http::connect(self.http)
    }

    /// One request on a fresh connection; returns the response.
    pub(crate) fn exchange(&self, request: &[u8]) -> Response {
        let mut c = self.connect();
        c.send(request);
        c.response()
    }

    /// An MQTT subscriber and publisher still exchange a QoS 1 message.
    fn assert_mqtt_serves(&self) {
        let topic = format!("{}/alive", uniq("http"));
        let mut sub = self.broker.connected_v311(&uniq("sub"));
        sub.send(&subscribe(1, &topic, 1, false));
        sub.expect(&hex!("90 03 00 01 01"));
        let mut publisher = self.broker.connected_v311(&uniq("pub"));
        publisher.send(&publish(&topic, b"still serving", 1, 7, false, None));
        publisher.expect(&puback(7));
        let got = expect_publish(&mut sub, &topic, b"still serving", 1, false);
        sub.send(&puback(got.pid));
        publisher.send(&disconnect());
        sub.send(&disconnect());
    }
}

impl Drop for ApiBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.token_file);
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the exact status line and, for errors, the JSON error code.
    pub(crate) fn expect(&self, status_line: &str, error: Option<&str>) {
        assert_eq!(self.status_line, status_line, "response: {self:?}");
        if let Some(code) = error {
            let body = self.body_text();
            assert!(
                self.header("content-type")
                    .is_some_and(|t| t.starts_with("application/json")),
                "error without a JSON content type: {self:?}"
            );
            assert!(
                body.contains(&format!("\"error\":\"{code}\""))
                    || body.contains(&format!("\"error\": \"{code}\"")),
                "expected error {code:?}, got body {body}"
            );
            assert!(body.contains("\"detail\""), "no detail in {body}");
        }
    }
}

/// A raw HTTP/1.1 connection.
struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send request");
    }

    /// Reads more bytes; false on EOF, reset or timeout.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// The next whole response (head plus a `Content-Length` body).
    fn response(&mut self) -> Response {
        self.try_response().unwrap_or_else(|| {
            panic!(
                "no complete response (buffered: {:?})",
                String::from_utf8_lossy(&self.buf)
            )
        })
    }

    fn try_response(&mut self) -> Option<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse::<usize>().expect("Content-Length"));
        let interim = status_line.starts_with("HTTP/1.1 1");
        let len = if interim { 0 } else { len };
        while self.buf.len() < head_end + 4 + len {
            if !self.fill() {
                return None;
            }
        }
        let body = self.buf[head_end + 4..head_end + 4 + len].to_vec();
        self.buf.drain(..head_end + 4 + len);
        Some(Response {
            status_line,
            headers,
            body,
        })
    }

    /// Asserts that the server closes the connection without sending more.
    fn expect_closed(&mut self) {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut chunk = [0u8; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "connection still open after {READ_TIMEOUT:?}"
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("connection still open after {READ_TIMEOUT:?}")
                }
                Err(_) => break,
            }
        }
        assert!(
            self.buf.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts that the connection stays open and silent for a moment.
    fn expect_open(&mut self) {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(SILENCE_MS)))
            .expect("read timeout");
        let mut chunk = [0u8; 1];
        match self.stream.read(&mut chunk) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected an open, silent connection, got {other:?}"),
        }
        self.stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request with the bearer token and, when `body` is given, a JSON body.
pub(crate) fn request(
    method: &str,
    path: &str,
    extra_headers: &str,
    body: Option<&str>,
) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n{extra_headers}"
    );
    if let Some(body) = body {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        r.push_str("\r\n");
    }
    r.into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    request("GET", path, "", None)
}

#[test]
fn http_malformed_request_line_gets_400_and_close() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /api/v1/broker\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
    ] {
        let mut c = api.connect();
        c.send(junk);
        let r = c.response();
        r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
        c.expect_closed();
        api.assert_mqtt_serves();
    }
}

#[test]
fn http_header_of_16_kib_gets_431() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let big = format!("X-Big: {}\r\n", "a".repeat(16 * 1024));
    let r = api.exchange(&request("GET", "/api/v1/broker", &big, None));
    r.expect(
        "HTTP/1.1 431 Request Header Fields Too Large",
        Some("request_header_fields_too_large"),
    );
    api.assert_mqtt_serves();
}

#[test]
fn http_100_headers_get_431() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let many: String = (0..100).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let r = api.exchange(&request("GET", "/api/v1/broker", &many, None));
    r.expect(
        "HTTP/1.1 431 Request Header Fields Too Large",
        Some("request_header_fields_too_large"),
    );
    api.assert_mqtt_serves();
}

#[test]
fn http_head_limits_are_64_headers_and_8_kib() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    // `request` sends Host and Authorization: 62 more make 64, 63 more make 65.
    let extra = |n: usize| -> String { (0..n).map(|i| format!("X-H{i}: {i}\r\n")).collect() };
    api.exchange(&request("GET", "/api/v1/broker", &extra(62), None))
        .expect("HTTP/1.1 200 OK", None);
    api.exchange(&request("GET", "/api/v1/broker", &extra(63), None))
        .expect(
            "HTTP/1.1 431 Request Header Fields Too Large",
            Some("request_header_fields_too_large"),
        );
    let header = |n: usize| format!("X-Pad: {}\r\n", "p".repeat(n));
    api.exchange(&request("GET", "/api/v1/broker", &header(7 * 1024), None))
        .expect("HTTP/1.1 200 OK", None);
    api.exchange(&request("GET", "/api/v1/broker", &header(9 * 1024), None))
        .expect(
            "HTTP/1.1 431 Request Header Fields Too Large",
            Some("request_header_fields_too_large"),
        );
    api.assert_mqtt_serves();
}

#[test]
fn http_malformed_framing_gets_400() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let head = format!(
        "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\n"
    );
    for bad in [
        format!("{head}Content-Length: abc\r\n\r\n{{}}"),
        format!("{head}Content-Length: -5\r\n\r\n{{}}"),
        format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"),
        format!("{head}No colon in this line\r\nContent-Length: 2\r\n\r\n{{}}"),
    ] {
        let mut c = api.connect();
        c.send(bad.as_bytes());
        c.response()
            .expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
        api.assert_mqtt_serves();
    }
    // Paths outside the API, and a known path with the wrong method.
    api.exchange(&get("/"))
        .expect("HTTP/1.1 404 Not Found", Some("not_found"));
    api.exchange(&get("/api/v2/broker"))
        .expect("HTTP/1.1 404 Not Found", Some("not_found"));
    let r = api.exchange(&request("DELETE", "/api/v1/broker", "", None));
    r.expect(
        "HTTP/1.1 405 Method Not Allowed",
        Some("method_not_allowed"),
    );
    assert!(
        r.header("allow").is_some_and(|a| a.contains("GET")),
        "{r:?}"
    );
    api.assert_mqtt_serves();
}

#[test]
fn http_chunked_body_over_a_mebibyte_gets_413_and_close() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let mut c = api.connect();
    c.send(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    );
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "c".repeat(64 * 1024));
    // 20 chunks of 64 KiB (1.25 MiB); the broker may answer and close before all are sent.
    for _ in 0..20 {
        if c.stream.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let r = c.response();
    r.expect("HTTP/1.1 413 Content Too Large", Some("payload_too_large"));
    api.assert_mqtt_serves();
}

#[test]
fn http_body_over_a_mebibyte_gets_413_and_close() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let mut c = api.connect();
    c.send(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{{\"topic\":\"t\","
        )
        .as_bytes(),
    );
    let r = c.response();
    r.expect("HTTP/1.1 413 Content Too Large", Some("payload_too_large"));
    c.expect_closed();
    api.assert_mqtt_serves();
}

#[test]
fn http_bodies_of_wrong_type_bad_json_or_unknown_fields_are_refused() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let body = r#"{"topic":"raw/t"}"#;
    let text = format!(
        "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    api.exchange(text.as_bytes()).expect(
        "HTTP/1.1 415 Unsupported Media Type",
        Some("unsupported_media_type"),
    );
    api.assert_mqtt_serves();

    for bad in [
        r#"{"topic":"raw/t""#,
        "{topic: 'raw/t'}",
        "\u{feff}nope",
        r#"{"topic":"raw/t","payload":"x","colour":"red"}"#,
        r#"{"topic":"raw/t","properties":{"shoe_size":44}}"#,
    ] {
        api.exchange(&request("POST", "/api/v1/publish", "", Some(bad)))
            .expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
        api.assert_mqtt_serves();
    }
    api.exchange(&request(
        "PUT",
        "/api/v1/config",
        "",
        Some(r#"{"max_inflight_messages":5,"turbo":true}"#),
    ))
    .expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    api.assert_mqtt_serves();
}

#[test]
fn http_pipelined_requests_are_answered_in_order() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let mut c = api.connect();
    let mut burst = get("/api/v1/broker");
    burst.extend(get("/api/v1/config"));
    burst.extend(get("/api/v1/nowhere"));
    c.send(&burst);
    let first = c.response();
    first.expect("HTTP/1.1 200 OK", None);
    assert!(first.body_text().contains("\"counters\""), "{first:?}");
    let second = c.response();
    second.expect("HTTP/1.1 200 OK", None);
    assert!(
        second.body_text().contains("\"max_inflight_messages\""),
        "{second:?}"
    );
    c.response()
        .expect("HTTP/1.1 404 Not Found", Some("not_found"));
    // Keep-alive: the same connection takes another request.
    c.send(&get("/api/v1/clients"));
    c.response().expect("HTTP/1.1 200 OK", None);
    c.expect_open();
    api.assert_mqtt_serves();
}

#[test]
fn http_1_0_and_connection_close_end_the_connection() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let mut c = api.connect();
    c.send(
        format!("GET /api/v1/broker HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes(),
    );
    let r = c.response();
    r.expect("HTTP/1.1 200 OK", None);
    assert!(r.body_text().contains("\"counters\""), "{r:?}");
    c.expect_closed();

    let mut c = api.connect();
    c.send(&request(
        "GET",
        "/api/v1/broker",
        "Connection: close\r\n",
        None,
    ));
    let r = c.response();
    r.expect("HTTP/1.1 200 OK", None);
    assert!(
        r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close")),
        "{r:?}"
    );
    c.expect_closed();

    // HTTP/1.0 asking for keep-alive stays open.
    let mut c = api.connect();
    c.send(
        format!(
            "GET /api/v1/broker HTTP/1.0\r\nConnection: keep-alive\r\n\
             Authorization: Bearer {TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    );
    c.response().expect("HTTP/1.1 200 OK", None);
    c.expect_open();
    api.assert_mqtt_serves();
}

#[test]
fn http_chunked_and_100_continue_bodies_publish() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let topic = format!("{}/posted", uniq("chunk"));
    let mut sub = api.broker.connected_v311(&uniq("sub"));
    sub.send(&subscribe(1, &topic, 0, false));
    sub.expect(&hex!("90 03 00 01 00"));

    // Chunked: the JSON body arrives in three chunks, in separate writes.
    let body = format!(r#"{{"topic":"{topic}","payload":"chunked body"}}"#);
    let (a, rest) = body.split_at(5);
    let (b, c_) = rest.split_at(rest.len() / 2);
    let mut c = api.connect();
    c.send(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    );
    for part in [a, b, c_] {
        c.send(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
        thread::sleep(Duration::from_millis(20));
    }
    c.send(b"0\r\n\r\n");
    let r = c.response();
    r.expect("HTTP/1.1 200 OK", None);
    assert!(r.body_text().contains("\"payload_size\":12"), "{r:?}");
    expect_publish(&mut sub, &topic, b"chunked body", 0, false);

    // Expect: 100-continue: the interim answer comes before the body is sent.
    let body = format!(r#"{{"topic":"{topic}","payload":"after continue"}}"#);
    c.send(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nExpect: 100-continue\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = c.response();
    assert_eq!(interim.status_line, "HTTP/1.1 100 Continue", "{interim:?}");
    c.send(body.as_bytes());
    c.response().expect("HTTP/1.1 200 OK", None);
    expect_publish(&mut sub, &topic, b"after continue", 0, false);
    api.assert_mqtt_serves();
}

#[test]
fn http_2_preface_gets_505() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let mut c = api.connect();
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let r = c.response();
    r.expect(
        "HTTP/1.1 505 HTTP Version Not Supported",
        Some("http_version_not_supported"),
    );
    api.assert_mqtt_serves();
}

#[test]
fn http_1_1_request_needs_one_host_header() {
    let Some(api) = ApiBroker::start("") else {
        return;
    };
    let token = format!("Authorization: Bearer {TOKEN}\r\n");
    for head in [
        format!("GET /api/v1/broker HTTP/1.1\r\n{token}\r\n"),
        format!("GET /api/v1/broker HTTP/1.1\r\nHost: a\r\nHost: b\r\n{token}\r\n"),
    ] {
        let r = api.exchange(head.as_bytes());
        r.expect("HTTP/1.1 400 Bad Request", Some("bad_request"));
    }
    let r = api.exchange(format!("GET /api/v1/broker HTTP/1.0\r\n{token}\r\n").as_bytes());
    r.expect("HTTP/1.1 200 OK", None);
}

/// Writes `bytes` one a second on `stream` until done, failed or stopped.
fn dribble(mut stream: TcpStream, bytes: Vec<u8>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    thread::spawn(move || {
        for byte in bytes {
            if stop.load(Ordering::Relaxed) || stream.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn http_slowloris_times_out_while_mqtt_flows() {
    let Some(api) = ApiBroker::start("http_request_timeout 2") else {
        return;
    };
    let topic = format!("{}/flow", uniq("slow"));
    let mut sub = api.broker.connected_v311(&uniq("sub"));
    sub.send(&subscribe(1, &topic, 1, false));
    sub.expect(&hex!("90 03 00 01 01"));
    let mut publisher = api.broker.connected_v311(&uniq("pub"));

    // One connection dribbles its request head, the other sends a whole head
    // and then dribbles the body.
    let stop = Arc::new(AtomicBool::new(false));
    let slow_head = api.connect();
    let mut slow_body = api.connect();
    let body = r#"{"topic":"slow/body","payload":"never complete"}"#;
    slow_body.send(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let started = Instant::now();
    let writers = [
        dribble(
            slow_head.stream.try_clone().expect("clone"),
            get("/api/v1/broker"),
            Arc::clone(&stop),
        ),
        dribble(
            slow_body.stream.try_clone().expect("clone"),
            body.as_bytes().to_vec(),
            Arc::clone(&stop),
        ),
    ];
    let mut slow = [slow_head, slow_body];
    for c in &mut slow {
        c.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
    }

    // Some(None): closed without an answer; Some(Some(r)): answered r.
    let mut outcome: [Option<Option<Response>>; 2] = [None, None];
    let mut n: u16 = 0;
    while outcome.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no 408 or close within 10 s: {outcome:?}"
        );
        n += 1;
        let payload = format!("m{n}");
        publisher.send(&publish(&topic, payload.as_bytes(), 1, n, false, None));
        publisher.expect(&puback(n));
        let got = expect_publish(&mut sub, &topic, payload.as_bytes(), 1, false);
        sub.send(&puback(got.pid));

        for (c, done) in slow.iter_mut().zip(outcome.iter_mut()) {
            if done.is_some() {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match c.stream.read(&mut chunk) {
                Ok(0) => *done = Some(None),
                Ok(k) => {
                    c.buf.extend_from_slice(&chunk[..k]);
                    if find(&c.buf, b"\r\n\r\n").is_some() {
                        c.stream
                            .set_read_timeout(Some(READ_TIMEOUT))
                            .expect("read timeout");
                        *done = Some(Some(c.response()));
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => *done = Some(None),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed before the timeout could have run out"
    );
    for (c, done) in slow.iter_mut().zip(outcome) {
        if let Some(Some(r)) = done {
            r.expect("HTTP/1.1 408 Request Timeout", Some("request_timeout"));
            c.expect_closed();
        }
    }
    assert!(n > 1, "MQTT did not flow while the slow requests waited");
    for w in writers {
        w.join().expect("writer thread");
    }
    api.assert_mqtt_serves();
}

#[test]
fn http_1000_keep_alive_connections_while_mqtt_flows() {
    // An API listener takes 64 connections unless told otherwise.
    let Some(api) = ApiBroker::start("max_connections -1") else {
        return;
    };
    let topic = format!("{}/flow", uniq("many"));
    let mut sub = api.broker.connected_v311(&uniq("sub"));
    sub.send(&subscribe(1, &topic, 1, false));
    sub.expect(&hex!("90 03 00 01 01"));
    let mut publisher = api.broker.connected_v311(&uniq("pub"));

    // The MQTT pair keeps exchanging messages on its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flow = Arc::clone(&stop);
    let flow = thread::spawn(move || {
        let mut n: u16 = 0;
        while !stop_flow.load(Ordering::Relaxed) || n < 5 {
            n += 1;
            let payload = format!("m{n}");
            publisher.send(&publish(&topic, payload.as_bytes(), 1, n, false, None));
            publisher.expect(&puback(n));
            let got = expect_publish(&mut sub, &topic, payload.as_bytes(), 1, false);
            sub.send(&puback(got.pid));
        }
        n
    });

    let mut conns: Vec<Http> = (0..CONNECTIONS).map(|_| api.connect()).collect();
    let request = get("/api/v1/broker");
    for round in 0..2 {
        for c in &mut conns {
            c.send(&request);
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let r = c.response();
            assert_eq!(
                r.status_line, "HTTP/1.1 200 OK",
                "round {round}, connection {i}: {r:?}"
            );
            assert!(r.body_text().contains("\"counters\""), "{r:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let exchanged = flow.join().expect("MQTT flow thread");
    assert!(exchanged >= 5, "only {exchanged} MQTT messages");

    // The broker counts the HTTP connections on its listener: ours, all open.
    let mut c = api.connect();
    c.send(&get("/api/v1/listeners"));
    let r = c.response();
    r.expect("HTTP/1.1 200 OK", None);
    let body = r.body_text();
    let entry = body
        .split('{')
        .find(|item| item.contains(&format!("\"port\":{},", api.http.port())))
        .unwrap_or_else(|| panic!("no entry for the HTTP listener in {body}"));
    let count: usize = entry
        .split("\"connections\":")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no connection count in {entry}"));
    assert!(count > CONNECTIONS, "{count} connections listed: {entry}");
    drop(conns);
    api.assert_mqtt_serves();
}
