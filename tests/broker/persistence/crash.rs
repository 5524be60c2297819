//! The crash test: culex is killed with SIGKILL again and again, at random moments, while
//! two publishers (QoS 1 over 5.0, QoS 2 over 3.1.1) send a numbered stream and two
//! subscribers (QoS 1 over 3.1.1, QoS 2 over 5.0 on a wildcard) read it, all with persistent
//! sessions and fixed client ids. Each client behaves as a real one would across the
//! restarts: publishers resend unacknowledged PUBLISH (DUP 1) and PUBREL packets, the QoS 2
//! subscriber is the specification's receiver and keeps its packet identifiers awaiting
//! PUBREL from one connection to the next.
//!
//! What must hold at the end: every message whose PUBACK or PUBREC reached its publisher was
//! delivered to both subscribers, QoS 2 messages exactly once to the QoS 2 subscriber; the
//! acknowledged retained messages are there for a new subscriber; the sessions were present
//! after every restart. The kill delays come from a seed that is printed
//! (`CULEX_CRASH_SEED=N` repeats them).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{StoreDir, EXIT_WITHIN, EXPIRY_NEVER};
use crate::harness::*;
use crate::hex;

/// Broker starts that end with SIGKILL; one more start follows them.
const KILLS: u32 = 12;
/// Kill delays in milliseconds after every client is connected: `MIN_DELAY..=MAX_DELAY`.
const MIN_DELAY: u64 = 100;
const MAX_DELAY: u64 = 700;
/// Unacknowledged messages a publisher keeps in flight (the broker's Receive Maximum is 20).
const WINDOW: usize = 20;
/// How long a client waits for a packet it is owed.
const WAIT: Duration = Duration::from_secs(5);
/// Silence that ends the subscribers' final drain.
const DRAIN_SILENCE: Duration = Duration::from_millis(1500);
/// The longest the final drain may last.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long the main thread waits for the clients to be connected.
const READY_WITHIN: Duration = Duration::from_secs(15);
const PREFIX: &str = "crash";
const SHARED: &str = "crash/retain/shared";
/// Broker log lines shown with a failure.
const LOG_TAIL: usize = 80;

/// splitmix64, for kill delays that a seed reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What the client threads of one broker start share with the main thread.
struct Run {
    /// 0 for the first start, whose store is empty.
    start: u32,
    addr: SocketAddr,
    /// The final start: publishers complete what they have and send nothing new.
    last: bool,
    /// Set just before SIGKILL: from then on a closed connection is expected.
    killed: AtomicBool,
    /// Set in the final start once the publishers are done: subscribers stop at silence.
    drain: AtomicBool,
}

/// Opens a connection resuming the persistent session `id`. Problems (no CONNACK, a
/// refusal, a wrong session present flag) are recorded; `None` if there is no session.
fn connect(run: &Run, id: &str, v5: bool, problems: &mut Vec<String>) -> Option<RawClient> {
    let start = run.start;
    let mut c = RawClient::connect(run.addr);
    let bytes = if v5 {
        connect_v5(id, false, 60, &EXPIRY_NEVER)
    } else {
        connect_v311(id, false, 60)
    };
    c.send_lossy(&bytes);
    let p = match c.recv_within(WAIT) {
        Recv::Packet(p) if p[0] == 0x20 => p,
        other => {
            problems.push(format!("{id}: no CONNACK at start {start}: {other:?}"));
            return None;
        }
    };
    let ack = parse_connack(&p, v5);
    if ack.reason != 0 {
        problems.push(format!(
            "{id}: CONNACK refused at start {start}: {}",
            to_hex(&p)
        ));
        return None;
    }
    // The store is empty at the first start; after that the session must be back.
    let want = start > 0;
    if ack.session_present != want {
        problems.push(format!(
            "{id}: CONNACK session present {} at start {start}, expected {want}",
            u8::from(ack.session_present)
        ));
    }
    // The publishers' window must fit the broker's Receive Maximum [MQTT-3.3.4-7].
    if let Some(Value::Int(n)) = prop(&ack.properties, 0x21) {
        if (*n as usize) < WINDOW {
            problems.push(format!("{id}: Receive Maximum {n} below the test's window"));
        }
    }
    Some(c)
}

