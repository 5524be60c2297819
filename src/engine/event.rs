//! The engine's whole surface: what the reactor tells it ([`Input`]) and what it asks the
//! reactor to do ([`Action`]).

use std::fmt;
use std::rc::Rc;

use crate::codec::mqtt::{DecodeError, Packet, ProtocolVersion};

pub use super::conn_id::ConnId;

/// Who is at the other end of a connection, for logs and the API: an IPv4 address and port
/// held in place (most peers: no allocation, one word), or any other name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    V4 {
        ip: [u8; 4],
        port: u16,
    },
    /// A thin pointer, so that a `Peer` stays two words.
    Name(Rc<String>),
}

impl Peer {
    pub fn name(name: &str) -> Self {
        Self::Name(Rc::new(name.to_owned()))
    }
}

impl From<&str> for Peer {
    fn from(name: &str) -> Self {
        Self::name(name)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4 {
                ip: [a, b, c, d],
                port,
            } => write!(f, "{a}.{b}.{c}.{d}:{port}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Index of a listener in the configuration's listener list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(pub u32);

/// Byte counters the reactor reports once per turn, for `$SYS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// Inputs and actions are moved once from producer to consumer and never stored in bulk,
/// so their size is not worth an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// A transport connection was accepted. `peer` names the other end, for logs and the API.
    Opened {
        conn: ConnId,
        listener: ListenerId,
        peer: Peer,
    },
    /// The transport authenticated the peer (a TLS client certificate whose identity the
    /// listener uses as user name). Comes after `Opened` and before any packet.
    PeerIdentity { conn: ConnId, username: Rc<str> },
    /// One whole packet arrived and decoded.
    Packet { conn: ConnId, packet: Packet },
    /// The peer's bytes could not be decoded. The engine answers as the spec requires
    /// (CONNACK or DISCONNECT with the reason in v5, a plain close in 3.1.1) and closes.
    DecodeError { conn: ConnId, error: DecodeError },
    /// The transport is gone (end of stream, I/O error, or a close the engine asked for).
    /// `reason` is a short text for the log.
    Closed { conn: ConnId, reason: &'static str },
    /// Bytes counted by the reactor since the previous report.
    Traffic(Traffic),
    /// Time passed: fire whatever timers are due at `now`.
    Tick,
    /// Clean shutdown: v5 clients get DISCONNECT 0x8B, every connection is closed.
    Shutdown,
}

/// A request of a client to the broker itself, on a `$CONTROL/...` topic (deterministic
/// mode only), for the reactor to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Move the virtual clock forward by this many milliseconds.
    AdvanceClock(u64),
}

/// Something that happened to a client, for webhooks (recorded only when asked for, see
/// [`crate::engine::Engine::enable_notices`]). The broker's own clients are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Connected {
        client_id: Rc<str>,
        peer: Peer,
        version: ProtocolVersion,
        username: Option<Rc<str>>,
    },
    Disconnected {
        client_id: Rc<str>,
        reason: String,
    },
    /// The filters granted, with their QoS.
    Subscribed {
        client_id: Rc<str>,
        filters: Vec<(String, u8)>,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// Encode `packet` for the connection's protocol version and queue it for writing.
    Send { conn: ConnId, packet: Packet },
    /// The connection's protocol version is now known (sent before its CONNACK).
    SetVersion {
        conn: ConnId,
        version: ProtocolVersion,
    },
    /// Inbound packets larger than this many bytes must be refused with
    /// [`crate::codec::mqtt::ErrorKind::PacketTooLarge`].
    SetMaxPacketSize { conn: ConnId, bytes: u32 },
    /// Flush what is queued for the connection, then close it. No further input is read.
    Close { conn: ConnId },
}
