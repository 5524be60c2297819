//! Non-blocking MQTT connections over plain TCP for the generator's mio loops (the flow
//! scenarios in `evflow.rs`, the idle connections in `conns.rs`): a socket, the bytes queued
//! for it, the bytes read from it but not yet framed, and the set-up handshake as a state
//! machine. Nothing here blocks or sleeps: a loop calls `on_writable` and `read_frames` when
//! mio reports readiness, and both work until `WouldBlock`. Sockets are registered once for
//! reading and writing (mio is edge-triggered), so a write that would block simply waits for
//! the next writable event.
//!
//! Set-up, per connection:
//!
//! | phase      | event                 | action                   | next        |
//! |------------|-----------------------|--------------------------|-------------|
//! | Connecting | writable, connected   | queue CONNECT            | Connack     |
//! | Connack    | CONNACK success       | queue SUBSCRIBE, if any  | Suback      |
//! | Connack    | CONNACK success       | (no subscription)        | Ready       |
//! | Suback     | SUBACK granted        |                          | Ready       |
//! | Ready      | (the scenario's own packets)                     |             |
//! | any        | `close()`             | queue DISCONNECT         | Closing     |
//! | Closing    | end of stream         |                          | Closed      |

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use crate::mqtt::{self, Connack, Version};
use crate::stats;
use crate::Res;

/// Where a connection is in its life; see the table in the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Connack,
    Suback,
    Ready,
    Closing,
    Closed,
}

/// Bytes a read asks for at once, the size of the loop's scratch buffer.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// Opens a non-blocking TCP connection to `addr`, from the local address `source` when
/// given: several local addresses hold more connections to one broker port than the one
/// address's ephemeral ports allow. The caller chooses the source port too: asking the
/// kernel for one (port 0) searches the ports already bound, which grows slow with tens of
/// thousands of them.
pub(crate) fn open(addr: SocketAddr, source: Option<SocketAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        return Ok(stream);
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&source.into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Linux's "operation now in progress": the answer of a non-blocking connect
/// (`ErrorKind::InProgress` is not stable yet).
const EINPROGRESS: i32 = 115;

/// One connection of a loop.
pub(crate) struct Peer {
    pub(crate) sock: TcpStream,
    pub(crate) phase: Phase,
    /// Bytes queued for the socket; `tx[tx_pos..]` is not written yet.
    tx: Vec<u8>,
    tx_pos: usize,
    /// The start of a packet whose rest has not arrived yet.
    partial: Vec<u8>,
    /// The CONNECT to send once connected, and the SUBSCRIBE after the CONNACK, if any.
    connect: Vec<u8>,
    subscribe: Vec<u8>,
    /// What the broker's CONNACK allowed.
    pub(crate) connack: Option<Connack>,
}

impl Peer {
    /// A peer whose TCP connect is under way; `connect` and `subscribe` (may be empty) are
    /// the encoded packets of its set-up.
    pub(crate) fn new(sock: TcpStream, connect: Vec<u8>, subscribe: Vec<u8>) -> Self {
        Self {
            sock,
            phase: Phase::Connecting,
            tx: Vec::new(),
            tx_pos: 0,
            partial: Vec::new(),
            connect,
            subscribe,
            connack: None,
        }
    }

    /// True while the set-up is not finished.
    pub(crate) fn opening(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Connack | Phase::Suback
        )
    }

    /// The buffer to append packets to; `flush` sends them.
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.tx
    }

    /// Bytes queued and not yet accepted by the socket.
    pub(crate) fn unsent(&self) -> usize {
        self.tx.len() - self.tx_pos
    }

    /// Writes queued bytes until done or `WouldBlock` (then the next writable event resumes).
    pub(crate) fn flush(&mut self) -> Res<()> {
        if self.phase == Phase::Connecting {
            return Ok(());
        }
        while self.tx_pos < self.tx.len() {
            match self.sock.write(&self.tx[self.tx_pos..]) {
                Ok(0) => return Err("the broker's socket accepts no more bytes".into()),
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}").into()),
            }
        }
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
        }
        Ok(())
    }

    /// On a writable event: completes the TCP connect (then queues CONNECT) and flushes.
    /// Spurious events, before the connect completes, change nothing.
    pub(crate) fn on_writable(&mut self) -> Res<()> {
        if self.phase == Phase::Connecting {
            if let Some(e) = self.sock.take_error()? {
                return Err(format!("connect: {e}").into());
            }
            match self.sock.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(format!("connect: {e}").into()),
            }
            self.phase = Phase::Connack;
            let connect = std::mem::take(&mut self.connect);
            self.tx.extend_from_slice(&connect);
        }
        self.flush()
    }

    /// Reads until `WouldBlock` and hands every complete packet to `handle(peer, first byte,
    /// body, time of the read in ns)`. Returns false at the end of the stream.
    pub(crate) fn read_frames<F>(&mut self, scratch: &mut [u8], mut handle: F) -> Res<bool>
    where
        F: FnMut(&mut Self, u8, &[u8], u64) -> Res<()>,
    {
        if self.phase == Phase::Connecting {
            return Ok(true);
        }
        let mut partial = std::mem::take(&mut self.partial);
        let result = loop {
            let n = match self.sock.read(scratch) {
                Ok(0) => break Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(true),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break Ok(false),
                Err(e) => break Err(format!("read: {e}").into()),
            };
            let now = stats::now_ns();
            let from_scratch = partial.is_empty();
            if !from_scratch {
                partial.extend_from_slice(&scratch[..n]);
            }
            let data: &[u8] = if from_scratch {
                &scratch[..n]
            } else {
                &partial
            };
            let mut at = 0;
            while let Some(f) = mqtt::frame(data, at)? {
                handle(self, f.first, &data[f.body_start..f.end], now)?;
                at = f.end;
            }
            if from_scratch {
                partial.extend_from_slice(&scratch[at..n]);
            } else {
                partial.drain(..at);
            }
        };
        self.partial = partial;
        result
    }

    /// Takes a set-up packet (CONNACK or SUBACK) in the Connack and Suback phases.
    pub(crate) fn handshake(&mut self, version: Version, first: u8, body: &[u8]) -> Res<()> {
        match (self.phase, first >> 4) {
            (Phase::Connack, mqtt::CONNACK) => {
                let ack = mqtt::connack(version, body)?;
                if ack.code != 0 {
                    return Err(format!("CONNACK refused the connection: code {}", ack.code).into());
                }
                self.connack = Some(ack);
                if self.subscribe.is_empty() {
                    self.phase = Phase::Ready;
                } else {
                    let subscribe = std::mem::take(&mut self.subscribe);
                    self.tx.extend_from_slice(&subscribe);
                    self.phase = Phase::Suback;
                }
            }
            (Phase::Suback, mqtt::SUBACK) => {
                let (_, code) = mqtt::suback(version, body)?;
                if code > 2 {
                    return Err(format!("SUBACK refused the subscription: code {code:#x}").into());
                }
                self.phase = Phase::Ready;
            }
            (_, mqtt::DISCONNECT) => return Err("the broker sent DISCONNECT".into()),
            (phase, kind) => {
                return Err(format!("unexpected packet type {kind} in phase {phase:?}").into())
            }
        }
        self.flush()
    }

    /// Queues DISCONNECT (after anything still queued) and waits for the broker to close.
    pub(crate) fn close(&mut self) -> Res<()> {
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return Ok(());
        }
        if self.phase == Phase::Connecting {
            self.phase = Phase::Closed;
            return Ok(());
        }
        mqtt::disconnect(&mut self.tx);
        self.phase = Phase::Closing;
        self.flush()
    }
}
