//! `culex replay TRACE --target HOST:PORT`: drives the client side of a recorded trace
//! against a broker (culex or any other) and reports where the broker's answers differ.
//!
//! This is a client tool, not the broker: it uses blocking `std::net` sockets with read
//! timeouts, one thread, and prints its report on standard output. It must never reach into
//! the engine or the reactor; it knows the broker only by its packets.
//!
//! The run, in the trace's global order of events:
//! - `opened`: a TCP connection to the target (every connection, whatever listener recorded
//!   it, is replayed over plain TCP);
//! - `in`: the recorded frame is sent, rewritten first when it answers an identifier the
//!   broker chose (see [`super::mask`]); before a packet goes out on another connection, a
//!   connection whose last packet got no answer yet is made to catch up with a PINGREQ
//!   (its PINGRESP is taken out of the stream), so the target sees the packets of different
//!   connections in the recorded order;
//! - `out`: the next packet of the recorded type on that connection is awaited (at most
//!   `--timeout` ms; what arrives meanwhile on other connections waits in the socket) and
//!   compared field by field under the masks; a packet of another type ahead of it is an
//!   `order` difference, and stays queued for the events that expect it; a packet that
//!   comes after its event gave up on it is compared then (see `inbox`);
//! - `closed`: a client-side reason (see [`super::reader::closed_by_client`]) closes our
//!   socket; any other reason expects the target to close within the timeout;
//! - `datagram_in` / `datagram_out`: the same for MQTT-SN over UDP, one socket per peer,
//!   against `--sn-target` (a trace with datagrams and no `--sn-target` is refused);
//! - `clock`, `timer`, `commit` are the broker's own and are not replayed; a `clock` event
//!   that no `$CONTROL/clock/advance` PUBLISH asked for cannot be reproduced and is
//!   reported as a note.
//!
//! At the end, after a short quiet period, every packet the target sent that no event
//! expected is an `extra` difference. Each difference is one line:
//! `conn 2 out #3 PUBLISH publish.qos: expected 1, got 0`.

mod inbox;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use self::inbox::Inbox;
use super::mask::{self, Fields, Mask, MqttIds, SnIds};
use super::reader::{self, Event, Recorded, Trace, TraceError};
use crate::cli::ReplayOptions;
use crate::clock::{Clock, Millis};
use crate::codec::mqtt::{self, Packet, ProtocolVersion};
use crate::codec::mqttsn::{self, Frame};

/// The control topic whose PUBLISH moves the virtual clock of a deterministic culex.
const CLOCK_TOPIC: &str = "$CONTROL/clock/advance";
/// How long the end of the run waits for packets nobody expected.
const QUIET_MS_MAX: u64 = 200;
/// The largest frame accepted from the target.
const FRAME_MAX: usize = 1 << 24;
/// Fields of an unexpected packet shown in its line.
const EXTRA_FIELDS_SHOWN: usize = 6;

/// Why a replay could not run (exit status 2).
#[derive(Debug)]
pub enum Fatal {
    /// The trace is not a valid trace, or holds what cannot be replayed as asked.
    Trace(TraceError),
    /// A target address that does not resolve.
    Target(String),
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trace(e) => e.fmt(f),
            Self::Target(m) => f.write_str(m),
        }
    }
}

/// The counts of a finished replay (also printed as its last line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub connections: usize,
    pub peers: usize,
    pub sent: usize,
    pub compared: usize,
    pub differences: usize,
    pub notes: usize,
}

/// One thing to do, from one line of the trace.
enum Action {
    Open {
        conn: u64,
    },
    Send {
        conn: u64,
        packet: Packet,
        bytes: Vec<u8>,
    },
    Expect {
        conn: u64,
        packet: Packet,
    },
    Close {
        conn: u64,
        by_client: bool,
    },
    Clock {
        by_ms: u64,
    },
    /// A fault rule of the recording broker acted: the target must have the same rule.
    Fault {
        conn: u64,
        fault: String,
        packet: String,
    },
    SnSend {
        peer: u64,
        bytes: Vec<u8>,
    },
    SnExpect {
        peer: u64,
        bytes: Vec<u8>,
    },
}

