//! The client side of the transports against the server side: TLS, WebSocket and secure
//! WebSocket sessions over an in-memory link, certificate checks of every strictness, the
//! client's own upgrade checks, and real loopback TCP connects polled with mio.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::tls_config::tests::plain;
use super::tls_config::{client_config, server_config};
use super::*;
use crate::config::bridge::BridgeTls;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/transport/testdata")
        .join(name)
}

/// One direction of an in-memory link; `traffic` counts every byte put on either direction.
#[derive(Clone, Default)]
struct Wire {
    bytes: Rc<RefCell<VecDeque<u8>>>,
    traffic: Rc<Cell<usize>>,
}

impl Wire {
    fn contents(&self) -> Vec<u8> {
        self.bytes.borrow().iter().copied().collect()
    }

    fn push(&self, data: &[u8]) {
        self.bytes.borrow_mut().extend(data);
        self.traffic.set(self.traffic.get() + data.len());
    }
}

/// One end of an in-memory link: a non-blocking socket that says `WouldBlock` when empty.
struct End {
    inbox: Wire,
    outbox: Wire,
}

/// Two connected ends and the link's traffic counter.
fn link() -> (End, End, Rc<Cell<usize>>) {
    let traffic = Rc::new(Cell::new(0));
    let a = Wire {
        traffic: Rc::clone(&traffic),
        ..Wire::default()
    };
    let b = Wire {
        traffic: Rc::clone(&traffic),
        ..Wire::default()
    };
    let left = End {
        inbox: a.clone(),
        outbox: b.clone(),
    };
    let right = End {
        inbox: b,
        outbox: a,
    };
    (left, right, traffic)
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inbox = self.inbox.bytes.borrow_mut();
        if inbox.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(inbox.len());
        for (slot, byte) in buf.iter_mut().zip(inbox.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.outbox.push(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Layer for End {
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        let mut inbox = self.inbox.bytes.borrow_mut();
        let n = max.min(inbox.len());
        buf.extend(inbox.drain(..n));
        Ok(if inbox.is_empty() {
            ReadOutcome::WouldBlock
        } else {
            ReadOutcome::Full
        })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Write::write(self, data)
    }

    fn wants_write(&self) -> bool {
        false
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Flushes and reads one side until it would block; payload goes to `got`.
fn step(side: &mut impl Layer, got: &mut Vec<u8>) -> io::Result<()> {
    side.flush()?;
    while side.read(got, 1 << 20)? == ReadOutcome::Full {}
    side.flush()
}

/// The payload each side read, or the first failure and the side that had it.
type Pumped = Result<(Vec<u8>, Vec<u8>), (&'static str, io::Error)>;

/// Moves bytes between the client `c` and the server `s` until the link is quiet; returns
/// the payload each side read. The first failure is returned with the side that had it.
fn pump(c: &mut impl Layer, s: &mut impl Layer, traffic: &Cell<usize>) -> Pumped {
    let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        let before = traffic.get();
        step(c, &mut at_client).map_err(|e| ("client", e))?;
        step(s, &mut at_server).map_err(|e| ("server", e))?;
        if traffic.get() == before {
            return Ok((at_client, at_server));
        }
    }
    panic!("the link never went quiet");
}

/// The client's failure, which must come before the server has one.
fn client_failure(r: Pumped) -> String {
    match r {
        Err(("client", e)) => e.to_string(),
        Err((side, e)) => panic!("the {side} failed first: {e}"),
        Ok(_) => panic!("the handshake went through"),
    }
}

fn settings(cafile: Option<&str>) -> BridgeTls {
    BridgeTls {
        cafile: cafile.map(testdata),
        ..BridgeTls::default()
    }
}

fn tls_pair(
    client: &BridgeTls,
    name: &str,
) -> (TlsTransport<End>, TlsTransport<End>, Rc<Cell<usize>>) {
    tls_pair_with(client, name, server_config(&plain(), false).unwrap())
}

fn tls_pair_with(
    client: &BridgeTls,
    name: &str,
    server: Arc<rustls::ServerConfig>,
) -> (TlsTransport<End>, TlsTransport<End>, Rc<Cell<usize>>) {
    let (c_end, s_end, traffic) = link();
    let c = TlsTransport::client(c_end, client_config(client).unwrap(), name).unwrap();
    let s = TlsTransport::new(s_end, server).unwrap();
    (c, s, traffic)
}

#[test]
fn tls_client_and_server_exchange_bytes() {
    let (mut c, mut s, traffic) = tls_pair(&settings(Some("ca.pem")), "localhost");
    assert!(c.is_client() && !s.is_client());
    assert!(c.wants_write(), "the ClientHello waits for the socket");
    // Bytes written before the handshake are held and sent once it is done.
    assert_eq!(Layer::write(&mut c, b"\x10\x0cearly").unwrap(), 7);
    let (_, at_server) = pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established() && s.is_established());
    assert_eq!(at_server, b"\x10\x0cearly");
    let server_cert = c.peer_certificate().expect("the server's certificate");
    let der = CertificateDer::from_pem_slice(include_bytes!("../testdata/server.pem")).unwrap();
    assert_eq!(server_cert, der.as_ref());
    assert_eq!(Layer::write(&mut s, b"\x20\x02\x00\x00").unwrap(), 4);
    let (at_client, _) = pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(at_client, b"\x20\x02\x00\x00");
    // close_notify ends the stream at the other side.
    c.close();
    let mut rest = Vec::new();
    assert_eq!(s.read(&mut rest, 100).unwrap(), ReadOutcome::Eof);
}

#[test]
fn tls_client_takes_ip_literals_and_capath() {
    let (mut c, mut s, traffic) = tls_pair(&settings(Some("ca.pem")), "127.0.0.1");
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established());
    let by_dir = BridgeTls {
        capath: Some(testdata("")),
        ..BridgeTls::default()
    };
    let (mut c, mut s, traffic) = tls_pair(&by_dir, "localhost");
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established());
    // No certificate names ::1 here, but the bracketed form is taken as an address.
    let config = client_config(&settings(Some("ca.pem"))).unwrap();
    let (end, _, _) = link();
    assert!(TlsTransport::client(end, config, "[::1]").is_ok());
}

#[test]
fn tls_client_refuses_a_certificate_from_another_ca() {
    // rsa.pem is a self-signed certificate: the server's chain does not lead to it.
    let (mut c, mut s, traffic) = tls_pair(&settings(Some("rsa.pem")), "localhost");
    let err = client_failure(pump(&mut c, &mut s, &traffic));
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(!c.is_established());
}

#[test]
fn tls_client_refuses_a_certificate_for_another_host() {
    let (mut c, mut s, traffic) = tls_pair(&settings(Some("ca.pem")), "broker.example");
    let err = client_failure(pump(&mut c, &mut s, &traffic));
    assert!(err.contains("not valid for name"), "{err}");
}

#[test]
fn insecure_with_roots_skips_only_the_host_name() {
    let mut lax = settings(Some("ca.pem"));
    lax.insecure = true;
    let (mut c, mut s, traffic) = tls_pair(&lax, "broker.example");
    assert_eq!(Layer::write(&mut c, b"hi").unwrap(), 2);
    let (_, at_server) = pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established());
    assert_eq!(at_server, b"hi");
    // The chain is still checked.
    let mut lax = settings(Some("rsa.pem"));
    lax.insecure = true;
    let (mut c, mut s, traffic) = tls_pair(&lax, "localhost");
    let err = client_failure(pump(&mut c, &mut s, &traffic));
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn insecure_without_roots_takes_any_certificate() {
    let lax = BridgeTls {
        insecure: true,
        ..BridgeTls::default()
    };
    let (mut c, mut s, traffic) = tls_pair(&lax, "broker.example");
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established() && s.is_established());
    // A self-signed RSA certificate: the handshake signature is checked with its key.
    let mut rsa = plain();
    rsa.certfile = testdata("rsa.pem");
    rsa.keyfile = testdata("rsa-pkcs1.key");
    let server = server_config(&rsa, false).unwrap();
    let (mut c, mut s, traffic) = tls_pair_with(&lax, "10.1.2.3", server);
    assert_eq!(Layer::write(&mut s, b"back").unwrap(), 4);
    let (at_client, _) = pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(at_client, b"back");
}

