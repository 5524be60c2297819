//! Deterministic mode (`--deterministic SEED`): the broker's clock moves only when a client
//! publishes to `$CONTROL/clock/advance` or the HTTP API is asked to advance it, and every
//! timer fires from that clock; generated values come from the seed.
//!
//! No test waits for real time to pass: each advances the virtual clock and then checks
//! what fired. The advance is answered (PUBACK, HTTP 200) only after what became due has
//! fired, so the effects can be observed right after the answer.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use crate::harness::*;
use crate::hex;

const ADVANCE: &str = "$CONTROL/clock/advance";
const TOKEN: &str = "deterministic-test-token";
/// How long "nothing happens" is watched for. Short: whatever an advance fires has fired
/// before its PUBACK, so a longer wait would show nothing more.
const QUIET_MS: u64 = 100;

/// A broker in deterministic mode with `seed`; `None` (skipped) in validation mode.
fn deterministic(seed: u64, extra_config: &str) -> Option<Broker> {
    Broker::start_with_args(extra_config, &["--deterministic", &seed.to_string()])
}

/// A v5 client without keep alive (so no advance ever closes it), for clock control.
fn control(broker: &Broker) -> RawClient {
    let mut c = broker.client();
    c.send(&connect_v5(&uniq("ctl"), true, 0, &[]));
    let ack = parse_connack(&c.recv_packet(), true);
    assert_eq!(ack.reason, 0, "control client refused: {ack:?}");
    c
}

/// Publishes `payload` to `$CONTROL/clock/advance` at QoS 1 (v5); returns the PUBACK reason.
fn publish_advance(ctl: &mut RawClient, payload: &[u8]) -> u8 {
    ctl.send(&publish(ADVANCE, payload, 1, 1, false, Some(&[])));
    let p = ctl.recv_packet();
    let (pid, reason) = parse_ack(&p, 0x40);
    assert_eq!(pid, 1, "PUBACK for another packet id: {}", to_hex(&p));
    reason
}

/// Advances the virtual clock by `ms` over MQTT and waits for the PUBACK (after which
/// every timer due by then has fired).
fn advance(ctl: &mut RawClient, ms: u64) {
    let reason = publish_advance(ctl, ms.to_string().as_bytes());
    assert_eq!(reason, 0, "advancing the clock by {ms} ms was refused");
}

/// Connects a v5 client with clean start `clean` and CONNECT `props`; returns the client
/// and its CONNACK.
fn connect5(
    broker: &Broker,
    id: &str,
    clean: bool,
    keepalive: u16,
    props: &[u8],
) -> (RawClient, Connack) {
    let mut c = broker.client();
    c.send(&connect_v5(id, clean, keepalive, props));
    let ack = parse_connack(&c.recv_packet(), true);
    assert_eq!(ack.reason, 0, "CONNACK refused: {ack:?}");
    (c, ack)
}

/// Sends a normal DISCONNECT and waits until the broker has closed the connection, so the
/// broker has taken the disconnect into account before the clock moves.
fn disconnect_and_wait(mut c: RawClient) {
    c.send(&disconnect());
    c.expect_bare_close();
}

/// Session expiry interval property (0x11).
fn session_expiry(secs: u32) -> Vec<u8> {
    let mut p = vec![0x11];
    p.extend(secs.to_be_bytes());
    p
}

// ---------------------------------------------------------------------------
// 1. Keep alive
// ---------------------------------------------------------------------------

#[test]
fn deterministic_keepalive_timeout_fires_from_the_virtual_clock() {
    let Some(broker) = deterministic(7, "") else {
        return;
    };
    let mut ctl = control(&broker);

    // A 3.1.1 client with keep alive 10 s that then stays silent.
    let mut silent = broker.client();
    silent.send(&connect_v311(&uniq("silent"), true, 10));
    silent.expect(&hex!("20 02 00 00"));
    // Another one with the same keep alive that sends PINGREQ in time.
    let mut pinger = broker.client();
    pinger.send(&connect_v311(&uniq("pinger"), true, 10));
    pinger.expect(&hex!("20 02 00 00"));

    // 14 s < 15 s (1.5 × 10 s): both stay connected.
    advance(&mut ctl, 14_000);
    silent.expect_silence(QUIET_MS);
    pinger.ping();

    // 16 s in all: the silent one is past 1.5 × its keep alive and is closed.
    advance(&mut ctl, 2_000);
    silent.expect_closed();
    // The pinger's last packet was 2 s ago.
    pinger.expect_silence(QUIET_MS);
    pinger.ping();
    disconnect_and_wait(pinger);
}

