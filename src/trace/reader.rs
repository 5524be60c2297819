//! Reading a trace back: the file's JSON lines become typed [`Event`]s, checked line by line,
//! so that `culex replay` (and tests) work on values, never on text.
//!
//! Owns the one rule set of what a valid trace of [`super::FORMAT_VERSION`] is:
//! - the first line is a `start` event with `"version": 1` (another version is refused with
//!   the version named, anything else is "not a culex trace");
//! - every line is one JSON object with `t` (ms, never decreasing) and a known `event`, and
//!   the fields that event needs (`conn`, `listener`, `peer`, `packet`, `hex`, `reason`,
//!   `by_ms`, `timer`, `fault`, `changes`, `synced`); unknown extra keys are ignored and
//!   `fields` (the decoded form, for people) is optional;
//! - `hex` holds the whole frame as an even number of hexadecimal digits;
//! - a connection is `opened` once before its packets and `closed` at most once, after them;
//! - lines holding only white space are skipped.
//!
//! Every failure is a [`TraceError`] naming the file and the line. Besides the writer, this
//! is the only file access of tracing ([`read`]); [`parse`] is pure. It must never decode
//! packets (the protocol version is the replay's to follow) nor touch a socket.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::FORMAT_VERSION;

/// A trace that failed to read: `file:line: message` (`file: message` when no line is at
/// fault).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub file: String,
    /// 1-based; 0 when the whole file is at fault (it cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for TraceError {}

/// A packet as recorded: the type name the broker wrote, its decoded form (text, for
/// people) and its bytes (one whole frame, or one datagram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub name: String,
    pub fields: Option<String>,
    pub bytes: Vec<u8>,
}

/// One event after the `start` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A TCP or WebSocket connection accepted on listener `listener` (configuration index).
    Opened {
        conn: u64,
        listener: u32,
    },
    /// An MQTT packet from the client of `conn`.
    In {
        conn: u64,
        packet: Recorded,
    },
    /// An MQTT packet the broker sent on `conn`.
    Out {
        conn: u64,
        packet: Recorded,
    },
    Closed {
        conn: u64,
        reason: String,
    },
    /// The virtual clock moved forward.
    Clock {
        by_ms: u64,
    },
    /// A broker timer fired (`keep_alive`, `session_expiry`, ...; kept as written).
    Timer {
        timer: String,
        conn: Option<u64>,
    },
    /// A fault rule acted on an outgoing packet of `conn` (`drop`, `close_after`).
    Fault {
        conn: u64,
        fault: String,
        packet: String,
    },
    /// A store transaction.
    Commit {
        changes: u64,
        synced: bool,
    },
    /// An MQTT-SN message from UDP peer `peer` (a stable number, not a port).
    DatagramIn {
        listener: u32,
        peer: u64,
        packet: Recorded,
    },
    /// An MQTT-SN message the gateway sent to `peer`.
    DatagramOut {
        listener: u32,
        peer: u64,
        packet: Recorded,
    },
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the file.
    pub line: usize,
    /// Milliseconds since the start (virtual in deterministic mode).
    pub t: u64,
    pub event: Event,
}

/// A whole trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The name the file was read by, for messages.
    pub file: String,
    /// The seed of deterministic mode, when the run had one.
    pub seed: Option<u64>,
    pub records: Vec<Record>,
}

/// The reasons of a `closed` event that mean the client went away (end of stream, or a
/// socket error such as a reset); every other reason is the broker's own decision.
pub const CLIENT_CLOSE_REASONS: [&str; 2] = ["connection closed by peer", "I/O error"];

/// Whether a `closed` reason means the client closed the connection (see
/// [`CLIENT_CLOSE_REASONS`]).
pub fn closed_by_client(reason: &str) -> bool {
    CLIENT_CLOSE_REASONS.contains(&reason)
}

