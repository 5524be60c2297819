//! Test harness: starts the broker under test and talks raw MQTT bytes to it.
//!
//! By default every `Broker::start` spawns a fresh culex process on an ephemeral
//! port. When `CULEX_TEST_ADDR=host:port` is set, all tests share that external
//! broker instead (used to validate the tests against another conforming broker);
//! in that mode log assertions and tests that need a special configuration are
//! skipped, and nothing else.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default read timeout for a packet that is expected to arrive.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Default quiet period for "nothing more arrives" checks, in milliseconds.
pub(crate) const SILENCE_MS: u64 = 300;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const LISTENING: &str = "listening on ";

/// Address of the external broker, if the tests run in validation mode.
pub(crate) fn external_addr() -> Option<SocketAddr> {
    let text = std::env::var("CULEX_TEST_ADDR").ok()?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let addr = text
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("CULEX_TEST_ADDR={text:?} is not an address: {e}"))
        .next()
        .unwrap_or_else(|| panic!("CULEX_TEST_ADDR={text:?} resolves to nothing"));
    Some(addr)
}

/// True when the tests run against an external broker (validation mode).
pub(crate) fn is_external() -> bool {
    external_addr().is_some()
}

/// A unique, short name (at most 23 bytes, so it is a valid 3.1.1 client id).
///
/// Names differ between tests of one run and between runs, so tests sharing an
/// external broker never see each other's sessions, topics or retained messages.
pub(crate) fn uniq(tag: &str) -> String {
    static RUN: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let run = *RUN.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        (now.as_millis() as u32) ^ std::process::id().rotate_left(16)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{tag}{run:08x}{n:x}")
}

/// The broker under test.
pub(crate) struct Broker {
    addr: SocketAddr,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    config: Option<PathBuf>,
}

impl Broker {
    /// Starts culex with the default test configuration plus `extra_config`
    /// lines, or returns a handle on the external broker in validation mode.
    pub(crate) fn start(extra_config: &str) -> Self {
        if let Some(addr) = external_addr() {
            return Self {
                addr,
                child: None,
                log: Arc::default(),
                config: None,
            };
        }
        Self::spawn(extra_config)
    }

    /// Like `start`, but for tests whose assertions depend on `extra_config`:
    /// returns `None` (the test is skipped) in validation mode, where the
    /// external broker's configuration is not ours to choose.
    pub(crate) fn start_configured(extra_config: &str) -> Option<Self> {
        if is_external() {
            eprintln!("skipped: needs broker configuration {extra_config:?}");
            return None;
        }
        Some(Self::spawn(extra_config))
    }

    /// Like `start_configured`, and `args` are passed to culex after `-c FILE`
    /// (e.g. `&["--deterministic", "7"]`).
    pub(crate) fn start_with_args(extra_config: &str, args: &[&str]) -> Option<Self> {
        if is_external() {
            eprintln!(
                "skipped: needs broker arguments {args:?} and configuration {extra_config:?}"
            );
            return None;
        }
        Some(Self::spawn_with(extra_config, args))
    }

    fn spawn(extra_config: &str) -> Self {
        Self::spawn_with(extra_config, &[])
    }

