//! TLS, WebSocket and secure WebSocket listeners: round trips through real rustls and
//! tungstenite clients, and every kind of bad input a transport can meet.
//!
//! The clients here are blocking and simple on purpose; what they check is the broker's
//! bytes: CONNACKs, HTTP answers, close frames, TLS alerts and closed sockets.

mod bad_input;
mod tls;
mod ws;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::harness::{packet_len, READ_TIMEOUT};

/// A certificate or key of the test PKI (CA "Culex Test CA", server CN localhost, client
/// CN alice).
pub(crate) fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/transport/testdata")
        .join(name)
}

/// The lines of a TLS listener on an ephemeral loopback port.
pub(crate) fn tls_listener(extra: &str) -> String {
    format!(
        "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n{extra}\n",
        testdata("server.pem").display(),
        testdata("server.key").display()
    )
}

/// How a test client sets up TLS.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    pub(crate) client_cert: bool,
    pub(crate) alpn: Vec<Vec<u8>>,
    /// `None` offers TLS 1.2 and 1.3.
    pub(crate) only: Option<&'static rustls::SupportedProtocolVersion>,
}

pub(crate) fn client_config(options: &TlsOptions) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(testdata("ca.pem")).expect("ca.pem") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match options.only {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = if options.client_cert {
        let chain = CertificateDer::pem_file_iter(testdata("client.pem"))
            .expect("client.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("client chain");
        let key = PrivateKeyDer::from_pem_file(testdata("client.key")).expect("client.key");
        builder
            .with_client_auth_cert(chain, key)
            .expect("client cert")
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = options.alpn.clone();
    Arc::new(config)
}

pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn tcp(port: u16) -> TcpStream {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = TcpStream::connect_timeout(&addr, READ_TIMEOUT).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    tcp
}

/// Connects and completes the TLS handshake, or returns the error that ended it.
pub(crate) fn tls_connect(port: u16, options: &TlsOptions) -> Result<TlsStream, String> {
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(client_config(options), name).map_err(|e| e.to_string())?;
    let mut stream = StreamOwned::new(conn, tcp(port));
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// MQTT packets over any byte stream.
pub(crate) struct Mqtt<S> {
    pub(crate) stream: S,
    buf: Vec<u8>,
}

/// What waiting for a packet gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Got {
    Packet(Vec<u8>),
    Closed,
    Timeout,
}

impl<S: Read + Write> Mqtt<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// The next packet; the stream's read timeout bounds each read.
    pub(crate) fn recv(&mut self) -> Got {
        loop {
            if let Some(len) = packet_len(&self.buf) {
                if self.buf.len() >= len {
                    return Got::Packet(self.buf.drain(..len).collect());
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Got::Timeout
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Got::Closed,
            }
        }
    }

    pub(crate) fn expect(&mut self, expected: &[u8]) {
        assert_eq!(self.recv(), Got::Packet(expected.to_vec()));
    }
}

/// A WebSocket client socket that carries MQTT in binary messages.
pub(crate) struct WsMqtt<S> {
    pub(crate) ws: WebSocket<S>,
    buf: Vec<u8>,
}

/// Opens a WebSocket on `stream`, offering `subprotocol` (when given).
pub(crate) fn ws_connect<S: Read + Write>(
    stream: S,
    url: &str,
    subprotocol: Option<&str>,
) -> Result<WsMqtt<S>, String> {
    let mut request = url.into_client_request().expect("request");
    if let Some(p) = subprotocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(p).expect("header"),
        );
    }
    let (ws, response) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
    if let Some(p) = subprotocol {
        let chosen = response.headers().get("Sec-WebSocket-Protocol");
        assert!(chosen.is_some(), "no subprotocol in the 101 answer");
        assert!(p.contains(chosen.and_then(|v| v.to_str().ok()).unwrap_or("?")));
    }
    Ok(WsMqtt {
        ws,
        buf: Vec::new(),
    })
}

pub(crate) fn ws_plain(port: u16) -> WsMqtt<TcpStream> {
    let url = format!("ws://127.0.0.1:{port}/mqtt");
    ws_connect(tcp(port), &url, Some("mqtt")).expect("WebSocket upgrade")
}

pub(crate) fn ws_secure(port: u16) -> WsMqtt<TlsStream> {
    let tls = tls_connect(port, &TlsOptions::default()).expect("TLS");
    ws_connect(tls, "wss://localhost/mqtt", Some("mqtt")).expect("WebSocket upgrade")
}

impl<S: Read + Write> WsMqtt<S> {
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .expect("send");
    }

    /// The next MQTT packet, from however many messages it spans.
    pub(crate) fn recv(&mut self) -> Got {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some(len) = packet_len(&self.buf) {
                if self.buf.len() >= len {
                    return Got::Packet(self.buf.drain(..len).collect());
                }
            }
            if Instant::now() >= deadline {
                return Got::Timeout;
            }
            match self.ws.read() {
                Ok(Message::Binary(b)) => self.buf.extend_from_slice(&b),
                Ok(Message::Close(_)) => return Got::Closed,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Got::Timeout
                }
                Err(_) => return Got::Closed,
            }
        }
    }

    pub(crate) fn expect(&mut self, expected: &[u8]) {
        assert_eq!(self.recv(), Got::Packet(expected.to_vec()));
    }
}

/// Reads until the peer closes; returns everything it sent. Panics if it stays open
/// past `within`.
pub(crate) fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut all = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "still open after {within:?}; got {all:02x?}"
        );
        stream.set_read_timeout(Some(left)).expect("timeout");
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset also closes; the broker closed with unread input.
            Err(_) => return all,
        }
    }
}

pub(crate) fn raw(port: u16) -> TcpStream {
    tcp(port)
}

/// A raw upgrade request for `/mqtt`, offering `subprotocol` when given.
pub(crate) fn upgrade_request(subprotocol: Option<&str>) -> Vec<u8> {
    let mut r = String::from(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n",
    );
    if let Some(p) = subprotocol {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Sends the upgrade on a raw socket and reads the whole HTTP answer head.
pub(crate) fn raw_upgrade(port: u16, subprotocol: Option<&str>) -> (TcpStream, String) {
    let mut s = tcp(port);
    s.write_all(&upgrade_request(subprotocol)).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// A masked client frame (RFC 6455 5.2) with the FIN bit set.
pub(crate) fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x1B, 0x2C, 0x3D, 0x4E];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Splits the server's unmasked frames: (opcode, payload) pairs.
pub(crate) fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (len, header) = match bytes[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        let Some(payload) = bytes.get(header..header + len) else {
            break;
        };
        frames.push((bytes[0] & 0x0F, payload.to_vec()));
        bytes = &bytes[header + len..];
    }
    frames
}