// ---------------------------------------------------------------------------
// 2. Session expiry
// ---------------------------------------------------------------------------

#[test]
fn deterministic_session_expires_after_its_interval() {
    let Some(broker) = deterministic(7, "") else {
        return;
    };
    let mut ctl = control(&broker);
    let id = uniq("sessexp");
    let topic = format!("{id}/t");
    let expiry = session_expiry(60);

    let (mut c, ack) = connect5(&broker, &id, true, 0, &expiry);
    assert!(!ack.session_present);
    c.send(&subscribe(1, &topic, 1, true));
    assert_eq!(parse_suback(&c.recv_packet(), 0x90, true), (1, vec![1]));
    disconnect_and_wait(c);

    // 59 s < 60 s: the session is still there.
    advance(&mut ctl, 59_000);
    let (c, ack) = connect5(&broker, &id, false, 0, &expiry);
    assert!(
        ack.session_present,
        "session gone after 59 s of 60: {ack:?}"
    );
    disconnect_and_wait(c);

    // 61 s after the second disconnect: the session has expired.
    advance(&mut ctl, 61_000);
    let (c, ack) = connect5(&broker, &id, false, 0, &expiry);
    assert!(
        !ack.session_present,
        "session still present 61 s after a disconnect with expiry 60 s: {ack:?}"
    );
    disconnect_and_wait(c);
}

// ---------------------------------------------------------------------------
// 3. Message expiry
// ---------------------------------------------------------------------------

#[test]
fn deterministic_message_expiry_counts_virtual_time() {
    let Some(broker) = deterministic(7, "") else {
        return;
    };
    let mut ctl = control(&broker);
    let id = uniq("msgexp");
    let topic = format!("{id}/t");
    let expiry = session_expiry(300);
    let message_expiry = hex!("02 00 00 00 1e"); // 30 s

    let (mut sub, _) = connect5(&broker, &id, true, 0, &expiry);
    sub.send(&subscribe(1, &topic, 1, true));
    assert_eq!(parse_suback(&sub.recv_packet(), 0x90, true), (1, vec![1]));
    disconnect_and_wait(sub);

    let (mut publisher, _) = connect5(&broker, &uniq("pub"), true, 0, &[]);
    publisher.send(&publish(
        &topic,
        b"first",
        1,
        10,
        false,
        Some(&message_expiry),
    ));
    assert_eq!(parse_ack(&publisher.recv_packet(), 0x40), (10, 0));

    // 10 s later the message is delivered with 20 s left.
    advance(&mut ctl, 10_000);
    let (mut sub, ack) = connect5(&broker, &id, false, 0, &expiry);
    assert!(ack.session_present, "{ack:?}");
    let got = expect_publish(&mut sub, &topic, b"first", 1, true);
    assert_eq!(
        prop(&got.properties, 0x02),
        Some(&Value::Int(20)),
        "message expiry interval after 10 s of 30: {:?}",
        got.properties
    );
    sub.send(&puback(got.pid));
    sub.expect_silence(QUIET_MS);
    disconnect_and_wait(sub);

    // 31 s later a message with expiry 30 s is gone.
    publisher.send(&publish(
        &topic,
        b"second",
        1,
        11,
        false,
        Some(&message_expiry),
    ));
    assert_eq!(parse_ack(&publisher.recv_packet(), 0x40), (11, 0));
    advance(&mut ctl, 31_000);
    let (mut sub, ack) = connect5(&broker, &id, false, 0, &expiry);
    assert!(ack.session_present, "{ack:?}");
    sub.expect_silence(QUIET_MS);
    disconnect_and_wait(sub);
    disconnect_and_wait(publisher);
}

// ---------------------------------------------------------------------------
// 4. Will delay
// ---------------------------------------------------------------------------

#[test]
fn deterministic_will_delay_fires_from_the_virtual_clock() {
    let Some(broker) = deterministic(7, "") else {
        return;
    };
    let mut ctl = control(&broker);
    let topic = format!("{}/will", uniq("wdelay"));

    let mut watcher = broker.client();
    watcher.send(&connect_v311(&uniq("watch"), true, 0));
    watcher.expect(&hex!("20 02 00 00"));
    watcher.send(&subscribe(1, &topic, 0, false));
    watcher.expect(&hex!("90 03 00 01 00"));

    let id = uniq("willer");
    let connect_props = session_expiry(120);
    let will_props = hex!("18 00 00 00 1e"); // will delay interval 30 s
    let mut connect = Connect::v5(&id);
    connect.keepalive = 0;
    connect.props = &connect_props;
    connect.will = Some(Will {
        topic: &topic,
        payload: b"gone",
        qos: 0,
        retain: false,
        props: &will_props,
    });
    let mut w = broker.client();
    w.send(&connect.bytes());
    let ack = parse_connack(&w.recv_packet(), true);
    assert_eq!(ack.reason, 0, "{ack:?}");

    // Lose the connection, and let the broker notice before the clock moves.
    let peer = w.local_addr();
    w.drop_connection();
    broker.wait_for_log(&format!("({peer}): connection lost"), READ_TIMEOUT);

    advance(&mut ctl, 29_000);
    watcher.expect_silence(QUIET_MS);

    advance(&mut ctl, 2_000);
    watcher.expect(&publish(&topic, b"gone", 0, 0, false, None));
    watcher.expect_silence(QUIET_MS);
}

