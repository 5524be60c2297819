//! Message-flow scenarios: P publishers send stamped messages on their own topics, S
//! subscribers receive every topic (or, in pairs, subscriber i the topic of publisher i).
//! fan-in (P > 1, S = 1), fan-out (P = 1, S > 1), pairs and latency (a fixed rate) are all
//! this one run with different settings.
//!
//! MQTT over plain TCP runs on the non-blocking event loop of `evflow.rs`. TLS, WebSocket
//! and secure WebSocket runs, and runs with MQTT-SN publishers, take the blocking path here:
//! a thread per client, each blocking on its connection (enough for the few clients those
//! runs have; QoS 0 and 1 only). Both paths end in the same `Outcome` and report.
//!
//! With persistent sessions the MQTT clients connect with clean session 0 (5.0: clean start
//! 0 and the longest Session Expiry Interval) under client ids unique to the run, so that a
//! broker keeps the subscribers' subscriptions, queues and in-flight messages in sessions
//! that outlive the connections, in its store when it has one. After the run every client
//! id reconnects once with a clean session and disconnects, which discards its session and
//! leaves none behind.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::evflow;
use crate::mqtt;
use crate::net::{Client, Got, Target, Transport};
use crate::report::Report;
use crate::sn::SnClient;
use crate::stats::{self, Histogram, Track, Usage};
use crate::Res;

/// Settings of a flow run.
#[derive(Clone, Debug)]
pub(crate) struct Flow {
    pub(crate) publishers: usize,
    pub(crate) subscribers: usize,
    pub(crate) qos: u8,
    pub(crate) size: usize,
    /// Messages each publisher may have in flight: not yet received by every subscriber
    /// and, at QoS 1, not yet acknowledged by the broker. 0: no limit.
    pub(crate) window: u64,
    /// Messages per second per publisher; `None`: as fast as the window allows.
    pub(crate) rate: Option<f64>,
    pub(crate) duration: Duration,
    /// Messages per publisher; the run ends at whichever of count and duration comes first.
    pub(crate) count: Option<u64>,
    /// How long subscribers wait for missing messages once publishers stop and nothing
    /// arrives.
    pub(crate) drain: Duration,
    /// Publishers are MQTT-SN clients of the gateway at this address (subscribers stay on
    /// the MQTT target).
    pub(crate) sn_gateway: Option<std::net::SocketAddr>,
    /// The session the MQTT clients ask for (MQTT-SN publishers always start clean).
    pub(crate) session: mqtt::Session,
    /// Publisher i and subscriber i form a pair on a topic of their own (P = S).
    pub(crate) pairs: bool,
    /// MQTT 5.0 topic aliases: publishers name the topic by alias after the first message,
    /// and subscribers allow the broker aliases.
    pub(crate) alias: bool,
}

/// What a flow run observed, whichever path ran it.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) sent: u64,
    /// Distinct messages received, summed over subscribers.
    pub(crate) delivered: u64,
    /// Messages sent that some subscriber of their topic did not receive (per subscriber).
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) reordered: u64,
    /// QoS 1 and 2 messages the broker had not acknowledged when the run ended.
    pub(crate) unacked: u64,
    /// Acknowledgements with a failure reason code.
    pub(crate) refused: u64,
    /// Deliveries that named their topic by alias alone.
    pub(crate) by_alias: u64,
    /// The window publishers kept (0: none).
    pub(crate) window: u64,
    /// From the start until the last message was sent, and until the last one arrived.
    pub(crate) publish_secs: f64,
    pub(crate) active_secs: f64,
    pub(crate) latency: Histogram,
}

/// A publisher's connection: MQTT over the target's transport, or MQTT-SN over UDP.
enum Publisher {
    Mqtt(Client),
    Sn(SnClient),
}

/// State the threads share while running.
struct Shared {
    /// `received[s][p]`: distinct messages subscriber s has of publisher p.
    received: Vec<Vec<AtomicU64>>,
    /// Messages each publisher sent, valid once `publishers_done` is set.
    sent: Vec<AtomicU64>,
    publishers_done: AtomicBool,
    /// Subscribers give up on missing messages after this time (generator clock, ns), or
    /// later when messages still arrive; valid with `publishers_done`.
    drain_until_ns: AtomicU64,
    /// Set when a thread fails, so that the others stop.
    abort: AtomicBool,
}

