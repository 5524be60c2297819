//! Traces: one JSON line per event of a run (connections opened and closed, MQTT packets in
//! and out and MQTT-SN messages to and from UDP peers with their decoded fields and their
//! bytes, timers falling due, store transactions, the virtual clock's steps), for a test to
//! compare two runs, to replay a run against a broker, or to read what happened.
//!
//! This module formats events and is pure; `writer` puts the lines in the trace file. A line
//! names connections by their stable number (never an OS port) and packets, not reads, so
//! that two runs of the same scenario in deterministic mode give the same file byte for
//! byte.

pub mod mask;
pub mod reader;
pub mod replay;
pub mod writer;

use std::fmt::Write as _;

use serde::Serialize;

use crate::clock::Millis;
use crate::codec::mqtt::Packet;
use crate::codec::mqttsn::{self, Frame};
use crate::engine::event::ConnId;

/// The format version, the first line of every trace.
pub const FORMAT_VERSION: u32 = 1;

/// One event of a trace.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts: the format version and the seed of deterministic mode.
    Start {
        seed: Option<u64>,
    },
    /// A connection was accepted on this listener (its index in the configuration).
    Opened {
        conn: ConnId,
        listener: u32,
    },
    Closed {
        conn: ConnId,
        reason: &'a str,
    },
    /// A packet came in (`bytes`: its whole frame).
    PacketIn {
        conn: ConnId,
        packet: &'a Packet,
        bytes: &'a [u8],
    },
    /// A packet went out (`bytes`: its encoding).
    PacketOut {
        conn: ConnId,
        packet: &'a Packet,
        bytes: &'a [u8],
    },
    /// The virtual clock moved forward.
    ClockAdvanced {
        by_ms: u64,
    },
    /// A timer fell due: `timer` names it; `conn`, `listener` or `bridge` what it is for.
    Timer {
        timer: &'static str,
        conn: Option<ConnId>,
        listener: Option<u32>,
        bridge: Option<&'a str>,
    },
    /// A fault rule acted on an outgoing `packet` of `conn`: `fault` is its kind (`drop`:
    /// not sent; `close_after`: the connection is cut after it).
    Fault {
        conn: ConnId,
        fault: &'static str,
        packet: &'static str,
    },
    /// The store wrote `changes` changes in one transaction, flushed to disk or not.
    Commit {
        changes: usize,
        synced: bool,
    },
    /// A datagram from an MQTT-SN peer (after DTLS, if any): `peer` numbers peers in the
    /// order they were first heard from, never by address.
    DatagramIn {
        listener: u32,
        peer: u64,
        bytes: &'a [u8],
    },
    /// A datagram to an MQTT-SN peer (before DTLS, if any).
    DatagramOut {
        listener: u32,
        peer: u64,
        bytes: &'a [u8],
    },
}

#[derive(Serialize)]
struct Line<'a> {
    t: u64,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timer: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    synced: Option<bool>,
}