#[test]
fn tls_client_presents_its_certificate() {
    let mut tls = plain();
    tls.cafile = Some(testdata("ca.pem"));
    tls.require_certificate = true;
    let server = server_config(&tls, false).unwrap();
    let mut with_cert = settings(Some("ca.pem"));
    with_cert.certfile = Some(testdata("client.pem"));
    with_cert.keyfile = Some(testdata("client.key"));
    let (mut c, mut s, traffic) = tls_pair_with(&with_cert, "localhost", Arc::clone(&server));
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(s.peer_certificate().is_some());
    // Without one, the server refuses the client.
    let (mut c, mut s, traffic) = tls_pair_with(&settings(Some("ca.pem")), "localhost", server);
    assert!(pump(&mut c, &mut s, &traffic).is_err());
    assert!(s.peer_certificate().is_none());
}

#[test]
fn alpn_is_offered_only_when_named() {
    let mut named = settings(Some("ca.pem"));
    named.alpn = Some("mqtt".to_owned());
    assert_eq!(
        client_config(&named).unwrap().alpn_protocols,
        vec![b"mqtt".to_vec()]
    );
    let (mut c, mut s, traffic) = tls_pair(&named, "localhost");
    pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"mqtt"[..]));
    assert_eq!(s.alpn_protocol(), Some(&b"mqtt"[..]));
    let unnamed = client_config(&settings(Some("ca.pem"))).unwrap();
    assert!(unnamed.alpn_protocols.is_empty());
}