// ---------------------------------------------------------------------------
// 5. Clock control over HTTP and its refusals
// ---------------------------------------------------------------------------

/// A broker with an HTTP API listener (and a token file, removed on drop).
struct ApiBroker {
    broker: Broker,
    http: SocketAddr,
    token_file: PathBuf,
}

impl ApiBroker {
    fn start(args: &[&str]) -> Option<Self> {
        let token_file = std::env::temp_dir().join(format!(
            "culex-det-token-{}-{}",
            std::process::id(),
            uniq("tok")
        ));
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token file");
        let config = format!(
            "listener 0\nprotocol http\nhttp_token_file {}\n",
            token_file.display()
        );
        let Some(broker) = Broker::start_with_args(&config, args) else {
            let _ = std::fs::remove_file(&token_file);
            return None;
        };
        let http = SocketAddr::from(([127, 0, 0, 1], broker.http_port()));
        Some(Self {
            broker,
            http,
            token_file,
        })
    }

    /// One request on a fresh connection; returns the status line and the body.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> (String, String) {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Connection: close\r\n"
        );
        match body {
            Some(body) => r.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => r.push_str("\r\n"),
        }
        let mut stream = TcpStream::connect_timeout(&self.http, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.http));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        stream.write_all(r.as_bytes()).expect("send request");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_end, len) = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                let len = head
                    .split("\r\n")
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| {
                        v.trim().parse::<usize>().expect("Content-Length")
                    });
                break (i, len);
            }
            match stream.read(&mut chunk) {
                Ok(0) => panic!("no response head: {:?}", String::from_utf8_lossy(&buf)),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading response: {e}"),
            }
        };
        while buf.len() < head_end + 4 + len {
            match stream.read(&mut chunk) {
                Ok(0) => panic!("short response body: {:?}", String::from_utf8_lossy(&buf)),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading response body: {e}"),
            }
        }
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status_line = head.split("\r\n").next().unwrap_or_default().to_string();
        let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + len]).into_owned();
        (status_line, body)
    }

    /// A request expected to answer 200 with the clock object; returns it.
    fn clock(&self, method: &str, body: Option<&str>) -> serde_json::Value {
        let (status, text) = self.request(method, "/api/v1/clock", body);
        assert_eq!(
            status, "HTTP/1.1 200 OK",
            "{method} /api/v1/clock {body:?}: {text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("clock answer is not JSON ({e}): {text}"));
        assert_eq!(value["deterministic"], true, "{text}");
        assert!(value["now_ms"].is_u64(), "no integer now_ms in {text}");
        assert!(value["wall_ms"].is_u64(), "no integer wall_ms in {text}");
        value
    }

    /// A request expected to fail with `status_line` and a JSON error object.
    fn expect_error(
        &self,
        method: &str,
        body: Option<&str>,
        status_line: &str,
        error: Option<&str>,
    ) {
        let (status, text) = self.request(method, "/api/v1/clock", body);
        assert_eq!(
            status, status_line,
            "{method} /api/v1/clock {body:?}: {text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("error answer is not JSON ({e}): {text}"));
        assert!(value["error"].is_string(), "no error code in {text}");
        assert!(value.get("detail").is_some(), "no detail in {text}");
        if let Some(error) = error {
            assert_eq!(value["error"], error, "{text}");
        }
    }
}

impl Drop for ApiBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.token_file);
    }
}

fn now_ms(clock: &serde_json::Value) -> u64 {
    clock["now_ms"].as_u64().expect("now_ms")
}

fn wall_ms(clock: &serde_json::Value) -> u64 {
    clock["wall_ms"].as_u64().expect("wall_ms")
}