/// A QoS 1/2 message a publisher has sent and not completed.
struct Outgoing {
    pid: u16,
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    /// The sequence number of a stream message; `None` for a retained message.
    seq: Option<u64>,
    /// QoS 2: PUBREC received, so the PUBREL is what is resent.
    released: bool,
}

struct Publisher {
    id: &'static str,
    v5: bool,
    qos: u8,
    /// Payload prefix: payloads are `TAG:SEQ`.
    tag: &'static str,
    topic: String,
    /// Publishes the retained messages of each start too.
    retains: bool,
    next_seq: u64,
    last_pid: u16,
    /// In the order sent, which is the order of resending.
    inflight: Vec<Outgoing>,
    /// Retained messages (topic, payload) not sent yet.
    pending: VecDeque<(String, String)>,
    /// Sequence numbers whose PUBACK or PUBREC was received.
    acked: BTreeSet<u64>,
    /// Retained messages (topic, payload) whose PUBACK was received, in that order.
    acked_retained: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Publisher {
    fn new(id: &'static str, v5: bool, qos: u8, tag: &'static str, retains: bool) -> Self {
        Self {
            id,
            v5,
            qos,
            tag,
            topic: format!("{PREFIX}/{tag}"),
            retains,
            next_seq: 0,
            last_pid: 0,
            inflight: Vec::new(),
            pending: VecDeque::new(),
            acked: BTreeSet::new(),
            acked_retained: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn run(mut self, run: &Run, ready: &mpsc::Sender<()>) -> Self {
        let start = run.start;
        let Some(mut c) = connect(run, self.id, self.v5, &mut self.problems) else {
            let _ = ready.send(());
            return self;
        };
        // [MQTT-4.4.0-1] resend what is unacknowledged, in the original order.
        for o in &self.inflight {
            c.send_lossy(&self.resend(o));
        }
        if self.retains && !run.last {
            self.pending.push_back((
                format!("{PREFIX}/retain/c{start}"),
                format!("cycle {start}"),
            ));
            self.pending
                .push_back((SHARED.to_string(), format!("shared {start}")));
        }
        let _ = ready.send(());
        loop {
            while self.inflight.len() < WINDOW && (!run.last || !self.pending.is_empty()) {
                self.send_next(&mut c);
            }
            if run.last && self.inflight.is_empty() {
                c.send_lossy(&disconnect());
                return self;
            }
            match c.recv_within(WAIT) {
                Recv::Packet(p) => self.on_packet(&mut c, &p, start),
                Recv::Closed => {
                    if !run.killed.load(Ordering::SeqCst) {
                        self.problems.push(format!(
                            "{}: the broker closed the connection at start {start} with {} \
                             in flight",
                            self.id,
                            self.inflight.len()
                        ));
                    }
                    return self;
                }
                Recv::Timeout => {
                    let pids: Vec<u16> = self.inflight.iter().map(|o| o.pid).collect();
                    self.problems.push(format!(
                        "{}: nothing within {WAIT:?} at start {start} with packet ids {pids:?} \
                         in flight",
                        self.id
                    ));
                    return self;
                }
            }
        }
    }

    fn props(&self) -> Option<&'static [u8]> {
        self.v5.then_some(&[][..])
    }

    fn resend(&self, o: &Outgoing) -> Vec<u8> {
        if o.released {
            pubrel(o.pid)
        } else {
            let topic = o.topic.as_bytes();
            publish_raw(
                topic,
                &o.payload,
                self.qos,
                o.pid,
                o.retain,
                true,
                self.props(),
            )
        }
    }

    fn send_next(&mut self, c: &mut RawClient) {
        let (topic, payload, retain, seq) = match self.pending.pop_front() {
            Some((topic, payload)) => (topic, payload.into_bytes(), true, None),
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let payload = format!("{}:{seq}", self.tag).into_bytes();
                (self.topic.clone(), payload, false, Some(seq))
            }
        };
        let pid = self.alloc_pid();
        c.send_lossy(&publish(
            &topic,
            &payload,
            self.qos,
            pid,
            retain,
            self.props(),
        ));
        self.inflight.push(Outgoing {
            pid,
            topic,
            payload,
            retain,
            seq,
            released: false,
        });
    }

    fn alloc_pid(&mut self) -> u16 {
        loop {
            self.last_pid = self.last_pid.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|o| o.pid == self.last_pid) {
                return self.last_pid;
            }
        }
    }