#[test]
fn client_settings_errors_name_the_fault() {
    let err = |s: &BridgeTls| match client_config(s) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let none = BridgeTls::default();
    assert!(
        err(&none).contains("bridge_cafile or bridge_capath is needed"),
        "{}",
        err(&none)
    );
    let mut half = settings(Some("ca.pem"));
    half.certfile = Some(testdata("client.pem"));
    assert!(err(&half).contains("together"), "{}", err(&half));
    let mut missing = settings(Some("nope.pem"));
    missing.insecure = true;
    assert!(err(&missing).contains("nope.pem"), "{}", err(&missing));
    let mut wrong_key = settings(Some("ca.pem"));
    wrong_key.certfile = Some(testdata("client.pem"));
    wrong_key.keyfile = Some(testdata("server.key"));
    assert!(err(&wrong_key).contains("rejected"), "{}", err(&wrong_key));
    let config = client_config(&settings(Some("ca.pem"))).unwrap();
    let (end, _, _) = link();
    let bad = TlsTransport::client(end, config, "not a host!").unwrap_err();
    assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
}

/// The WebSocket frames in `bytes`: (first header byte, masked, payload unmasked).
fn frames(mut bytes: &[u8]) -> Vec<(u8, bool, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(),
                10,
            ),
            n => (usize::from(n), 2),
        };
        let mut mask = [0u8; 4];
        if masked {
            mask.copy_from_slice(&bytes[at..at + 4]);
            at += 4;
        }
        let payload = bytes[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ mask[i % 4] } else { *b })
            .collect();
        out.push((bytes[0], masked, payload));
        bytes = &bytes[at + len..];
    }
    out
}