struct PubResult {
    sent: u64,
    unacked: u64,
    /// When the last message was handed to the connection (generator clock, ns).
    end_ns: u64,
}

struct SubResult {
    tracks: Vec<Track>,
    latency: Histogram,
    last_ns: u64,
}

const BATCH: u64 = 64;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the flow and reports it; the report fails when QoS 1 or 2 lost or anything
/// duplicated. With persistent sessions it then discards the sessions of every client that
/// connected, also when the run failed; the report fails when that does not succeed.
pub(crate) fn run(flow: &Flow, target: &Target, broker_pid: Option<u32>) -> Res<Report> {
    let mut connected = Vec::new();
    let event_loop = target.transport == Transport::Tcp && flow.sn_gateway.is_none();
    if !event_loop && (flow.qos > 1 || flow.alias || flow.pairs) {
        return Err("QoS 2, topic aliases and pairs run over MQTT on tcp only".into());
    }
    let result = if event_loop {
        evflow::run(flow, target, broker_pid, &mut connected)
    } else {
        measure(flow, target, broker_pid, &mut connected)
    };
    // The event loop spins while a paced message is due soon: its core is busy by design.
    let paced = event_loop && flow.rate.is_some();
    let result = result.and_then(|(outcome, usage)| report(flow, &outcome, &usage, paced));
    if flow.session == mqtt::Session::Clean {
        return result;
    }
    let discarded = discard_sessions(target, &connected);
    let mut report = result?;
    match discarded {
        Ok(()) => report.int("sessions_discarded", connected.len() as u64),
        Err(e) => report.fail(format!("discarding the persistent sessions: {e}")),
    }
    Ok(report)
}

/// The report of a flow run: the figures, the CPU use, and failures for loss or unacknowledged
/// messages at QoS 1 and 2, refused messages and duplicates.
fn report(flow: &Flow, o: &Outcome, usage: &Usage, paced: bool) -> Res<Report> {
    let rate = o.delivered as f64 / o.active_secs;
    let send_rate = o.sent as f64 / o.publish_secs.max(1e-9);
    let mut report = Report::new();
    report.int("publishers", flow.publishers as u64);
    report.int("subscribers", flow.subscribers as u64);
    report.int("qos", u64::from(flow.qos));
    report.int("size", flow.size as u64);
    report.int("window", o.window);
    if flow.pairs {
        report.int("pairs", flow.publishers as u64);
    }
    if flow.alias {
        report.int("topic_alias", 1);
        report.int("delivered_by_alias", o.by_alias);
    }
    if let Some(r) = flow.rate {
        report.num("rate_per_publisher", r);
    }
    report.int("sent", o.sent);
    report.int("delivered", o.delivered);
    report.int("lost", o.lost);
    report.int("duplicates", o.duplicates);
    report.int("reordered", o.reordered);
    report.int("unacked", o.unacked);
    report.int("refused", o.refused);
    report.num("publish_s", o.publish_secs);
    report.num("send_rate", send_rate);
    report.num("msgs_per_s", rate);
    report.num("mib_per_s", rate * flow.size as f64 / (1024.0 * 1024.0));
    report.latency(&o.latency);
    usage.finish(&mut report, paced)?;
    report.human = format!(
        "{} msg/s delivered ({:.1} MiB/s), sent {}, lost {}, dup {}, latency p50 {} p99 {} \
         p99.9 {}",
        rate.round(),
        rate * flow.size as f64 / (1024.0 * 1024.0),
        o.sent,
        o.lost,
        o.duplicates,
        crate::report::micros(o.latency.quantile(0.5)),
        crate::report::micros(o.latency.quantile(0.99)),
        crate::report::micros(o.latency.quantile(0.999)),
    );
    if let Some(r) = flow.rate {
        let offered = r * flow.publishers as f64;
        // Publishers that fall behind their schedule (window full, or the generator slow)
        // offer less than asked.
        if send_rate < 0.95 * offered && flow.count.is_none() {
            report.warn(format!(
                "sent {send_rate:.0} msg/s of the {offered:.0} msg/s asked for"
            ));
        }
    }
    // Persistent sessions change nothing here: without a reconnect no message is resent, so
    // every acknowledged message still reaches each subscriber exactly once.
    if flow.qos >= 1 && (o.lost > 0 || o.unacked > 0) {
        report.fail(format!(
            "QoS {} lost {} message(s), {} unacknowledged",
            flow.qos, o.lost, o.unacked
        ));
    }
    if o.refused > 0 {
        report.fail(format!("the broker refused {} message(s)", o.refused));
    }
    if o.duplicates > 0 {
        report.fail(format!("{} duplicate message(s)", o.duplicates));
    }
    Ok(report)
}