    fn record(&mut self, seq: Option<u64>, topic: &str, payload: &[u8]) {
        match seq {
            Some(seq) => {
                self.acked.insert(seq);
            }
            None => self.acked_retained.push((
                topic.to_string(),
                String::from_utf8_lossy(payload).into_owned(),
            )),
        }
    }

    fn on_packet(&mut self, c: &mut RawClient, p: &[u8], start: u32) {
        let id = self.id;
        let kind = p[0] >> 4;
        let (pid, reason) = match kind {
            4 => parse_ack(p, 0x40),
            5 => parse_ack(p, 0x50),
            7 => parse_ack(p, 0x70),
            _ => {
                let text = to_hex(p);
                self.problems
                    .push(format!("{id}: unexpected packet at start {start}: {text}"));
                return;
            }
        };
        let Some(i) = self.inflight.iter().position(|o| o.pid == pid) else {
            let text = to_hex(p);
            self.problems.push(format!(
                "{id}: acknowledgement for packet id {pid}, which is not in flight, at start \
                 {start}: {text}"
            ));
            return;
        };
        let o = &self.inflight[i];
        let what = format!("{} {:?}", o.topic, String::from_utf8_lossy(&o.payload));
        let expected = match (self.qos, o.released) {
            (1, _) => 4,
            (_, false) => 5,
            (_, true) => 7,
        };
        if kind != expected {
            let text = to_hex(p);
            self.problems.push(format!(
                "{id}: {text} does not fit the flow of packet id {pid} ({what}) at start {start}"
            ));
            return;
        }
        if reason >= 0x80 {
            self.problems.push(format!(
                "{id}: {what} refused with reason {reason:#04x} at start {start}"
            ));
            self.inflight.remove(i);
            return;
        }
        match kind {
            4 => {
                let o = self.inflight.remove(i);
                self.record(o.seq, &o.topic, &o.payload);
            }
            5 => {
                // The broker owns the message now; the PUBREL completes the flow.
                let o = &mut self.inflight[i];
                o.released = true;
                let (seq, topic, payload) = (o.seq, o.topic.clone(), o.payload.clone());
                self.record(seq, &topic, &payload);
                c.send_lossy(&pubrel(pid));
            }
            _ => {
                self.inflight.remove(i);
            }
        }
    }
}