    fn spawn_with(extra_config: &str, args: &[&str]) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("culex-test-{}-{seq}.conf", std::process::id()));
        let mut config = String::from("listener 0 127.0.0.1\nallow_anonymous true\n");
        config.push_str(extra_config);
        if !config.ends_with('\n') {
            config.push('\n');
        }
        std::fs::write(&path, config).expect("write test config");

        let mut command = Command::new(env!("CARGO_BIN_EXE_culex"));
        command.arg("-c").arg(&path).args(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let mut child = command.spawn().expect("spawn culex");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut tx = Some(tx);
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                sink.lock().expect("log lock").push_str(&line);
                // The broker's address is its first MQTT listener, never an HTTP API one.
                if let Some(port) = listening_port(&line).filter(|_| !is_http_line(&line)) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let mut broker = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: Some(child),
            log,
            config: Some(path),
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(port) => broker.addr.set_port(port),
            Err(_) => {
                let status = broker
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "culex did not log `{LISTENING}127.0.0.1:PORT` within {STARTUP_TIMEOUT:?} \
                     (exit status: {status:?}); captured stderr:\n{}",
                    broker.log()
                );
            }
        }
        broker
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ports of the first `n` listeners on 127.0.0.1, in configuration order.
    pub(crate) fn ports(&self, n: usize) -> Vec<u16> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let ports: Vec<u16> = self.log().lines().filter_map(listening_port).collect();
            if ports.len() >= n {
                return ports[..n].to_vec();
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {n} listeners; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port of the first HTTP API listener on 127.0.0.1 (its log line ends
    /// in `(http)`).
    pub(crate) fn http_port(&self) -> u16 {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let log = self.log();
            let port = log
                .lines()
                .filter(|l| is_http_line(l))
                .find_map(listening_port);
            if let Some(port) = port {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "no `{LISTENING}127.0.0.1:PORT (http)` line; log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) to the spawned broker.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("a spawned broker").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits for the spawned broker to exit, returning its status.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().expect("a spawned broker");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the spawned broker's configuration file (the test listener lines are kept).
    pub(crate) fn rewrite_config(&self, extra_config: &str) {
        let path = self.config.as_ref().expect("a spawned broker");
        let mut config = String::from("listener 0 127.0.0.1\nallow_anonymous true\n");
        config.push_str(extra_config);
        config.push('\n');
        std::fs::write(path, config).expect("rewrite test config");
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never showed {needle:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when this handle refers to an external broker (validation mode).
    pub(crate) fn is_external(&self) -> bool {
        self.child.is_none()
    }

    /// Everything the broker wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Asserts that a log line containing `needle` appears within two seconds.
    /// Skipped against an external broker, whose log we do not capture.
    pub(crate) fn assert_log_contains(&self, needle: &str) {
        if self.is_external() {
            return;
        }
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if self.log().lines().any(|l| l.contains(needle)) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("no log line contains {needle:?}; log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a raw TCP connection to the broker.
    pub(crate) fn client(&self) -> RawClient {
        RawClient::connect(self.addr)
    }

    /// Opens a connection and completes a 3.1.1 clean-session handshake.
    pub(crate) fn connected_v311(&self, client_id: &str) -> RawClient {
        let mut c = self.client();
        c.send(&connect_v311(client_id, true, 60));
        c.expect(&hex("20 02 00 00"));
        c
    }

    /// Opens a connection and completes a 5.0 clean-start handshake; returns the
    /// client and the CONNACK properties.
    pub(crate) fn connected_v5(&self, client_id: &str) -> (RawClient, Vec<Property>) {
        let mut c = self.client();
        c.send(&connect_v5(client_id, true, 60, &[]));
        let ack = c.recv_packet();
        let connack = parse_connack(&ack, true);
        assert_eq!(connack.reason, 0, "CONNACK refused: {}", to_hex(&ack));
        (c, connack.properties)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(path) = self.config.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Extracts PORT from a log line containing `listening on 127.0.0.1:PORT`.
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let rest = rest.strip_prefix("127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// True for the log line of an HTTP API listener.
fn is_http_line(line: &str) -> bool {
    line.trim_end().ends_with("(http)")
}

/// Outcome of waiting for one packet.
#[derive(Debug)]
pub(crate) enum Recv {
    Packet(Vec<u8>),
    /// EOF or connection reset.
    Closed,
    Timeout,
}

/// A blocking TCP connection that sends and receives raw MQTT packets.
pub(crate) struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    local: SocketAddr,
}

impl RawClient {
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        let local = stream.local_addr().expect("local addr");
        Self {
            stream,
            buf: Vec::new(),
            local,
        }
    }

    /// This side's address, which is the broker's view of the peer address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Writes all bytes; panics on error.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {}: {e}", to_hex(bytes)));
    }

    /// Writes all bytes, ignoring errors (the broker may already have closed).
    pub(crate) fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Closes the socket without sending DISCONNECT.
    pub(crate) fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Waits up to `timeout` for one whole packet.
    pub(crate) fn recv_within(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(len) = packet_len(&self.buf) {
                if self.buf.len() >= len {
                    return Recv::Packet(self.buf.drain(..len).collect());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Recv::Timeout;
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .expect("read timeout");
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Recv::Timeout;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Recv::Closed,
            }
        }
    }

    /// Reads one whole packet; panics on timeout or close.
    pub(crate) fn recv_packet(&mut self) -> Vec<u8> {
        match self.recv_within(READ_TIMEOUT) {
            Recv::Packet(p) => p,
            Recv::Closed => panic!(
                "connection closed while waiting for a packet (buffered: {})",
                to_hex(&self.buf)
            ),
            Recv::Timeout => panic!(
                "no packet within {READ_TIMEOUT:?} (buffered: {})",
                to_hex(&self.buf)
            ),
        }
    }

    /// Asserts that the next packet is exactly `expected`.
    pub(crate) fn expect(&mut self, expected: &[u8]) {
        let got = self.recv_packet();
        assert!(
            got == expected,
            "packet mismatch\n  expected: {}\n       got: {}",
            to_hex(expected),
            to_hex(&got)
        );
    }

    /// Asserts that the connection is closed (EOF or reset) within the read
    /// timeout. Only CONNACK and DISCONNECT packets may arrive before the close;
    /// they are returned.
    pub(crate) fn expect_closed(&mut self) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left) {
                Recv::Closed => return before,
                Recv::Timeout => panic!(
                    "connection still open after {READ_TIMEOUT:?} (received before: {:?})",
                    before.iter().map(|p| to_hex(p)).collect::<Vec<_>>()
                ),
                Recv::Packet(p) => {
                    assert!(
                        matches!(p[0], 0x20 | 0xe0),
                        "expected only CONNACK/DISCONNECT before close, got {}",
                        to_hex(&p)
                    );
                    before.push(p);
                }
            }
        }
    }

    /// Asserts that the connection is closed without any packet (3.1.1 style).
    pub(crate) fn expect_bare_close(&mut self) {
        let before = self.expect_closed();
        assert!(
            before.is_empty(),
            "expected a close without any packet, got {:?}",
            before.iter().map(|p| to_hex(p)).collect::<Vec<_>>()
        );
    }

    /// Asserts that a v5 DISCONNECT with `reason` arrives and the connection
    /// then closes. The spec only says a server SHOULD send the DISCONNECT, so in
    /// validation mode a bare close is accepted too; culex must always send it.
    pub(crate) fn expect_disconnect(&mut self, reason: u8) {
        self.expect_disconnect_lenient(reason, &[]);
    }

    /// Like `expect_disconnect`, but in validation mode the reason codes in
    /// `external_also` are accepted as well (where the spec leaves room for
    /// another code); culex must send `reason`.
    pub(crate) fn expect_disconnect_lenient(&mut self, reason: u8, external_also: &[u8]) {
        let before = self.expect_closed();
        match before.as_slice() {
            [] if is_external() => {}
            [p] => {
                let got = parse_disconnect(p);
                if !(is_external() && external_also.contains(&got)) {
                    assert_eq!(got, reason, "DISCONNECT reason: {}", to_hex(p));
                }
            }
            _ => panic!(
                "expected one DISCONNECT with reason {reason:#04x} before close, got {:?}",
                before.iter().map(|p| to_hex(p)).collect::<Vec<_>>()
            ),
        }
    }

    /// Asserts that nothing arrives (and the connection stays open) for `ms`.
    pub(crate) fn expect_silence(&mut self, ms: u64) {
        match self.recv_within(Duration::from_millis(ms)) {
            Recv::Timeout => {}
            Recv::Packet(p) => panic!("expected silence, got {}", to_hex(&p)),
            Recv::Closed => panic!("expected silence, but the connection closed"),
        }
    }

    /// Collects packets until nothing arrives for `ms`.
    pub(crate) fn collect_until_silence(&mut self, ms: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.recv_within(Duration::from_millis(ms)) {
                Recv::Packet(p) => out.push(p),
                Recv::Timeout => return out,
                Recv::Closed => panic!("connection closed while collecting packets"),
            }
        }
    }

    /// PINGREQ → PINGRESP round trip.
    pub(crate) fn ping(&mut self) {
        self.send(&hex("c0 00"));
        self.expect(&hex("d0 00"));
    }
}

/// Total length of the packet at the start of `buf`, once the fixed header is
/// complete. A malformed length (5+ bytes) is reported as "needs everything".
pub(crate) fn packet_len(buf: &[u8]) -> Option<usize> {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(1 + (i + 1) + value);
        }
    }
    panic!("malformed remaining length from broker: {}", to_hex(buf));
}

// ---------------------------------------------------------------------------
// Hex helpers
// ---------------------------------------------------------------------------

/// Parses whitespace-separated hex, e.g. `"10 0c 00 04 4d 51 54 54"`.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex {s:?} in {text:?}"))
        })
        .collect()
}