/// Reads and checks the trace at `path`; messages name the file as `path` displays.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse(&file, &text),
            Err(e) => {
                let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                Err(TraceError {
                    file,
                    line,
                    message: "malformed line: not UTF-8 text".to_owned(),
                })
            }
        },
        Err(e) => Err(TraceError {
            file,
            line: 0,
            message: format!("cannot read the trace: {e}"),
        }),
    }
}

/// The keys a line may have; which ones an event needs is checked by [`Line::event`].
#[derive(Deserialize)]
struct Line {
    t: Option<u64>,
    event: Option<String>,
    version: Option<u64>,
    seed: Option<u64>,
    conn: Option<u64>,
    listener: Option<u32>,
    peer: Option<u64>,
    reason: Option<String>,
    packet: Option<String>,
    fields: Option<String>,
    hex: Option<String>,
    by_ms: Option<u64>,
    timer: Option<String>,
    fault: Option<String>,
    changes: Option<u64>,
    synced: Option<bool>,
}

/// Where a connection stands while the lines are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Open,
    Closed,
}

/// Parses and checks the text of a trace; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Result<Trace, TraceError> {
    let fail = |line: usize, message: String| TraceError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first)) = lines.next() else {
        return Err(fail(1, "not a culex trace: the file is empty".to_owned()));
    };
    let start = match serde_json::from_str::<Line>(first) {
        Ok(l) if l.event.as_deref() == Some("start") => l,
        _ => {
            return Err(fail(
                first_no,
                "not a culex trace: the first line must be a start event".to_owned(),
            ))
        }
    };
    match start.version {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(fail(
                first_no,
                format!(
                    "trace format version {v} is not supported (this culex reads version \
                     {FORMAT_VERSION})"
                ),
            ))
        }
        None => return Err(fail(first_no, "start event without \"version\"".to_owned())),
    }
    let mut records = Vec::new();
    let mut conns = std::collections::BTreeMap::new();
    let mut last_t = start.t.unwrap_or(0);
    for (no, text) in lines {
        let line: Line =
            serde_json::from_str(text).map_err(|e| fail(no, format!("malformed line: {e}")))?;
        let event = line.event().map_err(|m| fail(no, m))?;
        let t = line
            .t
            .ok_or_else(|| fail(no, "an event without \"t\"".to_owned()))?;
        if t < last_t {
            return Err(fail(no, format!("time goes back: t {t} after t {last_t}")));
        }
        last_t = t;
        check_conn(&mut conns, &event).map_err(|m| fail(no, m))?;
        records.push(Record { line: no, t, event });
    }
    Ok(Trace {
        file: file.to_owned(),
        seed: start.seed,
        records,
    })
}

/// Checks the life of a connection: opened once, packets and close only while open.
fn check_conn(
    conns: &mut std::collections::BTreeMap<u64, ConnState>,
    event: &Event,
) -> Result<(), String> {
    match event {
        Event::Opened { conn, .. } if conns.insert(*conn, ConnState::Open).is_some() => {
            return Err(format!("conn {conn} is opened a second time"));
        }
        Event::In { conn, .. } | Event::Out { conn, .. } | Event::Closed { conn, .. } => {
            match conns.get(conn) {
                None => return Err(format!("conn {conn} was never opened")),
                Some(ConnState::Closed) => return Err(format!("conn {conn} is already closed")),
                Some(ConnState::Open) => {}
            }
            if matches!(event, Event::Closed { .. }) {
                conns.insert(*conn, ConnState::Closed);
            }
        }
        _ => {}
    }
    Ok(())
}

