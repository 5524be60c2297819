//! Connection scenarios: the rate of full connection set-ups (connect, CONNECT, CONNACK,
//! DISCONNECT, close) from concurrent blocking loops, one thread each (over any transport),
//! and many idle MQTT connections over TCP, opened by one non-blocking mio loop: their set-up
//! rate, how many the broker holds, and its memory per connection.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::mqtt::{self, Session};
use crate::net::{Client, Target, Transport};
use crate::peer::{self, Peer, Phase};
use crate::report::Report;
use crate::stats::{self, Histogram, Usage};
use crate::Res;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

struct LoopResult {
    done: u64,
    errors: u64,
    first_error: Option<String>,
    setup: Histogram,
}

/// `concurrency` loops connect and disconnect until `duration` has passed.
pub(crate) fn connect_rate(
    target: Arc<Target>,
    concurrency: usize,
    duration: Duration,
    broker_pid: Option<u32>,
) -> Res<Report> {
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let tag = format!("{:x}", std::process::id());
    let mut handles = Vec::new();
    for c in 0..concurrency {
        let (target, barrier, stop) = (target.clone(), barrier.clone(), stop.clone());
        let prefix = format!("bench-{tag}-c{c}-");
        handles.push(thread::spawn(move || {
            barrier.wait();
            one_loop(&target, &prefix, duration, &stop)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let usage = Usage::start(broker_pid)?;
    let (mut done, mut errors, mut first_error) = (0, 0, None);
    let mut setup = Histogram::default();
    for handle in handles {
        let r = handle
            .join()
            .map_err(|_| "a connection loop panicked".to_owned())?;
        done += r.done;
        errors += r.errors;
        setup.merge(&r.setup);
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let rate = done as f64 / wall;
    let mut report = Report::new();
    report.int("concurrency", concurrency as u64);
    report.int("connections", done);
    report.int("errors", errors);
    report.num("conns_per_s", rate);
    report.latency(&setup);
    usage.finish(&mut report, false)?;
    report.human = format!(
        "{} connections/s, {done} done, {errors} failed, CONNACK after p50 {} p99 {}",
        rate.round(),
        crate::report::micros(setup.quantile(0.5)),
        crate::report::micros(setup.quantile(0.99)),
    );
    if let Some(e) = first_error {
        report.fail(format!("{errors} connection(s) failed, first: {e}"));
    }
    Ok(report)
}

fn one_loop(target: &Target, prefix: &str, duration: Duration, stop: &AtomicBool) -> LoopResult {
    let deadline = Instant::now() + duration;
    let mut r = LoopResult {
        done: 0,
        errors: 0,
        first_error: None,
        setup: Histogram::default(),
    };
    let mut n = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let t0 = stats::now_ns();
        let result = Client::connect(target, &format!("{prefix}{n}"), Session::Clean, IO_TIMEOUT)
            .and_then(|c| {
                let t1 = stats::now_ns();
                c.disconnect(IO_TIMEOUT)?;
                Ok(t1 - t0)
            });
        n += 1;
        match result {
            Ok(ns) => {
                r.done += 1;
                r.setup.record(ns);
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| e.to_string());
                if r.errors > 100 {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    r
}

/// Connections in their set-up handshake at once (the broker's accept backlog is finite).
const OPENING_MAX: usize = 128;
/// How long opening all idle connections may take.
const SETUP_TIME_MAX: Duration = Duration::from_secs(120);
/// Idle connections opened from one local address, from ports `SOURCE_PORT_FIRST` on: above
/// the ports `culex-bench ports` hands out for listeners, since a listener bound to all
/// addresses without SO_REUSEADDR (mosquitto's WebSocket listeners) cannot bind a port that
/// a connection of an earlier run, on any address, still holds in TIME_WAIT.
const PER_SOURCE_MAX: usize = 20_000;
pub(crate) const SOURCE_PORT_FIRST: u16 = 40_000;
/// Keep alive of the idle connections: longer than any run, so no PINGREQ is needed.
const KEEP_ALIVE_SECS: u16 = 900;

/// Opens `count` idle MQTT connections over TCP (from as many local addresses 127.a.b.c as
/// `PER_SOURCE_MAX` asks, with ports chosen here; the addresses are random per run, so that
/// connections of an earlier run still in TIME_WAIT are not in the way), holds them for
/// `hold`, checks that the broker kept them open, and reports the broker's resident memory
/// before and after and the set-up rate. When not all can be opened, it reports how many
/// were, with the first error, and fails.
pub(crate) fn idle_memory(
    target: &Target,
    count: usize,
    hold: Duration,
    broker_pid: u32,
) -> Res<Report> {
    if target.transport != Transport::Tcp {
        return Err("idle runs over tcp only".into());
    }
    let tag = stats::random_tag()?;
    // 127.a.b.1, 127.a.(b + 1).1, ...: a in 1..=250, b in 0..200, and count is at most
    // 100,000 (five addresses).
    let seed = u32::from_str_radix(&tag[..6], 16)?;
    let (a, b) = (1 + (seed % 250) as u8, ((seed >> 8) % 200) as u8);
    let source = |i: usize| {
        let ip = Ipv4Addr::new(127, a, b + (i / PER_SOURCE_MAX) as u8, 1);
        SocketAddr::new(
            IpAddr::V4(ip),
            SOURCE_PORT_FIRST + (i % PER_SOURCE_MAX) as u16,
        )
    };
    let before = stats::rss_kib(broker_pid)?;
    let usage = Usage::start(Some(broker_pid))?;
    let start = Instant::now();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 4096];
    let mut peers: Vec<Peer> = Vec::with_capacity(count);
    let (mut ready, mut opening) = (0usize, 0usize);
    let mut first_error: Option<String> = None;
    let until = start + SETUP_TIME_MAX;
    while first_error.is_none() && (peers.len() < count || opening > 0) {
        while opening < OPENING_MAX && peers.len() < count {
            let i = peers.len();
            let mut sock = match peer::open(target.addr, Some(source(i))) {
                Ok(sock) => sock,
                Err(e) => {
                    first_error = Some(format!("connection {i} from {}: {e}", source(i)));
                    break;
                }
            };
            poll.registry().register(
                &mut sock,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let mut connect = Vec::new();
            let id = format!("bench-{tag}-i{i}");
            mqtt::connect(
                &mut connect,
                target.version,
                &id,
                KEEP_ALIVE_SECS,
                Session::Clean,
                0,
            );
            peers.push(Peer::new(sock, connect, Vec::new()));
            opening += 1;
        }
        if first_error.is_some() {
            break;
        }
        if Instant::now() >= until {
            first_error = Some(format!("set-up took over {SETUP_TIME_MAX:?}"));
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(peer) = peers.get_mut(i) else {
                continue;
            };
            if !peer.opening() {
                continue;
            }
            let result = peer.on_writable().and_then(|()| {
                peer.read_frames(&mut scratch, |peer, first, body, _| {
                    peer.handshake(target.version, first, body)
                })
            });
            match result {
                Ok(true) if peer.opening() => {}
                Ok(true) => {
                    opening -= 1;
                    ready += 1;
                }
                Ok(false) => {
                    first_error = Some(format!("the broker closed connection {i} at set-up"));
                }
                Err(e) => first_error = Some(format!("connection {i}: {e}")),
            }
        }
    }
    let setup = start.elapsed().as_secs_f64();
    thread::sleep(hold);
    // Still open: a read finds nothing to read rather than the end of the stream.
    let mut held = 0;
    for peer in peers.iter_mut().filter(|p| p.phase == Phase::Ready) {
        match peer.sock.read(&mut scratch) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => held += 1,
            _ => {}
        }
    }
    let after = stats::rss_kib(broker_pid)?;
    let mut report = Report::new();
    usage.finish(&mut report, false)?;
    drop(peers);
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / held.max(1) as f64;
    let rate = ready as f64 / setup.max(1e-9);
    report.int("connections", count as u64);
    report.int("opened", ready as u64);
    report.int("held", held as u64);
    report.int("sources", count.div_ceil(PER_SOURCE_MAX) as u64);
    report.int("rss_before_kib", before);
    report.int("rss_after_kib", after);
    report.num("bytes_per_conn", per_conn);
    report.num("setup_s", setup);
    report.num("conns_per_s", rate);
    report.human = format!(
        "{held} of {count} idle connections held (opened at {rate:.0}/s): broker RSS {before} \
         KiB -> {after} KiB, {per_conn:.0} bytes per connection"
    );
    if let Some(e) = first_error {
        report.fail(format!(
            "{ready} of {count} connections opened; first error: {e}"
        ));
    } else if held < count {
        report.fail(format!(
            "the broker closed {} of {count} connections",
            count - held
        ));
    }
    Ok(report)
}