#[test]
fn ws_client_and_server_exchange_binary_messages() {
    let (c_end, s_end, traffic) = link();
    let to_server = c_end.outbox.clone();
    let mut c = WsTransport::client(c_end, "broker.example:8080", "/mqtt", 1024).unwrap();
    let mut s = WsTransport::new(s_end, 1024);
    assert!(c.wants_write(), "the upgrade request waits for the socket");
    assert_eq!(
        Layer::write(&mut c, b"early").unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    c.flush().unwrap();
    let request = String::from_utf8(to_server.contents()).unwrap();
    assert!(request.starts_with("GET /mqtt HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("Host: broker.example:8080\r\n"),
        "{request}"
    );
    assert!(
        request.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
        "{request}"
    );
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established() && s.is_established());

    to_server.bytes.borrow_mut().clear();
    assert_eq!(Layer::write(&mut c, &[0xC0, 0x00]).unwrap(), 2);
    let sent = frames(&to_server.contents());
    assert_eq!(sent, vec![(0x82, true, vec![0xC0, 0x00])], "masked binary");
    let (_, at_server) = pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(at_server, [0xC0, 0x00]);

    assert_eq!(Layer::write(&mut s, &[0xD0, 0x00]).unwrap(), 2);
    let (at_client, _) = pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(at_client, [0xD0, 0x00]);

    // Closing sends a close frame; the server answers and sees the end.
    c.close();
    let mut rest = Vec::new();
    assert_eq!(s.read(&mut rest, 100).unwrap(), ReadOutcome::Eof);
}

#[test]
fn ws_client_paths_and_hosts() {
    for (host, path, line, host_line) in [
        ("10.0.0.1", "", "GET / HTTP/1.1", "Host: 10.0.0.1\r\n"),
        ("::1", "ws", "GET /ws HTTP/1.1", "Host: [::1]\r\n"),
        ("h", "/a?b=c", "GET /a?b=c HTTP/1.1", "Host: h\r\n"),
    ] {
        let (c_end, _, _) = link();
        let to_server = c_end.outbox.clone();
        let mut c = WsTransport::client(c_end, host, path, 1024).unwrap();
        c.flush().unwrap();
        let request = String::from_utf8(to_server.contents()).unwrap();
        assert!(request.starts_with(line), "{request}");
        assert!(request.contains(host_line), "{request}");
    }
    let (c_end, _, _) = link();
    let err = WsTransport::client(c_end, "bad host", "/", 1024).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// A client whose request went out, and the key it sent.
fn ws_client() -> (WsTransport<End>, Wire, String) {
    let (c_end, _, _) = link();
    let to_server = c_end.outbox.clone();
    let from_server = c_end.inbox.clone();
    let mut c = WsTransport::client(c_end, "localhost", "/mqtt", 1024).unwrap();
    c.flush().unwrap();
    let request = String::from_utf8(to_server.contents()).unwrap();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned();
    (c, from_server, key)
}

fn answer(key: &str, protocol: Option<&str>) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = protocol {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[test]
fn ws_client_requires_the_mqtt_subprotocol() {
    for protocol in [None, Some("mqttv3.1"), Some("chat")] {
        let (mut c, from_server, key) = ws_client();
        from_server.push(&answer(&key, protocol));
        let err = c.read(&mut Vec::new(), 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("mqtt subprotocol"), "{err}");
        assert!(!c.is_established());
        assert!(!c.wants_write(), "nothing is owed to the server");
    }
    // The right answer, with a first frame right behind it.
    let (mut c, from_server, key) = ws_client();
    let mut bytes = answer(&key, Some("mqtt"));
    bytes.extend_from_slice(&[0x82, 0x02, 0x20, 0x00]);
    from_server.push(&bytes);
    let mut got = Vec::new();
    assert_eq!(c.read(&mut got, 100).unwrap(), ReadOutcome::WouldBlock);
    assert!(c.is_established());
    assert_eq!(got, [0x20, 0x00]);
}

#[test]
fn ws_client_reports_a_refusal() {
    let (mut c, from_server, _) = ws_client();
    from_server.push(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let err = c.read(&mut Vec::new(), 100).unwrap_err();
    assert!(err.to_string().contains("refused by the server"), "{err}");
    let (mut c, from_server, _) = ws_client();
    let mut endless = b"HTTP/1.1 101 Switching Protocols\r\nX-Padding: ".to_vec();
    endless.resize(ws::HANDSHAKE_REQUEST_MAX + 10, b'a');
    from_server.push(&endless);
    let err = c.read(&mut Vec::new(), 100_000).unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    assert!(!c.wants_write());
}

#[test]
fn wss_client_and_server_exchange_binary_messages() {
    let (c_end, s_end, traffic) = link();
    let config = client_config(&settings(Some("ca.pem"))).unwrap();
    let tls = TlsTransport::client(c_end, config, "localhost").unwrap();
    let mut c = WsTransport::client(tls, "localhost", "/mqtt", 1024).unwrap();
    let tls = TlsTransport::new(s_end, server_config(&plain(), true).unwrap()).unwrap();
    let mut s = WsTransport::new(tls, 1024);
    pump(&mut c, &mut s, &traffic).unwrap();
    assert!(c.is_established() && s.is_established());
    assert!(c.lower().is_established());
    assert_eq!(
        Layer::write(&mut c, &[0x30, 0x03, 0x00, 0x01, b't']).unwrap(),
        5
    );
    assert_eq!(Layer::write(&mut s, &[0xD0, 0x00]).unwrap(), 2);
    let (at_client, at_server) = pump(&mut c, &mut s, &traffic).unwrap();
    assert_eq!(at_server, [0x30, 0x03, 0x00, 0x01, b't']);
    assert_eq!(at_client, [0xD0, 0x00]);
}

/// Polls `t` until its connect attempt is over, for at most 5 s. `t` is registered with
/// `poll`, for both directions.
fn settle(poll: &mut Poll, t: &mut TcpTransport) -> io::Result<bool> {
    poll.registry()
        .register(t, Token(0), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(4);
    for _ in 0..500 {
        match t.connect_result() {
            Ok(false) => {}
            other => return other,
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
    }
    panic!("the connect attempt did not end within 5 s");
}

#[test]
fn tcp_connect_to_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = TcpTransport::connect(listener.local_addr().unwrap()).unwrap();
    assert!(t.is_outbound());
    let mut poll = Poll::new().unwrap();
    assert!(settle(&mut poll, &mut t).unwrap());
    assert!(t.connect_result().unwrap());
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(t.write(b"ping").unwrap(), 4);
    let mut got = [0u8; 4];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    peer.write_all(b"pong").unwrap();
    let mut events = Events::with_capacity(4);
    let mut buf = Vec::new();
    for _ in 0..500 {
        if buf.len() >= 4 {
            break;
        }
        t.read(&mut buf, 100).unwrap();
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert_eq!(buf, b"pong");
}

#[test]
fn tcp_connect_to_a_closed_port_fails() {
    let addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    // The refusal may come at once or after the attempt started.
    let Ok(mut t) = TcpTransport::connect(addr) else {
        return;
    };
    let err = settle(&mut Poll::new().unwrap(), &mut t).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn client_stacks_over_a_connecting_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = client_config(&settings(Some("ca.pem"))).unwrap();
    let tcp = Transport::client_tcp(TcpTransport::connect(addr).unwrap());
    assert_eq!(tcp.kind(), "tcp");
    assert!(tcp.is_outbound() && tcp.is_established());
    assert!(!tcp.wants_write());
    let tls = TcpTransport::connect(addr).unwrap();
    let tls = Transport::client_tls(tls, Arc::clone(&config), "localhost").unwrap();
    let ws = TcpTransport::connect(addr).unwrap();
    let ws = Transport::client_ws(ws, "localhost:1883", "/mqtt", 1024).unwrap();
    // A listener of its own, so the connection accepted below is this one.
    let wss_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let wss = TcpTransport::connect(wss_listener.local_addr().unwrap()).unwrap();
    let mut wss = Transport::client_wss(wss, config, "localhost", "/mqtt", 1024).unwrap();
    for (t, kind) in [(&tls, "tls"), (&ws, "ws"), (&wss, "wss")] {
        assert_eq!(t.kind(), kind);
        assert!(t.is_outbound());
        assert!(!t.is_established());
        assert!(
            t.wants_write(),
            "{kind}: the first flight waits for the socket"
        );
    }
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut wss, Token(2), Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(4);
    let mut connected = false;
    for _ in 0..500 {
        connected = wss.connect_result().unwrap();
        if connected {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert!(connected);
    wss.flush().unwrap();
    // The ClientHello reached the listener's side.
    let (mut peer, _) = wss_listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 1];
    peer.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x16, "a TLS handshake record");
    let accepted = Transport::Tcp(TcpTransport::new(mio::net::TcpStream::from_std(peer)));
    assert!(!accepted.is_outbound());
}
