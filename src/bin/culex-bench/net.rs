//! Blocking client connections over TCP, TLS, WebSockets and secure WebSockets, and an MQTT
//! client on top that frames the incoming byte stream into packets.

use std::fs::File;
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::mqtt::{self, Frame, Session, Version};
use crate::Res;

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// How bytes reach the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub(crate) fn parse(s: &str) -> Res<Self> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "tls" => Ok(Self::Tls),
            "ws" => Ok(Self::Ws),
            "wss" => Ok(Self::Wss),
            _ => Err(format!("unknown transport {s:?} (tcp, tls, ws or wss)").into()),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    fn secure(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }
}

/// Where and how to connect; shared by every connection of a run.
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) version: Version,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ws_path: String,
}

impl Target {
    /// Builds the target; `cafile` is required for tls and wss. TLS session resumption is
    /// off so that every connection pays for a full handshake.
    pub(crate) fn new(
        addr: SocketAddr,
        transport: Transport,
        version: Version,
        cafile: Option<&str>,
        server_name: &str,
        ws_path: &str,
    ) -> Res<Self> {
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address").into());
        }
        let tls = if transport.secure() {
            let cafile = cafile.ok_or("tls and wss need --cafile")?;
            let mut roots = RootCertStore::empty();
            let reader = BufReader::new(
                File::open(cafile).map_err(|e| format!("cannot open {cafile}: {e}"))?,
            );
            for cert in CertificateDer::pem_reader_iter(reader) {
                let cert = cert.map_err(|e| format!("{cafile}: {e}"))?;
                roots.add(cert)?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.resumption = Resumption::disabled();
            let name = ServerName::try_from(server_name.to_owned())
                .map_err(|e| format!("bad server name {server_name:?}: {e}"))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        Ok(Self {
            addr,
            transport,
            version,
            tls,
            ws_path: ws_path.to_owned(),
        })
    }

    /// Opens a connection and completes the TLS and WebSocket handshakes.
    pub(crate) fn open(&self, timeout: Duration) -> Res<Conn> {
        // A loopback connect completes or fails at once; no connect timeout is needed.
        let tcp =
            TcpStream::connect(self.addr).map_err(|e| format!("connect to {}: {e}", self.addr))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(timeout))?;
        match self.transport {
            Transport::Tcp => Ok(Conn::Tcp(tcp)),
            Transport::Tls => Ok(Conn::Tls(Box::new(self.tls(tcp)?))),
            Transport::Ws => Ok(Conn::Ws(Box::new(self.websocket(tcp)?))),
            Transport::Wss => {
                let tls = self.tls(tcp)?;
                Ok(Conn::Wss(Box::new(self.websocket(tls)?)))
            }
        }
    }

    fn tls(&self, mut tcp: TcpStream) -> Res<TlsStream> {
        let (config, name) = self.tls.as_ref().ok_or("no TLS configuration")?;
        let mut conn = ClientConnection::new(config.clone(), name.clone())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    fn websocket<S: Read + Write>(&self, stream: S) -> Res<WebSocket<S>> {
        let url = format!("ws://{}{}", self.addr, self.ws_path);
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        match tungstenite::client::client(request, stream) {
            Ok((ws, _response)) => Ok(ws),
            Err(e) => Err(format!("WebSocket handshake: {e}").into()),
        }
    }
}

/// One open connection.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Ws(Box<WebSocket<TcpStream>>),
    Wss(Box<WebSocket<TlsStream>>),
}

/// What a read produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Got {
    Data,
    Timeout,
    Eof,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Room a read wants at the end of the buffer.
const READ_ROOM: usize = 16 * 1024;
/// The largest the buffer grows to for throughput's sake (longer packets grow it further).
const BUF_MAX: usize = 256 * 1024;

