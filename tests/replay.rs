//! `culex replay` end to end: every recorded trace in `tests/traces/*.jsonl` replays against
//! a fresh culex started with the trace's seed without a single difference; bad traces exit
//! with 2 and a message naming the file and line; differences exit with 1, one line each.
//!
//! The traces are the scenarios of `record` run against culex `--deterministic 1 --trace
//! FILE`: `recorded_traces_are_what_the_scenarios_record_now` records them again on every
//! run and compares; `CULEX_RECORD_TRACES=1 cargo test --test replay` writes them instead
//! (see `tests/traces/README`).

#[path = "replay/record.rs"]
mod record;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a broker may take to log its listeners.
const STARTUP: Duration = Duration::from_secs(10);

/// A culex process on ephemeral loopback ports, killed when dropped.
pub struct Culex {
    child: Child,
    /// The MQTT listener.
    pub port: u16,
    /// The MQTT-SN listener, when the configuration has one.
    pub sn_port: Option<u16>,
    config: PathBuf,
}

impl Culex {
    /// Starts culex with a TCP listener (plus an MQTT-SN one with `sn`) and `args`.
    pub fn start(sn: bool, args: &[&str]) -> Self {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = std::env::temp_dir().join(format!(
            "culex-replay-test-{}-{seq}.conf",
            std::process::id()
        ));
        let mut text = String::from("listener 0 127.0.0.1\nallow_anonymous true\n");
        if sn {
            text.push_str("listener 0 127.0.0.1\nprotocol mqttsn\n");
        }
        std::fs::write(&config, text).expect("write the test configuration");
        let mut child = Command::new(env!("CARGO_BIN_EXE_culex"))
            .arg("-c")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn culex");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Some(at) = line.find("listening on 127.0.0.1:") else {
                    continue;
                };
                let rest = &line[at + "listening on 127.0.0.1:".len()..];
                let port: u16 = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a port in the listening line");
                let _ = tx.send((port, line.contains("(mqttsn")));
            }
        });
        let (mut port, mut sn_port) = (None, None);
        while port.is_none() || (sn && sn_port.is_none()) {
            match rx.recv_timeout(STARTUP) {
                Ok((p, true)) => sn_port = Some(p),
                Ok((p, false)) => port = port.or(Some(p)),
                Err(_) => panic!("culex did not log its listeners within {STARTUP:?}"),
            }
        }
        Self {
            child,
            port: port.expect("a port"),
            sn_port,
            config,
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM, and wait for the exit (the trace file is complete then).
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for Culex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// `culex replay ARGS...`.
fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_culex"))
        .arg("replay")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run culex replay")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces")
}

/// The seed on the start line of a trace.
fn seed_of(path: &Path) -> u64 {
    let trace = std::fs::read_to_string(path).expect("read the trace");
    let first: serde_json::Value =
        serde_json::from_str(trace.lines().next().expect("a first line")).expect("JSON");
    first["seed"].as_u64().expect("a seed on the start line")
}

/// A trace written to a temporary file, removed when dropped.
struct TempTrace(PathBuf);

impl TempTrace {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("culex-replay-{}-{name}.jsonl", std::process::id()));
        std::fs::write(&path, text).expect("write the trace");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempTrace {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn recorded_traces_replay_against_culex_without_difference() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(traces_dir())
        .expect("tests/traces")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "recorded traces missing: {files:?}");
    for file in files {
        let seed = seed_of(&file).to_string();
        // A trace with MQTT-SN peers is replayed against a gateway too.
        let sn = std::fs::read_to_string(&file)
            .expect("the trace")
            .contains("\"datagram_in\"");
        let culex = Culex::start(sn, &["--deterministic", &seed]);
        let sn_target = culex.sn_port.map(|p| format!("127.0.0.1:{p}"));
        let target = culex.target();
        let mut args = vec![file.to_str().expect("UTF-8 path"), "--target", &target];
        if let Some(target) = sn_target.as_deref() {
            args.extend(["--sn-target", target]);
        }
        let out = replay(&args);
        let stdout = text(&out.stdout);
        println!("{stdout}");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}:\n{stdout}{}",
            file.display(),
            text(&out.stderr)
        );
        let last = stdout.lines().last().unwrap_or_default();
        assert!(last.ends_with(" 0 differences, 0 notes"), "{last}");
        assert!(!last.contains(" 0 compared"), "{last}");
    }
}