struct Step {
    line: usize,
    action: Action,
}

/// Replays the trace named by `options`, printing each difference, the notes and a summary.
pub fn run(options: &ReplayOptions) -> Result<Summary, Fatal> {
    let trace = reader::read(&options.trace).map_err(Fatal::Trace)?;
    let steps = plan(&trace, options.sn_target.is_some())?;
    let target = resolve("--target", &options.target)?;
    let sn_target = match &options.sn_target {
        Some(t) => Some(resolve("--sn-target", t)?),
        None => None,
    };
    let mut replay = Replay {
        clock: Clock::system(),
        timeout_ms: options.timeout_ms,
        target,
        sn_target,
        conns: BTreeMap::new(),
        peers: BTreeMap::new(),
        last_sent: None,
        control_pending: false,
        summary: Summary::default(),
    };
    for step in steps {
        replay.step(step);
    }
    replay.finish();
    let s = &replay.summary;
    println!(
        "replay {} against {}: {} connections, {} MQTT-SN peers, {} packets sent, {} compared, \
         {} differences, {} notes",
        trace.file,
        options.target,
        s.connections,
        s.peers,
        s.sent,
        s.compared,
        s.differences,
        s.notes
    );
    Ok(replay.summary)
}

fn resolve(option: &str, text: &str) -> Result<SocketAddr, Fatal> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| Fatal::Target(format!("culex replay: {option} {text}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| Fatal::Target(format!("culex replay: {option} {text}: no address")))
}

/// Turns the trace into steps, decoding every recorded packet first so that a bad trace is
/// refused before anything is sent.
fn plan(trace: &Trace, sn: bool) -> Result<Vec<Step>, Fatal> {
    let fail = |line: usize, message: String| {
        Fatal::Trace(TraceError {
            file: trace.file.clone(),
            line,
            message,
        })
    };
    let mut versions: BTreeMap<u64, ProtocolVersion> = BTreeMap::new();
    let mut steps = Vec::new();
    for record in &trace.records {
        let line = record.line;
        let decode = |conn: u64, p: &Recorded, versions: &BTreeMap<u64, ProtocolVersion>| {
            let version = versions
                .get(&conn)
                .copied()
                .unwrap_or(ProtocolVersion::V311);
            let packet = mqtt::decode(&p.bytes, version).map_err(|e| {
                fail(
                    line,
                    format!("the recorded {} does not decode: {e}", p.name),
                )
            })?;
            if packet.name() != p.name {
                return Err(fail(
                    line,
                    format!("\"hex\" holds a {}, not a {}", packet.name(), p.name),
                ));
            }
            Ok(packet)
        };
        let sn_check = |peer: u64, p: &Recorded| {
            if !sn {
                return Err(fail(
                    line,
                    format!(
                        "the trace holds MQTT-SN datagrams (peer {peer}): give --sn-target \
                         HOST:PORT to replay them"
                    ),
                ));
            }
            match mqttsn::decode(&p.bytes) {
                Ok(Frame::Message(m)) if m.name() != p.name => Err(fail(
                    line,
                    format!("\"hex\" holds a {}, not a {}", m.name(), p.name),
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(fail(
                    line,
                    format!("the recorded {} does not decode: {e}", p.name),
                )),
            }
        };
        let action = match &record.event {
            Event::Opened { conn, .. } => Action::Open { conn: *conn },
            Event::In { conn, packet } => {
                let decoded = decode(*conn, packet, &versions)?;
                if let Packet::Connect(c) = &decoded {
                    versions.insert(*conn, c.protocol);
                }
                Action::Send {
                    conn: *conn,
                    packet: decoded,
                    bytes: packet.bytes.clone(),
                }
            }
            Event::Out { conn, packet } => Action::Expect {
                conn: *conn,
                packet: decode(*conn, packet, &versions)?,
            },
            Event::Closed { conn, reason } => Action::Close {
                conn: *conn,
                by_client: reader::closed_by_client(reason),
            },
            Event::Clock { by_ms } => Action::Clock { by_ms: *by_ms },
            Event::Timer { .. } | Event::Commit { .. } => continue,
            Event::Fault {
                conn,
                fault,
                packet,
            } => Action::Fault {
                conn: *conn,
                fault: fault.clone(),
                packet: packet.clone(),
            },
            Event::DatagramIn { peer, packet, .. } => {
                sn_check(*peer, packet)?;
                Action::SnSend {
                    peer: *peer,
                    bytes: packet.bytes.clone(),
                }
            }
            Event::DatagramOut { peer, packet, .. } => {
                sn_check(*peer, packet)?;
                Action::SnExpect {
                    peer: *peer,
                    bytes: packet.bytes.clone(),
                }
            }
        };
        steps.push(Step { line, action });
    }
    Ok(steps)
}

/// One replayed MQTT connection.
struct Conn {
    stream: Option<TcpStream>,
    version: ProtocolVersion,
    inbound: Vec<u8>,
    /// Packets received and not yet matched with an `out` event.
    inbox: Inbox<Packet>,
    /// Why nothing more can be read: the target closed, an error, no connection.
    ended: Option<String>,
    ids: MqttIds,
    ins: usize,
    /// A CONNACK accepted the connection.
    connected: bool,
    /// The last packet sent has had no answer yet.
    unanswered: bool,
    /// DISCONNECT was sent.
    disconnecting: bool,
    pings_sent: usize,
    pongs_received: usize,
    /// PINGRESPs still to take out of the stream, for catch-up PINGREQs.
    pongs_owed: usize,
}

impl Conn {
    fn new(stream: Option<TcpStream>, ended: Option<String>) -> Self {
        Self {
            stream,
            version: ProtocolVersion::V311,
            inbound: Vec::new(),
            inbox: Inbox::new(Packet::name),
            ended,
            ids: MqttIds::default(),
            ins: 0,
            connected: false,
            unanswered: false,
            disconnecting: false,
            pings_sent: 0,
            pongs_received: 0,
            pongs_owed: 0,
        }
    }

    /// One read of at most `wait_ms`; false when nothing came (or nothing can come).
    fn read_some(&mut self, wait_ms: u64) -> bool {
        let Some(stream) = self.stream.as_mut().filter(|_| self.ended.is_none()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(wait_ms.max(1))));
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) => self.ended = Some("the connection closed".to_owned()),
            Ok(n) => {
                self.inbound.extend_from_slice(&chunk[..n]);
                self.frames();
            }
            Err(e) if timed_out(&e) => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.ended = Some(format!("a connection error ({e})")),
        }
        true
    }

    /// Cuts the received bytes into packets.
    fn frames(&mut self) {
        loop {
            let frame = match mqtt::probe(&self.inbound) {
                Ok(Some(f)) if f.total_len() > FRAME_MAX => {
                    Err(format!("a frame of {} bytes", f.total_len()))
                }
                Ok(Some(f)) if f.total_len() <= self.inbound.len() => Ok(f.total_len()),
                Ok(_) => return,
                Err(e) => Err(e.to_string()),
            };
            let decoded = frame.and_then(|len| {
                let packet = mqtt::decode(&self.inbound[..len], self.version);
                self.inbound.drain(..len);
                packet.map_err(|e| e.to_string())
            });
            match decoded {
                Ok(Packet::PingResp) => {
                    self.pongs_received += 1;
                    if self.pongs_owed > 0 {
                        self.pongs_owed -= 1;
                    } else {
                        self.inbox.push(Packet::PingResp);
                    }
                }
                Ok(p) => self.inbox.push(p),
                Err(e) => {
                    self.ended = Some(format!("bytes that do not decode ({e})"));
                    self.inbound.clear();
                    return;
                }
            }
        }
    }

    fn close(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One replayed MQTT-SN peer.
struct Peer {
    socket: Option<UdpSocket>,
    /// Datagrams received and not yet matched with a `datagram_out` event.
    inbox: Inbox<Vec<u8>>,
    ended: Option<String>,
    ids: SnIds,
    ins: usize,
}

impl Peer {
    fn read_some(&mut self, wait_ms: u64) -> bool {
        let Some(socket) = self.socket.as_ref().filter(|_| self.ended.is_none()) else {
            return false;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_millis(wait_ms.max(1))));
        let mut buf = vec![0u8; mqttsn::MAX_DATAGRAM];
        match socket.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                self.inbox.push(buf);
            }
            Err(e) if timed_out(&e) => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.ended = Some(format!("a socket error ({e})")),
        }
        true
    }
}

