//! The flow scenarios over MQTT on plain TCP, driven by one mio event loop on one thread:
//! every publisher and subscriber is a non-blocking connection of the loop (`peer.rs`), so
//! 1,000 subscribers or 1,000 publisher/subscriber pairs need no thread each. (TLS,
//! WebSocket and MQTT-SN runs take the blocking, threaded path of `flow.rs`.)
//!
//! The run has four stages: set-up (at most `OPENING_MAX` connections in their handshake at
//! once: subscribers first, then publishers), publishing (until the duration or the count is
//! reached), draining (until every message and acknowledgement has arrived, or nothing has
//! arrived for the drain time) and closing (DISCONNECT, then the broker's close, briefly
//! awaited). Each turn of the loop:
//!
//! 1. polls: without waiting while a paced message is due within `SPIN_BELOW` (mio's
//!    timeouts have millisecond resolution), else until the next due message or at most
//!    `POLL_MAX`;
//! 2. reads every readable connection until `WouldBlock` and handles its packets:
//!    subscribers record each payload's stamp (loss, duplicates, order, latency) and queue
//!    PUBACK, PUBREC or PUBCOMP; publishers free packet identifiers on PUBACK and PUBCOMP and
//!    answer PUBREC with PUBREL; then flushes what was queued;
//! 3. lets every publisher send what its window and its schedule allow, in one write.
//!
//! Window: a publisher has at most `window` messages that some subscriber of its topic has
//! not received yet or (QoS 1 and 2) that the broker has not acknowledged yet: QoS 1 and 2
//! are pipelined, and the broker's queues stay short, so the rate measured is one the broker
//! sustains end to end. With MQTT 5.0 the broker's Receive Maximum also bounds it.
//!
//! Topic aliases (`Flow::alias`, MQTT 5.0 only): subscribers allow the broker
//! `SUB_ALIAS_MAX` aliases (Topic Alias Maximum in CONNECT); each publisher sends its first
//! message with topic and alias 1, and the rest with alias 1 alone.

use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::flow::{Flow, Outcome};
use crate::mqtt::{self, Version};
use crate::net::Target;
use crate::peer::{self, Peer, Phase};
use crate::stats::{self, Histogram, Track, Usage};
use crate::Res;

/// Connections in their set-up handshake at once (the broker's accept backlog is finite).
const OPENING_MAX: usize = 128;
/// How long the set-up of all connections may take.
const SETUP_TIME_MAX: Duration = Duration::from_secs(60);
/// Bytes a publisher queues in one turn before it waits for the socket.
const TX_MAX: usize = 256 * 1024;
/// How long closing waits for the broker to close the connections.
const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// Keep alive of every connection: longer than any run, so no PINGREQ is needed.
const KEEP_ALIVE_SECS: u16 = 900;
/// A paced message due within this time is waited for by polling without a timeout.
const SPIN_BELOW: Duration = Duration::from_millis(1);
/// The longest poll wait, so that deadlines are checked.
const POLL_MAX: Duration = Duration::from_millis(20);
/// Topic aliases the subscribers allow the broker in alias runs.
const SUB_ALIAS_MAX: u16 = 10;
/// Events taken from one poll.
const EVENTS_MAX: usize = 1024;

/// Packet identifier states of a publisher.
const FREE: u8 = 0;
/// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
const AWAIT_ACK: u8 = 1;
/// PUBREL sent; waiting for PUBCOMP.
const AWAIT_COMP: u8 = 2;

/// A subscriber: what it has received of each publisher it hears.
struct Sub {
    /// `tracks[slot]`: all publishers (slot = publisher), or in pairs its own (slot 0).
    tracks: Vec<Track>,
    /// In pairs, the one publisher this subscriber hears.
    only: Option<usize>,
    /// PUBLISH packets that named their topic by alias alone.
    by_alias: u64,
    /// When the last message arrived (generator clock, ns).
    last_ns: u64,
}