#[test]
fn a_bad_trace_exits_with_2_naming_file_and_line() {
    let start = "{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":1}\n";
    let cases = [
        (
            "malformed",
            format!("{start}{{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0\n"),
            ":2: malformed line: EOF while parsing an object at line 1 column 45\n",
        ),
        (
            "version",
            "{\"t\":0,\"event\":\"start\",\"version\":2}\n".to_owned(),
            ":1: trace format version 2 is not supported (this culex reads version 1)\n",
        ),
        (
            "notrace",
            "{\"t\":0,\"event\":\"clock\",\"by_ms\":5}\n".to_owned(),
            ":1: not a culex trace: the first line must be a start event\n",
        ),
        (
            "wronghex",
            format!(
                "{start}{{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}}\n\
                 {{\"t\":0,\"event\":\"in\",\"conn\":1,\"packet\":\"CONNECT\",\"hex\":\"c000\"}}\n"
            ),
            ":3: \"hex\" holds a PINGREQ, not a CONNECT\n",
        ),
        (
            "bad-sn",
            format!(
                "{start}{{\"t\":0,\"event\":\"datagram_in\",\"listener\":1,\"peer\":4,\
                 \"packet\":\"PINGREQ\",\"hex\":\"0216\"}}\n"
            ),
            ":2: the trace holds MQTT-SN datagrams (peer 4): give --sn-target HOST:PORT to \
             replay them\n",
        ),
    ];
    for (name, trace, message) in cases {
        let file = TempTrace::new(name, &trace);
        // Nothing listens on port 9: a bad trace is refused before any connection.
        let out = replay(&[file.path(), "--target", "127.0.0.1:9"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!("{}{message}", file.path()),
            "{name}"
        );
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out.stdout));
    }
    let out = replay(&["/nonexistent/trace.jsonl", "--target", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("/nonexistent/trace.jsonl: cannot read the trace: "));
    let out = replay(&["trace.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("culex replay: --target HOST:PORT is required\n"));
}

/// One v3.1.1 connection whose CONNACK and PINGRESP are recorded as `connack` and `ping`.
fn small_trace(connack: &str, ping: &str) -> String {
    format!(
        "{{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":1}}\n\
         {{\"t\":0,\"event\":\"opened\",\"conn\":1,\"listener\":0}}\n\
         {{\"t\":0,\"event\":\"in\",\"conn\":1,\"packet\":\"CONNECT\",\
           \"hex\":\"101000044d5154540402003c000461626364\"}}\n\
         {{\"t\":0,\"event\":\"out\",\"conn\":1,\"packet\":\"CONNACK\",\"hex\":\"{connack}\"}}\n\
         {{\"t\":0,\"event\":\"timer\",\"timer\":\"keep_alive\",\"conn\":1}}\n\
         {{\"t\":0,\"event\":\"commit\",\"changes\":1,\"synced\":false}}\n\
         {{\"t\":0,\"event\":\"in\",\"conn\":1,\"packet\":\"PINGREQ\",\"hex\":\"c000\"}}\n\
         {{\"t\":0,\"event\":\"out\",\"conn\":1,\"packet\":\"PINGRESP\",\"hex\":\"{ping}\"}}\n\
         {{\"t\":0,\"event\":\"clock\",\"by_ms\":1000}}\n\
         {{\"t\":1000,\"event\":\"in\",\"conn\":1,\"packet\":\"DISCONNECT\",\"hex\":\"e000\"}}\n\
         {{\"t\":1000,\"event\":\"closed\",\"conn\":1,\"reason\":\"closed by the broker\"}}\n"
    )
}

#[test]
fn differences_exit_with_1_one_line_each() {
    let culex = Culex::start(false, &["--deterministic", "1"]);
    // As recorded: no difference; the clock step nobody asked for is a note.
    let same = TempTrace::new("same", &small_trace("20020000", "d000"));
    let out = replay(&[same.path(), "--target", &culex.target()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().next(),
        Some(
            "note: line 9: the clock advanced 1000 ms with no $CONTROL/clock/advance request \
             before it (an HTTP API call?): not reproduced"
        )
    );
    assert!(stdout.ends_with(" 0 differences, 1 notes\n"), "{stdout}");
    // A CONNACK recorded with session present and a PINGRESP never sent.
    let other = TempTrace::new("other", &small_trace("20020100", "d000"));
    let out = replay(&[
        other.path(),
        "--target",
        &culex.target(),
        "--timeout",
        "300",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().next(),
        Some("conn 1 out #1 CONNACK connack.session_present: expected true, got false")
    );
    assert!(stdout.ends_with(" 1 differences, 1 notes\n"), "{stdout}");
}

#[test]
fn a_broker_that_is_not_there_is_a_difference() {
    let trace = TempTrace::new("absent", &small_trace("20020000", "d000"));
    // Bind and drop a listener to find a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = format!("127.0.0.1:{port}");
    let out = replay(&[trace.path(), "--target", &target, "--timeout", "200"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("conn 1 opened: expected a connection, got "),
        "{stdout}"
    );
    assert!(
        stdout.contains("conn 1 out #1 CONNACK: expected CONNACK, got no connection\n"),
        "{stdout}"
    );
}

/// An MQTT-SN trace built by hand, as the gateway tracing writes it: the recorded topic id
/// (9) and the gateway's message id (7) are not what culex chooses, so the client's
/// PUBLISH and PUBACK only reach it through the mapping.
#[test]
fn mqtt_sn_peers_replay_with_gateway_identifiers_mapped() {
    use culex::codec::mqttsn::{self as sn, Flags, Message, ReturnCode, SnQos, SubTopic};
    let culex = Culex::start(true, &["--deterministic", "1"]);
    let qos1 = Flags {
        qos: SnQos::AtLeastOnce,
        ..Flags::default()
    };
    let hex = |m: Message<'_>| {
        let mut out = Vec::new();
        sn::encode(&m, &mut out);
        out.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let line = |dir: &str, m: Message<'_>| {
        format!(
            "{{\"t\":0,\"event\":\"datagram_{dir}\",\"listener\":1,\"peer\":1,\
             \"packet\":\"{}\",\"hex\":\"{}\"}}\n",
            m.name(),
            hex(m)
        )
    };
    let accepted = ReturnCode::Accepted;
    let mut trace = String::from("{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":1}\n");
    let steps = [
        (
            "in",
            Message::Connect {
                flags: Flags {
                    clean_session: true,
                    ..Flags::default()
                },
                protocol_id: 1,
                duration: 60,
                client_id: b"sn-replay",
            },
        ),
        ("out", Message::ConnAck { code: accepted }),
        (
            "in",
            Message::Subscribe {
                flags: qos1,
                msg_id: 1,
                topic: SubTopic::Name(b"sn/replay"),
            },
        ),
        (
            "out",
            Message::SubAck {
                flags: qos1,
                topic_id: 9,
                msg_id: 1,
                code: accepted,
            },
        ),
        (
            "in",
            Message::Publish {
                flags: qos1,
                topic_id: 9,
                msg_id: 2,
                data: b"hello",
            },
        ),
        (
            "out",
            Message::Publish {
                flags: qos1,
                topic_id: 9,
                msg_id: 7,
                data: b"hello",
            },
        ),
        (
            "out",
            Message::PubAck {
                topic_id: 9,
                msg_id: 2,
                code: accepted,
            },
        ),
        (
            "in",
            Message::PubAck {
                topic_id: 9,
                msg_id: 7,
                code: accepted,
            },
        ),
        ("in", Message::Disconnect { duration: None }),
        ("out", Message::Disconnect { duration: None }),
    ];
    for (dir, m) in steps {
        trace.push_str(&line(dir, m));
    }
    let file = TempTrace::new("sn", &trace);
    let sn_target = format!("127.0.0.1:{}", culex.sn_port.expect("an MQTT-SN port"));
    let out = replay(&[
        file.path(),
        "--target",
        &culex.target(),
        "--sn-target",
        &sn_target,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with(
            "0 connections, 1 MQTT-SN peers, 5 packets sent, 5 compared, \
                          0 differences, 0 notes\n"
        ),
        "{stdout}"
    );
    // The same trace with the payload the gateway sends recorded otherwise.
    let changed = trace.replace(
        &hex(Message::Publish {
            flags: qos1,
            topic_id: 9,
            msg_id: 7,
            data: b"hello",
        }),
        &hex(Message::Publish {
            flags: qos1,
            topic_id: 9,
            msg_id: 7,
            data: b"HELLO",
        }),
    );
    let file = TempTrace::new("sn-changed", &changed);
    let out = replay(&[
        file.path(),
        "--target",
        &culex.target(),
        "--sn-target",
        &sn_target,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().next(),
        Some("peer 1 out #3 PUBLISH publish.data: expected \"HELLO\", got \"hello\"")
    );
}

/// A trace line without its `"fields"` (the decoded form, for people): the committed
/// traces keep to the bytes (`"hex"`), which is what replay reads, and stay small.
fn without_fields(line: &str) -> String {
    const KEY: &str = ",\"fields\":\"";
    let Some(at) = line.find(KEY) else {
        return line.to_owned();
    };
    let rest = &line[at + KEY.len()..];
    let mut escaped = false;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            let close = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            close
        })
        .map(|(i, _)| i)
        .expect("the end of the fields string");
    format!("{}{}", &line[..at], &rest[end + 1..])
}

#[test]
fn fields_are_cut_out_of_recorded_lines() {
    let line = concat!(
        r#"{"t":0,"event":"in","conn":1,"packet":"X","#,
        r#""fields":"A { b: \"c\\\"\" }","hex":"c000"}"#
    );
    assert_eq!(
        without_fields(line),
        r#"{"t":0,"event":"in","conn":1,"packet":"X","hex":"c000"}"#
    );
    assert_eq!(without_fields("{\"t\":0}"), "{\"t\":0}");
}

/// Runs one recording scenario against culex `--deterministic 1 --trace` (with an MQTT-SN
/// gateway when `sn`) and returns the trace without its `"fields"`.
fn record(name: &str, sn: bool, scenario: impl FnOnce(&Culex)) -> String {
    let path =
        std::env::temp_dir().join(format!("culex-record-{}-{name}.jsonl", std::process::id()));
    let path_text = path.to_str().expect("UTF-8 path").to_owned();
    let culex = Culex::start(sn, &["--deterministic", "1", "--trace", &path_text]);
    scenario(&culex);
    culex.stop();
    let trace = std::fs::read_to_string(&path).expect("the recorded trace");
    let _ = std::fs::remove_file(&path);
    trace.lines().map(|l| without_fields(l) + "\n").collect()
}

/// Every scenario of `record`, recorded now, gives exactly its file in `tests/traces/`:
/// recording is deterministic and the committed traces are what the scenarios and the
/// trace format make today. With `CULEX_RECORD_TRACES=1` the files are written instead
/// (after a change of the scenarios or of the trace format; see `tests/traces/README`).
#[test]
fn recorded_traces_are_what_the_scenarios_record_now() {
    let write = std::env::var_os("CULEX_RECORD_TRACES").is_some_and(|v| v == "1");
    let mut recorded: Vec<(&str, String)> = Vec::new();
    for &(name, scenario) in record::SCENARIOS {
        recorded.push((name, record(name, false, |c| scenario(c.port))));
    }
    for &(name, scenario) in record::SN_SCENARIOS {
        let trace = record(name, true, |c| {
            scenario(c.port, c.sn_port.expect("an MQTT-SN port"))
        });
        assert!(trace.contains("\"datagram_in\""), "{name}: {trace}");
        recorded.push((name, trace));
    }
    for (name, trace) in recorded {
        assert!(trace.lines().count() > 3, "{name}: {trace}");
        let path = traces_dir().join(format!("{name}.jsonl"));
        if write {
            std::fs::write(&path, &trace).expect("write the trace");
            println!(
                "{}: {} lines written",
                path.display(),
                trace.lines().count()
            );
            continue;
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == trace,
            "{}: the scenario now records another trace (CULEX_RECORD_TRACES=1 writes it)\n\
             committed:\n{committed}\nrecorded:\n{trace}",
            path.display()
        );
    }
}