/// The name of a datagram's message, for lines and matching.
fn sn_name(bytes: &[u8]) -> &'static str {
    match mqttsn::decode(bytes) {
        Ok(Frame::Message(m)) => m.name(),
        Ok(Frame::Encapsulated(_)) => "ENCAPSULATED",
        Err(_) => "undecodable",
    }
}

/// Who the last packet went to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Conn(u64),
    Peer(u64),
}

struct Replay {
    clock: Clock,
    timeout_ms: u64,
    target: SocketAddr,
    sn_target: Option<SocketAddr>,
    conns: BTreeMap<u64, Conn>,
    peers: BTreeMap<u64, Peer>,
    last_sent: Option<Party>,
    /// A `$CONTROL/clock/advance` PUBLISH was sent since the last `clock` event.
    control_pending: bool,
    summary: Summary,
}

impl Replay {
    fn difference(&mut self, line: String) {
        self.summary.differences += 1;
        println!("{line}");
    }

    fn deadline(&self, ms: u64) -> Millis {
        self.clock.now().saturating_add_ms(ms)
    }

    fn left(&self, deadline: Millis) -> u64 {
        deadline.since(self.clock.now())
    }

    fn step(&mut self, step: Step) {
        match step.action {
            Action::Open { conn } => self.open(conn),
            Action::Send {
                conn,
                packet,
                bytes,
            } => self.send(conn, &packet, bytes),
            Action::Expect { conn, packet } => self.await_packet(conn, packet),
            Action::Close { conn, by_client } => self.close(conn, by_client),
            Action::Clock { by_ms } => {
                if !self.control_pending {
                    self.summary.notes += 1;
                    println!(
                        "note: line {}: the clock advanced {by_ms} ms with no {CLOCK_TOPIC} \
                         request before it (an HTTP API call?): not reproduced",
                        step.line
                    );
                }
                self.control_pending = false;
            }
            Action::Fault {
                conn,
                fault,
                packet,
            } => {
                self.summary.notes += 1;
                println!(
                    "note: line {}: a fault rule ({fault}) acted on a {packet} of conn {conn}: \
                     the target matches the trace only with the same rule",
                    step.line
                );
            }
            Action::SnSend { peer, bytes } => self.sn_send(peer, &bytes),
            Action::SnExpect { peer, bytes } => self.sn_await(peer, bytes),
        }
    }