struct Subscriber {
    id: &'static str,
    v5: bool,
    /// Filters and their QoS, subscribed at the first start only.
    filters: Vec<(String, u8)>,
    max_qos: u8,
    /// QoS 2 packet ids awaiting PUBREL, with the payload delivered under each.
    held: BTreeMap<u16, Vec<u8>>,
    /// (topic, payload) of every delivery to the application.
    deliveries: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Subscriber {
    fn new(id: &'static str, v5: bool, filters: &[(&str, u8)]) -> Self {
        Self {
            id,
            v5,
            filters: filters.iter().map(|(f, q)| (f.to_string(), *q)).collect(),
            max_qos: filters.iter().map(|(_, q)| *q).max().unwrap_or(0),
            held: BTreeMap::new(),
            deliveries: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn run(mut self, run: &Run, ready: &mpsc::Sender<()>) -> Self {
        let start = run.start;
        let Some(mut c) = connect(run, self.id, self.v5, &mut self.problems) else {
            let _ = ready.send(());
            return self;
        };
        if start == 0 {
            let filters: Vec<(&str, u8)> =
                self.filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
            c.send_lossy(&subscribe_many(1, &filters, self.v5));
            let granted: Vec<u8> = self.filters.iter().map(|(_, q)| *q).collect();
            match c.recv_within(WAIT) {
                Recv::Packet(p) if parse_suback(&p, 0x90, self.v5) == (1, granted.clone()) => {}
                other => self.problems.push(format!(
                    "{}: SUBACK granting {granted:?} expected, got {other:?}",
                    self.id
                )),
            }
        }
        let _ = ready.send(());
        let mut last_packet = Instant::now();
        let mut drain_from = None;
        loop {
            match c.recv_within(Duration::from_millis(100)) {
                Recv::Packet(p) => {
                    self.on_packet(&mut c, &p, start);
                    last_packet = Instant::now();
                }
                Recv::Closed => {
                    if !run.killed.load(Ordering::SeqCst) {
                        self.problems.push(format!(
                            "{}: the broker closed the connection at start {start}",
                            self.id
                        ));
                    }
                    return self;
                }
                Recv::Timeout => {}
            }
            if run.drain.load(Ordering::SeqCst) {
                let from = *drain_from.get_or_insert_with(Instant::now);
                if from.elapsed() >= DRAIN_LIMIT {
                    self.problems.push(format!(
                        "{}: still receiving {DRAIN_LIMIT:?} after the publishers finished",
                        self.id
                    ));
                    return self;
                }
                if last_packet.max(from).elapsed() >= DRAIN_SILENCE {
                    c.send_lossy(&disconnect());
                    return self;
                }
            }
        }
    }

    fn on_packet(&mut self, c: &mut RawClient, p: &[u8], start: u32) {
        let id = self.id;
        match p[0] >> 4 {
            3 => {
                let m = parse_publish(p, self.v5);
                let topic = String::from_utf8_lossy(&m.topic).into_owned();
                let payload = String::from_utf8_lossy(&m.payload).into_owned();
                if m.qos == 0 || m.qos > self.max_qos {
                    self.problems.push(format!(
                        "{id}: {topic} {payload:?} delivered at QoS {}, subscribed at QoS {}",
                        m.qos, self.max_qos
                    ));
                }
                if m.qos == 2 {
                    self.on_qos2(c, &m, topic, payload, start);
                    return;
                }
                if self.held.contains_key(&m.pid) {
                    self.problems.push(format!(
                        "{id}: QoS {} PUBLISH of {payload:?} uses packet id {}, which still \
                         awaits PUBREL, at start {start}",
                        m.qos, m.pid
                    ));
                }
                self.deliveries.push((topic, payload));
                if m.qos == 1 {
                    c.send_lossy(&puback(m.pid));
                }
            }
            6 => {
                let (pid, _) = parse_ack(p, 0x62);
                if self.held.remove(&pid).is_some() || !self.v5 {
                    c.send_lossy(&pubcomp(pid));
                } else {
                    // A PUBREL resent after our PUBCOMP was lost: Packet Identifier not found.
                    let [hi, lo] = pid.to_be_bytes();
                    c.send_lossy(&packet(0x70, &[hi, lo, 0x92]));
                }
            }
            _ => {
                let text = to_hex(p);
                self.problems
                    .push(format!("{id}: unexpected packet at start {start}: {text}"));
            }
        }
    }

    /// The QoS 2 receiver of [MQTT-4.3.3]: a packet id it does not hold is a new message,
    /// delivered and held until PUBREL; one it holds is a resend, only acknowledged.
    fn on_qos2(
        &mut self,
        c: &mut RawClient,
        m: &Publish,
        topic: String,
        payload: String,
        start: u32,
    ) {
        let id = self.id;
        match self.held.get(&m.pid) {
            Some(held) => {
                if !m.dup {
                    self.problems.push(format!(
                        "{id}: {payload:?} resent under packet id {} without DUP \
                         [MQTT-3.3.1-1] at start {start}",
                        m.pid
                    ));
                }
                if *held != m.payload {
                    self.problems.push(format!(
                        "{id}: packet id {} reused for {payload:?} while it still holds {:?} \
                         at start {start} (one of them is lost)",
                        m.pid,
                        String::from_utf8_lossy(held)
                    ));
                }
            }
            None => {
                self.held.insert(m.pid, m.payload.clone());
                self.deliveries.push((topic, payload));
            }
        }
        c.send_lossy(&pubrec(m.pid));
    }
}

fn spawn_all<T, F>(clients: Vec<T>, run: &Arc<Run>, work: F) -> Vec<JoinHandle<T>>
where
    T: Send + 'static,
    F: Fn(T, &Run, &mpsc::Sender<()>) -> T + Copy + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let n = clients.len();
    let handles = clients
        .into_iter()
        .map(|client| {
            let run = Arc::clone(run);
            let tx = tx.clone();
            thread::spawn(move || work(client, &run, &tx))
        })
        .collect();
    drop(tx);
    for _ in 0..n {
        if rx.recv_timeout(READY_WITHIN).is_err() {
            panic!(
                "a client was not connected within {READY_WITHIN:?} at start {}",
                run.start
            );
        }
    }
    handles
}

fn join_all<T>(handles: Vec<JoinHandle<T>>, start: u32, log: &str) -> Vec<T> {
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| {
                panic!(
                    "a client thread panicked at start {start} (its message is above); \
                     broker log tail:\n{}",
                    tail(log)
                )
            })
        })
        .collect()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// `1, 2, 3, 7, 9, 10` as `1-3, 7, 9-10`.