impl Sub {
    /// Handles a packet of the running phase.
    fn on_packet(
        &mut self,
        peer: &mut Peer,
        version: Version,
        first: u8,
        body: &[u8],
        now: u64,
        latency: &mut Histogram,
    ) -> Res<()> {
        match first >> 4 {
            mqtt::PUBLISH => {
                let inc = mqtt::incoming(version, first, body)?;
                let (p, seq, sent_ns) = stats::unstamp(&body[inc.payload_start..])
                    .ok_or("a received payload has no stamp")?;
                let p = usize::from(p);
                let slot = match self.only {
                    None => p,
                    Some(q) if q == p => 0,
                    Some(_) => return Err("a message of another pair's topic arrived".into()),
                };
                self.tracks
                    .get_mut(slot)
                    .ok_or("a received payload names an unknown publisher")?
                    .record(seq);
                latency.record(now.saturating_sub(sent_ns));
                self.last_ns = now;
                self.by_alias += u64::from(inc.by_alias);
                match inc.qos {
                    1 => mqtt::puback(peer.out(), inc.id),
                    2 => mqtt::pubrec(peer.out(), inc.id),
                    _ => {}
                }
            }
            mqtt::PUBREL => {
                let (id, _) = mqtt::ack(body)?;
                mqtt::pubcomp(peer.out(), id);
            }
            mqtt::DISCONNECT => return Err("the broker sent DISCONNECT to a subscriber".into()),
            _ => {}
        }
        Ok(())
    }
}

/// A publisher's state.
struct Pub {
    topic: Vec<u8>,
    /// Next sequence number: messages sent so far.
    seq: u64,
    /// QoS 1 and 2 messages not fully acknowledged.
    inflight: u64,
    /// State of each packet identifier (index 0 unused).
    ids: Vec<u8>,
    /// When it stopped publishing (generator clock, ns).
    end_ns: Option<u64>,
    /// Acknowledgements with a failure reason code.
    refused: u64,
    /// Whether the topic alias is set up (the first message carried topic and alias).
    alias_set: bool,
    payload: Vec<u8>,
}

impl Pub {
    fn release(&mut self, id: u16, expected: u8, what: &str) -> Res<()> {
        let state = self
            .ids
            .get_mut(usize::from(id))
            .ok_or("packet identifier 0")?;
        if *state != expected {
            return Err(format!("{what} for packet {id}, which does not await it").into());
        }
        *state = FREE;
        self.inflight -= 1;
        Ok(())
    }

    /// Handles a packet of the running phase.
    fn on_packet(&mut self, peer: &mut Peer, qos: u8, first: u8, body: &[u8]) -> Res<()> {
        match (first >> 4, qos) {
            (mqtt::PUBACK, 1) => {
                let (id, reason) = mqtt::ack(body)?;
                self.release(id, AWAIT_ACK, "PUBACK")?;
                self.refused += u64::from(reason >= 0x80);
            }
            (mqtt::PUBREC, 2) => {
                let (id, reason) = mqtt::ack(body)?;
                if reason >= 0x80 {
                    self.release(id, AWAIT_ACK, "PUBREC")?;
                    self.refused += 1;
                } else {
                    let state = self
                        .ids
                        .get_mut(usize::from(id))
                        .ok_or("packet identifier 0")?;
                    if *state != AWAIT_ACK {
                        return Err(
                            format!("PUBREC for packet {id}, which does not await it").into()
                        );
                    }
                    *state = AWAIT_COMP;
                    mqtt::pubrel(peer.out(), id);
                }
            }
            (mqtt::PUBCOMP, 2) => {
                let (id, _) = mqtt::ack(body)?;
                self.release(id, AWAIT_COMP, "PUBCOMP")?;
            }
            (mqtt::DISCONNECT, _) => {
                return Err("the broker sent DISCONNECT to a publisher".into());
            }
            (kind @ (mqtt::PUBACK | mqtt::PUBREC | mqtt::PUBCOMP), _) => {
                return Err(format!("packet type {kind} at QoS {qos}").into());
            }
            _ => {}
        }
        Ok(())
    }
}

/// The loop and everything it drives.
struct Run<'a> {
    flow: &'a Flow,
    target: &'a Target,
    tag: String,
    poll: Poll,
    /// Subscribers' connections first (index s), then publishers' (index S + p).
    peers: Vec<Peer>,
    subs: Vec<Sub>,
    pubs: Vec<Pub>,
    latency: Histogram,
    scratch: Vec<u8>,
    /// The effective window (messages per publisher; 0: none).
    window: u64,
    /// Publishing starts and ends (generator clock); the schedule of paced publishers.
    start_ns: u64,
    deadline: Instant,
    interval_ns: Option<u64>,
}