impl Event<'_> {
    /// The event as one JSON line (with its newline), at time `now`.
    pub fn to_line(&self, now: Millis) -> String {
        let mut line = Line {
            t: now.0,
            event: "",
            conn: None,
            version: None,
            seed: None,
            listener: None,
            reason: None,
            packet: None,
            fields: None,
            hex: None,
            by_ms: None,
            timer: None,
            bridge: None,
            fault: None,
            peer: None,
            changes: None,
            synced: None,
        };
        match self {
            Self::Start { seed } => {
                line.event = "start";
                line.version = Some(FORMAT_VERSION);
                line.seed = *seed;
            }
            Self::Opened { conn, listener } => {
                line.event = "opened";
                line.conn = Some(conn.seq());
                line.listener = Some(*listener);
            }
            Self::Closed { conn, reason } => {
                line.event = "closed";
                line.conn = Some(conn.seq());
                line.reason = Some(reason);
            }
            Self::PacketIn {
                conn,
                packet,
                bytes,
            }
            | Self::PacketOut {
                conn,
                packet,
                bytes,
            } => {
                line.event = if matches!(self, Self::PacketIn { .. }) {
                    "in"
                } else {
                    "out"
                };
                line.conn = Some(conn.seq());
                line.packet = Some(packet.name());
                line.fields = Some(format!("{packet:?}"));
                line.hex = Some(hex(bytes));
            }
            Self::ClockAdvanced { by_ms } => {
                line.event = "clock";
                line.by_ms = Some(*by_ms);
            }
            Self::Timer {
                timer,
                conn,
                listener,
                bridge,
            } => {
                line.event = "timer";
                line.timer = Some(timer);
                line.conn = conn.map(|c| c.seq());
                line.listener = *listener;
                line.bridge = *bridge;
            }
            Self::Fault {
                conn,
                fault,
                packet,
            } => {
                line.event = "fault";
                line.conn = Some(conn.seq());
                line.packet = Some(packet);
                line.fault = Some(fault);
            }
            Self::Commit { changes, synced } => {
                line.event = "commit";
                line.changes = Some(*changes);
                line.synced = Some(*synced);
            }
            Self::DatagramIn {
                listener,
                peer,
                bytes,
            }
            | Self::DatagramOut {
                listener,
                peer,
                bytes,
            } => {
                line.event = if matches!(self, Self::DatagramIn { .. }) {
                    "datagram_in"
                } else {
                    "datagram_out"
                };
                line.listener = Some(*listener);
                line.peer = Some(*peer);
                // What does not decode (a datagram the gateway drops) keeps its bytes.
                match mqttsn::decode(bytes) {
                    Ok(frame) => {
                        line.packet = Some(match &frame {
                            Frame::Message(m) => m.name(),
                            Frame::Encapsulated(_) => "ENCAPSULATED",
                        });
                        line.fields = Some(format!("{frame:?}"));
                    }
                    Err(e) => line.fields = Some(format!("undecodable: {e:?}")),
                }
                line.hex = Some(hex(bytes));
            }
        }
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_the_fields_of_their_event() {
        let start = Event::Start { seed: Some(7) }.to_line(Millis(0));
        assert_eq!(
            start,
            "{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":7}\n"
        );
        let ping = Event::PacketIn {
            conn: ConnId(3),
            packet: &Packet::PingReq,
            bytes: &[0xC0, 0x00],
        }
        .to_line(Millis(1500));
        assert_eq!(
            ping,
            "{\"t\":1500,\"event\":\"in\",\"conn\":3,\"packet\":\"PINGREQ\",\
             \"fields\":\"PingReq\",\"hex\":\"c000\"}\n"
        );
        let closed = Event::Closed {
            conn: ConnId(3),
            reason: "bye",
        }
        .to_line(Millis(2));
        assert_eq!(
            closed,
            "{\"t\":2,\"event\":\"closed\",\"conn\":3,\"reason\":\"bye\"}\n"
        );
    }

    #[test]
    fn timers_commits_and_datagrams_have_lines_of_their_own() {
        let timer = Event::Timer {
            timer: "keep_alive",
            conn: Some(ConnId(4)),
            listener: None,
            bridge: None,
        };
        assert_eq!(
            timer.to_line(Millis(9)),
            "{\"t\":9,\"event\":\"timer\",\"conn\":4,\"timer\":\"keep_alive\"}\n"
        );
        let commit = Event::Commit {
            changes: 3,
            synced: true,
        };
        assert_eq!(
            commit.to_line(Millis(9)),
            "{\"t\":9,\"event\":\"commit\",\"changes\":3,\"synced\":true}\n"
        );
        let fault = Event::Fault {
            conn: ConnId(2),
            fault: "drop",
            packet: "PUBLISH",
        };
        assert_eq!(
            fault.to_line(Millis(1)),
            "{\"t\":1,\"event\":\"fault\",\"conn\":2,\"packet\":\"PUBLISH\",\
             \"fault\":\"drop\"}\n"
        );
        let pingreq = Event::DatagramIn {
            listener: 2,
            peer: 1,
            bytes: &[0x02, 0x16],
        };
        assert_eq!(
            pingreq.to_line(Millis(0)),
            "{\"t\":0,\"event\":\"datagram_in\",\"listener\":2,\"peer\":1,\
             \"packet\":\"PINGREQ\",\"fields\":\"Message(PingReq { client_id: None })\",\
             \"hex\":\"0216\"}\n"
        );
        // A datagram that does not decode keeps its bytes and says why.
        let garbage = Event::DatagramOut {
            listener: 2,
            peer: 0,
            bytes: &[0x05],
        }
        .to_line(Millis(0));
        assert!(garbage.contains("\"event\":\"datagram_out\",\"listener\":2,\"peer\":0"));
        assert!(garbage.contains("\"fields\":\"undecodable: "), "{garbage}");
        assert!(garbage.contains("\"hex\":\"05\""), "{garbage}");
    }
}