    fn open(&mut self, id: u64) {
        self.summary.connections += 1;
        let timeout = Duration::from_millis(self.timeout_ms);
        let conn = match TcpStream::connect_timeout(&self.target, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                Conn::new(Some(stream), None)
            }
            Err(e) => {
                self.difference(format!(
                    "conn {id} opened: expected a connection, got {e} from {}",
                    self.target
                ));
                Conn::new(None, Some("no connection".to_owned()))
            }
        };
        self.conns.insert(id, conn);
    }

    /// Before a packet goes to `next`, lets the previous connection's unanswered packet be
    /// processed first (PINGREQ, and wait for its PINGRESP).
    fn catch_up(&mut self, next: Party) {
        let Some(Party::Conn(prev)) = self.last_sent.filter(|p| *p != next) else {
            return;
        };
        let deadline = self.deadline(self.timeout_ms);
        let Some(c) = self.conns.get_mut(&prev) else {
            return;
        };
        if !(c.unanswered && c.connected && !c.disconnecting && c.ended.is_none()) {
            return;
        }
        c.unanswered = false;
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        if stream.write_all(&[0xC0, 0x00]).is_err() {
            return;
        }
        c.pings_sent += 1;
        c.pongs_owed += 1;
        self.wait_conn(prev, deadline, |c| c.pongs_received >= c.pings_sent);
    }

    /// Reads `id` until `done` holds, the connection ends or the deadline passes (late
    /// packets are compared on the way); whether `done` holds.
    fn wait_conn(&mut self, id: u64, deadline: Millis, done: impl Fn(&Conn) -> bool) -> bool {
        loop {
            self.late(id);
            let left = self.left(deadline);
            let Some(c) = self.conns.get_mut(&id) else {
                return false;
            };
            if done(c) {
                return true;
            }
            if c.ended.is_some() || left == 0 {
                return false;
            }
            c.read_some(left);
        }
    }

    fn send(&mut self, id: u64, packet: &Packet, bytes: Vec<u8>) {
        self.catch_up(Party::Conn(id));
        self.last_sent = Some(Party::Conn(id));
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.ins += 1;
        let bytes = match c.ids.client_packet(packet) {
            Some(p) => {
                let mut out = Vec::new();
                mqtt::encode(&p, c.version, &mut out);
                out
            }
            None => bytes,
        };
        match packet {
            Packet::Connect(connect) => c.version = connect.protocol,
            Packet::PingReq => c.pings_sent += 1,
            Packet::Disconnect(_) => c.disconnecting = true,
            Packet::Publish(p) if &*p.topic == CLOCK_TOPIC => self.control_pending = true,
            _ => {}
        }
        c.unanswered = true;
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        self.summary.sent += 1;
        if let Err(e) = stream.write_all(&bytes) {
            let line = format!(
                "conn {id} in #{} {}: expected to send it, got {e}",
                c.ins,
                packet.name()
            );
            self.difference(line);
        }
    }

    /// An `out` event: waits for the packet and compares it.
    fn await_packet(&mut self, id: u64, expected: Packet) {
        let name = expected.name();
        let deadline = self.deadline(self.timeout_ms);
        let found = self.wait_conn(id, deadline, |c| c.inbox.has(name));
        let timeout_ms = self.timeout_ms;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.unanswered = false;
        let index = c.inbox.next_out();
        let head = format!("conn {id} out #{index} {name}");
        let Some(taken) = c.inbox.take(name).filter(|_| found) else {
            let why = missing(c.ended.as_deref(), timeout_ms);
            c.inbox.miss(index, expected);
            return self.difference(format!("{head}: expected {name}, got {why}"));
        };
        if let Packet::ConnAck(a) = &taken.item {
            c.connected = !a.reason.is_error();
        }
        self.order(&head, &taken.ahead);
        self.compare(id, &head, expected, taken.item);
    }

    /// The `order` difference of an item that came behind items of other types.
    fn order(&mut self, head: &str, ahead: &[&str]) {
        if !ahead.is_empty() {
            let ahead = ahead.join(", ");
            self.difference(format!(
                "{head} order: expected before {ahead}, got after {ahead}"
            ));
        }
    }

    /// Compares a packet of the broker with the one the trace recorded, through the
    /// connection's identifier mappings.
    fn compare(&mut self, id: u64, head: &str, mut expected: Packet, mut got: Packet) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.ids.broker_pair(&mut expected, &mut got);
        }
        self.summary.compared += 1;
        let fields = (mask::flatten_mqtt(&expected), mask::flatten_mqtt(&got));
        self.report(head, &fields.0, &fields.1, mask::mqtt_mask);
    }

    fn report(&mut self, head: &str, expected: &Fields, got: &Fields, m: fn(&str) -> Mask) {
        for d in mask::compare(expected, got, m) {
            self.difference(format!(
                "{head} {}: expected {}, got {}",
                d.field, d.expected, d.got
            ));
        }
    }

    /// Compares the packets that came after their `out` event gave up on them.
    fn late(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        for (index, expected, got) in c.inbox.late() {
            let head = format!("conn {id} out #{index} {} (late)", expected.name());
            self.compare(id, &head, expected, got);
        }
    }

    /// Reports what is left on connection `id` as unexpected.
    fn extras(&mut self, id: u64) {
        self.late(id);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        for (n, p) in c.inbox.extras() {
            let shown = show_fields(&mask::flatten_mqtt(&p));
            let name = p.name();
            self.difference(format!(
                "conn {id} extra #{n} {name}: expected nothing, got {name} ({shown})"
            ));
        }
    }

    fn close(&mut self, id: u64, by_client: bool) {
        if by_client {
            self.catch_up(Party::Conn(id));
            if let Some(c) = self.conns.get_mut(&id) {
                while c.read_some(1) {}
            }
            self.extras(id);
        } else {
            let deadline = self.deadline(self.timeout_ms);
            let closed = self.wait_conn(id, deadline, |c| c.ended.is_some());
            self.extras(id);
            if !closed {
                let ms = self.timeout_ms;
                self.difference(format!(
                    "conn {id} closed: expected the broker to close the connection, got no \
                     close within {ms} ms"
                ));
            }
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.close();
            c.ended
                .get_or_insert_with(|| "the connection closed".to_owned());
        }
        if self.last_sent == Some(Party::Conn(id)) {
            self.last_sent = None;
        }
    }

    fn peer(&mut self, id: u64) -> Option<&mut Peer> {
        let target = self.sn_target?;
        if !self.peers.contains_key(&id) {
            self.summary.peers += 1;
            let any: SocketAddr = if target.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let socket = UdpSocket::bind(any).and_then(|s| s.connect(target).map(|()| s));
            let (socket, ended) = match socket {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(format!("no socket ({e})"))),
            };
            let peer = Peer {
                socket,
                inbox: Inbox::new(|d: &Vec<u8>| sn_name(d)),
                ended,
                ids: SnIds::default(),
                ins: 0,
            };
            self.peers.insert(id, peer);
        }
        self.peers.get_mut(&id)
    }

    fn sn_send(&mut self, id: u64, bytes: &[u8]) {
        self.catch_up(Party::Peer(id));
        self.last_sent = Some(Party::Peer(id));
        let Some(p) = self.peer(id) else {
            return;
        };
        p.ins += 1;
        let (ins, name) = (p.ins, sn_name(bytes));
        let rewritten = match mqttsn::decode(bytes) {
            Ok(Frame::Message(m)) => p.ids.client_message(&m).map(|m| {
                let mut out = Vec::new();
                mqttsn::encode(&m, &mut out);
                out
            }),
            _ => None,
        };
        let Some(socket) = &p.socket else {
            return;
        };
        let result = socket.send(rewritten.as_deref().unwrap_or(bytes));
        self.summary.sent += 1;
        if let Err(e) = result {
            self.difference(format!(
                "peer {id} in #{ins} {name}: expected to send it, got {e}"
            ));
        }
    }

    /// Reads peer `id` until a datagram of type `name` waits, the socket fails or the
    /// deadline passes (late datagrams are compared on the way).
    fn wait_peer(&mut self, id: u64, name: &str, deadline: Millis) -> bool {
        loop {
            self.sn_late(id);
            let left = self.left(deadline);
            let Some(p) = self.peer(id) else {
                return false;
            };
            if p.inbox.has(name) {
                return true;
            }
            if p.ended.is_some() || left == 0 {
                return false;
            }
            p.read_some(left);
        }
    }

    /// A `datagram_out` event: waits for the message and compares it.
    fn sn_await(&mut self, id: u64, recorded: Vec<u8>) {
        let name = sn_name(&recorded);
        let deadline = self.deadline(self.timeout_ms);
        let found = self.wait_peer(id, name, deadline);
        let timeout_ms = self.timeout_ms;
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let index = p.inbox.next_out();
        let head = format!("peer {id} out #{index} {name}");
        let Some(taken) = p.inbox.take(name).filter(|_| found) else {
            let why = missing(p.ended.as_deref(), timeout_ms);
            p.inbox.miss(index, recorded);
            return self.difference(format!("{head}: expected {name}, got {why}"));
        };
        self.order(&head, &taken.ahead);
        self.sn_compare(id, &head, &recorded, &taken.item);
    }

    /// Compares a datagram of the gateway with the one the trace recorded, through the
    /// peer's identifier mappings.
    fn sn_compare(&mut self, id: u64, head: &str, recorded: &[u8], got: &[u8]) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let (expected, got) = match (mqttsn::decode(recorded), mqttsn::decode(got)) {
            (Ok(Frame::Message(mut e)), Ok(Frame::Message(g))) => {
                p.ids.gateway_pair(&mut e, &g);
                let (e, g) = (Frame::Message(e), Frame::Message(g));
                (mask::flatten_sn(&e), mask::flatten_sn(&g))
            }
            (Ok(e), Ok(g)) => (mask::flatten_sn(&e), mask::flatten_sn(&g)),
            _ => return,
        };
        self.summary.compared += 1;
        self.report(head, &expected, &got, mask::sn_mask);
    }

    fn sn_late(&mut self, id: u64) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        for (index, expected, got) in p.inbox.late() {
            let head = format!("peer {id} out #{index} {} (late)", sn_name(&expected));
            self.sn_compare(id, &head, &expected, &got);
        }
    }

    /// The quiet period, then every unexpected packet and unexpected close.
    fn finish(&mut self) {
        let deadline = self.deadline(self.timeout_ms.min(QUIET_MS_MAX));
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            loop {
                let left = self.left(deadline);
                let Some(c) = self.conns.get_mut(&id) else {
                    break;
                };
                if c.stream.is_none() || !c.read_some(left) {
                    break;
                }
            }
            self.extras(id);
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let why = c.ended.clone().filter(|_| c.stream.is_some());
            c.close();
            if let Some(why) = why {
                self.difference(format!(
                    "conn {id} closed: expected the connection open at the end of the trace, \
                     got {why}"
                ));
            }
        }
        let peers: Vec<u64> = self.peers.keys().copied().collect();
        for id in peers {
            loop {
                let left = self.left(deadline);
                let Some(p) = self.peers.get_mut(&id) else {
                    break;
                };
                if !p.read_some(left) {
                    break;
                }
            }
            self.sn_late(id);
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            for (n, d) in p.inbox.extras() {
                let shown = match mqttsn::decode(&d) {
                    Ok(f) => show_fields(&mask::flatten_sn(&f)),
                    Err(e) => e.to_string(),
                };
                let name = sn_name(&d);
                self.difference(format!(
                    "peer {id} extra #{n} {name}: expected nothing, got {name} ({shown})"
                ));
            }
        }
    }
}

/// Why an awaited packet is not there.
fn missing(ended: Option<&str>, timeout_ms: u64) -> String {
    match ended {
        Some(e) => e.to_owned(),
        None => format!("nothing within {timeout_ms} ms"),
    }
}

/// The first fields of an unexpected packet, for its line.
fn show_fields(fields: &Fields) -> String {
    let mut shown: Vec<String> = fields
        .iter()
        .take(EXTRA_FIELDS_SHOWN)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if fields.len() > EXTRA_FIELDS_SHOWN {
        shown.push("...".to_owned());
    }
    shown.join(", ")
}