fn ranges(seqs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let first = seqs[i];
        while i + 1 < seqs.len() && seqs[i + 1] == seqs[i] + 1 {
            i += 1;
        }
        out.push(if seqs[i] == first {
            format!("{first}")
        } else {
            format!("{first}-{}", seqs[i])
        });
        i += 1;
    }
    out.join(", ")
}

/// The retained messages (topic, payload, retain flag) a new subscriber to the retained
/// topics receives.
fn read_retained(broker: &Broker) -> Vec<(String, String, bool)> {
    let mut r = broker.client();
    r.send(&connect_v311("crash-retained", true, 60));
    r.expect(&hex!("20 02 00 00"));
    r.send(&subscribe(1, &format!("{PREFIX}/retain/#"), 1, false));
    r.expect(&hex!("90 03 00 01 01"));
    let mut out = Vec::new();
    for p in r.collect_until_silence(1000) {
        let m = parse_publish(&p, false);
        if m.qos == 1 {
            r.send(&puback(m.pid));
        }
        let topic = String::from_utf8_lossy(&m.topic).into_owned();
        out.push((
            topic,
            String::from_utf8_lossy(&m.payload).into_owned(),
            m.retain,
        ));
    }
    r.send(&disconnect());
    out
}

/// Failures about the stream of `p` as received by `s`.
fn check_stream(p: &Publisher, s: &Subscriber, failures: &mut Vec<String>) {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    let prefix = format!("{}:", p.tag);
    for (topic, payload) in &s.deliveries {
        let Some(seq) = payload.strip_prefix(&prefix) else {
            continue;
        };
        match seq.parse::<u64>() {
            Ok(seq) if seq < p.next_seq && *topic == p.topic => {
                *counts.entry(seq).or_default() += 1;
            }
            _ => failures.push(format!("{}: unexpected delivery {topic} {payload:?}", s.id)),
        }
    }
    let missing: Vec<u64> = p
        .acked
        .iter()
        .filter(|seq| !counts.contains_key(seq))
        .copied()
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "{} never received {} of the {} messages whose {} reached {}: sequence numbers {}",
            s.id,
            missing.len(),
            p.acked.len(),
            if p.qos == 1 { "PUBACK" } else { "PUBREC" },
            p.id,
            ranges(&missing)
        ));
    }
    if p.qos == 2 && s.max_qos == 2 {
        let twice: Vec<u64> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(seq, _)| *seq)
            .collect();
        if !twice.is_empty() {
            failures.push(format!(
                "{} received {} QoS 2 messages of {} more than once: sequence numbers {}",
                s.id,
                twice.len(),
                p.id,
                ranges(&twice)
            ));
        }
    }
}

/// Failures about the retained messages `got` by a new subscriber at the end.
fn check_retained(p: &Publisher, got: &[(String, String, bool)], failures: &mut Vec<String>) {
    let mut found: BTreeMap<&str, &str> = BTreeMap::new();
    for (topic, payload, retain) in got {
        if !retain {
            failures.push(format!(
                "retained {topic} {payload:?} arrived with RETAIN 0"
            ));
        }
        if found.insert(topic, payload).is_some() {
            failures.push(format!("retained {topic} arrived twice"));
        }
    }
    let number = |payload: &str| -> Option<u32> { payload.strip_prefix("shared ")?.parse().ok() };
    let mut newest_shared = None;
    for (topic, payload) in &p.acked_retained {
        if topic == SHARED {
            newest_shared = newest_shared.max(number(payload));
        } else if found.get(topic.as_str()) != Some(&payload.as_str()) {
            failures.push(format!(
                "retained {topic} {payload:?} was acknowledged; a new subscriber got {:?}",
                found.get(topic.as_str())
            ));
        }
    }
    let shared = found.get(SHARED).copied();
    if let Some(acked) = newest_shared {
        if shared.and_then(number).is_none_or(|n| n < acked) {
            failures.push(format!(
                "retained {SHARED} \"shared {acked}\" was acknowledged; a new subscriber got \
                 {shared:?}"
            ));
        }
    }
}

