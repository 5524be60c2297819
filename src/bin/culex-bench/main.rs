//! culex-bench: an MQTT load generator for comparing brokers on one machine. It speaks MQTT
//! 3.1.1 (or 5.0) over TCP, TLS, WebSockets and secure WebSockets, and MQTT-SN over UDP, to
//! loopback addresses only, and every run ends by itself. Each run prints one JSON line on
//! stdout and a readable summary on stderr; it exits 1 when a check fails (QoS 1 or 2 loss,
//! duplicates, refused messages, failed or dropped connections) and 2 on errors.
//!
//! MQTT over TCP (the flow scenarios and idle connections) runs on non-blocking mio event
//! loops, one thread for all clients (`evflow.rs`, `peer.rs`); TLS, WebSocket and MQTT-SN
//! clients and the connection-rate loops stay blocking, with a thread per client
//! (`flow.rs`, `net.rs`, `conns.rs`). Every run reports the generator's own CPU time next to
//! the broker's, and warns when the generator's core was nearly saturated.

mod conns;
mod evflow;
mod flow;
mod mqtt;
mod net;
mod peer;
mod report;
mod sn;
mod stats;

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use flow::Flow;
use net::{Target, Transport};
use report::Report;

/// Errors of the generator, movable between threads.
pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SCENARIOS: &str = "\
Scenarios:
  fanin     P publishers (default 10) -> 1 subscriber, as fast as the window allows
  fanout    1 publisher -> S subscribers (default 1000)
  pairs     P publisher -> subscriber pairs (default 1000), each on a topic of its own
  latency   1 publisher -> 1 subscriber at a fixed rate (default 1000 msg/s)
  connect   C loops (default 8) of connect, CONNECT, CONNACK, DISCONNECT, close
  idle      open N connections over tcp (default 2000), report how many the broker holds,
            their set-up rate and broker RSS per connection (needs --broker-pid)
  ports     print N (default 1) free loopback ports (TCP and UDP) below the ephemeral
            range, one a line";

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt(
        "H",
        "host",
        "broker address, loopback only (127.0.0.1)",
        "ADDR",
    );
    o.optopt("p", "port", "broker port (1883)", "PORT");
    o.optopt("t", "transport", "tcp, tls, ws or wss (tcp)", "NAME");
    o.optopt(
        "",
        "cafile",
        "PEM CA certificates to verify the broker (tls, wss)",
        "FILE",
    );
    o.optopt(
        "",
        "servername",
        "name checked in the broker certificate (localhost)",
        "NAME",
    );
    o.optopt("", "ws-path", "WebSocket request path (/mqtt)", "PATH");
    o.optopt("m", "mqtt", "protocol version: 3 (3.1.1) or 5 (3)", "V");
    o.optopt(
        "",
        "sn-port",
        "publish as MQTT-SN clients to this UDP port of the host (fanin, latency)",
        "PORT",
    );
    o.optopt("q", "qos", "0, 1 or 2 (0; 2 over tcp only)", "QOS");
    o.optflag(
        "",
        "alias",
        "MQTT 5.0 topic aliases (tcp): publishers name the topic by alias after the first \
         message, subscribers allow the broker aliases (Topic Alias Maximum in CONNECT)",
    );
    o.optopt("s", "size", "payload bytes, at least 16 (16)", "BYTES");
    o.optopt("P", "publishers", "publishers", "N");
    o.optopt("S", "subscribers", "subscribers", "N");
    o.optopt(
        "d",
        "duration",
        "seconds of publishing or connecting (5)",
        "SECS",
    );
    o.optopt("n", "count", "messages per publisher (no limit)", "N");
    o.optopt(
        "w",
        "window",
        "messages in flight per publisher, 0: none (QoS 0: 256, QoS 1: 64, QoS 2: 20, \
         the default max_inflight_messages of brokers that close connections with more)",
        "N",
    );
    o.optopt("r", "rate", "messages per second per publisher", "RATE");
    o.optopt("c", "concurrency", "connect loops (8)", "C");
    o.optopt(
        "N",
        "connections",
        "idle connections (2000); ports to print (1)",
        "N",
    );
    o.optopt(
        "",
        "hold",
        "seconds to hold idle connections before measuring (1)",
        "SECS",
    );
    o.optflag(
        "",
        "persistent",
        "fanin, fanout, pairs, latency: the MQTT clients connect with clean session 0 (5.0: clean \
         start 0, Session Expiry Interval 0xFFFFFFFF) under client ids unique to the run, so \
         the broker keeps subscriptions, queues and in-flight messages in sessions that \
         outlive the connections (in its store, if it has one). At the end each client id \
         reconnects once with a clean session and disconnects, which discards its session: \
         none is left behind. MQTT-SN publishers always start clean",
    );
    o.optopt("", "drain", "seconds to wait for late messages (3)", "SECS");
    o.optopt(
        "",
        "broker-pid",
        "broker process, to report its CPU time and memory",
        "PID",
    );
    o.optopt(
        "l",
        "label",
        "free text copied into the JSON line (e.g. broker name)",
        "TEXT",
    );
    o.optflag("h", "help", "print this help");
    o
}