/// Ends the sessions of `ids`: each reconnects with a clean session, which discards what the
/// broker kept, and disconnects, which ends the new session.
fn discard_sessions(target: &Target, ids: &[String]) -> Res<()> {
    for id in ids {
        Client::connect(target, id, mqtt::Session::Clean, IO_TIMEOUT)
            .map_err(|e| format!("{id}: {e}"))?
            .disconnect(Duration::from_millis(500))?;
    }
    Ok(())
}

/// The run on the blocking path; pushes the id of every MQTT client that connects to
/// `connected`.
fn measure(
    flow: &Flow,
    target: &Target,
    broker_pid: Option<u32>,
    connected: &mut Vec<String>,
) -> Res<(Outcome, Usage)> {
    // Client ids unique to the run: a persistent session never meets one of an earlier run.
    let tag = stats::random_tag()?;
    let shared = Arc::new(Shared {
        received: (0..flow.subscribers)
            .map(|_| (0..flow.publishers).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        sent: (0..flow.publishers).map(|_| AtomicU64::new(0)).collect(),
        publishers_done: AtomicBool::new(false),
        drain_until_ns: AtomicU64::new(u64::MAX),
        abort: AtomicBool::new(false),
    });
    let mut subs = Vec::new();
    for s in 0..flow.subscribers {
        let id = format!("bench-{tag}-s{s}");
        let mut client = Client::connect(target, &id, flow.session, IO_TIMEOUT)?;
        connected.push(id);
        client.subscribe(&format!("bench/{tag}/+"), flow.qos, IO_TIMEOUT)?;
        subs.push(client);
    }
    let mut pubs = Vec::new();
    for p in 0..flow.publishers {
        let id = format!("bench-{tag}-p{p}");
        pubs.push(match flow.sn_gateway {
            None => {
                let client = Client::connect(target, &id, flow.session, IO_TIMEOUT)?;
                connected.push(id);
                Publisher::Mqtt(client)
            }
            Some(gw) => {
                let topic = format!("bench/{tag}/{p}");
                Publisher::Sn(SnClient::connect(gw, &id, &topic, IO_TIMEOUT)?)
            }
        });
    }
    let barrier = Arc::new(Barrier::new(flow.publishers + flow.subscribers + 1));
    let mut sub_threads = Vec::new();
    for (s, client) in subs.into_iter().enumerate() {
        let (shared, barrier, flow) = (shared.clone(), barrier.clone(), flow.clone());
        sub_threads.push(thread::spawn(move || {
            barrier.wait();
            let result = subscriber(client, s, &shared, &flow);
            if result.is_err() {
                shared.abort.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    let mut pub_threads = Vec::new();
    for (p, client) in pubs.into_iter().enumerate() {
        let (shared, barrier, flow) = (shared.clone(), barrier.clone(), flow.clone());
        let topic = format!("bench/{tag}/{p}");
        pub_threads.push(thread::spawn(move || {
            barrier.wait();
            let result = publisher(client, p, &topic, &shared, &flow);
            if result.is_err() {
                shared.abort.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    barrier.wait();
    let start_ns = stats::now_ns();
    let usage = Usage::start(broker_pid)?;

    let mut first_error = None;
    let mut sent = Vec::new();
    let mut unacked = 0;
    let mut end_ns = start_ns;
    for (p, handle) in pub_threads.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(r)) => {
                shared.sent[p].store(r.sent, Ordering::Relaxed);
                sent.push(r.sent);
                unacked += r.unacked;
                end_ns = end_ns.max(r.end_ns);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e.to_string());
                sent.push(0);
            }
            Err(_) => {
                first_error.get_or_insert("a publisher thread panicked".to_owned());
                sent.push(0);
            }
        }
    }
    let publish_secs = (end_ns - start_ns) as f64 / 1e9;
    let drain_until = stats::now_ns() + flow.drain.as_nanos() as u64;
    shared.drain_until_ns.store(drain_until, Ordering::Relaxed);
    shared.publishers_done.store(true, Ordering::Release);

    let mut latency = Histogram::default();
    let (mut delivered, mut lost, mut dups, mut reordered, mut last_ns) = (0, 0, 0, 0, start_ns);
    for handle in sub_threads {
        match handle.join() {
            Ok(Ok(r)) => {
                latency.merge(&r.latency);
                last_ns = last_ns.max(r.last_ns);
                for (p, track) in r.tracks.iter().enumerate() {
                    delivered += track.unique;
                    lost += sent[p].saturating_sub(track.unique);
                    dups += track.duplicates;
                    reordered += track.reordered;
                }
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                first_error.get_or_insert("a subscriber thread panicked".to_owned());
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    let outcome = Outcome {
        sent: sent.iter().sum(),
        delivered,
        lost,
        duplicates: dups,
        reordered,
        unacked,
        window: flow.window,
        publish_secs,
        active_secs: ((last_ns - start_ns) as f64 / 1e9).max(1e-9),
        latency,
        ..Outcome::default()
    };
    Ok((outcome, usage))
}

fn publisher(
    mut client: Publisher,
    p: usize,
    topic: &str,
    shared: &Shared,
    flow: &Flow,
) -> Res<PubResult> {
    let start = Instant::now();
    let deadline = start + flow.duration;
    let count = flow.count.unwrap_or(u64::MAX);
    let interval = flow.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut payload = vec![0u8; flow.size];
    let mut out = Vec::with_capacity((flow.size + topic.len() + 8) * BATCH as usize);
    let mut outstanding = vec![false; 65536];
    let (mut seq, mut inflight) = (0u64, 0u64);
    if let Publisher::Mqtt(c) = &client {
        c.conn.set_read_timeout(Duration::from_millis(100))?;
        c.conn.set_write_timeout(IO_TIMEOUT)?;
    }
    while !shared.abort.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline || seq >= count {
            break;
        }
        let mut batch = BATCH.min(count - seq);
        if let Some(interval) = interval {
            let due = start + interval.mul_f64(seq as f64);
            if due > now {
                thread::sleep((due - now).min(deadline - now));
                continue;
            }
            let owed = ((now - start).as_secs_f64() / interval.as_secs_f64()) as u64 + 1;
            batch = batch.min(owed.saturating_sub(seq).max(1));
        }
        if flow.window > 0 {
            // Messages not yet at every subscriber; at QoS 1 also those the broker has not
            // acknowledged. Bounding both keeps the broker's queues short, so the rate is
            // one the broker sustains end to end.
            let slowest = shared
                .received
                .iter()
                .map(|per_pub| per_pub[p].load(Ordering::Relaxed))
                .min()
                .unwrap_or(seq);
            let pending = seq.saturating_sub(slowest).max(inflight);
            let allowed = flow.window.saturating_sub(pending);
            if allowed == 0 {
                if inflight > 0 {
                    inflight -= publisher_acks(&mut client, &mut outstanding)?;
                } else {
                    thread::sleep(Duration::from_micros(200));
                }
                continue;
            }
            batch = batch.min(allowed);
        }
        out.clear();
        let sent_ns = stats::now_ns();
        for _ in 0..batch {
            stats::stamp(&mut payload, p as u16, seq, sent_ns);
            let id = (seq % 65535) as u16 + 1;
            if flow.qos > 0 {
                if outstanding[usize::from(id)] {
                    return Err("more than 65535 messages in flight".into());
                }
                outstanding[usize::from(id)] = true;
                inflight += 1;
            }
            match &mut client {
                Publisher::Mqtt(c) => {
                    let version = c.version;
                    mqtt::publish(&mut out, version, flow.qos, id, topic.as_bytes(), &payload);
                }
                // A datagram each: UDP carries one MQTT-SN message per datagram.
                Publisher::Sn(c) => c.publish(flow.qos, id, &payload, &mut out)?,
            }
            seq += 1;
        }
        if let Publisher::Mqtt(c) = &mut client {
            c.conn.send(&out)?;
        }
    }
    let end_ns = stats::now_ns();
    if flow.qos > 0 {
        let until = Instant::now() + flow.drain;
        while inflight > 0 && Instant::now() < until && !shared.abort.load(Ordering::Relaxed) {
            inflight -= publisher_acks(&mut client, &mut outstanding)?;
        }
    }
    match client {
        Publisher::Mqtt(c) => c.disconnect(Duration::from_millis(500))?,
        Publisher::Sn(c) => c.disconnect()?,
    }
    Ok(PubResult {
        sent: seq,
        unacked: inflight,
        end_ns,
    })
}

/// Waits (up to the read timeout) for PUBACKs; returns how many arrived.
fn publisher_acks(client: &mut Publisher, outstanding: &mut [bool]) -> Res<u64> {
    match client {
        Publisher::Mqtt(c) => read_acks(c, outstanding),
        Publisher::Sn(c) => c.read_acks(outstanding, Duration::from_millis(100)),
    }
}

fn read_acks(client: &mut Client, outstanding: &mut [bool]) -> Res<u64> {
    if client.fill()? == Got::Eof {
        return Err("the broker closed a publisher's connection".into());
    }
    let mut acked = 0;
    while let Some(frame) = client.next_frame()? {
        if frame.kind() == mqtt::PUBACK {
            let id = usize::from(mqtt::puback_id(client.body(&frame))?);
            if !outstanding[id] {
                return Err(format!("PUBACK for packet {id}, which is not in flight").into());
            }
            outstanding[id] = false;
            acked += 1;
        } else if frame.kind() == mqtt::DISCONNECT {
            return Err("the broker sent DISCONNECT to a publisher".into());
        }
    }
    Ok(acked)
}

fn subscriber(mut client: Client, s: usize, shared: &Shared, flow: &Flow) -> Res<SubResult> {
    let mut tracks = vec![Track::default(); flow.publishers];
    let mut latency = Histogram::default();
    let mut acks = Vec::new();
    let mut last_ns = 0;
    let mut last_sent = Instant::now();
    client.conn.set_read_timeout(Duration::from_millis(50))?;
    client.conn.set_write_timeout(IO_TIMEOUT)?;
    while !shared.abort.load(Ordering::Relaxed) {
        let got = client.fill()?;
        let now = stats::now_ns();
        let mut any = false;
        while let Some(frame) = client.next_frame()? {
            match frame.kind() {
                mqtt::PUBLISH => {
                    let body = client.body(&frame);
                    let inc = mqtt::incoming(client.version, frame.first, body)?;
                    let (p, seq, sent_ns) = stats::unstamp(&body[inc.payload_start..])
                        .ok_or("a received payload has no stamp")?;
                    let track = tracks
                        .get_mut(usize::from(p))
                        .ok_or("a received payload names an unknown publisher")?;
                    track.record(seq);
                    latency.record(now.saturating_sub(sent_ns));
                    if inc.qos > 0 {
                        mqtt::puback(&mut acks, inc.id);
                    }
                    any = true;
                }
                mqtt::DISCONNECT => return Err("the broker sent DISCONNECT".into()),
                _ => {}
            }
        }
        if any {
            last_ns = now;
            for (p, track) in tracks.iter().enumerate() {
                shared.received[s][p].store(track.unique, Ordering::Relaxed);
            }
        }
        if !acks.is_empty() {
            client.conn.send(&acks)?;
            acks.clear();
            last_sent = Instant::now();
        } else if last_sent.elapsed() > Duration::from_secs(30) {
            mqtt::pingreq(&mut acks);
            client.conn.send(&acks)?;
            acks.clear();
            last_sent = Instant::now();
        }
        if got == Got::Eof {
            return Err("the broker closed a subscriber's connection".into());
        }
        if shared.publishers_done.load(Ordering::Acquire) {
            let complete = tracks
                .iter()
                .enumerate()
                .all(|(p, t)| t.unique >= shared.sent[p].load(Ordering::Relaxed));
            // Give up once nothing has arrived for the drain time.
            let until = shared.drain_until_ns.load(Ordering::Relaxed);
            let quiet_until = last_ns.saturating_add(flow.drain.as_nanos() as u64);
            if complete || now >= until.max(quiet_until) {
                break;
            }
        }
    }
    client.disconnect(Duration::from_millis(500))?;
    Ok(SubResult {
        tracks,
        latency,
        last_ns,
    })
}