#[test]
fn acknowledged_messages_survive_repeated_kill_9() {
    if is_external() {
        eprintln!("skipped: the crash test kills the broker");
        return;
    }
    let began = Instant::now();
    let seed = std::env::var("CULEX_CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
            now.as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (CULEX_CRASH_SEED={seed} repeats the kill delays)");
    let mut rng = Rng(seed);
    let dir = StoreDir::new("crash");
    // No queue limit: the test counts every message.
    let config = format!("{}max_queued_messages 0\n", dir.config());
    let mut pubs = vec![
        Publisher::new("crash-pub1", true, 1, "q1", true),
        Publisher::new("crash-pub2", false, 2, "q2", false),
    ];
    let mut subs = vec![
        Subscriber::new("crash-sub1", false, &[("crash/q1", 1), ("crash/q2", 1)]),
        Subscriber::new("crash-sub2", true, &[("crash/+", 2)]),
    ];
    let mut log = String::new();
    let mut delays = Vec::new();
    let mut retained = Vec::new();
    for start in 0..=KILLS {
        let mut broker = Broker::start_configured(&config).expect("a spawned broker");
        let run = Arc::new(Run {
            start,
            addr: broker.addr(),
            last: start == KILLS,
            killed: AtomicBool::new(false),
            drain: AtomicBool::new(false),
        });
        // Subscribers first, so that no message finds a session missing.
        let sub_threads = spawn_all(std::mem::take(&mut subs), &run, Subscriber::run);
        let pub_threads = spawn_all(std::mem::take(&mut pubs), &run, Publisher::run);
        if !run.last {
            let delay = MIN_DELAY + rng.next() % (MAX_DELAY - MIN_DELAY + 1);
            delays.push(delay);
            thread::sleep(Duration::from_millis(delay));
            run.killed.store(true, Ordering::SeqCst);
            broker.signal("KILL");
            broker
                .wait_exit(EXIT_WITHIN)
                .expect("culex dies on SIGKILL");
            log.push_str(&format!("--- start {start}, killed after {delay} ms ---\n"));
            log.push_str(&broker.log());
            pubs = join_all(pub_threads, start, &log);
            subs = join_all(sub_threads, start, &log);
        } else {
            let now = format!("{log}--- start {start} (final) ---\n{}", broker.log());
            pubs = join_all(pub_threads, start, &now);
            run.drain.store(true, Ordering::SeqCst);
            subs = join_all(sub_threads, start, &now);
            retained = read_retained(&broker);
            log.push_str(&format!("--- start {start} (final) ---\n"));
            log.push_str(&broker.log());
        }
    }

    let mut failures: Vec<String> = Vec::new();
    for p in &pubs {
        failures.extend(p.problems.iter().cloned());
        if !p.inflight.is_empty() {
            let pids: Vec<u16> = p.inflight.iter().map(|o| o.pid).collect();
            failures.push(format!(
                "{}: flows never completed, packet ids {pids:?}",
                p.id
            ));
        }
        if p.acked.is_empty() {
            failures.push(format!("{}: no message was acknowledged at all", p.id));
        }
    }
    for s in &subs {
        failures.extend(s.problems.iter().cloned());
        let strays = s.deliveries.iter().filter(|(_, payload)| {
            !pubs
                .iter()
                .any(|p| payload.starts_with(&format!("{}:", p.tag)))
        });
        for (topic, payload) in strays {
            failures.push(format!("{}: stray delivery {topic} {payload:?}", s.id));
        }
    }
    for p in &pubs {
        for s in &subs {
            check_stream(p, s, &mut failures);
        }
    }
    check_retained(&pubs[0], &retained, &mut failures);
    let summary = format!(
        "seed {seed}, kill delays {delays:?} ms; acknowledged: {} {}, {} {}; deliveries: \
         {} {}, {} {}; retained acknowledged: {}; {:.1} s",
        pubs[0].id,
        pubs[0].acked.len(),
        pubs[1].id,
        pubs[1].acked.len(),
        subs[0].id,
        subs[0].deliveries.len(),
        subs[1].id,
        subs[1].deliveries.len(),
        pubs[0].acked_retained.len(),
        began.elapsed().as_secs_f64()
    );
    eprintln!("crash test: {summary}");
    assert!(
        failures.is_empty(),
        "{} failure(s) ({summary}):\n{}\nbroker log tail (starts separated by ---):\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&log)
    );
}