fn usage() -> String {
    let brief = format!("Usage: culex-bench SCENARIO [options]\n\n{SCENARIOS}");
    options().usage(&brief)
}

fn num<T>(m: &getopts::Matches, name: &str, default: T, max: T) -> Res<T>
where
    T::Err: std::fmt::Display,
    T: FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let Some(text) = m.opt_str(name) else {
        return Ok(default);
    };
    let value = text
        .parse::<T>()
        .map_err(|e| format!("--{name} {text}: {e}"))?;
    if value > max {
        return Err(format!("--{name} {text}: at most {max}").into());
    }
    Ok(value)
}

fn seconds(m: &getopts::Matches, name: &str, default: f64, max: f64) -> Res<Duration> {
    let s: f64 = num(m, name, default, max)?;
    if s.is_nan() || s < 0.0 {
        return Err(format!("--{name}: not a duration").into());
    }
    Ok(Duration::from_secs_f64(s))
}

/// Lowest port `free_ports` hands out.
const PORT_FIRST: u16 = 10_000;

/// Prints `n` loopback ports free for TCP and UDP listeners, below the kernel's ephemeral
/// range (a port from that range may be taken at any time by an outgoing connection of some
/// other program, and listeners that do not set SO_REUSEADDR then fail to bind it) and
/// below the source ports of idle connections.
fn free_ports(n: usize) -> Res<()> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let range = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("{path}: unexpected content {range:?}"))?;
    let span = low.min(conns::SOURCE_PORT_FIRST).saturating_sub(PORT_FIRST);
    if usize::from(span) < n * 2 {
        return Err(format!("too few ports below the ephemeral range ({range:?})").into());
    }
    // A random start, so that runs side by side rarely try the same ports.
    let start = u16::from_str_radix(&stats::random_tag()?[..4], 16)? % span;
    let mut held = Vec::new();
    for k in 0..span {
        let port = PORT_FIRST + (start + k) % span;
        let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port);
        if let (Ok(tcp), Ok(udp)) = (TcpListener::bind(addr), UdpSocket::bind(addr)) {
            held.push((tcp, udp));
            if held.len() == n {
                break;
            }
        }
    }
    if held.len() < n {
        return Err(format!("only {} free ports found", held.len()).into());
    }
    for (tcp, _) in &held {
        println!("{}", tcp.local_addr()?.port());
    }
    Ok(())
}