fn ws_read<S: Read + Write>(ws: &mut WebSocket<S>, buf: &mut Vec<u8>, end: &mut usize) -> Res<Got> {
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => {
                if buf.len() - *end < data.len() {
                    buf.resize(*end + data.len(), 0);
                }
                buf[*end..*end + data.len()].copy_from_slice(&data);
                *end += data.len();
                return Ok(Got::Data);
            }
            Ok(Message::Close(_)) => return Ok(Got::Eof),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Ok(Got::Timeout),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(Got::Eof)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn stream_read<S: Read>(s: &mut S, buf: &mut [u8], end: &mut usize) -> Res<Got> {
    match s.read(&mut buf[*end..]) {
        Ok(0) => Ok(Got::Eof),
        Ok(n) => {
            *end += n;
            Ok(Got::Data)
        }
        Err(e) if is_timeout(&e) => Ok(Got::Timeout),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(Got::Eof),
        Err(e) => Err(e.into()),
    }
}

impl Conn {
    /// Sends `bytes` (one WebSocket message on ws and wss).
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Res<()> {
        match self {
            Self::Tcp(s) => s.write_all(bytes)?,
            Self::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()?;
            }
            Self::Ws(ws) => ws.send(Message::binary(bytes.to_vec()))?,
            Self::Wss(ws) => ws.send(Message::binary(bytes.to_vec()))?,
        }
        Ok(())
    }

    /// Writes what arrives into `buf` from `end` on (which it advances), waiting at most the
    /// read timeout. Streams read into the room left; WebSocket messages grow `buf` as needed.
    pub(crate) fn recv(&mut self, buf: &mut Vec<u8>, end: &mut usize) -> Res<Got> {
        match self {
            Self::Tcp(s) => stream_read(s, buf, end),
            Self::Tls(s) => stream_read(s.as_mut(), buf, end),
            Self::Ws(ws) => ws_read(ws, buf, end),
            Self::Wss(ws) => ws_read(ws, buf, end),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tcp(s) => s,
            Self::Tls(s) => s.get_ref(),
            Self::Ws(ws) => ws.get_ref(),
            Self::Wss(ws) => ws.get_ref().get_ref(),
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> Res<()> {
        self.tcp().set_read_timeout(Some(timeout))?;
        Ok(())
    }

    /// Bounds how long a write may block when the broker stops reading.
    pub(crate) fn set_write_timeout(&self, timeout: Duration) -> Res<()> {
        self.tcp().set_write_timeout(Some(timeout))?;
        Ok(())
    }
}

/// An MQTT connection: the transport and the bytes received but not yet framed
/// (`buf[pos..end]`).
pub(crate) struct Client {
    pub(crate) conn: Conn,
    pub(crate) version: Version,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Client {
    /// Connects, sends CONNECT asking for `session` and waits for a successful CONNACK.
    pub(crate) fn connect(
        target: &Target,
        client_id: &str,
        session: Session,
        timeout: Duration,
    ) -> Res<Self> {
        let conn = target.open(timeout)?;
        let mut client = Self {
            conn,
            version: target.version,
            buf: vec![0; READ_ROOM * 2],
            pos: 0,
            end: 0,
        };
        let mut out = Vec::new();
        mqtt::connect(&mut out, target.version, client_id, 60, session, 0);
        client.conn.send(&out)?;
        let frame = client.wait_for(mqtt::CONNACK, timeout)?;
        let code = mqtt::connack_code(client.body(&frame))?;
        if code != 0 {
            return Err(format!("CONNACK refused the connection: code {code}").into());
        }
        Ok(client)
    }

    /// Subscribes to `filter` and waits for the SUBACK.
    pub(crate) fn subscribe(&mut self, filter: &str, qos: u8, timeout: Duration) -> Res<()> {
        let mut out = Vec::new();
        mqtt::subscribe(&mut out, self.version, 1, filter, qos);
        self.conn.send(&out)?;
        let frame = self.wait_for(mqtt::SUBACK, timeout)?;
        let (_, code) = mqtt::suback(self.version, self.body(&frame))?;
        if code > 2 {
            return Err(format!("SUBACK refused {filter}: code {code:#x}").into());
        }
        Ok(())
    }

    /// Reads until a packet of `kind` arrives, discarding others.
    pub(crate) fn wait_for(&mut self, kind: u8, timeout: Duration) -> Res<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(frame) = self.next_frame()? {
                if frame.kind() == kind {
                    return Ok(frame);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out waiting for packet type {kind}").into());
            }
            if self.fill()? == Got::Eof {
                return Err(format!("connection closed waiting for packet type {kind}").into());
            }
        }
    }

    /// Reads more bytes (at most the read timeout's wait).
    pub(crate) fn fill(&mut self) -> Res<Got> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_ROOM {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() - self.end < READ_ROOM {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let got = self.conn.recv(&mut self.buf, &mut self.end)?;
        // A read that filled all the room asks for a bigger buffer next time.
        if self.end == self.buf.len() && self.buf.len() < BUF_MAX {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(got)
    }

    /// The next complete packet in the buffer; its body stays valid until the next `fill`.
    pub(crate) fn next_frame(&mut self) -> Res<Option<Frame>> {
        let found = mqtt::frame(&self.buf[..self.end], self.pos)?;
        if let Some(frame) = found {
            self.pos = frame.end;
        }
        Ok(found)
    }

    pub(crate) fn body(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.body_start..frame.end]
    }

    /// Sends DISCONNECT and waits (at most `timeout`) for the broker to close.
    pub(crate) fn disconnect(mut self, timeout: Duration) -> Res<()> {
        let mut out = Vec::new();
        mqtt::disconnect(&mut out);
        self.conn.send(&out)?;
        self.conn.set_read_timeout(timeout)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.end = 0;
            match self.conn.recv(&mut self.buf, &mut self.end) {
                Ok(Got::Data) | Ok(Got::Timeout) => {}
                Ok(Got::Eof) | Err(_) => break,
            }
        }
        Ok(())
    }
}
