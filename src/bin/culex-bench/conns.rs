//! Connection scenarios: the rate of full connection set-ups (connect, CONNECT, CONNACK,
//! DISCONNECT, close) from concurrent loops, and the broker's memory per idle connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::mqtt::Session;
use crate::net::{Client, Target};
use crate::report::Report;
use crate::stats::{self, Histogram};
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
    let cpu0 = stats::cpu_seconds(None)?;
    let broker0 = broker_pid
        .map(|pid| stats::cpu_seconds(Some(pid)))
        .transpose()?;
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
    let cpu = stats::cpu_seconds(None)? - cpu0;
    let broker_cpu = match (broker_pid, broker0) {
        (Some(pid), Some(before)) => Some(stats::cpu_seconds(Some(pid))? - before),
        _ => None,
    };
    let rate = done as f64 / wall;
    let mut report = Report::new();
    report.int("concurrency", concurrency as u64);
    report.int("connections", done);
    report.int("errors", errors);
    report.num("conns_per_s", rate);
    report.latency(&setup);
    report.cpu(wall, cpu, broker_cpu);
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

/// Opens `count` connections, holds them for `hold`, and reports the broker's resident
/// memory before and after (needs the broker's pid).
pub(crate) fn idle_memory(
    target: &Target,
    count: usize,
    hold: Duration,
    broker_pid: u32,
) -> Res<Report> {
    let tag = format!("{:x}", std::process::id());
    let before = stats::rss_kib(broker_pid)?;
    let start = Instant::now();
    let cpu0 = stats::cpu_seconds(None)?;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let client = Client::connect(
            target,
            &format!("bench-{tag}-i{i}"),
            Session::Clean,
            IO_TIMEOUT,
        )
        .map_err(|e| format!("idle connection {i}: {e}"))?;
        clients.push(client);
    }
    let setup = start.elapsed().as_secs_f64();
    thread::sleep(hold);
    let after = stats::rss_kib(broker_pid)?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = stats::cpu_seconds(None)? - cpu0;
    drop(clients);
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / count.max(1) as f64;
    let mut report = Report::new();
    report.int("connections", count as u64);
    report.int("rss_before_kib", before);
    report.int("rss_after_kib", after);
    report.num("bytes_per_conn", per_conn);
    report.num("setup_s", setup);
    report.cpu(wall, cpu, None);
    report.human = format!(
        "{count} idle connections: broker RSS {before} KiB -> {after} KiB, \
         {per_conn:.0} bytes per connection"
    );
    Ok(report)
}