fn run(args: &[String]) -> Res<Option<Report>> {
    let m = options().parse(args)?;
    if m.opt_present("h") || m.free.is_empty() {
        print!("{}", usage());
        return Ok(None);
    }
    if m.free.len() > 1 {
        return Err(format!("one scenario at a time, not {:?}", m.free).into());
    }
    let scenario = m.free[0].as_str();
    if scenario == "ports" {
        free_ports(num(&m, "N", 1, 1000)?)?;
        return Ok(None);
    }
    let host: IpAddr = m
        .opt_str("H")
        .unwrap_or_else(|| "127.0.0.1".to_owned())
        .parse()
        .map_err(|e| format!("--host: {e}"))?;
    let port: u16 = num(&m, "p", 1883, u16::MAX)?;
    let transport = Transport::parse(&m.opt_str("t").unwrap_or_else(|| "tcp".to_owned()))?;
    let version = match m.opt_str("m").as_deref() {
        None | Some("3") | Some("3.1.1") | Some("4") => mqtt::Version::V311,
        Some("5") | Some("5.0") => mqtt::Version::V5,
        Some(other) => return Err(format!("--mqtt {other}: 3 or 5").into()),
    };
    let target = Arc::new(Target::new(
        SocketAddr::new(host, port),
        transport,
        version,
        m.opt_str("cafile").as_deref(),
        &m.opt_str("servername")
            .unwrap_or_else(|| "localhost".to_owned()),
        &m.opt_str("ws-path").unwrap_or_else(|| "/mqtt".to_owned()),
    )?);
    let broker_pid: Option<u32> = m
        .opt_str("broker-pid")
        .map(|p| p.parse().map_err(|e| format!("--broker-pid {p}: {e}")))
        .transpose()?;
    let duration = seconds(&m, "d", 5.0, 600.0)?;
    let session = if m.opt_present("persistent") {
        if !matches!(scenario, "fanin" | "fanout" | "latency" | "pairs") {
            return Err(format!("--persistent: not for {scenario}").into());
        }
        mqtt::Session::Persistent
    } else {
        mqtt::Session::Clean
    };
    let mut report = match scenario {
        "fanin" | "fanout" | "latency" | "pairs" => {
            let qos: u8 = num(&m, "q", 0, 2)?;
            let (p, s, rate) = match scenario {
                "fanin" => (10, 1, None),
                "fanout" => (1, 1000, None),
                "pairs" => (1000, 1000, None),
                _ => (1, 1, Some(1000.0f64)),
            };
            let pairs = scenario == "pairs";
            let publishers = num(&m, "P", p, 10_000)?;
            let rate = match m.opt_str("r") {
                Some(_) => Some(num(&m, "r", 0.0f64, 10_000_000.0)?),
                None => rate,
            };
            if rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
                return Err("--rate must be positive".into());
            }
            let flow = Flow {
                publishers,
                subscribers: if pairs {
                    publishers
                } else {
                    num(&m, "S", s, 10_000)?
                },
                qos,
                size: num(&m, "s", stats::STAMP_LEN, 16 << 20)?.max(stats::STAMP_LEN),
                window: num(&m, "w", [256, 64, 20][usize::from(qos)], 60_000)?,
                rate,
                duration,
                count: m
                    .opt_str("n")
                    .map(|_| num(&m, "n", 0u64, 1 << 40))
                    .transpose()?,
                drain: seconds(&m, "drain", 3.0, 60.0)?,
                sn_gateway: m
                    .opt_str("sn-port")
                    .map(|_| num(&m, "sn-port", 0u16, u16::MAX))
                    .transpose()?
                    .map(|port| SocketAddr::new(target.addr.ip(), port)),
                session,
                pairs,
                alias: m.opt_present("alias"),
            };
            if flow.publishers == 0 || flow.subscribers == 0 {
                return Err("at least one publisher and one subscriber".into());
            }
            if flow.publishers > usize::from(u16::MAX) {
                return Err("too many publishers".into());
            }
            flow::run(&flow, &target, broker_pid)?
        }
        "connect" => {
            let c = num(&m, "c", 8, 1000)?.max(1);
            conns::connect_rate(target.clone(), c, duration, broker_pid)?
        }
        "idle" => {
            let pid = broker_pid.ok_or("idle needs --broker-pid")?;
            let n = num(&m, "N", 2000, 100_000)?;
            conns::idle_memory(&target, n, seconds(&m, "hold", 1.0, 60.0)?, pid)?
        }
        other => return Err(format!("unknown scenario {other:?}\n{SCENARIOS}").into()),
    };
    // MQTT-SN publishers go to the gateway; the subscribers still use `transport`.
    let transport_name = if m.opt_present("sn-port") {
        "mqttsn"
    } else {
        transport.name()
    };
    let mut head = vec![
        ("scenario".to_owned(), Report::quoted(scenario)),
        ("transport".to_owned(), Report::quoted(transport_name)),
        (
            "mqtt".to_owned(),
            Report::quoted(match version {
                mqtt::Version::V311 => "3.1.1",
                mqtt::Version::V5 => "5.0",
            }),
        ),
    ];
    let mut prefix = format!("{scenario} {transport_name}: ");
    if session == mqtt::Session::Persistent {
        head.push(("session".to_owned(), Report::quoted("persistent")));
        prefix = format!("{scenario} {transport_name}, persistent sessions: ");
    }
    if let Some(label) = m.opt_str("l") {
        head.insert(0, ("label".to_owned(), Report::quoted(&label)));
        prefix = format!("[{label}] {prefix}");
    }
    report.human.insert_str(0, &prefix);
    report.prepend(head);
    Ok(Some(report))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => {
            println!("{}", report.json());
            eprintln!("{}", report.human);
            for w in &report.warnings {
                eprintln!("culex-bench: warning: {w}");
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in &report.failures {
                    eprintln!("culex-bench: FAILED: {f}");
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("culex-bench: {e}");
            ExitCode::from(2)
        }
    }
}