/// `hex!("20 02 00 00")` is `hex("20 02 00 00")`.
#[macro_export]
macro_rules! hex {
    ($text:expr) => {
        $crate::harness::hex($text)
    };
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

// ---------------------------------------------------------------------------
// Packet builder (independent of the broker's own codec)
// ---------------------------------------------------------------------------

/// Variable byte integer.
pub(crate) fn varint(mut n: usize) -> Vec<u8> {
    assert!(n < 268_435_456, "varint out of range: {n}");
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// Two-byte length prefixed bytes (UTF-8 string or binary data).
pub(crate) fn lp(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("field too long");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Fixed header (`first` byte and remaining length) followed by `body`.
pub(crate) fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A v5 property block: length prefix plus `props`.
pub(crate) fn props(props: &[u8]) -> Vec<u8> {
    let mut out = varint(props.len());
    out.extend_from_slice(props);
    out
}

/// A will message for `Connect`.
pub(crate) struct Will<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// Will properties (v5 only).
    pub(crate) props: &'a [u8],
}

/// A configurable CONNECT packet.
pub(crate) struct Connect<'a> {
    pub(crate) level: u8,
    pub(crate) client_id: &'a str,
    pub(crate) clean: bool,
    pub(crate) keepalive: u16,
    /// CONNECT properties (v5 only).
    pub(crate) props: &'a [u8],
    pub(crate) will: Option<Will<'a>>,
    /// Extra bits OR-ed into the connect flags (e.g. the reserved bit 0).
    pub(crate) extra_flags: u8,
}

impl<'a> Connect<'a> {
    pub(crate) fn v311(client_id: &'a str) -> Self {
        Self {
            level: 4,
            client_id,
            clean: true,
            keepalive: 60,
            props: &[],
            will: None,
            extra_flags: 0,
        }
    }

    pub(crate) fn v5(client_id: &'a str) -> Self {
        Self {
            level: 5,
            ..Self::v311(client_id)
        }
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let v5 = self.level == 5;
        let mut flags = self.extra_flags;
        if self.clean {
            flags |= 0x02;
        }
        let mut body = lp(b"MQTT");
        body.push(self.level);
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        body.push(flags);
        body.extend(self.keepalive.to_be_bytes());
        if v5 {
            body.extend(props(self.props));
        }
        body.extend(lp(self.client_id.as_bytes()));
        if let Some(w) = &self.will {
            if v5 {
                body.extend(props(w.props));
            }
            body.extend(lp(w.topic.as_bytes()));
            body.extend(lp(w.payload));
        }
        packet(0x10, &body)
    }
}

pub(crate) fn connect_v311(client_id: &str, clean: bool, keepalive: u16) -> Vec<u8> {
    Connect {
        clean,
        keepalive,
        ..Connect::v311(client_id)
    }
    .bytes()
}

pub(crate) fn connect_v5(
    client_id: &str,
    clean_start: bool,
    keepalive: u16,
    props: &[u8],
) -> Vec<u8> {
    Connect {
        clean: clean_start,
        keepalive,
        props,
        ..Connect::v5(client_id)
    }
    .bytes()
}

/// SUBSCRIBE with one filter per `(filter, options)`; options is the QoS byte
/// (plus v5 subscription option bits).
pub(crate) fn subscribe_many(pid: u16, filters: &[(&str, u8)], v5: bool) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for (filter, options) in filters {
        body.extend(lp(filter.as_bytes()));
        body.push(*options);
    }
    packet(0x82, &body)
}