impl Line {
    /// The event this line holds, or what is wrong with it.
    fn event(&self) -> Result<Event, String> {
        let Some(kind) = self.event.as_deref() else {
            return Err("a line without \"event\"".to_owned());
        };
        let need = |name: &str| format!("{kind:?} event without {name:?}");
        let conn = || self.conn.ok_or_else(|| need("conn"));
        let listener = || self.listener.ok_or_else(|| need("listener"));
        let peer = || self.peer.ok_or_else(|| need("peer"));
        let packet = || -> Result<Recorded, String> {
            let name = self.packet.clone().ok_or_else(|| need("packet"))?;
            let hex = self.hex.as_deref().ok_or_else(|| need("hex"))?;
            let bytes = unhex(hex).map_err(|e| format!("{kind:?} event: bad \"hex\": {e}"))?;
            Ok(Recorded {
                name,
                fields: self.fields.clone(),
                bytes,
            })
        };
        Ok(match kind {
            "start" => return Err("a second start event".to_owned()),
            "opened" => Event::Opened {
                conn: conn()?,
                listener: listener()?,
            },
            "in" => Event::In {
                conn: conn()?,
                packet: packet()?,
            },
            "out" => Event::Out {
                conn: conn()?,
                packet: packet()?,
            },
            "closed" => Event::Closed {
                conn: conn()?,
                reason: self.reason.clone().ok_or_else(|| need("reason"))?,
            },
            "clock" => Event::Clock {
                by_ms: self.by_ms.ok_or_else(|| need("by_ms"))?,
            },
            "timer" => Event::Timer {
                timer: self.timer.clone().ok_or_else(|| need("timer"))?,
                conn: self.conn,
            },
            "fault" => Event::Fault {
                conn: conn()?,
                fault: self.fault.clone().ok_or_else(|| need("fault"))?,
                packet: self.packet.clone().ok_or_else(|| need("packet"))?,
            },
            "commit" => Event::Commit {
                changes: self.changes.ok_or_else(|| need("changes"))?,
                synced: self.synced.ok_or_else(|| need("synced"))?,
            },
            "datagram_in" => Event::DatagramIn {
                listener: listener()?,
                peer: peer()?,
                packet: packet()?,
            },
            "datagram_out" => Event::DatagramOut {
                listener: listener()?,
                peer: peer()?,
                packet: packet()?,
            },
            other => return Err(format!("unknown event {other:?}")),
        })
    }
}

