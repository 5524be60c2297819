//! Byte transports under an MQTT connection: how bytes move between a socket and the
//! reactor's per-connection buffers.
//!
//! A transport is a stack of [`Layer`]s ending in a TCP socket: plain TCP, TLS over TCP,
//! WebSocket over TCP, and WebSocket over TLS over TCP, each either accepted by a listener
//! (the server side) or opened by this broker to another (the client side, for bridges).
//! The reactor sees one type,
//! [`Transport`], with the same operations whatever the stack, and the engine never sees the
//! transport at all: it gets MQTT bytes, and at most a user name taken from a certificate.
//!
//! This module must never parse MQTT, call the engine, read the clock or log: it reports
//! what happened and the reactor decides.

pub mod dtls;
pub mod pipe;
pub mod tcp;
pub mod tls;
pub mod tls_config;
pub mod ws;
pub mod x509;

use std::io;
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

pub use tcp::TcpTransport;
pub use tls::TlsTransport;
pub use ws::WsTransport;

/// Bytes asked of the socket per read call. Also the slack the reactor allows on top of the
/// frame it is assembling, so it bounds inbound buffering per connection.
pub const READ_CHUNK: usize = 16 * 1024;

/// Why a read call stopped. Bytes read before the stop are already appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The socket has nothing more for now; mio will report it readable again.
    WouldBlock,
    /// The caller's byte budget is used up; the socket may hold more.
    Full,
    /// The peer closed its side: no more bytes will ever arrive.
    Eof,
}

/// One layer of a transport stack, seen from the layer above it.
pub trait Layer {
    /// Appends at most `max` payload bytes to `buf`, reading until the layer below would
    /// block, the budget is used or the stream ends. Never returns `WouldBlock` while payload
    /// bytes are buffered inside the layer, so edge-triggered readiness loses nothing.
    fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome>;

    /// Takes a prefix of `data` and returns its length; `WouldBlock` when nothing can be
    /// taken now.
    fn write(&mut self, data: &[u8]) -> io::Result<usize>;

    /// Whether the layer holds bytes of its own (handshake answers, records, frames) that
    /// still have to reach the socket.
    fn wants_write(&self) -> bool;

    /// Writes the layer's own pending bytes until done or the socket would block.
    fn flush(&mut self) -> io::Result<()>;

    /// Queues the layer's goodbye (TLS close_notify, WebSocket close frame) and tries once
    /// to send it; the socket is closed right after.
    fn close(&mut self) {}

    /// The DER of the peer's verified end-entity certificate, once the handshake is done.
    fn peer_certificate(&self) -> Option<&[u8]> {
        None
    }
}

/// One connection's transport stack. The TLS and WebSocket states are boxed so a plain TCP
/// connection stays small. The same variants carry accepted connections and those this
/// broker opened (built by the `client_*` constructors); [`Transport::is_outbound`] tells
/// them apart.
#[derive(Debug)]
pub enum Transport {
    Tcp(TcpTransport),
    Tls(Box<TlsTransport<TcpTransport>>),
    Ws(Box<WsTransport<TcpTransport>>),
    Wss(Box<WsTransport<TlsTransport<TcpTransport>>>),
}

/// Calls `$body` with `$t` bound to the layer on top of the stack, whatever its type.
macro_rules! with_top {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            Transport::Tcp($t) => $body,
            Transport::Tls($t) => $body,
            Transport::Ws($t) => $body,
            Transport::Wss($t) => $body,
        }
    };
}

impl Transport {
    /// The client side of plain TCP over a socket from [`TcpTransport::connect`].
    pub fn client_tcp(tcp: TcpTransport) -> Self {
        Self::Tcp(tcp)
    }

    /// The client side of TLS over a socket from [`TcpTransport::connect`], to the server
    /// `server_name` (a DNS name or an IP address; see [`TlsTransport::client`]).
    pub fn client_tls(
        tcp: TcpTransport,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> io::Result<Self> {
        let tls = TlsTransport::client(tcp, config, server_name)?;
        Ok(Self::Tls(Box::new(tls)))
    }

    /// The client side of a WebSocket over plain TCP: the upgrade for `path` with
    /// `Host: host`, asking for the `mqtt` subprotocol (see [`WsTransport::client`]).
    pub fn client_ws(
        tcp: TcpTransport,
        host: &str,
        path: &str,
        packet_size_max: u32,
    ) -> io::Result<Self> {
        let ws = WsTransport::client(tcp, host, path, packet_size_max)?;
        Ok(Self::Ws(Box::new(ws)))
    }

    /// The client side of a WebSocket over TLS: the TLS session to `server_name`, and the
    /// upgrade for `path` with `server_name` as the `Host` header.
    pub fn client_wss(
        tcp: TcpTransport,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        path: &str,
        packet_size_max: u32,
    ) -> io::Result<Self> {
        let tls = TlsTransport::client(tcp, config, server_name)?;
        let ws = WsTransport::client(tls, server_name, path, packet_size_max)?;
        Ok(Self::Wss(Box::new(ws)))
    }

    /// True for a connection this broker opened (a bridge) rather than accepted.
    pub fn is_outbound(&self) -> bool {
        self.socket_ref().is_outbound()
    }

    /// Where the TCP connection under an outbound stack stands: see
    /// [`TcpTransport::connect_result`]. The layers above start their handshakes once it is
    /// established and the socket is flushed.
    pub fn connect_result(&self) -> io::Result<bool> {
        self.socket_ref().connect_result()
    }

    /// True once every handshake of the stack (TLS, WebSocket upgrade) is done.
    pub fn is_established(&self) -> bool {
        match self {
            Self::Tcp(_) => true,
            Self::Tls(t) => t.is_established(),
            Self::Ws(t) => t.is_established(),
            Self::Wss(t) => t.is_established(),
        }
    }

    /// A short name of the stack, for log lines: `tcp`, `tls`, `ws` or `wss`, whichever
    /// side opened the connection.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp",
            Self::Tls(_) => "tls",
            Self::Ws(_) => "ws",
            Self::Wss(_) => "wss",
        }
    }

    pub fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        with_top!(self, t => t.read(buf, max))
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        with_top!(self, t => t.write(data))
    }

    pub fn wants_write(&self) -> bool {
        with_top!(self, t => t.wants_write())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        with_top!(self, t => t.flush())
    }

    pub fn close(&mut self) {
        with_top!(self, t => t.close())
    }

    pub fn peer_certificate(&self) -> Option<&[u8]> {
        with_top!(self, t => t.peer_certificate())
    }

    fn socket_ref(&self) -> &TcpTransport {
        match self {
            Self::Tcp(t) => t,
            Self::Tls(t) => t.sock(),
            Self::Ws(t) => t.lower(),
            Self::Wss(t) => t.lower().sock(),
        }
    }

    fn socket(&mut self) -> &mut TcpTransport {
        match self {
            Self::Tcp(t) => t,
            Self::Tls(t) => t.sock_mut(),
            Self::Ws(t) => t.lower_mut(),
            Self::Wss(t) => t.lower_mut().sock_mut(),
        }
    }
}

// The socket at the bottom of every stack is what the poller watches; delegating to it
// keeps the reactor unaware of the layers above.
impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.socket().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.socket().deregister(registry)
    }
}

#[cfg(test)]
#[path = "tests/client.rs"]
mod client_tests;