pub(crate) fn subscribe(pid: u16, filter: &str, qos: u8, v5: bool) -> Vec<u8> {
    subscribe_many(pid, &[(filter, qos)], v5)
}

pub(crate) fn unsubscribe(pid: u16, filters: &[&str], v5: bool) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for filter in filters {
        body.extend(lp(filter.as_bytes()));
    }
    packet(0xa2, &body)
}

/// PUBLISH. `v5_props` is `None` for 3.1.1 and the property bytes for 5.0.
pub(crate) fn publish(
    topic: &str,
    payload: &[u8],
    qos: u8,
    pid: u16,
    retain: bool,
    v5_props: Option<&[u8]>,
) -> Vec<u8> {
    publish_raw(topic.as_bytes(), payload, qos, pid, retain, false, v5_props)
}

/// PUBLISH with a raw topic (may be invalid UTF-8) and the DUP flag.
pub(crate) fn publish_raw(
    topic: &[u8],
    payload: &[u8],
    qos: u8,
    pid: u16,
    retain: bool,
    dup: bool,
    v5_props: Option<&[u8]>,
) -> Vec<u8> {
    let mut first = 0x30 | (qos << 1);
    if retain {
        first |= 0x01;
    }
    if dup {
        first |= 0x08;
    }
    let mut body = lp(topic);
    if qos > 0 {
        body.extend(pid.to_be_bytes());
    }
    if let Some(p) = v5_props {
        body.extend(props(p));
    }
    body.extend_from_slice(payload);
    packet(first, &body)
}