/// Runs the flow over TCP and returns what it observed; pushes the id of every client that
/// connected to `connected` (to discard persistent sessions afterwards).
pub(crate) fn run(
    flow: &Flow,
    target: &Target,
    broker_pid: Option<u32>,
    connected: &mut Vec<String>,
) -> Res<(Outcome, Usage)> {
    if flow.alias && target.version != Version::V5 {
        return Err("topic aliases need MQTT 5.0 (--mqtt 5)".into());
    }
    let tag = stats::random_tag()?;
    let mut run = Run {
        flow,
        target,
        poll: Poll::new()?,
        peers: Vec::with_capacity(flow.subscribers + flow.publishers),
        subs: (0..flow.subscribers)
            .map(|s| Sub {
                tracks: vec![Track::default(); if flow.pairs { 1 } else { flow.publishers }],
                only: flow.pairs.then_some(s),
                by_alias: 0,
                last_ns: 0,
            })
            .collect(),
        pubs: (0..flow.publishers)
            .map(|p| Pub {
                topic: format!("bench/{tag}/{p}").into_bytes(),
                seq: 0,
                inflight: 0,
                ids: vec![FREE; 1 << 16],
                end_ns: None,
                refused: 0,
                alias_set: false,
                payload: vec![0; flow.size],
            })
            .collect(),
        tag,
        latency: Histogram::default(),
        scratch: vec![0; peer::READ_CHUNK],
        window: flow.window,
        start_ns: 0,
        deadline: Instant::now(),
        interval_ns: flow.rate.map(|r| (1e9 / r).max(1.0) as u64),
    };
    let mut events = Events::with_capacity(EVENTS_MAX);
    run.set_up(&mut events, connected)?;
    let usage = Usage::start(broker_pid)?;
    let publish_secs = run.publish(&mut events)?;
    let last_ns = run.drain(&mut events)?;
    run.close(&mut events)?;
    Ok((run.outcome(publish_secs, last_ns), usage))
}