#[test]
fn deterministic_clock_is_controlled_over_http_and_mqtt() {
    let Some(api) = ApiBroker::start(&["--deterministic", "7"]) else {
        return;
    };
    let start = api.clock("GET", None);
    let t0 = now_ms(&start);

    // POST advances like the topic does, timers included: keep alive 1 s is over after 2 s.
    let mut short = api.broker.client();
    short.send(&connect_v311(&uniq("short"), true, 1));
    short.expect(&hex!("20 02 00 00"));
    let after = api.clock("POST", Some(r#"{"advance_ms": 2000}"#));
    assert_eq!(now_ms(&after), t0 + 2000, "{after}");
    assert_eq!(wall_ms(&after), wall_ms(&start) + 2000, "{after}");
    short.expect_closed();
    assert_eq!(api.clock("GET", None), after);

    // The topic and the API move the same clock.
    let mut ctl = control(&api.broker);
    advance(&mut ctl, 1500);
    let after = api.clock("GET", None);
    assert_eq!(now_ms(&after), t0 + 3500, "{after}");
    assert_eq!(wall_ms(&after), wall_ms(&start) + 3500, "{after}");

    // Bad values are refused, and the clock stays where it was.
    for bad in [
        r#"{"advance_ms": -1}"#,
        r#"{"advance_ms": "x"}"#,
        r#"{"x": 1}"#,
        r#"{"advance_ms": 1.5}"#,
        r#"{"advance_ms": 86400001}"#,
    ] {
        api.expect_error("POST", Some(bad), "HTTP/1.1 400 Bad Request", None);
    }
    assert_eq!(api.clock("GET", None), after);

    // A non-numeric payload on the topic: 0x99, and no advance.
    for bad in [&b"abc"[..], b"12x"] {
        assert_eq!(
            publish_advance(&mut ctl, bad),
            0x99,
            "payload {:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(api.clock("GET", None), after);

    // The largest advance allowed is a day.
    let day = api.clock("POST", Some(r#"{"advance_ms": 86400000}"#));
    assert_eq!(now_ms(&day), t0 + 3500 + 86_400_000, "{day}");
    ctl.ping();
}

#[test]
fn clock_control_is_refused_outside_deterministic_mode() {
    let Some(api) = ApiBroker::start(&[]) else {
        return;
    };
    api.expect_error(
        "POST",
        Some(r#"{"advance_ms": 1000}"#),
        "HTTP/1.1 409 Conflict",
        Some("conflict"),
    );

    let mut c = control(&api.broker);
    assert_eq!(publish_advance(&mut c, b"1000"), 0x87);
    // The connection carries on.
    c.ping();
    disconnect_and_wait(c);
}

// ---------------------------------------------------------------------------
// 6. Generated values come from the seed
// ---------------------------------------------------------------------------

/// The Assigned Client Identifier a fresh broker started with `args` gives its first v5
/// client with an empty client id; `None` in validation mode.
fn first_assigned_id(args: &[&str], extra_config: &str) -> Option<Vec<u8>> {
    let broker = Broker::start_with_args(extra_config, args)?;
    let (c, props) = broker.connected_v5("");
    let id = match prop(&props, 0x12) {
        Some(Value::Bytes(id)) => id.clone(),
        other => panic!("no Assigned Client Identifier in CONNACK: {other:?} in {props:?}"),
    };
    assert!(!id.is_empty(), "empty Assigned Client Identifier");
    disconnect_and_wait(c);
    Some(id)
}

#[test]
fn deterministic_same_seed_assigns_the_same_client_identifier() {
    let Some(a) = first_assigned_id(&["--deterministic", "42"], "") else {
        return;
    };
    let b = first_assigned_id(&["--deterministic", "42"], "").expect("spawned broker");
    let c = first_assigned_id(&["--deterministic", "43"], "").expect("spawned broker");
    let show = |id: &[u8]| String::from_utf8_lossy(id).into_owned();
    assert_eq!(show(&a), show(&b), "seed 42 twice");
    assert_ne!(show(&a), show(&c), "seeds 42 and 43");
}

#[test]
fn deterministic_config_line_is_the_same_as_the_flag() {
    let Some(flag) = first_assigned_id(&["--deterministic", "42"], "") else {
        return;
    };
    let line = first_assigned_id(&[], "deterministic 42").expect("spawned broker");
    assert_eq!(
        String::from_utf8_lossy(&flag),
        String::from_utf8_lossy(&line)
    );
}

/// One scripted run in deterministic mode with `seed`, traced, with MQTT 3.1.1 and 5.0
/// clients over TCP, a WebSocket client, an MQTT-SN client and a persistent store; returns
/// the trace. Every step waits for its answer, so the order of events is the scenario's
/// alone.
fn traced_run(seed: u64, dir: &std::path::Path) -> String {
    let run = uniq("run");
    let path = dir.join(format!("trace-{seed}-{run}.jsonl"));
    let store = dir.join(format!("trace-{seed}-{run}"));
    let path_text = path.display().to_string();
    let seed_text = seed.to_string();
    let config = format!(
        "listener 0 127.0.0.1\nprotocol websockets\nlistener 0 127.0.0.1\nprotocol mqttsn\n\
         persistence true\npersistence_location {}\n",
        store.display()
    );
    let args = ["--deterministic", &seed_text, "--trace", &path_text];
    let Some(mut broker) = Broker::start_with_args(&config, &args) else {
        return String::new();
    };
    let ws_port = broker.ports(2)[1];
    let gw = crate::mqttsn::gateway_addr(&broker);
    let mut sub = broker.client();
    sub.send(&connect_v5("trace-sub", true, 30, &session_expiry(60)));
    sub.recv_packet();
    sub.send(&subscribe(1, "trace/#", 1, true));
    sub.recv_packet();
    let mut publisher = broker.client();
    publisher.send(&connect_v311("trace-pub", true, 0));
    publisher.recv_packet();
    publisher.send(&publish("trace/a", b"one", 1, 1, false, None));
    publisher.recv_packet();
    sub.recv_packet();
    // Over WebSockets: subscribe, then publish QoS 1 to the others.
    let mut ws = crate::transport::ws_plain(ws_port);
    ws.send(&connect_v311("trace-ws", true, 0));
    ws.recv();
    ws.send(&subscribe(1, "trace/#", 0, false));
    ws.recv();
    ws.send(&publish("trace/ws", b"two", 1, 2, false, None));
    // Its PUBACK and its own message, in the broker's one order.
    ws.recv();
    ws.recv();
    sub.recv_packet();
    // An MQTT-SN client: CONNECT, REGISTER, PUBLISH QoS 1 to everyone, DISCONNECT.
    let sn = crate::mqttsn::SnClient::connected(gw, "trace-sn", 0);
    let topic = sn.register(1, "trace/sn");
    sn.send(&crate::mqttsn::publish_msg(0x20, topic, 2, b"three"));
    sn.recv();
    sub.recv_packet();
    ws.recv();
    sn.disconnect();
    // An identifier the broker assigns comes from the seed.
    let mut anonymous = broker.client();
    anonymous.send(&connect_v5("", true, 0, &[]));
    anonymous.recv_packet();
    // The subscriber's keep alive (30 s) runs out on the virtual clock.
    let mut ctl = broker.client();
    ctl.send(&connect_v5("trace-ctl", true, 0, &[]));
    ctl.recv_packet();
    ctl.send(&publish(ADVANCE, b"46000", 1, 1, false, Some(&[])));
    ctl.recv_packet();
    sub.expect_closed();
    publisher.send(&hex!("e0 00"));
    publisher.expect_closed();
    broker.signal("TERM");
    assert!(broker
        .wait_exit(std::time::Duration::from_secs(10))
        .is_some());
    let trace =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&store);
    trace
}

#[test]
fn deterministic_runs_of_one_scenario_give_the_same_trace() {
    let dir = std::env::temp_dir();
    let first = traced_run(9, &dir);
    if first.is_empty() {
        return;
    }
    let second = traced_run(9, &dir);
    assert_eq!(first, second, "two runs with seed 9 differ");
    assert!(first.starts_with("{\"t\":0,\"event\":\"start\",\"version\":1,\"seed\":9}\n"));
    for needle in [
        "\"event\":\"opened\"",
        "\"packet\":\"SUBACK\"",
        "\"event\":\"clock\"",
        "\"event\":\"timer\",\"conn\":1,\"timer\":\"keep_alive\"",
        "\"event\":\"commit\"",
        "\"event\":\"datagram_in\",\"listener\":2,\"peer\":1,\"packet\":\"REGISTER\"",
        "\"event\":\"datagram_out\",\"listener\":2,\"peer\":1,\"packet\":\"PUBACK\"",
        "\"hex\":\"320f000874726163652f7773000274776f\"",
    ] {
        assert!(first.contains(needle), "{needle} missing:\n{first}");
    }
    // Another seed: only the seed and what comes from it (the assigned identifier) differ.
    let other = traced_run(10, &dir);
    assert_ne!(first, other);
    let differing: Vec<(&str, &str)> = first
        .lines()
        .zip(other.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(first.lines().count(), other.lines().count());
    for (a, b) in &differing {
        let seeded =
            a.contains("\"event\":\"start\"") || a.contains("Assigned") || a.contains("culex-");
        assert!(seeded, "a difference not due to the seed:\n{a}\n{b}");
    }
}
