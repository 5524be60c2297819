//! Byte transports under an MQTT connection: how bytes move between a socket and the
//! reactor's per-connection buffers.
//!
//! A transport is a stack of layers ending in a socket. Today the only stack is plain TCP;
//! TLS and WebSocket will wrap a [`tcp::TcpTransport`] as further variants of [`Transport`],
//! so the reactor keeps calling the same three operations: [`Transport::read`],
//! [`Transport::write`] and the mio [`Source`] registration.
//!
//! This module must never parse MQTT, call the engine, read the clock or log: it reports
//! what happened and the reactor decides.

pub mod tcp;

use std::io;

use mio::event::Source;
use mio::{Interest, Registry, Token};

pub use tcp::TcpTransport;

/// Bytes asked of the socket per read call. Also the slack the reactor allows on top of the
/// frame it is assembling, so it bounds inbound buffering per connection.
pub const READ_CHUNK: usize = 16 * 1024;

/// Why a [`Transport::read`] call stopped. Bytes read before the stop are already appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The socket has nothing more for now; mio will report it readable again.
    WouldBlock,
    /// The caller's byte budget is used up; the socket may hold more.
    Full,
    /// The peer closed its side: no more bytes will ever arrive.
    Eof,
}

/// One connection's transport stack.
#[derive(Debug)]
pub enum Transport {
    Tcp(TcpTransport),
}

impl Transport {
    /// Appends at most `max` bytes to `buf`, reading until the socket would block, the budget
    /// is used or the stream ends. Interrupted reads are retried; any other error is returned.
    pub fn read(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<ReadOutcome> {
        match self {
            Self::Tcp(t) => t.read(buf, max),
        }
    }

    /// Writes a prefix of `data` and returns its length. `WouldBlock` means no byte could be
    /// written now; interrupted writes are retried.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(t) => t.write(data),
        }
    }
}

// Delegating the registration keeps the reactor unaware of which socket sits at the bottom
// of the stack.
impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(t) => t.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Tcp(t) => t.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(t) => t.deregister(registry),
        }
    }
}