impl Run<'_> {
    fn total(&self) -> usize {
        self.flow.subscribers + self.flow.publishers
    }

    /// Opens connection `i` (a subscriber below S, else a publisher) and registers it.
    fn open(&mut self, i: usize, connected: &mut Vec<String>) -> Res<()> {
        let flow = self.flow;
        let version = self.target.version;
        let subscriber = i < flow.subscribers;
        let id = if subscriber {
            format!("bench-{}-s{i}", self.tag)
        } else {
            format!("bench-{}-p{}", self.tag, i - flow.subscribers)
        };
        let alias_max = if subscriber && flow.alias {
            SUB_ALIAS_MAX
        } else {
            0
        };
        let mut connect = Vec::new();
        mqtt::connect(
            &mut connect,
            version,
            &id,
            KEEP_ALIVE_SECS,
            flow.session,
            alias_max,
        );
        let mut subscribe = Vec::new();
        if subscriber {
            let filter = match flow.pairs {
                true => format!("bench/{}/{i}", self.tag),
                false => format!("bench/{}/+", self.tag),
            };
            mqtt::subscribe(&mut subscribe, version, 1, &filter, flow.qos);
        }
        let mut sock = peer::open(self.target.addr, None)
            .map_err(|e| format!("connect to {}: {e}", self.target.addr))?;
        self.poll.registry().register(
            &mut sock,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.peers.push(Peer::new(sock, connect, subscribe));
        connected.push(id);
        Ok(())
    }

    /// Opens every connection and completes its handshake.
    fn set_up(&mut self, events: &mut Events, connected: &mut Vec<String>) -> Res<()> {
        let until = Instant::now() + SETUP_TIME_MAX;
        loop {
            let mut opening = self.peers.iter().filter(|p| p.opening()).count();
            while opening < OPENING_MAX && self.peers.len() < self.total() {
                self.open(self.peers.len(), connected)?;
                opening += 1;
            }
            if opening == 0 {
                break;
            }
            if Instant::now() >= until {
                return Err(format!(
                    "{} of {} connections were not set up within {SETUP_TIME_MAX:?}",
                    opening + self.total() - self.peers.len(),
                    self.total()
                )
                .into());
            }
            self.turn(events, Some(POLL_MAX))?;
        }
        // MQTT 5.0: the broker's Receive Maximum bounds the QoS 1 and 2 window, and aliases
        // need its Topic Alias Maximum.
        let s = self.flow.subscribers;
        for peer in &self.peers[s..] {
            let ack = peer.connack.ok_or("a publisher has no CONNACK")?;
            if self.flow.qos > 0 {
                let receive_max = u64::from(ack.receive_max);
                self.window = match self.window {
                    0 => receive_max,
                    w => w.min(receive_max),
                };
            }
            if self.flow.alias && ack.alias_max == 0 {
                return Err("the broker allows no topic aliases (Topic Alias Maximum 0)".into());
            }
        }
        Ok(())
    }

    /// One turn: poll, read and handle what arrived, flush what that queued.
    fn turn(&mut self, events: &mut Events, timeout: Option<Duration>) -> Res<()> {
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e.into());
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(peer) = self.peers.get_mut(i) else {
                continue;
            };
            if peer.phase == Phase::Closed {
                continue;
            }
            if event.is_writable() {
                peer.on_writable()?;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(i)?;
            }
        }
        Ok(())
    }

    fn on_readable(&mut self, i: usize) -> Res<()> {
        let version = self.target.version;
        let qos = self.flow.qos;
        let s = self.flow.subscribers;
        let peer = &mut self.peers[i];
        let open = if i < s {
            let sub = &mut self.subs[i];
            let latency = &mut self.latency;
            peer.read_frames(&mut self.scratch, |peer, first, body, now| {
                match peer.phase {
                    Phase::Ready => sub.on_packet(peer, version, first, body, now, latency),
                    Phase::Closing | Phase::Closed => Ok(()),
                    _ => peer.handshake(version, first, body),
                }
            })?
        } else {
            let pb = &mut self.pubs[i - s];
            peer.read_frames(&mut self.scratch, |peer, first, body, _| match peer.phase {
                Phase::Ready => pb.on_packet(peer, qos, first, body),
                Phase::Closing | Phase::Closed => Ok(()),
                _ => peer.handshake(version, first, body),
            })?
        };
        if !open {
            if peer.phase != Phase::Closing {
                let who = if i < s { "subscriber" } else { "publisher" };
                return Err(format!("the broker closed a {who}'s connection").into());
            }
            peer.phase = Phase::Closed;
            return Ok(());
        }
        peer.flush()
    }

    /// Publishes until the duration or the count is reached; returns the publishing time.
    fn publish(&mut self, events: &mut Events) -> Res<f64> {
        let start = Instant::now();
        self.start_ns = stats::now_ns();
        self.deadline = start + self.flow.duration;
        loop {
            let now_ns = stats::now_ns();
            let now = Instant::now();
            let mut due = None::<u64>;
            for p in 0..self.pubs.len() {
                if let Some(at) = self.publish_one(p, now, now_ns)? {
                    due = Some(due.map_or(at, |d| d.min(at)));
                }
            }
            if self.pubs.iter().all(|p| p.end_ns.is_some()) {
                break;
            }
            let timeout = match due {
                Some(at) => {
                    let wait = Duration::from_nanos(at.saturating_sub(stats::now_ns()));
                    wait.checked_sub(SPIN_BELOW).unwrap_or(Duration::ZERO)
                }
                None => self.deadline.saturating_duration_since(now),
            };
            self.turn(events, Some(timeout.min(POLL_MAX)))?;
        }
        let end = self
            .pubs
            .iter()
            .filter_map(|p| p.end_ns)
            .max()
            .unwrap_or(self.start_ns);
        Ok((end - self.start_ns) as f64 / 1e9)
    }

    /// Lets publisher `p` send what its window, its schedule and its socket allow; returns
    /// when its next message falls due if it is paced.
    fn publish_one(&mut self, p: usize, now: Instant, now_ns: u64) -> Res<Option<u64>> {
        let flow = self.flow;
        let count = flow.count.unwrap_or(u64::MAX);
        let pb = &mut self.pubs[p];
        if pb.end_ns.is_some() {
            return Ok(None);
        }
        if now >= self.deadline || pb.seq >= count {
            pb.end_ns = Some(now_ns);
            return Ok(None);
        }
        let peer = &mut self.peers[flow.subscribers + p];
        if peer.unsent() > 0 {
            return Ok(None);
        }
        let mut allowed = count - pb.seq;
        if let Some(interval) = self.interval_ns {
            let owed = (now_ns - self.start_ns) / interval + 1;
            if owed <= pb.seq {
                return Ok(Some(self.start_ns + pb.seq * interval));
            }
            allowed = allowed.min(owed - pb.seq);
        }
        if self.window > 0 {
            let slowest = match flow.pairs {
                true => self.subs[p].tracks[0].unique,
                false => self
                    .subs
                    .iter()
                    .map(|s| s.tracks[p].unique)
                    .min()
                    .unwrap_or(0),
            };
            let pending = pb.seq.saturating_sub(slowest).max(pb.inflight);
            allowed = allowed.min(self.window.saturating_sub(pending));
        }
        let version = self.target.version;
        let out = peer.out();
        for _ in 0..allowed {
            if out.len() >= TX_MAX {
                break;
            }
            stats::stamp(&mut pb.payload, p as u16, pb.seq, now_ns);
            let id = (pb.seq % 65535) as u16 + 1;
            if flow.qos > 0 {
                let state = &mut pb.ids[usize::from(id)];
                if *state != FREE {
                    return Err("more than 65535 messages in flight".into());
                }
                *state = AWAIT_ACK;
                pb.inflight += 1;
            }
            let (topic, alias): (&[u8], _) = match (flow.alias, pb.alias_set) {
                (false, _) => (&pb.topic, None),
                (true, false) => (&pb.topic, Some(1)),
                (true, true) => (&[], Some(1)),
            };
            pb.alias_set = flow.alias;
            mqtt::publish_aliased(out, version, flow.qos, id, topic, alias, &pb.payload);
            pb.seq += 1;
        }
        peer.flush()?;
        Ok(self.interval_ns.map(|i| self.start_ns + pb.seq * i))
    }

    /// True when every publisher's messages reached every subscriber of its topic and were
    /// all acknowledged.
    fn complete(&self) -> bool {
        self.pubs.iter().all(|p| p.inflight == 0)
            && self.subs.iter().enumerate().all(|(s, sub)| match sub.only {
                Some(_) => sub.tracks[0].unique >= self.pubs[s].seq,
                None => sub
                    .tracks
                    .iter()
                    .zip(&self.pubs)
                    .all(|(t, p)| t.unique >= p.seq),
            })
    }

    /// Waits for what is still on its way, until nothing more arrives for the drain time;
    /// returns when the last message arrived (generator clock, ns).
    fn drain(&mut self, events: &mut Events) -> Res<u64> {
        let drain = self.flow.drain.as_nanos() as u64;
        let mut last = self.received_total();
        let mut quiet_since = stats::now_ns();
        while !self.complete() {
            let now = stats::now_ns();
            let got = self.received_total();
            if got != last {
                (last, quiet_since) = (got, now);
            }
            if now >= quiet_since + drain {
                break;
            }
            self.turn(events, Some(POLL_MAX))?;
        }
        Ok(self
            .subs
            .iter()
            .map(|s| s.last_ns)
            .fold(self.start_ns, u64::max))
    }

    /// Messages and acknowledgements received so far (progress, for the drain).
    fn received_total(&self) -> u64 {
        let subs: u64 = self
            .subs
            .iter()
            .flat_map(|s| &s.tracks)
            .map(|t| t.unique)
            .sum();
        let acks: u64 = self.pubs.iter().map(|p| p.seq - p.inflight).sum();
        subs + acks
    }

    /// Sends DISCONNECT on every connection and waits briefly for the broker to close them.
    fn close(&mut self, events: &mut Events) -> Res<()> {
        for peer in &mut self.peers {
            peer.close()?;
        }
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until && self.peers.iter().any(|p| p.phase != Phase::Closed) {
            self.turn(events, Some(POLL_MAX))?;
        }
        Ok(())
    }

    fn outcome(&self, publish_secs: f64, last_ns: u64) -> Outcome {
        let mut o = Outcome {
            window: self.window,
            publish_secs,
            active_secs: (last_ns.saturating_sub(self.start_ns) as f64 / 1e9).max(1e-9),
            latency: self.latency.clone(),
            ..Outcome::default()
        };
        for (p, pb) in self.pubs.iter().enumerate() {
            o.sent += pb.seq;
            o.unacked += pb.inflight;
            o.refused += pb.refused;
            let receivers: Vec<&Track> = match self.flow.pairs {
                true => vec![&self.subs[p].tracks[0]],
                false => self.subs.iter().map(|s| &s.tracks[p]).collect(),
            };
            for t in receivers {
                o.delivered += t.unique;
                o.lost += pb.seq.saturating_sub(t.unique);
                o.duplicates += t.duplicates;
                o.reordered += t.reordered;
            }
        }
        o.by_alias = self.subs.iter().map(|s| s.by_alias).sum();
        o
    }
}