fn ack(first: u8, pid: u16) -> Vec<u8> {
    packet(first, &pid.to_be_bytes())
}

pub(crate) fn puback(pid: u16) -> Vec<u8> {
    ack(0x40, pid)
}

pub(crate) fn pubrec(pid: u16) -> Vec<u8> {
    ack(0x50, pid)
}

pub(crate) fn pubrel(pid: u16) -> Vec<u8> {
    ack(0x62, pid)
}

pub(crate) fn pubcomp(pid: u16) -> Vec<u8> {
    ack(0x70, pid)
}

pub(crate) fn disconnect() -> Vec<u8> {
    hex("e0 00")
}

// ---------------------------------------------------------------------------
// Parsers for what the broker sends
// ---------------------------------------------------------------------------

/// A v5 property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(u32),
    Bytes(Vec<u8>),
    Pair(Vec<u8>, Vec<u8>),
}

/// One v5 property: identifier and value.
pub(crate) type Property = (u8, Value);

/// Returns the value of the first property with `id`.
pub(crate) fn prop(properties: &[Property], id: u8) -> Option<&Value> {
    properties.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
}

/// Reads a variable byte integer at `*pos`.
pub(crate) fn read_varint(bytes: &[u8], pos: &mut usize) -> usize {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = bytes[*pos];
        *pos += 1;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("malformed varint in {}", to_hex(bytes));
}

fn read_u16(bytes: &[u8], pos: &mut usize) -> u16 {
    let v = u16::from_be_bytes([bytes[*pos], bytes[*pos + 1]]);
    *pos += 2;
    v
}

fn read_lp(bytes: &[u8], pos: &mut usize) -> Vec<u8> {
    let len = usize::from(read_u16(bytes, pos));
    let v = bytes[*pos..*pos + len].to_vec();
    *pos += len;
    v
}

/// Parses a property block at `*pos` (length prefix included); panics on any
/// malformation, so a successful parse also checks the broker's encoding.
pub(crate) fn read_props(bytes: &[u8], pos: &mut usize) -> Vec<Property> {
    let len = read_varint(bytes, pos);
    let end = *pos + len;
    assert!(
        end <= bytes.len(),
        "property block overruns packet: {}",
        to_hex(bytes)
    );
    let mut out = Vec::new();
    while *pos < end {
        let id = u8::try_from(read_varint(bytes, pos)).expect("property id");
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => {
                *pos += 1;
                Value::Int(u32::from(bytes[*pos - 1]))
            }
            0x13 | 0x21 | 0x22 | 0x23 => Value::Int(u32::from(read_u16(bytes, pos))),
            0x02 | 0x11 | 0x18 | 0x27 => {
                let v = u32::from_be_bytes(bytes[*pos..*pos + 4].try_into().expect("u32"));
                *pos += 4;
                Value::Int(v)
            }
            0x0b => Value::Int(read_varint(bytes, pos) as u32),
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => {
                Value::Bytes(read_lp(bytes, pos))
            }
            0x26 => {
                let k = read_lp(bytes, pos);
                Value::Pair(k, read_lp(bytes, pos))
            }
            other => panic!("unknown property {other:#04x} in {}", to_hex(bytes)),
        };
        out.push((id, value));
    }
    assert_eq!(
        *pos,
        end,
        "property block length mismatch: {}",
        to_hex(bytes)
    );
    out
}

/// Offset of the variable header (after the fixed header).
fn body_start(p: &[u8]) -> usize {
    let mut pos = 1;
    let len = read_varint(p, &mut pos);
    assert_eq!(
        pos + len,
        p.len(),
        "remaining length mismatch: {}",
        to_hex(p)
    );
    pos
}

#[derive(Debug)]
pub(crate) struct Connack {
    pub(crate) session_present: bool,
    pub(crate) reason: u8,
    pub(crate) properties: Vec<Property>,
}

pub(crate) fn parse_connack(p: &[u8], v5: bool) -> Connack {
    assert_eq!(p[0], 0x20, "expected CONNACK, got {}", to_hex(p));
    let mut pos = body_start(p);
    let flags = p[pos];
    assert!(flags <= 1, "CONNACK reserved flags set: {}", to_hex(p));
    let reason = p[pos + 1];
    pos += 2;
    let properties = if v5 {
        read_props(p, &mut pos)
    } else {
        Vec::new()
    };
    assert_eq!(pos, p.len(), "trailing bytes in CONNACK: {}", to_hex(p));
    Connack {
        session_present: flags == 1,
        reason,
        properties,
    }
}