/// Hexadecimal digits (either case) to bytes: at least one byte, an even count of digits.
fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("empty".to_owned());
    }
    if !text.len().is_multiple_of(2) {
        return Err(format!("an odd number of digits ({})", text.len()));
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} is not a hexadecimal digit", char::from(c))),
        }
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(digit(*hi)? << 4 | digit(*lo)?),
            _ => Err("an odd number of digits".to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":7}\n";

    fn error(text: &str) -> String {
        match parse("trace.jsonl", text) {
            Err(e) => e.to_string(),
            Ok(t) => panic!("accepted: {t:?}"),
        }
    }

    fn events(body: &str) -> Vec<Event> {
        let text = format!("{START}{body}");
        match parse("trace.jsonl", &text) {
            Ok(t) => t.records.into_iter().map(|r| r.event).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_event_kind_of_version_1_reads() {
        let body = "{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}\n\
            {\"t\":5,\"event\":\"in\",\"conn\":1,\"packet\":\"PINGREQ\",\"fields\":\"PingReq\",\
             \"hex\":\"C000\"}\n\
            {\"t\":5,\"event\":\"out\",\"conn\":1,\"packet\":\"PINGRESP\",\"hex\":\"d000\"}\n\
            \n\
            {\"t\":9,\"event\":\"fault\",\"conn\":1,\"packet\":\"PUBLISH\",\"fault\":\"drop\"}\n\
            {\"t\":9,\"event\":\"closed\",\"conn\":1,\"reason\":\"closed by the broker\"}\n\
            {\"t\":9,\"event\":\"clock\",\"by_ms\":1000}\n\
            {\"t\":9,\"event\":\"timer\",\"timer\":\"keep_alive\",\"conn\":1}\n\
            {\"t\":9,\"event\":\"timer\",\"timer\":\"sys\"}\n\
            {\"t\":9,\"event\":\"commit\",\"changes\":3,\"synced\":true}\n\
            {\"t\":9,\"event\":\"datagram_in\",\"listener\":2,\"peer\":1,\"packet\":\"PINGREQ\",\
             \"fields\":\"x\",\"hex\":\"0216\",\"future\":[1]}\n\
            {\"t\":9,\"event\":\"datagram_out\",\"listener\":2,\"peer\":1,\"packet\":\"PINGRESP\",\
             \"hex\":\"0217\"}\n";
        let got = events(body);
        let ping = |name: &str, fields: Option<&str>, bytes: &[u8]| Recorded {
            name: name.to_owned(),
            fields: fields.map(str::to_owned),
            bytes: bytes.to_vec(),
        };
        assert_eq!(
            got,
            vec![
                Event::Opened {
                    conn: 1,
                    listener: 0
                },
                Event::In {
                    conn: 1,
                    packet: ping("PINGREQ", Some("PingReq"), &[0xC0, 0])
                },
                Event::Out {
                    conn: 1,
                    packet: ping("PINGRESP", None, &[0xD0, 0])
                },
                Event::Fault {
                    conn: 1,
                    fault: "drop".to_owned(),
                    packet: "PUBLISH".to_owned()
                },
                Event::Closed {
                    conn: 1,
                    reason: "closed by the broker".to_owned()
                },
                Event::Clock { by_ms: 1000 },
                Event::Timer {
                    timer: "keep_alive".to_owned(),
                    conn: Some(1)
                },
                Event::Timer {
                    timer: "sys".to_owned(),
                    conn: None
                },
                Event::Commit {
                    changes: 3,
                    synced: true
                },
                Event::DatagramIn {
                    listener: 2,
                    peer: 1,
                    packet: ping("PINGREQ", Some("x"), &[2, 0x16])
                },
                Event::DatagramOut {
                    listener: 2,
                    peer: 1,
                    packet: ping("PINGRESP", None, &[2, 0x17])
                },
            ]
        );
        let trace = parse("x", START).unwrap();
        assert_eq!(trace.seed, Some(7));
        assert!(trace.records.is_empty());
    }

    #[test]
    fn line_numbers_count_every_line() {
        let text = format!("{START}\n{{\"t\":1,\"event\":\"clock\",\"by_ms\":1}}\n");
        let trace = parse("x", &text).unwrap();
        assert_eq!(trace.records[0].line, 3);
    }

    #[test]
    fn empty_file_is_not_a_trace() {
        assert_eq!(
            error(""),
            "trace.jsonl:1: not a culex trace: the file is empty"
        );
        assert_eq!(
            error("\n  \n"),
            "trace.jsonl:1: not a culex trace: the file is empty"
        );
    }

    #[test]
    fn first_line_must_be_a_start_event() {
        let want = "trace.jsonl:1: not a culex trace: the first line must be a start event";
        assert_eq!(error("{\"t\":0,\"event\":\"clock\",\"by_ms\":1}\n"), want);
        assert_eq!(error("hello\n"), want);
        assert_eq!(error("[1,2]\n"), want);
    }

    #[test]
    fn unknown_version_is_refused_by_number() {
        assert_eq!(
            error("{\"t\":0,\"event\":\"start\",\"version\":2}\n"),
            "trace.jsonl:1: trace format version 2 is not supported (this culex reads version 1)"
        );
        assert_eq!(
            error("{\"t\":0,\"event\":\"start\"}\n"),
            "trace.jsonl:1: start event without \"version\""
        );
    }

    #[test]
    fn malformed_json_line_names_its_line() {
        let got = error(&format!("{START}{{\"t\":1,\"event\":\"clock\"\n"));
        assert!(
            got.starts_with("trace.jsonl:2: malformed line: EOF while parsing"),
            "{got}"
        );
        let got = error(&format!(
            "{START}{{\"t\":\"x\",\"event\":\"clock\",\"by_ms\":1}}\n"
        ));
        assert!(
            got.starts_with("trace.jsonl:2: malformed line: invalid type: string"),
            "{got}"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            (
                "{\"t\":1,\"event\":\"clock\"}",
                "\"clock\" event without \"by_ms\"",
            ),
            (
                "{\"event\":\"clock\",\"by_ms\":1}",
                "an event without \"t\"",
            ),
            ("{\"t\":1,\"by_ms\":1}", "a line without \"event\""),
            (
                "{\"t\":1,\"event\":\"opened\",\"conn\":1}",
                "\"opened\" event without \"listener\"",
            ),
            (
                "{\"t\":1,\"event\":\"datagram_in\",\"listener\":1,\"packet\":\"P\",\
                 \"hex\":\"00\"}",
                "\"datagram_in\" event without \"peer\"",
            ),
            (
                "{\"t\":1,\"event\":\"commit\",\"changes\":1}",
                "\"commit\" event without \"synced\"",
            ),
            (
                "{\"t\":1,\"event\":\"timer\"}",
                "\"timer\" event without \"timer\"",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                error(&format!("{START}{line}\n")),
                format!("trace.jsonl:2: {want}"),
                "{line}"
            );
        }
        let open = "{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}\n";
        assert_eq!(
            error(&format!(
                "{START}{open}{{\"t\":1,\"event\":\"in\",\"conn\":1,\"hex\":\"c000\"}}\n"
            )),
            "trace.jsonl:3: \"in\" event without \"packet\""
        );
        assert_eq!(
            error(&format!(
                "{START}{open}{{\"t\":1,\"event\":\"out\",\"conn\":1,\"packet\":\"X\"}}\n"
            )),
            "trace.jsonl:3: \"out\" event without \"hex\""
        );
    }

    #[test]
    fn unknown_event_is_refused() {
        assert_eq!(
            error(&format!("{START}{{\"t\":1,\"event\":\"teleport\"}}\n")),
            "trace.jsonl:2: unknown event \"teleport\""
        );
        assert_eq!(
            error(&format!("{START}{START}")),
            "trace.jsonl:2: a second start event"
        );
    }

    #[test]
    fn bad_hex_is_refused() {
        let open = "{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}\n";
        for (hex, why) in [
            ("c00", "an odd number of digits (3)"),
            ("zz00", "'z' is not a hexadecimal digit"),
            ("", "empty"),
        ] {
            let line = format!(
                "{{\"t\":1,\"event\":\"in\",\"conn\":1,\"packet\":\"PINGREQ\",\"hex\":\"{hex}\"}}"
            );
            assert_eq!(
                error(&format!("{START}{open}{line}\n")),
                format!("trace.jsonl:3: \"in\" event: bad \"hex\": {why}")
            );
        }
    }

    #[test]
    fn connections_are_opened_before_use_and_closed_once() {
        let open = "{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}\n";
        let close = "{\"t\":0,\"event\":\"closed\",\"conn\":1,\"reason\":\"x\"}\n";
        let ping =
            "{\"t\":0,\"event\":\"in\",\"conn\":1,\"packet\":\"PINGREQ\",\"hex\":\"c000\"}\n";
        assert_eq!(
            error(&format!("{START}{ping}")),
            "trace.jsonl:2: conn 1 was never opened"
        );
        assert_eq!(
            error(&format!("{START}{open}{open}")),
            "trace.jsonl:3: conn 1 is opened a second time"
        );
        assert_eq!(
            error(&format!("{START}{open}{close}{ping}")),
            "trace.jsonl:4: conn 1 is already closed"
        );
    }

    #[test]
    fn time_never_goes_back() {
        let text = format!(
            "{START}{{\"t\":5,\"event\":\"clock\",\"by_ms\":5}}\n\
             {{\"t\":4,\"event\":\"clock\",\"by_ms\":1}}\n"
        );
        assert_eq!(error(&text), "trace.jsonl:3: time goes back: t 4 after t 5");
    }

    #[test]
    fn close_reasons_tell_who_closed() {
        assert!(closed_by_client("connection closed by peer"));
        assert!(closed_by_client("I/O error"));
        assert!(!closed_by_client("closed by the broker"));
        assert!(!closed_by_client("output buffer overflow"));
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let e = read(Path::new("/nonexistent/culex-trace.jsonl")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/culex-trace.jsonl: cannot read the trace:"),
            "{e}"
        );
    }
}