/// Returns the reason code of a v5 DISCONNECT (0 when omitted).
pub(crate) fn parse_disconnect(p: &[u8]) -> u8 {
    assert_eq!(p[0], 0xe0, "expected DISCONNECT, got {}", to_hex(p));
    let mut pos = body_start(p);
    if pos == p.len() {
        return 0;
    }
    let reason = p[pos];
    pos += 1;
    if pos < p.len() {
        read_props(p, &mut pos);
    }
    assert_eq!(pos, p.len(), "trailing bytes in DISCONNECT: {}", to_hex(p));
    reason
}

/// Parses a PUBACK/PUBREC/PUBREL/PUBCOMP; returns (packet id, reason code),
/// the reason being 0 when omitted (v5 short form, or 3.1.1).
pub(crate) fn parse_ack(p: &[u8], first: u8) -> (u16, u8) {
    assert_eq!(p[0], first, "expected ack {first:#04x}, got {}", to_hex(p));
    let mut pos = body_start(p);
    let pid = read_u16(p, &mut pos);
    if pos == p.len() {
        return (pid, 0);
    }
    let reason = p[pos];
    pos += 1;
    if pos < p.len() {
        read_props(p, &mut pos);
    }
    assert_eq!(pos, p.len(), "trailing bytes in ack: {}", to_hex(p));
    (pid, reason)
}

/// Parses SUBACK/UNSUBACK; returns (packet id, return/reason codes).
pub(crate) fn parse_suback(p: &[u8], first: u8, v5: bool) -> (u16, Vec<u8>) {
    assert_eq!(p[0], first, "expected {first:#04x}, got {}", to_hex(p));
    let mut pos = body_start(p);
    let pid = read_u16(p, &mut pos);
    if v5 {
        read_props(p, &mut pos);
    }
    (pid, p[pos..].to_vec())
}

/// A PUBLISH as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub(crate) dup: bool,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) topic: Vec<u8>,
    pub(crate) pid: u16,
    pub(crate) properties: Vec<Property>,
    pub(crate) payload: Vec<u8>,
}

pub(crate) fn parse_publish(p: &[u8], v5: bool) -> Publish {
    assert_eq!(p[0] & 0xf0, 0x30, "expected PUBLISH, got {}", to_hex(p));
    let qos = (p[0] >> 1) & 3;
    assert!(qos < 3, "PUBLISH with QoS 3 from broker: {}", to_hex(p));
    let mut pos = body_start(p);
    let topic = read_lp(p, &mut pos);
    let pid = if qos > 0 { read_u16(p, &mut pos) } else { 0 };
    let properties = if v5 {
        read_props(p, &mut pos)
    } else {
        Vec::new()
    };
    Publish {
        dup: p[0] & 0x08 != 0,
        qos,
        retain: p[0] & 0x01 != 0,
        topic,
        pid,
        properties,
        payload: p[pos..].to_vec(),
    }
}

/// Receives one PUBLISH (v5 if `v5`) and checks topic, payload and QoS.
pub(crate) fn expect_publish(
    c: &mut RawClient,
    topic: &str,
    payload: &[u8],
    qos: u8,
    v5: bool,
) -> Publish {
    let p = c.recv_packet();
    let got = parse_publish(&p, v5);
    assert_eq!(
        (got.topic.as_slice(), got.payload.as_slice(), got.qos),
        (topic.as_bytes(), payload, qos),
        "unexpected PUBLISH {}",
        to_hex(&p)
    );
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_helpers_encode_as_the_spec_says() {
        assert_eq!(varint(0), [0]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(16_383), [0xff, 0x7f]);
        assert_eq!(varint(268_435_455), [0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(
            hex!("10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00"),
            connect_v311("", true, 60)
        );
        assert_eq!(packet_len(&hex("30 80 01")), Some(131));
        assert_eq!(
            listening_port("INFO listening on 127.0.0.1:4321 (mqtt)"),
            Some(4321)
        );
        assert_eq!(listening_port("listening on [::1]:1"), None);
        assert!(is_http_line("INFO listening on 127.0.0.1:8080 (http)\n"));
        assert!(!is_http_line("INFO listening on 127.0.0.1:1883 (mqtt)"));
        let id = uniq("averylongtag");
        assert!(id.len() <= 23, "{id}");
    }
}
